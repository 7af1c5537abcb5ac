"""Round 16 of the default's selection (issue 17): the silicon cochlea's drive, chosen on
seen-class validation within the range the real recording allows.

The one real N-TIDIGITS recording bounds the cochlea model's ``gain_per_s`` from two
sides (docs/data.md, cochlea_gain.py): 875 matches its events per spoken digit (the
default), 1,750 its event rate while the digit sounds. Both are readings of the same
sensor; which one FSDD's longer, trimmed utterances should follow the recording cannot
say. A sensor bias is a co-design parameter like the reservoir's scale, so this round
lets the validation view choose it, inside that bracket only: 875 (the reference), 1,237
(the bracket's geometric middle) and 1,750, each with the default recipe unchanged
(features re-encoded through the same chip and reservoir). Same view as rounds 11-15
(official train files of 1-7, 21 pseudo splits x 3 seeds).

The rule, fixed before the run (a choice, so the usual margin): the gain with the best
pseudo 5-shot audio->image top-1 is adopted if it beats 875 by more than 0.005, its
pseudo 1-shot is no more than 0.01 below 875's, and its pseudo unseen zero-shot and
seen-test audio->image top-1 are no more than 0.01 below; otherwise the default keeps
875.

Disclosure: cochlea_gain.py had run the default at 875 and 1,750 on the evaluation
splits before this script was written (the weak pairs 2 vs 3, 6 vs 8, 1 vs 9 rise at
1,750; 2 vs 7 falls to 0.777; 5-shot over 36 +0.005 [-0.015, +0.026]). This round's
candidates and rule do not depend on those figures beyond the bracket itself, which the
recording set.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/selection_round16.py

writes selection_round16.json beside it.
"""
from __future__ import annotations

import json
import pathlib
import time

from selection_round11 import FS5, MARGIN, SEEDS, SEEN, SEEN_TEST, SEEN_TEST_SLACK, ZS, \
    _mean, _paired, _protocol
from selection_round14 import FS1, holds

HERE = pathlib.Path(__file__).resolve().parent
GAINS = (875.0, 1237.0, 1750.0)
"""The reference (the per-digit calibration) first, then the bracket's middle and top."""


def _scores(rec) -> dict:
    return {"fewshot5_top1": _mean(rec, "fewshot.unseen.audio_to_image.top1"),
            "fewshot1_top1": rec["fewshot_by_shots"]["1"]["unseen"]["audio_to_image"]
            ["top1"]["mean"],
            "zeroshot_top1": _mean(rec, ZS), "seen_test_top1": _mean(rec, SEEN_TEST),
            "per_split_fewshot5": {",".join(map(str, r["unseen"])): sum(r[FS5]) /
                                   len(r[FS5]) for r in rec["per_split"]}}


def main() -> dict:
    from threadpoolctl import threadpool_limits

    from projections import METHODS
    from projections.selection import validation_view
    from rram_lsm.app.features import cochlea_for, encode_pair
    from rram_lsm.app.threads import torch_threads
    from rram_lsm.records import write_record

    t0 = time.time()
    cfg = METHODS["default"]
    scores, records = {}, {}
    with torch_threads(1), threadpool_limits(1):
        for gain in GAINS:
            name = f"{gain:g}"
            cochlea = cochlea_for(gain)   # 875: the one calibrated drive (SINGLE_DRIVE)
            data = encode_pair(None, kind=cfg.encoded_kind, progress=False,
                               cochlea=cochlea)
            rec = records[name] = _protocol(validation_view(data, SEEN), cfg, (1, 5))
            v = scores[name] = _scores(rec)
            v["audio_firing_rate_per_step"] = data.meta["audio"]["firing_rate_per_step"]
            if gain != GAINS[0]:
                for key, short in ((FS5, "fewshot5"), (FS1, "fewshot1"), (ZS, "zeroshot"),
                                   (SEEN_TEST, "seen_test")):
                    v[f"{short}_minus_reference"] = _paired(rec, records[f"{GAINS[0]:g}"],
                                                            key)
            print(name, json.dumps({k: x for k, x in v.items()
                                    if k != "per_split_fewshot5"}), flush=True)
    ref = f"{GAINS[0]:g}"
    best = max((f"{g:g}" for g in GAINS[1:]), key=lambda n: scores[n]["fewshot5_top1"])
    adopted = best if holds(scores[best], scores[ref], MARGIN) else ref
    print("best", best, "adopted", adopted, flush=True)
    out = {"scores": scores, "reference": ref, "best": best, "adopted": adopted,
           "method": cfg.name, "n_pseudo_splits": 21, "seeds": SEEDS, "margin": MARGIN,
           "slack": SEEN_TEST_SLACK,
           "view": "official train files of seen classes 1-7, 20 % as pseudo-test",
           "wall_s": time.time() - t0}
    write_record(HERE / "selection_round16.json", out,
                 command="docs/results/zeroshot/selection_round16.py",
                 config={"method": cfg, "gains_per_s": list(GAINS),
                         "adopted_gain_per_s": float(adopted)},
                 seeds=list(range(SEEDS)))
    return out


if __name__ == "__main__":
    main()
