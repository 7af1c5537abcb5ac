"""Round 6 of the default's selection (issue 17): few-shot options on the seen-class
validation view, through untrained twins. RRAM_LSM_DATA=../shared/data python
docs/results/zeroshot/selection_round6.py (writes selection_round6.json beside it)."""
import json, time, torch
torch.set_num_threads(1)
from threadpoolctl import threadpool_limits; threadpool_limits(1)
from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
from projections import select_method
from projections.recipes import _round6, candidates
from projections.train import METHODS
from rram_lsm.records import write_record
if __name__ != "__main__": raise SystemExit
t = time.time()
data = {k: encode_pair(None, cochlea=SINGLE_DRIVE,
                       kind=k, progress=False) for k in ("counts+input",)}
print("encoded", time.time() - t, flush=True)
cands = [c for c in candidates() if c.name == "raw_whiten0.5_counts+input"] + [c for c in _round6() if not c.trained]
best, scores = select_method(data, cands, n_splits=6, seeds=3, shots=5, progress=False)
top = sorted(scores, key=lambda k: -scores[k]["fewshot_top1"])[:3] + ["raw_whiten0.5_counts+input"]
scores1 = select_method(data, [c for c in cands if c.name in top], n_splits=6, seeds=3, shots=1, progress=False)[1]
for k in scores1: scores[k]["fewshot1_top1"] = scores1[k]["fewshot_top1"]
for k, v in sorted(scores.items(), key=lambda kv: -kv[1]["fewshot_top1"]):
    print(f"{k:45s} 5-shot {v['fewshot_top1']:.4f} 1-shot {v.get('fewshot1_top1', float('nan')):.4f}")
write_record(__import__("pathlib").Path(__file__).with_suffix(".json"), {"scores": scores, "n_pseudo_splits": 6, "seeds": 3}, command="select-round6", config={"candidates": [c.name for c in cands]}, seeds=[0,1,2])
print("done", time.time() - t)
