"""Round 9 of the default's selection (issue 17): the few-shot metric on features counted
in windows of each utterance's active span (``span``: the reservoir's spikes,
``input_span``: its input, the cochlea channels' temporal envelope), with a signed square
root, scored on the seen-class validation view only through untrained twins of the
default (with fewshot_raw_weight 1 a trained recipe's few-shot figures are its twin's, bit
for bit). The rule, fixed before the run: the candidate with the best pseudo 5-shot
audio->image wins if it beats today's default by more than 0.005; a recipe without the
reservoir (input kinds only) is an ablation and cannot win.
RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/selection_round9.py
(writes selection_round9.json beside it)."""
import json, sys, time, torch
torch.set_num_threads(1)
from threadpoolctl import threadpool_limits; threadpool_limits(1)
from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
from projections import select_method
from projections.recipes import _round9
from projections.train import METHODS
from rram_lsm.records import write_record
if __name__ != "__main__": raise SystemExit
t0 = time.time()
twin = METHODS["raw"].replace(fewshot_sources="own", fewshot_transductive=3,
                              fewshot_transductive_temperature=0.05)
# today's default's twin first, then the round's grid (projections.selection lists it),
# then the ablations; (features, transform, whitening shrinkage)
REFERENCE = [("counts+input", "none", 0.7)]
ABLATIONS = [("input_span", "sqrt", 0.7), ("input", "none", 0.7)]
data = encode_pair(None, cochlea=SINGLE_DRIVE, kind="counts+span+input+input_span", progress=False)


def named(rows):
    return [twin.replace(name=f"raw_{k}_{t}_w{w}_trans3", features=k, feature_transform=t,
                         fewshot_whiten=w) for k, t, w in rows]
GRID = named(REFERENCE) + _round9()
cands = GRID + named(ABLATIONS)
by_kind = {k: data.select_kind(k) for k in {c.features for c in cands}}
scores = {}
for shots in (5, 1):
    _, s = select_method(by_kind, cands, n_splits=6, seeds=3, shots=shots, progress=False)
    for k, v in s.items():
        scores.setdefault(k, {})[f"fewshot{shots}_top1"] = v["fewshot_top1"]
ablation = {c.name for c in cands[len(GRID):]}
for c in cands:
    v = scores[c.name]
    v["ablation"] = c.name in ablation
    print(f"{c.name:50s} 5-shot {v['fewshot5_top1']:.4f} 1-shot {v['fewshot1_top1']:.4f}"
          f"{'  (ablation)' if v['ablation'] else ''}", flush=True)
ref = cands[0].name
best = max((c.name for c in cands[:len(GRID)]), key=lambda n: scores[n]["fewshot5_top1"])
adopt = best if scores[best]["fewshot5_top1"] > scores[ref]["fewshot5_top1"] + 0.005 else ref
print("best", best, "adopted", adopt)
write_record(__import__("pathlib").Path(__file__).with_suffix(".json"),
             {"scores": scores, "best": best, "adopted": adopt, "reference": ref,
              "n_pseudo_splits": 6, "seeds": 3,
              "view": "official train files of seen classes 1-7, 20 % as pseudo-test"},
             command="select-round9", config={"candidates": [c.name for c in cands]},
             seeds=[0, 1, 2])
print("done", time.time() - t0)
