"""Round 13 of the default's selection (issue 17): a transductive metric for the unseen
pair itself. After the default's prototypes and soft k-means steps, EM of a Gaussian
mixture with one covariance shared by the episode's two classes (support labelled, queries
as posteriors) in the top principal directions of the unseen pool
(projections.episode_em), on the same whole validation view as rounds 11-12 (21 pseudo
splits x 3 seeds, official train files of 1-7; selection_round11.py).

Disclosure: the candidate family comes from an analysis of the evaluation splits
(pair_ceiling.json: even the true class means reach only 0.83 on spoken 2 vs 3 in the
default's metric, a supervised linear classifier 0.95, so the seen classes' covariance
does not fit that pair). The grid, the reference and the rule below are fixed here before
the run; no figure of this family on the evaluation splits was read before it.

Grid, as untrained twins of the default's few-shot metric (round 12's adopted): EM steps
3 / 10 x principal directions 8 / 16 / 32 / 64 x covariance shrinkage 0.2 / 0.5 / 0.8.

The rule: the candidate with the best pseudo 5-shot audio->image top-1 wins if it beats
the reference (the default's metric, EM off) by more than 0.005 and its pseudo 1-shot
audio->image top-1 is no more than 0.01 below the reference's; otherwise the default's
metric stays.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/selection_round13.py

writes selection_round13.json beside it.
"""
from __future__ import annotations

import itertools
import json
import pathlib
import time

from selection_round11 import FS5, MARGIN, SEEDS, SEEN, SEEN_TEST_SLACK, _mean, _paired, \
    _protocol

HERE = pathlib.Path(__file__).resolve().parent
FS1 = "fewshot.1.unseen.audio_to_image.top1"


def candidates(base):
    grid = itertools.product((3, 10), (8, 16, 32, 64), (0.2, 0.5, 0.8))
    return [base.replace(name=f"{base.name}_em{k}_d{d}_s{s:g}", fewshot_em_steps=k,
                         fewshot_em_dims=d, fewshot_em_shrinkage=s) for k, d, s in grid]


def _shots(rec, k, direction="audio_to_image"):
    return rec["fewshot_by_shots"][str(k)]["unseen"][direction]["top1"]["mean"]


def score_twins(view, cands, extra=lambda cfg: {}) -> dict:
    """Pseudo 1- and 5-shot scores of every twin of ``cands`` (the reference first) on
    ``view``, with paired differences to the reference; ``extra(cfg)`` adds fields."""
    ref, scores, records = cands[0], {}, {}
    for cfg in cands:
        rec = records[cfg.name] = _protocol(view, cfg, (1, 5))
        v = scores[cfg.name] = {
            **extra(cfg),
            "fewshot5_top1": _mean(rec, "fewshot.unseen.audio_to_image.top1"),
            "fewshot1_top1": _shots(rec, 1),
            "fewshot5_i2a_top1": _shots(rec, 5, "image_to_audio"),
            "per_split_fewshot5": {",".join(map(str, r["unseen"])): sum(r[FS5]) /
                                   len(r[FS5]) for r in rec["per_split"]}}
        if cfg is not ref:
            v["fewshot5_minus_reference"] = _paired(rec, records[ref.name], FS5)
            v["fewshot1_minus_reference"] = _paired(rec, records[ref.name], FS1)
        print(cfg.name, json.dumps({k: x for k, x in v.items()
                                    if k != "per_split_fewshot5"}), flush=True)
    return scores


def fewshot_rule(scores, cands) -> tuple[str, str]:
    """``(best, adopted)``: the best pseudo 5-shot wins if it beats the reference
    (``cands[0]``) by more than the margin and its 1-shot is within the slack."""
    ref = cands[0]
    best = max((c.name for c in cands[1:]), key=lambda n: scores[n]["fewshot5_top1"])
    won = (scores[best]["fewshot5_top1"] > scores[ref.name]["fewshot5_top1"] + MARGIN
           and scores[best]["fewshot1_top1"] >= scores[ref.name]["fewshot1_top1"]
           - SEEN_TEST_SLACK)
    adopted = best if won else ref.name
    print("best", best, "adopted", adopted, flush=True)
    return best, adopted


def write_twin_round(stem: str, scores: dict, cands, t0: float, view: str) -> dict:
    """Apply :func:`fewshot_rule` to a round's ``scores`` and write ``{stem}.json`` beside
    this script (the adopted twin in its config); return the record's body."""
    from rram_lsm.records import write_record

    best, adopted = fewshot_rule(scores, cands)
    out = {"scores": scores, "reference": cands[0].name, "best": best, "adopted": adopted,
           "n_pseudo_splits": 21, "seeds": SEEDS, "margin": MARGIN,
           "fewshot1_slack": SEEN_TEST_SLACK, "view": view, "wall_s": time.time() - t0}
    write_record(HERE / f"{stem}.json", out, command=f"docs/results/zeroshot/{stem}.py",
                 config={"fewshot_adopted": next(c for c in cands if c.name == adopted)},
                 seeds=list(range(SEEDS)))
    return out


def main() -> dict:
    from threadpoolctl import threadpool_limits

    from projections.selection import validation_view
    from projections.train import MethodConfig
    from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
    from rram_lsm.app.threads import torch_threads
    from rram_lsm.records import read_record

    t0 = time.time()
    ref = MethodConfig(**read_record(HERE / "selection_round12.json")["config"]
                       ["fewshot_adopted"])
    cands = [ref] + candidates(ref)
    with torch_threads(1), threadpool_limits(1):
        view = validation_view(encode_pair(None, cochlea=SINGLE_DRIVE,
                                           kind=ref.encoded_kind, progress=False),
                               SEEN)
        scores = score_twins(view, cands)
    return write_twin_round("selection_round13", scores, cands, t0,
                            "official train files of seen classes 1-7, 20 % as pseudo-test")


if __name__ == "__main__":
    main()
