"""Round 7 of the default's selection (issue 17): larger audio reservoirs and their
time-resolved (windowed) counts for the few-shot metric, on the seen-class validation
view only, through untrained twins of the default (with fewshot_raw_weight 1 a trained
recipe's few-shot figures are its twin's, bit for bit).
RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/selection_round7.py
(writes selection_round7.json beside it)."""
import json, sys, time, torch
torch.set_num_threads(1)
from threadpoolctl import threadpool_limits; threadpool_limits(1)
from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
from projections import select_method
from projections.train import METHODS
from rram_lsm.records import write_record
if __name__ != "__main__": raise SystemExit
t0 = time.time()
SIZES = [int(a) for a in sys.argv[1:]] or [200, 500, 1000, 2000]
KINDS = ("counts+input", "counts", "windowed+input", "counts+windowed+input")
# the whitener's eigendecomposition grows as F^3: windowed counts (5 windows per neuron)
# are scored only where F stays near the default's (200 neurons: 1,064; 500: 2,564)
GRID = {200: [("counts+input", 0.7), ("counts+input", 0.9), ("windowed+input", 0.7),
              ("windowed+input", 0.9)],
        500: [("counts+input", 0.5), ("counts+input", 0.7), ("counts+input", 0.9),
              ("counts", 0.7), ("windowed+input", 0.9)],
        1000: [("counts+input", 0.5), ("counts+input", 0.7), ("counts+input", 0.9),
               ("counts", 0.7)],
        2000: [("counts+input", 0.7), ("counts+input", 0.9)]}
twin = METHODS["raw"].replace(fewshot_sources="own", fewshot_transductive=3,
                              fewshot_transductive_temperature=0.05)
scores, cands_all = {}, []
for n in SIZES:
    # one encode per size holds every kind: counts run first, so their columns (and cache
    # entry) are those of a counts+input encode
    data = encode_pair(None, cochlea=SINGLE_DRIVE, kind="counts+windowed+input", progress=False,
                       audio_neurons=None if n == 200 else n)
    by_kind = {k: data.select_kind(k) for k in {k for k, _ in GRID[n]}}
    cands = [twin.replace(name=f"raw_a{n}_{k}_w{w}_trans3", features=k, fewshot_whiten=w)
             for k, w in GRID[n]]
    cands_all += [c.name for c in cands]
    for shots in (5, 1):
        _, s = select_method(by_kind, cands, n_splits=6, seeds=3, shots=shots,
                             progress=False)
        for k, v in s.items():
            scores.setdefault(k, {"audio_neurons": n})[f"fewshot{shots}_top1"] = \
                v["fewshot_top1"]
    for c in cands:
        v = scores[c.name]
        print(f"{c.name:45s} 5-shot {v['fewshot5_top1']:.4f} 1-shot "
              f"{v['fewshot1_top1']:.4f}  ({time.time() - t0:.0f} s)", flush=True)
out = __import__("pathlib").Path(__file__).with_suffix(".json")
if len(sys.argv) > 1:
    out = out.with_name(out.stem + "_" + "_".join(sys.argv[1:]) + ".json")
write_record(out, {"scores": scores, "n_pseudo_splits": 6, "seeds": 3,
                   "view": "official train files of seen classes 1-7, 20 % as pseudo-test"},
             command="select-round7", config={"candidates": cands_all}, seeds=[0, 1, 2])
print("done", time.time() - t0)
