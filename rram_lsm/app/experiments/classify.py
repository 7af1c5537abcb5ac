"""Supervised classification of LSM features against a no-reservoir baseline."""
from __future__ import annotations

import time

import numpy as np

from rram_lsm.errors import ConfigError

from lsm.readout import ReadoutConfig, fit_readout

__all__ = ["summarise", "classify", "classify_cv", "cv_scores", "stratified_folds",
           "accuracy_interval", "paired_difference", "raw_candidates", "counts_from_windowed",
           "tiles_needed", "plot_cv"]


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
             cache: bool = True, progress: bool = True, config=None,
             input: str | None = None) -> dict:
    """Readout accuracy on LSM features (every chip seed x training seed) and on the raw
    binned input (every training seed), each reported as mean ± std of test accuracy.

    ``regime`` selects the preset's scale constant (None: the preset default); ``config``
    (an LsmConfig) replaces the preset; ``input`` is the front end (N-MNIST ``crop`` or
    ``full``).
    """
    from lsm import preset
    from lsm.reservoir import preset_for

    if not chip_seeds or not train_seeds:
        raise ConfigError("need at least one chip seed and one training seed")
    name = preset_for(dataset, input)
    cfg = config if config is not None else (preset(name) if regime is None
                                             else preset(name, regime))
    from ..threads import torch_threads

    # These readouts are tiny: one thread is ~10x faster than two once the other core is
    # busy (torch's workers spin on a loaded machine) and no slower on an idle one.
    with torch_threads(1):
        return _classify(dataset, data_dir, backend, chip_seeds, train_seeds, profile, noise,
                         kind, cfg, readout, cache, progress, input)


def _classify(dataset, data_dir, backend, chip_seeds, train_seeds, profile, noise, kind, cfg,
              readout, cache, progress, input=None) -> dict:
    from lsm import EncodeOptions

    from ..features import encode, open_data
    from ..session import ChipSession

    t0 = time.perf_counter()
    ds = open_data(dataset, data_dir, progress=progress, input=input)
    raw = ds.rasters(None, progress=progress)
    lsm_runs, rates, silent, meta = [], [], [], {}
    from ..session import VIRTUAL_MACROS

    for chip_seed in chip_seeds:
        with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise,
                         max_macros=None if backend.startswith("serial")
                         else max(VIRTUAL_MACROS, tiles_needed(cfg))) as chip:
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


# --- k-fold cross-validation over reservoir sizes -------------------------------------------
#
# The official N-MNIST test split of the shared data has 100 files (a 95 % interval of about
# +-8 points); cross-validation tests every one of the 1,100 files once. The readout is a
# ridge classifier (one-hot targets, intercept, features standardised on the training part),
# the classic reservoir readout: closed form, so that many candidates and folds stay cheap.
# Everything that is chosen (ridge penalty, feature kind, reservoir size, scale; the raw
# baseline's binning) is chosen on an inner validation part of each outer training part.

CV_LAMBDAS = tuple(float(x) for x in np.logspace(-3, 3, 13))
"""Ridge penalties tried, relative to the mean eigenvalue of the training Gram matrix."""

RAW_WINDOWS = (1, 5, 10)
"""Time windows of the raw-input baseline's rate features (1 = input counts)."""


def stratified_folds(labels, k: int, seed: int) -> np.ndarray:
    """Fold index in ``[0, k)`` of every sample: each class dealt round-robin over the folds
    after a seeded shuffle, so every fold holds each class's share to within one sample."""
    labels = np.asarray(labels)
    if k < 2:
        raise ConfigError(f"cross-validation needs k >= 2 folds, got {k}")
    counts = np.bincount(labels)
    if len(labels) < k or counts[counts > 0].min() < k:
        raise ConfigError(f"{k}-fold cross-validation needs at least {k} samples of every "
                          f"class; the smallest class has {counts[counts > 0].min()}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = (offset + np.arange(len(idx))) % k
        offset += len(idx)  # the next class starts where this one stopped: even fold sizes
    return fold


def _standardised(x: np.ndarray, fit: np.ndarray, step: int = 2048):
    """Column blocks of ``x`` standardised with the mean and std of rows ``fit`` (constant
    columns dropped), float32, ``step`` columns at a time: bounded memory for wide rasters."""
    for a in range(0, x.shape[1], step):
        block = x[:, a:a + step].astype(np.float64)
        mean = block[fit].mean(axis=0)
        std = block[fit].std(axis=0)
        keep = std > 0
        if keep.any():
            yield ((block[:, keep] - mean[keep]) / std[keep]).astype(np.float32)


def _standardised_gram(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Gram matrix (N, N) float64 of ``x`` standardised on rows ``fit``."""
    gram = np.zeros((len(x), len(x)))
    for z in _standardised(x, fit):
        gram += (z @ z.T).astype(np.float64)
    return gram


class _Ridge:
    """Ridge regression on one-hot targets with an intercept, fitted on rows ``fit`` of
    features standardised on ``fit`` (so centred there), for many penalties at once from
    one eigendecomposition: of the F x F covariance when F < len(fit) (primal), else of
    the fit rows' Gram matrix (dual). Penalties are relative to the mean eigenvalue.

    ``loo_accuracy`` is the exact leave-one-out accuracy over the fit rows of each
    penalty (the hat matrix's diagonal, the intercept counted as one more parameter):
    the inner validation that picks a penalty, and a candidate, without the test rows."""

    def __init__(self, x: np.ndarray, y: np.ndarray, fit: np.ndarray, evals: np.ndarray,
                 n_classes: int):
        self.n_fit = len(fit)
        targets = np.eye(n_classes)[y[fit]]
        self.t_mean = targets.mean(axis=0)
        self.y_fit = y[fit]
        self.targets = targets
        width = sum(min(2048, x.shape[1] - a) for a in range(0, x.shape[1], 2048))
        if width < len(fit):  # primal: eigenvectors of Z'Z, rows projected on them
            # a candidate with no varying column (a silent reservoir) keeps the intercept
            blocks = list(_standardised(x, fit)) or [np.zeros((len(x), 1), np.float32)]
            z = np.concatenate(blocks, axis=1).astype(np.float64)
            w, v = np.linalg.eigh(z[fit].T @ z[fit])
            self.p_fit, self.p_eval = z[fit] @ v, z[evals] @ v
            self.w = np.clip(w, 0.0, None)
            self.dual = False
        else:  # dual: eigenvectors of the fit rows' Gram matrix
            gram = _standardised_gram(x, fit)
            w, u = np.linalg.eigh(gram[np.ix_(fit, fit)])
            w = np.clip(w, 0.0, None)
            self.u, self.w, self.dual = u, w, True
            self.k_eval_u = gram[np.ix_(evals, fit)] @ u
        self.scale = max(float(self.w.mean()), 1e-12)
        base = self.u if self.dual else self.p_fit
        self.proj = base.T @ (targets - self.t_mean)

    def _coef(self, lam):
        return 1.0 / (self.w + lam * self.scale)

    def predict(self, lam) -> np.ndarray:
        """Classes of the eval rows at penalty ``lam``."""
        c = self._coef(lam)
        left = self.k_eval_u if self.dual else self.p_eval
        return (left @ (self.proj * c[:, None]) + self.t_mean).argmax(axis=1)

    def loo_accuracy(self, lam) -> float:
        """Exact leave-one-out accuracy over the fit rows at penalty ``lam``."""
        c = self._coef(lam)
        if self.dual:
            shrink = self.w * c
            fitted = self.u @ (self.proj * shrink[:, None]) + self.t_mean
            hat = (self.u ** 2) @ shrink + 1.0 / self.n_fit
        else:
            fitted = self.p_fit @ (self.proj * c[:, None]) + self.t_mean
            hat = (self.p_fit ** 2) @ c + 1.0 / self.n_fit
        hat = np.minimum(hat, 1.0 - 1e-9)
        loo = (fitted - hat[:, None] * self.targets) / (1.0 - hat)[:, None]
        return float((loo.argmax(axis=1) == self.y_fit).mean())


def _ridge_predict(x, y, fit, evals, n_classes, lambdas):
    """Predicted classes (len(lambdas), len(evals)) of the ridge readout on features ``x``
    fitted on rows ``fit``."""
    model = _Ridge(x, np.asarray(y), np.asarray(fit), np.asarray(evals), n_classes)
    return np.stack([model.predict(lam) for lam in lambdas])


def cv_scores(candidates: dict, labels, folds: np.ndarray, *, families: dict,
              seed: int = 0, lambdas=CV_LAMBDAS, progress: bool = True) -> dict:
    """Outer k-fold cross-validation of a ridge readout on every candidate feature matrix.

    ``candidates``: name -> (N, F) features; ``families``: family -> list of candidate
    names among which inner validation chooses (e.g. every reservoir, every raw-input
    binning). Per outer fold: each candidate is fitted on the training folds (features
    standardised there), its penalty chosen by exact leave-one-out accuracy over the
    training folds (the inner validation; the held-out fold is never looked at), and it
    predicts the held-out fold; each family's pick is its candidate of best leave-one-out
    accuracy. Returns per candidate and per family the out-of-fold correctness (bool, N),
    the fold accuracies and the choices. ``seed`` is unused (the inner validation is
    deterministic); kept for the record.
    """
    from tqdm.auto import tqdm

    y = np.asarray(labels, np.int64)
    n_classes = int(y.max()) + 1
    k = int(folds.max()) + 1
    correct = {c: np.zeros(len(y), bool) for c in candidates}
    chosen_lambda = {c: [] for c in candidates}
    inner_acc = {c: [] for c in candidates}
    bar = tqdm(total=k * len(candidates), desc="cv readouts", disable=not progress)
    for f in range(k):
        train = np.flatnonzero(folds != f)
        test = np.flatnonzero(folds == f)
        for c, x in candidates.items():
            model = _Ridge(x, y, train, test, n_classes)
            loo = [model.loo_accuracy(lam) for lam in lambdas]
            best = int(np.argmax(loo))
            correct[c][test] = model.predict(lambdas[best]) == y[test]
            chosen_lambda[c].append(float(lambdas[best]))
            inner_acc[c].append(float(loo[best]))
            bar.update(1)
    bar.close()
    out = {"candidates": {}, "families": {}}
    for c in candidates:
        out["candidates"][c] = {
            "correct": correct[c],
            "fold_accuracy": [float(correct[c][folds == f].mean()) for f in range(k)],
            "inner_val_accuracy": inner_acc[c], "lambda": chosen_lambda[c]}
    for fam, names in families.items():
        fam_correct = np.zeros(len(y), bool)
        picks = []
        for f in range(k):
            pick = max(names, key=lambda c: inner_acc[c][f])
            picks.append(pick)
            fam_correct[folds == f] = correct[pick][folds == f]
        out["families"][fam] = {
            "correct": fam_correct, "picks": picks,
            "fold_accuracy": [float(fam_correct[folds == f].mean()) for f in range(k)]}
    return out


def accuracy_interval(correct) -> dict:
    """Accuracy of bool ``correct`` with its 95 % Wilson interval (every sample tested
    once, as in cross-validation)."""
    c = np.asarray(correct, bool)
    n = len(c)
    p = float(c.mean())
    z = 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"accuracy": p, "ci95": [float(centre - half), float(centre + half)], "n": n}


def paired_difference(a, b) -> dict:
    """Mean of ``a - b`` (bool correctness of two readouts on the same samples) with a 95 %
    normal interval of the paired differences."""
    d = np.asarray(a, float) - np.asarray(b, float)
    half = 1.959964 * d.std(ddof=1) / np.sqrt(len(d))
    return {"difference": float(d.mean()), "ci95": [float(d.mean() - half),
                                                     float(d.mean() + half)], "n": len(d)}


def raw_candidates(rasters_of, n: int, n_steps: int, n_inputs: int, *,
                   windows=RAW_WINDOWS, flat_limit: int = 150_000,
                   chunk: int = 1024) -> dict:
    """The raw-input baseline's feature matrices, made chunk by chunk from
    ``rasters_of(lo, hi)``: input rates in each of ``windows`` time windows
    (``input-w{k}``), and the whole binned raster flattened (``input-raster``, the
    baseline of the paper's comparison) when it has at most ``flat_limit`` values a
    sample."""
    out = {f"input-w{w}": np.empty((n, w * n_inputs), np.float32) for w in windows}
    flat = n_steps * n_inputs <= flat_limit
    if flat:
        out["input-raster"] = np.empty((n, n_steps * n_inputs), np.uint8)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        r = rasters_of(lo, hi)
        for w in windows:
            edges = np.linspace(0, n_steps, w + 1).round().astype(int)
            out[f"input-w{w}"][lo:hi] = np.concatenate(
                [r[:, a:b].sum(axis=1, dtype=np.int32) / (b - a)
                 for a, b in zip(edges[:-1], edges[1:])], axis=1)
        if flat:
            out["input-raster"][lo:hi] = r.reshape(hi - lo, -1)
    return out


def counts_from_windowed(values: np.ndarray, n_steps: int, n_windows: int) -> np.ndarray:
    """The ``counts`` feature (spikes per neuron / T) from ``windowed`` features: the
    window rates weighted by the windows' lengths."""
    edges = np.linspace(0, n_steps, n_windows + 1).round().astype(int)
    lengths = np.diff(edges).astype(np.float64)
    n = values.shape[1] // n_windows
    w = values.reshape(len(values), n_windows, n).astype(np.float64)
    return (np.einsum("bwn,w->bn", w, lengths) / n_steps).astype(np.float32)


def tiles_needed(config, array=(512, 512)) -> int:
    """Tiles of an ``array`` a reservoir's matrix is split over (``rram_lsm.mapping``)."""
    import math

    rows, cols = config.tile_shape
    if rows <= array[0] and cols <= array[1]:
        return 1
    return math.ceil(rows / array[0]) * math.ceil(config.n_neurons / (array[1] // 2))


def classify_cv(dataset: str, data_dir=None, *, input: str | None = None,
                sizes=(200, 500, 1000, 2000), scales=(None,), n_windows: int = 5,
                folds: int = 5, seed: int = 0, backend: str = "sim", chip_seed: int = 0,
                profile=None, noise: bool = True, regime: str | None = None,
                cache: bool = True, progress: bool = True, batch_size: int = 256,
                with_input: bool = False, ensemble: int = 1) -> dict:
    """``folds``-fold stratified cross-validation (seeded) over every sample of ``dataset``
    (official train and test together) of reservoirs of ``sizes`` neurons at each scale
    constant of ``scales`` (None: the preset's), with ``counts`` and ``windowed``
    features, against the raw-input readout on the same folds (see :func:`cv_scores`).

    Each reservoir is one encode of the whole dataset (``windowed`` features; ``counts``
    are the window rates weighted by length) on a fresh chip of ``chip_seed``. With
    ``ensemble`` K > 1, K reservoirs of the same config are formed side by side on tiles of
    their own on that chip (an LSM ensemble: independent random networks sharing the
    input, no connections between them) and their features concatenated, the candidates
    ``n{size}x{K}-s{scale}-{kind}``; the first member alone stays a candidate, the very
    reservoir a run without ensemble forms. Returns per
    candidate the pooled out-of-fold accuracy with a 95 % interval and the fold
    accuracies, the inner-validation picks of the families ``reservoir`` (every size,
    scale and kind) and ``raw_input`` (every binning), and their paired difference.
    """
    from lsm import EncodeOptions, preset
    from lsm.reservoir import preset_for

    from ..features import encode, open_data
    from ..session import VIRTUAL_MACROS, ChipSession
    if not sizes:
        raise ConfigError("need at least one reservoir size")
    if int(ensemble) < 1:
        raise ConfigError(f"ensemble must be >= 1 reservoir, got {ensemble}")
    ensemble = int(ensemble)
    t0 = time.perf_counter()
    name = preset_for(dataset, input)
    ds = open_data(dataset, data_dir, progress=progress, input=input)
    base = preset(name) if regime is None else preset(name, regime)
    fold = stratified_folds(ds.labels, folds, seed)
    candidates, families, info, timing = {}, {"reservoir": [], "raw_input": []}, {}, {}
    for size in sizes:
        for scale in scales:
            over = {"n_neurons": int(size)}
            if scale is not None:
                over["weight_scale"] = float(scale)
            cfg = base.replace(**over)
            t1 = time.perf_counter()
            options = EncodeOptions(kind="windowed", n_windows=n_windows, progress=progress,
                                    batch_size=batch_size)
            members = []
            with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise,
                             max_macros=max(VIRTUAL_MACROS,
                                            ensemble * tiles_needed(cfg))) as chip:
                # member 0 is formed and encoded before any other tile is touched, so it is
                # exactly the reservoir of a run without ensemble
                for k in range(ensemble):
                    members.append(encode(chip, dataset, ds, lsm_preset=cfg, cache=cache,
                                          options=options,
                                          reservoir=dataset if k == 0
                                          else f"{dataset}.member{k}"))
            tag = f"n{size}-s{cfg.weight_scale:g}"
            tags = [(tag, members[:1])]
            if ensemble > 1:
                tags.append((f"n{size}x{ensemble}-s{cfg.weight_scale:g}", members))
            for name_, feats in tags:
                values = (feats[0].values if len(feats) == 1
                          else np.concatenate([f.values for f in feats], axis=1))
                candidates[f"{name_}-windowed"] = values
                candidates[f"{name_}-counts"] = counts_from_windowed(values, cfg.n_steps,
                                                                     n_windows)
                families["reservoir"] += [f"{name_}-windowed", f"{name_}-counts"]
                info[name_] = {
                    "n_neurons": int(size) * len(feats), "members": len(feats),
                    "member_neurons": int(size), "weight_scale": cfg.weight_scale,
                    "firing_rate_per_step": float(np.mean(
                        [f.meta["firing_rate_per_step"] for f in feats])),
                    "silent_fraction": float(np.mean([f.meta["silent_fraction"]
                                                      for f in feats])),
                    "tiles": tiles_needed(cfg) * len(feats), "path": feats[0].meta["path"],
                    "cache": [f.meta.get("cache") for f in feats] if len(feats) > 1
                    else feats[0].meta.get("cache"),
                    "g_ref_us": feats[0].meta["g_ref_us"]}
                if len(feats) > 1:
                    info[name_]["placements"] = [f.meta["placement"] for f in feats]
            timing[tag] = time.perf_counter() - t1
    windows = tuple(sorted(set(RAW_WINDOWS) | ({n_windows} if with_input else set())))
    raw = raw_candidates(lambda lo, hi: ds.rasters(None, progress=False,
                                                   indices=np.arange(lo, hi)),
                         len(ds), base.n_steps, base.n_inputs, windows=windows)

    def raw_windows(w):
        return raw[f"input-w{w}"]
    candidates.update(raw)
    families["raw_input"] = list(raw)
    if with_input:
        # not a reservoir result: the readout sees the reservoir's windowed rates and the
        # input's rates in the same windows side by side (what the reservoir adds to them)
        families["reservoir_plus_input"] = []
        for cand in [c for c in families["reservoir"] if c.endswith("-windowed")]:
            both = f"{cand}+input-w{n_windows}"
            candidates[both] = np.concatenate(
                [candidates[cand], raw_windows(n_windows)], axis=1)
            families["reservoir_plus_input"].append(both)
    t2 = time.perf_counter()
    scores = cv_scores(candidates, ds.labels, fold, families=families, seed=seed,
                       progress=progress)
    timing["readouts"] = time.perf_counter() - t2
    table = {}
    for c, s in scores["candidates"].items():
        table[c] = {**accuracy_interval(s["correct"]), "fold_accuracy": s["fold_accuracy"],
                    "inner_val_accuracy": s["inner_val_accuracy"], "lambda": s["lambda"]}
    fams = {}
    for fam, s in scores["families"].items():
        picks = s["picks"]
        fams[fam] = {**accuracy_interval(s["correct"]), "fold_accuracy": s["fold_accuracy"],
                     "picks": picks}
    res_c = scores["families"]["reservoir"]["correct"]
    raw_c = scores["families"]["raw_input"]["correct"]
    best_size = {}
    for size in sizes:
        names = [c for c in families["reservoir"] if c.startswith(f"n{size}-")
                 or c.startswith(f"n{size}x")]
        best = max(names, key=lambda c: float(np.mean(table[c]["inner_val_accuracy"])))
        best_size[str(size)] = {"candidate": best, **{k: table[best][k]
                                                      for k in ("accuracy", "ci95")}}
    return {
        "dataset": dataset, "input": input or base_input(name), "preset": name,
        "synthetic": bool(ds.synthetic), "backend": backend, "chip_seed": chip_seed,
        "n_samples": len(ds), "folds": folds, "fold_sizes": np.bincount(fold).tolist(),
        "n_inputs": base.n_inputs, "n_steps": base.n_steps, "n_windows": n_windows,
        "ensemble": ensemble,
        "readout": {"model": "ridge (one-hot targets, intercept, features standardised on "
                             "the training folds)",
                    "lambdas_rel": list(CV_LAMBDAS),
                    "inner_validation": "exact leave-one-out over the training folds "
                                        "(penalty per candidate; candidate per family)"},
        "reservoirs": info, "candidates": table, "families": fams,
        "by_size": best_size,
        "reservoir_minus_raw": paired_difference(res_c, raw_c),
        **({"reservoir_plus_input_minus_raw": paired_difference(
            scores["families"]["reservoir_plus_input"]["correct"], raw_c)}
           if with_input else {}),
        "timing_s": {**timing, "total": time.perf_counter() - t0},
    }


def plot_cv(runs: list):
    """Accuracy against reservoir size (one panel per run of :func:`classify_cv`): each
    feature kind's pooled out-of-fold accuracy with its 95 % interval, the raw-input
    baseline picked by inner validation as a band."""
    import matplotlib.pyplot as plt

    cols = min(len(runs), 3)
    rows = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    several_chips = len({r["chip_seed"] for r in runs}) > 1
    for ax, r in zip(axes.flat, runs):
        single = {k: v for k, v in r["reservoirs"].items() if v.get("members", 1) == 1}
        sizes = sorted({v["n_neurons"] for v in single.values()})
        scales = sorted({v["weight_scale"] for v in single.values()})
        k = r.get("ensemble", 1)
        ticks = set(sizes)
        for colour, scale in enumerate(scales):
            series = [("counts", "o", ""), ("windowed", "s", "")]
            if k > 1:  # an ensemble plotted at its total number of neurons
                series += [("windowed", "^", f"x{k}")]
            for kind, marker, ens in series:
                names = [f"n{n}{ens}-s{scale:g}-{kind}" for n in sizes]
                xs = [n * (k if ens else 1) for n in sizes]
                ticks |= set(xs)
                acc = [r["candidates"][c]["accuracy"] for c in names]
                lo = [a - r["candidates"][c]["ci95"][0] for a, c in zip(acc, names)]
                hi = [r["candidates"][c]["ci95"][1] - a for a, c in zip(acc, names)]
                what = f"ensemble of {k} {kind}" if ens else f"reservoir {kind}"
                # one colour per scale; the marker and line say the feature kind
                ax.errorbar(xs, acc, yerr=[lo, hi], marker=marker, capsize=3,
                            color=f"C{colour}" if len(scales) > 1 else None,
                            ls=":" if kind == "counts" else "-",
                            label=what + (f" s={scale:g}" if len(scales) > 1 else ""))
        sizes = sorted(ticks)
        raw = r["families"]["raw_input"]
        ax.axhspan(*raw["ci95"], color="0.85", zorder=0)
        ax.axhline(raw["accuracy"], color="0.4", ls="--",
                   label="raw-input readout (picked), 95 % band")
        ax.text(0.02, 0.02, f"raw input picks {', '.join(sorted(set(raw['picks'])))}",
                transform=ax.transAxes, fontsize=7, color="0.3")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(n) for n in sizes])
        ax.set_xlabel("reservoir neurons")
        ax.set_ylabel(f"{r['folds']}-fold CV accuracy")
        tag = " SYNTHETIC" if r["synthetic"] else ""
        chip = f", chip {r['chip_seed']}" if several_chips else ""
        ax.set_title(f"{r['dataset']} {r['input']} ({r['n_inputs']} inputs{chip}){tag}",
                     fontsize=10)
    # the series are the same in every panel: one legend under the figure keeps the
    # data visible
    handles, labels = axes.flat[0].get_legend_handles_labels()
    ncol = min(len(labels), 4)
    fig.tight_layout(rect=(0, 0.045 * (-(-len(labels) // ncol)) / rows, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    return fig


def base_input(preset_name: str) -> str:
    """The front end of preset ``preset_name``."""
    from lsm.reservoir import preset_input

    return preset_input(preset_name)
