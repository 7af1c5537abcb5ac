"""Supervised classification of LSM features against a no-reservoir baseline."""
from __future__ import annotations

import time

import numpy as np

from rram_lsm.errors import ConfigError

from lsm.readout import ReadoutConfig, fit_readout

__all__ = ["summarise", "classify"]


def summarise(values) -> dict:
    """``{"mean", "std", "n"}`` of a list of accuracies (population std; 0 for one value)."""
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


def _runs_summary(runs: list[dict]) -> dict:
    return {"test_accuracy": summarise([r["test_accuracy"] for r in runs]),
            "val_accuracy": summarise([r["val_accuracy"] for r in runs]),
            "runs": runs}


def classify(dataset: str, data_dir=None, *, backend: str = "sim", chip_seeds=(0,),
             train_seeds=(0,), profile=None, noise: bool = True, kind: str = "counts",
             regime: str | None = None, readout: ReadoutConfig | None = None,
             cache: bool = True, progress: bool = True) -> dict:
    """Readout accuracy on LSM features (every chip seed x training seed) and on the raw
    binned input (every training seed), each reported as mean ± std of test accuracy.

    ``regime`` selects the preset's scale constant (None: the preset default).
    """
    from lsm import preset

    if not chip_seeds or not train_seeds:
        raise ConfigError("need at least one chip seed and one training seed")
    cfg = preset(dataset) if regime is None else preset(dataset, regime)
    from ..threads import torch_threads

    # These readouts are tiny: one thread is ~10x faster than two once the other core is
    # busy (torch's workers spin on a loaded machine) and no slower on an idle one.
    with torch_threads(1):
        return _classify(dataset, data_dir, backend, chip_seeds, train_seeds, profile, noise,
                         kind, cfg, readout, cache, progress)


def _classify(dataset, data_dir, backend, chip_seeds, train_seeds, profile, noise, kind, cfg,
              readout, cache, progress) -> dict:
    from lsm import EncodeOptions

    from ..features import encode, open_data
    from ..session import ChipSession

    t0 = time.perf_counter()
    ds = open_data(dataset, data_dir, progress=progress)
    raw = ds.rasters(None, progress=progress)
    lsm_runs, rates, silent, meta = [], [], [], {}
    for chip_seed in chip_seeds:
        with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise) as chip:
            feats = encode(chip, dataset, ds, lsm_preset=cfg, rasters=raw, cache=cache,
                           options=EncodeOptions(kind=kind, progress=progress))
        meta = feats.meta
        rates.append(feats.meta["firing_rate_per_step"])
        silent.append(feats.meta["silent_fraction"])
        for train_seed in train_seeds:
            r = fit_readout(feats.values, feats.labels, feats.is_test, seed=train_seed,
                            config=readout)
            lsm_runs.append({"chip_seed": chip_seed, "train_seed": train_seed,
                             "model": r.model, "val_accuracy": r.val_accuracy,
                             "test_accuracy": r.test_accuracy, "per_model": r.per_model})
    t_lsm = time.perf_counter() - t0
    raw_values = raw.reshape(len(raw), -1).astype(np.float32)
    raw_runs = []
    for train_seed in train_seeds:
        r = fit_readout(raw_values, ds.labels, ds.is_test, seed=train_seed, config=readout)
        raw_runs.append({"train_seed": train_seed, "model": r.model,
                         "val_accuracy": r.val_accuracy, "test_accuracy": r.test_accuracy,
                         "per_model": r.per_model})
    lsm = _runs_summary(lsm_runs)
    lsm.update({"firing_rate_per_step": float(np.mean(rates)),
                "silent_fraction": float(np.mean(silent)), "kind": kind,
                "lsm_config": meta.get("lsm_config"), "g_ref_us": meta.get("g_ref_us"),
                "path": meta.get("path")})
    raw_summary = _runs_summary(raw_runs)
    raw_summary["n_features"] = int(raw_values.shape[1])
    return {
        "dataset": dataset,
        "synthetic": bool(ds.synthetic),
        "backend": backend,
        "n_train_pool": int((~ds.is_test).sum()),
        "n_test": int(ds.is_test.sum()),
        "lsm": lsm,
        "raw_input": raw_summary,
        "lsm_minus_raw_test_accuracy": lsm["test_accuracy"]["mean"]
        - raw_summary["test_accuracy"]["mean"],
        "timing_s": {"lsm": t_lsm, "total": time.perf_counter() - t0},
    }
