"""Robustness sweeps: accuracy versus device non-idealities, over many virtual chips, on Dask.

A sweep varies one knob at a time around the device profile (read noise, chip age, stuck
cells, ADC bits, forming sparsity, or any ``section.field`` of ``sim.DeviceProfile``) and
repeats every setting on several chip seeds. Each task ``(axis, value, chip seed)`` forms a
fresh virtual chip, encodes a small fixed subset of a dataset with the LSM and scores a
cheap readout on it. Tasks are independent, so they run on a ``dask.distributed`` cluster:
a local one by default, a user's one with ``scheduler="tcp://host:8786"``, or in-process
with ``scheduler="serial"``. A task depends only on its own arguments (chip seed, setting,
data seed), so every scheduler gives the same numbers.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ...errors import ConfigError

__all__ = [
    "AXES",
    "DEFAULT_GRID",
    "SweepSpec",
    "SweepTask",
    "SweepResult",
    "run_sweep",
    "evaluate_task",
    "map_tasks",
]

AXES: dict[str, str] = {
    "read_noise_rel": "read noise, std of one read relative to the conductance (read.noise_rel)",
    "chip_age_s": "seconds on the chip's clock after forming (drift), 1 s .. 10 years",
    "stuck_fraction": "fraction of stuck cells, split open:high as in the profile (2:1 default)",
    "adc_bits": "column ADC resolution in bits; 0 = ideal ADC",
    "forming_sparsity": "fraction of cells left unformed by the forming sweep",
    "head_age_s": "seconds since the readout itself was programmed into RRAM (an analogue "
                  "layer, 6-bit bit-serial inputs; the reservoir is read fresh)",
}
"""Named sweep axes. Any ``section.field`` of ``sim.DeviceProfile`` is an axis too."""

_YEAR_S = 365.25 * 24 * 3600.0

DEFAULT_GRID: dict[str, tuple] = {
    "read_noise_rel": (0.0, 0.02, 0.05, 0.1, 0.2),
    "chip_age_s": (1.0, 3600.0, 86400.0, _YEAR_S, 10 * _YEAR_S),
    "stuck_fraction": (0.0, 0.01, 0.05, 0.1, 0.2),
    "adc_bits": (0, 8, 6, 4, 3),
    "forming_sparsity": (0.3, 0.4, 0.5, 0.6, 0.7),
    "head_age_s": (1.0, 3600.0, 86400.0, _YEAR_S, 10 * _YEAR_S),
}
"""Default values per named axis (a few minutes on 2 cores with 3 chip seeds)."""

METRICS = ("prototype", "logistic")


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep and how to score each virtual chip."""

    dataset: str = "nmnist"
    """Dataset name for ``lsm.data.open_dataset`` (nmnist, fsdd, ntidigits)."""
    data_dir: str | None = None
    """Data directory; None: $RRAM_LSM_DATA, else synthetic data."""
    grid: tuple = tuple(DEFAULT_GRID.items())
    """``((axis, (values...)), ...)``: the knobs, one at a time around ``profile``."""
    chip_seeds: tuple = (0, 1, 2)
    """Virtual chips per setting."""
    profile: str | None = None
    """Base device profile: preset name or JSON path (None: macro40nm)."""
    noise: bool = True
    """Keep read/programming noise on (off: deterministic conductances only)."""
    metric: str = "logistic"
    """Readout scored per chip: "prototype" (nearest class mean, L2-normalised counts) or
    "logistic" (multinomial logistic regression on standardised counts)."""
    train_per_class: int = 20
    """Training samples per class, from the official train split."""
    test_per_class: int = 10
    """Test samples per class, from the official test split (fewer if the split has fewer)."""
    data_seed: int = 0
    """Seed choosing the data subset (the same for every chip and setting)."""

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if not self.chip_seeds:
            raise ConfigError("a sweep needs at least one chip seed")
        if self.train_per_class < 1 or self.test_per_class < 1:
            raise ConfigError("train_per_class and test_per_class must be >= 1")
        for axis, values in self.grid:
            _check_axis(axis)
            if not values:
                raise ConfigError(f"axis {axis!r} has no values")

    def tasks(self) -> list["SweepTask"]:
        """Every (axis, value, chip seed), in a fixed order."""
        return [SweepTask(axis=axis, value=float(v), chip_seed=int(seed), spec=self)
                for axis, values in self.grid for v in values for seed in self.chip_seeds]


def _check_axis(axis: str) -> None:
    if axis in AXES:
        return
    section, _, name = axis.partition(".")
    from sim import DeviceProfile

    sub = {f.name: f for f in dataclasses.fields(DeviceProfile)}.get(section)
    if not name or sub is None or not dataclasses.is_dataclass(sub.default_factory):
        raise ConfigError(f"unknown sweep axis {axis!r}: use one of {sorted(AXES)} or a "
                          "profile field like 'forming.formed_std_us'")
    if name not in {f.name for f in dataclasses.fields(sub.default_factory)}:
        raise ConfigError(f"profile section {section!r} has no field {name!r}")


@dataclass(frozen=True)
class SweepTask:
    """One virtual chip at one setting: the unit of work sent to a Dask worker."""

    axis: str
    """Name of the knob changed."""
    value: float
    """Its value for this task."""
    chip_seed: int
    """Seed of the virtual chip."""
    spec: SweepSpec = field(repr=False)
    """The sweep it belongs to (data, metric, base profile)."""


def _profile_for(task: SweepTask):
    """The device profile of ``task``: the base profile with one knob changed."""
    from sim import load_profile

    prof = load_profile(task.spec.profile)
    if not task.spec.noise:
        prof = prof.noise_free()
    axis, v = task.axis, task.value
    if axis == "read_noise_rel":
        return dataclasses.replace(prof, read=dataclasses.replace(prof.read, noise_rel=v))
    if axis == "stuck_fraction":
        s = prof.stuck
        total = s.open_fraction + s.high_fraction
        open_share = s.open_fraction / total if total > 0 else 1.0
        return dataclasses.replace(prof, stuck=dataclasses.replace(
            s, open_fraction=v * open_share, high_fraction=v * (1.0 - open_share)))
    if axis == "adc_bits":
        bits = None if v == 0 else int(v)
        return dataclasses.replace(prof, adc=dataclasses.replace(prof.adc, bits=bits))
    if axis in ("chip_age_s", "forming_sparsity", "head_age_s"):
        return prof
    section, _, name = axis.partition(".")
    old = getattr(prof, section)
    kind = type(getattr(old, name))
    value = kind(v) if kind in (int, float, bool) else v
    return dataclasses.replace(prof, **{section: dataclasses.replace(old, **{name: value})})


@functools.lru_cache(maxsize=4)
def _data_subset(dataset: str, data_dir: str | None, train_per_class: int,
                 test_per_class: int, data_seed: int):
    """Rasters and labels of a fixed per-class subset; cached per worker process."""
    from ..features import open_data
    from .pipeline import subset_rasters

    ds = open_data(dataset, data_dir, progress=False)
    labels = np.asarray(ds.labels)
    is_test = np.asarray(ds.is_test, dtype=bool)
    rng = np.random.default_rng(data_seed)
    train, test = [], []
    for c in np.unique(labels):
        for pool, n, out in ((~is_test, train_per_class, train), (is_test, test_per_class, test)):
            idx = np.flatnonzero((labels == c) & pool)
            out.append(np.sort(rng.permutation(idx)[:n]))
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    if len(test_idx) == 0:
        raise ConfigError(f"dataset {dataset!r} has no official test samples to score on")
    return (subset_rasters(ds, train_idx), labels[train_idx], subset_rasters(ds, test_idx),
            labels[test_idx], bool(ds.synthetic))


def _fit_readout(f_train, y_train):
    """Logistic regression on standardised counts: (mu, sd, classifier)."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    clf = LogisticRegression(max_iter=500, C=1.0)
    clf.fit((f_train - mu) / sd, y_train)
    return mu, sd, clf


def _score(metric: str, f_train, y_train, f_test, y_test) -> float:
    if metric == "prototype":
        def unit(a):
            return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        classes = np.unique(y_train)
        protos = unit(np.stack([unit(f_train[y_train == c]).mean(0) for c in classes]))
        pred = classes[np.argmax(unit(f_test) @ protos.T, axis=1)]
        return float(np.mean(pred == y_test))
    mu, sd, clf = _fit_readout(f_train, y_train)
    return float(np.mean(clf.predict((f_test - mu) / sd) == y_test))


def _analogue_readout_task(task: SweepTask, x_tr, y_tr, x_te, y_te) -> dict:
    """``head_age_s``: the logistic readout written onto the chip beside the reservoir
    (``analog_heads.program_linear``) and read ``task.value`` seconds later. Features are
    encoded on the fresh chip first, so only the readout ages."""
    from lsm import preset
    from projections.analog import input_range

    from ..session import ChipSession
    from .analog_heads import device_config, program_linear

    spec = task.spec
    profile = _profile_for(task)
    with ChipSession("sim", chip_seed=task.chip_seed, profile=profile,
                     noise=spec.noise) as session:
        res = session.reservoir(spec.dataset, preset(spec.dataset))
        f_tr = res.features(x_tr, kind="counts", progress=False).values.astype(np.float64)
        f_te = res.features(x_te, kind="counts", progress=False).values.astype(np.float64)
        mu, sd, clf = _fit_readout(f_tr, y_tr)
        z_tr, z_te = (f_tr - mu) / sd, (f_te - mu) / sd
        device = device_config(profile, noise=spec.noise, input_bits=6)
        mapped = program_linear(session.macro, session.allocator, "readout", clf.coef_.T,
                                clf.intercept_, device, input_range(z_tr, 0.999))
        session.age(task.value)
        pred = clf.classes_[np.argmax(mapped.apply(z_te), axis=1)]
    return {"accuracy": float(np.mean(pred == y_te)),
            "digital_accuracy": float(np.mean(clf.predict(z_te) == y_te)),
            "mean_rate": float(f_te.mean()), "readout": mapped.programming}


def evaluate_task(task: SweepTask) -> dict:
    """Form the task's chip, encode the data subset, score the readout; return the metrics."""
    from lsm import Reservoir, preset
    from sim import SimMacro

    spec = task.spec
    x_tr, y_tr, x_te, y_te, synthetic = _data_subset(
        spec.dataset, spec.data_dir, spec.train_per_class, spec.test_per_class, spec.data_seed)
    if task.axis == "head_age_s":
        return {"axis": task.axis, "value": task.value, "chip_seed": task.chip_seed,
                **_analogue_readout_task(task, x_tr, y_tr, x_te, y_te),
                "n_train": int(len(y_tr)), "n_test": int(len(y_te)),
                "n_classes": int(len(np.unique(y_te))), "synthetic": synthetic}
    sparsity = task.value if task.axis == "forming_sparsity" else 0.5
    with SimMacro(seed=task.chip_seed, profile=_profile_for(task)) as chip:
        res = Reservoir.setup(chip, preset(spec.dataset), sparsity=sparsity)
        if task.axis == "chip_age_s":
            chip.advance_time(task.value)
        f_tr = res.features(x_tr, kind="counts", progress=False).values.astype(np.float64)
        f_te = res.features(x_te, kind="counts", progress=False).values.astype(np.float64)
    return {
        "axis": task.axis, "value": task.value, "chip_seed": task.chip_seed,
        "accuracy": _score(spec.metric, f_tr, y_tr, f_te, y_te),
        "mean_rate": float(f_te.mean()), "n_train": int(len(y_tr)), "n_test": int(len(y_te)),
        "n_classes": int(len(np.unique(y_te))), "synthetic": synthetic,
    }


def map_tasks(fn, tasks: list, *, scheduler: str | None = None, workers: int = 2,
              progress: bool = True) -> list:
    """``[fn(t) for t in tasks]``, on Dask unless ``scheduler == "serial"``.

    ``scheduler``: None starts a LocalCluster of ``workers`` single-threaded processes;
    ``"serial"`` runs in this process; anything else is a scheduler address
    (``tcp://host:8786``) of a running cluster, whose workers must have this package.
    Results come back in task order whatever order the workers finish in.
    """
    from tqdm.auto import tqdm

    if scheduler == "serial":
        return [fn(t) for t in tqdm(tasks, desc="sweep (serial)", disable=not progress)]
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            futures = client.map(fn, tasks, pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            out = [None] * len(tasks)
            bar = tqdm(total=len(tasks), desc="sweep (dask)", disable=not progress)
            for fut in as_completed(futures):
                out[index[fut.key]] = fut.result()
                bar.update(1)
            bar.close()
            return out
    finally:
        if cluster is not None:
            cluster.close()


@dataclass(frozen=True)
class SweepResult:
    """Per-task metrics of a sweep and their summary per setting."""

    spec: SweepSpec
    """The sweep that produced it."""
    rows: tuple
    """One dict per task: axis, value, chip_seed, accuracy, ..."""

    def summary(self, metric: str = "accuracy") -> dict:
        """``{axis: {"values", "mean", "std", "min", "max", "n"}}`` over chip seeds."""
        out = {}
        for axis, values in self.spec.grid:
            stats = {"values": [float(v) for v in values], "mean": [], "std": [], "min": [],
                     "max": [], "n": []}
            for v in values:
                got = np.array([r[metric] for r in self.rows
                                if r["axis"] == axis and r["value"] == float(v)])
                stats["mean"].append(float(got.mean()))
                stats["std"].append(float(got.std(ddof=1)) if len(got) > 1 else 0.0)
                stats["min"].append(float(got.min()))
                stats["max"].append(float(got.max()))
                stats["n"].append(int(len(got)))
            out[axis] = stats
        return out

    def to_dict(self) -> dict:
        """Plain-JSON results: summary per axis, every task, the chance level."""
        return {"summary": self.summary(), "tasks": [dict(r) for r in self.rows],
                "synthetic": bool(self.rows and self.rows[0]["synthetic"]),
                "n_tasks": len(self.rows)}

    def plot(self):
        """Mean ± std and each chip per setting, one panel per axis (returns the Figure)."""
        from .plots import plot_sweep

        return plot_sweep(self)

    def _repr_html_(self) -> str:
        from .display import sweep_html

        return sweep_html(self)


def run_sweep(spec: SweepSpec, *, scheduler: str | None = None, workers: int = 2,
              progress: bool = True, task_fn=None) -> SweepResult:
    """Run every task of ``spec`` (see :func:`map_tasks` for ``scheduler``).

    ``task_fn`` replaces :func:`evaluate_task` (a picklable top-level function of a
    :class:`SweepTask`), e.g. to score another metric.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    rows = map_tasks(task_fn or evaluate_task, spec.tasks(), scheduler=scheduler,
                     workers=workers, progress=progress)
    return SweepResult(spec=spec, rows=tuple(rows))


def nice_value(axis: str, value: float) -> str:
    """Human label of a setting (ages in s/h/d/y, 0 ADC bits as "ideal")."""
    if axis in ("chip_age_s", "head_age_s"):
        for unit, secs in (("y", _YEAR_S), ("d", 86400.0), ("h", 3600.0)):
            if value >= secs:
                return f"{value / secs:.3g} {unit}"
        return f"{value:g} s"
    if axis == "adc_bits":
        return "ideal" if value == 0 else f"{int(value)}"
    return f"{value:g}" if math.isfinite(value) else str(value)
