"""Round 11 of the default's selection (issue 17): rounds 9 and 10 again, on the whole
seen-class validation view: all 21 pseudo splits (2 of the seen digits 1-7 held out)
x 3 seeds instead of 6 x 3. Same view, same candidates, same kinds of rule.

Why: validation_power.json showed that 6 pseudo splits resolve nothing under ~0.04 (a
paired interval of +-0.037 on few-shot), so rounds 9 and 10 could not tell their
candidates apart. 21 is every pseudo split the view has.

Disclosure (docs/zeroshot.md, "Round 11"): this round is not blind for one candidate.
Before writing it I had read round 9's best on the evaluation splits (span_36x3.json,
+0.015 over the default) and on all 21 pseudo splits (validation_power.json, +0.016).
What keeps the choice on validation is that the view, the candidates and the rules are
the standing ones, fixed here before the run; only the number of pseudo splits changes.

Rules, fixed before the run:
* Few-shot half (rounds 1-9's rule): among round 9's grid (projections.recipes._round9)
  and today's default's twin, the candidate with the best pseudo 5-shot audio->image top-1
  wins if it beats the twin by more than 0.005. Input-only kinds are ablations, scored,
  and cannot win.
* Zero-shot half (issue 17's second clause: "the default's zero-shot rows come from the
  recipe that validation prefers for zero-shot"): among round 10's heads (the default,
  paper, and the default plus a CLIP term, projections.recipes._round10), the one with
  the best pseudo unseen zero-shot audio->image top-1 is what validation prefers. If it is
  not the default, beats it by more than 0.005 and its pseudo seen-test audio->image is no
  more than 0.01 below the default's, it replaces the default's heads. Otherwise the heads
  stay and the preference is reported (a recipe that loses seen-class retrieval is not a
  default; the composite of two head pairs is not built by this round).
The two halves are independent by construction: with fewshot_raw_weight 1 the heads
never enter few-shot.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/selection_round11.py

writes selection_round11.json beside it.
"""
from __future__ import annotations

import json
import pathlib
import time

SEEN, SEEDS, MARGIN, SEEN_TEST_SLACK = (1, 2, 3, 4, 5, 6, 7), 3, 0.005, 0.01
FS5 = "fewshot.5.unseen.audio_to_image.top1"
ZS = "unseen.audio_to_image.top1"
SEEN_TEST = "seen_test.audio_to_image.top1"


def _mean(rec, dotted):
    node = rec
    for part in dotted.split("."):
        node = node[part]
    return node["mean"]


def _paired(rec, ref, key):
    from projections.evaluate import paired_difference

    d = paired_difference(rec["per_split"], ref["per_split"], key)
    return {"mean": d["mean"], "ci95": d["ci95"]}


def _protocol(view, cfg, shots):
    from projections import run_protocol

    return run_protocol(view.select_kind(cfg.encoded_kind), cfg, splits="all",
                        split_seed=0, unseen=(0, 1), seeds=SEEDS, shots=shots,
                        classes=SEEN, progress=False, engine="auto",
                        workers=2).to_dict()


def fewshot_half(view) -> dict:
    from projections.recipes import _round9
    from projections.train import METHODS

    twin = METHODS["raw"].replace(fewshot_sources="own", fewshot_transductive=3,
                                  fewshot_transductive_temperature=0.05)
    ref = twin.replace(name="raw_counts+input_none_w0.7_trans3", features="counts+input",
                       fewshot_whiten=0.7)
    ablations = [twin.replace(name=f"raw_{k}_{t}_w0.7_trans3", features=k,
                              feature_transform=t, fewshot_whiten=0.7)
                 for k, t in (("input_span", "sqrt"), ("input", "none"))]
    grid = [ref] + _round9()
    scores, records = {}, {}
    for cfg in grid + ablations:
        rec = records[cfg.name] = _protocol(view, cfg, (1, 5))
        v = scores[cfg.name] = {
            "fewshot5_top1": _mean(rec, "fewshot.unseen.audio_to_image.top1"),
            "fewshot1_top1": rec["fewshot_by_shots"]["1"]["unseen"]["audio_to_image"]
                                ["top1"]["mean"],
            "ablation": cfg in ablations}
        if cfg is not ref:
            v["fewshot5_minus_reference"] = _paired(rec, records[ref.name], FS5)
        print(cfg.name, json.dumps(v), flush=True)
    best = max((c.name for c in grid), key=lambda n: scores[n]["fewshot5_top1"])
    won = scores[best]["fewshot5_top1"] > scores[ref.name]["fewshot5_top1"] + MARGIN
    return {"scores": scores, "reference": ref.name, "best": best,
            "adopted": best if won else ref.name,
            "adopted_config": next(c for c in grid if c.name == (best if won else ref.name))}


def zeroshot_half(view) -> dict:
    from projections.recipes import _round10
    from projections.train import METHODS

    ref = METHODS["default"]
    scores, records = {}, {}
    for cfg in [ref, METHODS["paper"]] + _round10():
        rec = records[cfg.name] = _protocol(view, cfg, (5,))
        v = scores[cfg.name] = {"zeroshot_top1": _mean(rec, ZS),
                                "seen_test_top1": _mean(rec, SEEN_TEST)}
        if cfg is not ref:
            v["zeroshot_minus_default"] = _paired(rec, records[ref.name], ZS)
            v["seen_test_minus_default"] = _paired(rec, records[ref.name], SEEN_TEST)
        print(cfg.name, json.dumps(v), flush=True)
    preferred = max(scores, key=lambda n: scores[n]["zeroshot_top1"])
    p, d = scores[preferred], scores[ref.name]
    replaces = (preferred != ref.name and p["zeroshot_top1"] > d["zeroshot_top1"] + MARGIN
                and p["seen_test_top1"] >= d["seen_test_top1"] - SEEN_TEST_SLACK)
    return {"scores": scores, "preferred": preferred,
            "heads_adopted": preferred if replaces else ref.name}


def main() -> dict:
    from threadpoolctl import threadpool_limits

    from projections.selection import validation_view
    from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
    from rram_lsm.app.threads import torch_threads
    from rram_lsm.records import write_record

    t0 = time.time()
    with torch_threads(1), threadpool_limits(1):
        view = validation_view(encode_pair(None, cochlea=SINGLE_DRIVE,
                                           kind="counts+span+input+input_span",
                                           progress=False), SEEN)
        few = fewshot_half(view)
        print("few-shot: best", few["best"], "adopted", few["adopted"], flush=True)
        zero = zeroshot_half(view)
        print("zero-shot: preferred", zero["preferred"], "heads", zero["heads_adopted"],
              flush=True)
    config = few.pop("adopted_config")
    out = {"fewshot": few, "zeroshot": zero, "n_pseudo_splits": 21, "seeds": SEEDS,
           "margin": MARGIN, "seen_test_slack": SEEN_TEST_SLACK,
           "view": "official train files of seen classes 1-7, 20 % as pseudo-test",
           "wall_s": time.time() - t0}
    write_record(pathlib.Path(__file__).with_suffix(".json"), out,
                 command="docs/results/zeroshot/selection_round11.py",
                 config={"fewshot_adopted": config}, seeds=list(range(SEEDS)))
    print("done", out["wall_s"], flush=True)
    return out


if __name__ == "__main__":
    main()
