"""Round 14 of the default's selection (issue 17): the standardisation floor, a defect.

Standardisation divided every feature by its std on the seen classes' training samples,
floored at 1e-6. A reservoir neuron (or a cochlea channel in one window) that was silent
for every training sample of the seen digits has std 0; when an unseen utterance makes it
fire, that one standardised feature is ~10^5 and the utterance's unit vector is that
feature alone. On the validation view's pseudo split 2 vs 3, 22 of the 540 pool
utterances were such vectors in the few-shot features; about 0.6 % of the unseen audio
samples of the evaluation splits in the heads' inputs. ``MethodConfig.scale_floor``
floors every divisor at a fraction of the median feature std instead
(projections.heads.feature_scale), for the heads' inputs and few-shot's raw features
alike.

Disclosure: the defect was found while analysing pseudo 2 vs 3 on this validation view;
before writing this script I had scored, on seed 0 of the view's 21 pseudo splits and
few-shot only, three ways of handling such features (std 0 -> 1; a floor of 0.1 x the
median std; clipping standardised values to +-10): pseudo 5-shot 0.953 / 0.954 / 0.955
against 0.948 (no record). No figure of any of them on the evaluation splits was read.

Candidates (projections.recipes._round14): round 13's default with scale_floor 0.01, 0.03,
0.1, 0.3 (heads retrained: they standardise their inputs); the reference is round 13's
default (scale_floor 0, the old floor). Same view as rounds 11-13 (21 pseudo splits x 3
seeds, official train files of 1-7).

The rule, fixed before the run: the candidate with the best pseudo 5-shot audio->image
top-1 is adopted if it is not below the reference's (a defect fix needs no margin, but it
must not cost validation accuracy), its pseudo 1-shot is no more than 0.01 below, and its
pseudo unseen zero-shot and seen-test audio->image top-1 are no more than 0.01 below the
reference's. Whether it also clears the usual margin (0.005) is reported.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/selection_round14.py

writes selection_round14.json beside it.
"""
from __future__ import annotations

import json
import pathlib
import time

from selection_round11 import FS5, MARGIN, SEEDS, SEEN, SEEN_TEST, SEEN_TEST_SLACK, ZS, \
    _mean, _paired, _protocol

HERE = pathlib.Path(__file__).resolve().parent
FS1 = "fewshot.1.unseen.audio_to_image.top1"


def score(cands, ref) -> dict:
    """Each candidate's pseudo figures on the validation view (and its paired differences
    to ``ref``, the first of ``cands``)."""
    from threadpoolctl import threadpool_limits

    from projections.selection import validation_view
    from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
    from rram_lsm.app.threads import torch_threads

    scores, records = {}, {}
    with torch_threads(1), threadpool_limits(1):
        view = validation_view(encode_pair(None, cochlea=SINGLE_DRIVE,
                                           kind=ref.encoded_kind, progress=False),
                               SEEN)
        for cfg in cands:
            rec = records[cfg.name] = _protocol(view, cfg, (1, 5))
            v = scores[cfg.name] = {
                "fewshot5_top1": _mean(rec, "fewshot.unseen.audio_to_image.top1"),
                "fewshot1_top1": rec["fewshot_by_shots"]["1"]["unseen"]["audio_to_image"]
                ["top1"]["mean"],
                "zeroshot_top1": _mean(rec, ZS), "seen_test_top1": _mean(rec, SEEN_TEST),
                "per_split_fewshot5": {",".join(map(str, r["unseen"])): sum(r[FS5]) /
                                       len(r[FS5]) for r in rec["per_split"]}}
            if cfg is not ref:
                for key, name in ((FS5, "fewshot5"), (FS1, "fewshot1"), (ZS, "zeroshot"),
                                  (SEEN_TEST, "seen_test")):
                    v[f"{name}_minus_reference"] = _paired(rec, records[ref.name], key)
            print(cfg.name, json.dumps({k: x for k, x in v.items()
                                        if k != "per_split_fewshot5"}), flush=True)
    return scores


def holds(b, r, margin=0.0) -> bool:
    """The rule: 5-shot above the reference's by more than ``margin`` (or not below it,
    margin 0), 1-shot, zero-shot and seen-test no more than the slack below."""
    five = b["fewshot5_top1"] > r["fewshot5_top1"] + margin if margin \
        else b["fewshot5_top1"] >= r["fewshot5_top1"]
    return (five and b["fewshot1_top1"] >= r["fewshot1_top1"] - SEEN_TEST_SLACK
            and b["zeroshot_top1"] >= r["zeroshot_top1"] - SEEN_TEST_SLACK
            and b["seen_test_top1"] >= r["seen_test_top1"] - SEEN_TEST_SLACK)


def adopt(stem, cands, scores, t0, margin=0.0, **extra) -> dict:
    """Apply :func:`holds` to the best candidate against the reference (``cands[0]``),
    write ``{stem}.json`` beside this script and return its content."""
    from rram_lsm.records import write_record

    ref = cands[0]
    best = max((c.name for c in cands[1:]), key=lambda n: scores[n]["fewshot5_top1"])
    adopted = best if holds(scores[best], scores[ref.name], margin) else ref.name
    print("best", best, "adopted", adopted, flush=True)
    out = {"scores": scores, "reference": ref.name, "best": best, "adopted": adopted,
           **extra, "n_pseudo_splits": 21, "seeds": SEEDS, "margin": margin or MARGIN,
           "slack": SEEN_TEST_SLACK,
           "view": "official train files of seen classes 1-7, 20 % as pseudo-test",
           "wall_s": time.time() - t0}
    write_record(HERE / f"{stem}.json", out, command=f"docs/results/zeroshot/{stem}.py",
                 config={"adopted": next(c for c in cands if c.name == adopted)},
                 seeds=list(range(SEEDS)))
    return out


def main() -> dict:
    from projections.recipes import _default_of_round13, _round14

    t0 = time.time()
    ref = _default_of_round13()
    cands = [ref] + _round14()
    scores = score(cands, ref)
    best = max((c.name for c in cands[1:]), key=lambda n: scores[n]["fewshot5_top1"])
    clears = scores[best]["fewshot5_top1"] > scores[ref.name]["fewshot5_top1"] + MARGIN
    return adopt("selection_round14", cands, scores, t0, clears_margin=clears)


if __name__ == "__main__":
    main()
