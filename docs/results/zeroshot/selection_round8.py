"""Round 8 of the default's selection (issues 14 and 17): early stopping of the default's
heads (``patience``), a change made for speed, scored on the seen-class validation view
only. With ``fewshot_raw_weight`` 1 the default's few-shot figures do not read its heads,
so patience can only move its zero-shot and seen-test rows; those are what this compares,
paired run by run against the default without patience, beside the training work saved.

The rule, fixed before the scores were read: the smallest patience whose validation score
is not below the default's by more than the paired 95 % interval allows (its interval of
the zero-shot difference includes 0 or lies above it) and whose pseudo seen-test retrieval
is within 0.01 of the default's is adopted; otherwise the default keeps training all
100 epochs.

RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/selection_round8.py
(writes selection_round8.json beside it)."""
import json
import pathlib
import time

from threadpoolctl import threadpool_limits

from projections import run_protocol
from projections.evaluate import paired_difference
from projections.selection import validation_view
from projections.train import METHODS
from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
from rram_lsm.app.threads import torch_threads
from rram_lsm.records import write_record

PATIENCE = (None, 30, 20, 10)
N_SPLITS, SEEDS, SEEN = 6, 3, (1, 2, 3, 4, 5, 6, 7)


def adopted(v) -> bool:
    """The rule above: zero-shot not worse beyond its interval, seen-test within 0.01."""
    zs = v["zeroshot_minus_default"]
    return zs["ci95"][1] >= 0 and v["seen_test_minus_default"]["mean"] >= -0.01


def main():
    # one torch thread, re-pinned by encode_pair after the simulator's kernels
    with torch_threads(1), threadpool_limits(1):
        run()


def run():
    t0 = time.time()
    view = validation_view(encode_pair(None, cochlea=SINGLE_DRIVE,
                                       kind="counts+input", progress=False), SEEN)
    records, out = {}, {}
    for p in PATIENCE:
        cfg = METHODS["default"].replace(name=f"default_patience{p}", patience=p)
        res = run_protocol(view, cfg, splits=N_SPLITS, split_seed=0, unseen=(0, 1),
                           seeds=SEEDS, shots=(5,), classes=SEEN, progress=False,
                           engine="batched", workers=2)
        rec = res.to_dict()
        records[p] = rec
        out[cfg.name] = {
            "patience": p,
            "zeroshot_top1": rec["unseen"]["audio_to_image"]["top1"]["mean"],
            "fewshot5_top1": rec["fewshot"]["unseen"]["audio_to_image"]["top1"]["mean"],
            "seen_test_top1": rec["seen_test"]["audio_to_image"]["top1"]["mean"],
            "train_gflop_per_run": rec["training"]["flops"]["mean"] / 1e9,
            "best_epoch": rec["training"]["best_epoch"]["mean"],
            "wall_s": time.time() - t0}
        v = out[cfg.name]
        v["score"] = 0.5 * (v["zeroshot_top1"] + v["fewshot5_top1"])
        if p is not None:
            for key, name in (("unseen.audio_to_image.top1", "zeroshot_minus_default"),
                              ("seen_test.audio_to_image.top1", "seen_test_minus_default")):
                d = paired_difference(rec["per_split"], records[None]["per_split"], key)
                v[name] = {"mean": d["mean"], "ci95": d["ci95"]}
        print(cfg.name, json.dumps({k: v[k] for k in v if k != "patience"}), flush=True)

    chosen = next((p for p in sorted(x for x in PATIENCE if x is not None)
                   if adopted(out[f"default_patience{p}"])), None)
    print("chosen patience:", chosen)
    write_record(pathlib.Path(__file__).with_suffix(".json"),
                 {"scores": out, "chosen_patience": chosen, "n_pseudo_splits": N_SPLITS,
                  "seeds": SEEDS,
                  "view": "official train files of seen classes 1-7, 20 % as pseudo-test"},
                 command="select-round8", config={"patience": list(PATIENCE)},
                 seeds=list(range(SEEDS)))
    print("done", time.time() - t0)


# the protocol's worker processes import this file: only the parent runs it
if __name__ == "__main__":
    main()
