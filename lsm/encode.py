"""Encode a whole dataset through a reservoir that is already on a chip, with a feature cache.

Opening chips, placing tiles and finding data are the app layer's business
(``rram_lsm.app.session``); here a :class:`~lsm.reservoir.Reservoir` and an
:class:`~lsm.data.EventDataset` go in and :class:`~lsm.features.Features` come out.

Streaming: rasters are made and consumed in chunks of ``EncodeOptions.chunk_size`` samples
(a multiple of the batch size), so memory is bounded by one chunk's rasters and spikes plus
the features, never the whole dataset's rasters. The macro sees exactly the batches of a
whole-array run (same sizes, same order), so the features are identical to it, read noise
included. :func:`encode_range` encodes one contiguous range of samples after
:func:`replay_runs` has brought the tile's noise streams to where a serial run would have
them there: the unit of work of a distributed encode.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rram_lsm.errors import ConfigError, ShapeError

from .cache import FeatureCache
from .features import (FEATURE_KINDS, INPUT_KIND, INPUT_KINDS, WINDOWED_KINDS, Features,
                       active_span, input_features, spike_features)
from .reservoir import PATHS, LsmConfig, Reservoir, preset

__all__ = ["DATASETS", "EncodeOptions", "resolve_config", "encode_dataset", "encode_inputs",
           "dataset_meta", "encode_range", "replay_runs", "chunk_bounds", "SpikeStats",
           "encode_key", "features_of"]

DATASETS = ("nmnist", "fsdd", "ntidigits")


@dataclass(frozen=True)
class EncodeOptions:
    """How a dataset is turned into features (everything but the chip and the data)."""

    kind: str = "counts"
    """Feature kind, one of :data:`lsm.features.FEATURE_KINDS`, or one of
    :data:`lsm.features.INPUT_KINDS` (the reservoir bypassed: :func:`encode_inputs`)."""
    path: str = "auto"
    """Run path: ``auto``, ``fast`` (the macro's ``run_reservoir``) or ``generic``."""
    n_windows: int = 5
    """Time windows of the ``windowed``, ``span`` and ``input_span`` kinds."""
    batch_size: int = 256
    """Samples per call to the macro."""
    progress: bool = True
    """Show progress bars."""
    chunk_size: int = 2048
    """Samples whose rasters are made and run at once (streaming); rounded up to a multiple
    of ``batch_size`` so that the macro sees the batches of a whole-array run. Memory grows
    with it, results do not change with it."""

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS + INPUT_KINDS:
            raise ConfigError(f"feature kind must be one of {FEATURE_KINDS + INPUT_KINDS}, "
                              f"got {self.kind!r}")
        if self.path not in PATHS:
            raise ConfigError(f"path must be one of {PATHS}, got {self.path!r}")
        if int(self.n_windows) < 1 or int(self.batch_size) < 1 or int(self.chunk_size) < 1:
            raise ConfigError("n_windows, batch_size and chunk_size must be >= 1")

    @property
    def chunk(self) -> int:
        """``chunk_size`` rounded up to a multiple of ``batch_size`` (samples)."""
        b = int(self.batch_size)
        return -(-int(self.chunk_size) // b) * b


def resolve_config(name: str, lsm_preset=None) -> LsmConfig:
    """``lsm_preset`` as an LsmConfig: None -> the dataset's preset, a str -> that preset."""
    if isinstance(lsm_preset, LsmConfig):
        return lsm_preset
    if lsm_preset is None:
        return preset(name)
    if isinstance(lsm_preset, str):
        return preset(lsm_preset)
    raise ConfigError(f"lsm_preset must be None, a preset name or an LsmConfig, "
                      f"got {type(lsm_preset).__name__}")


def dataset_meta(ds) -> dict:
    """Provenance of an EventDataset as features record it."""
    cochlea = getattr(ds, "cochlea", None)
    return {"dataset": ds.name, "synthetic": bool(ds.synthetic),
            "fingerprint": ds.fingerprint(None), "n_classes": int(ds.n_classes),
            "class_names": list(ds.class_names),
            **({} if cochlea is None else {"cochlea": dataclasses.asdict(cochlea)})}


def _check_shape(ds, cfg: LsmConfig, shape) -> None:
    if tuple(shape[1:]) != (cfg.n_steps, cfg.n_inputs):
        raise ShapeError(
            f"{ds.name} rasters are (T, inputs) = {tuple(shape[1:])} but the LSM config "
            f"{cfg.name} expects {(cfg.n_steps, cfg.n_inputs)}: pick the matching preset "
            f"(N-MNIST: nmnist for the 16 x 16 crop, nmnist-full for input='full')")


def _checked_rasters(ds, cfg: LsmConfig, rasters) -> None:
    """Check rasters given by the caller against ``ds`` and ``cfg`` (None: made per chunk)."""
    if rasters is None:
        return
    if len(rasters) != len(ds):
        raise ShapeError(f"rasters has {len(rasters)} samples but {ds.name} has {len(ds)}")
    _check_shape(ds, cfg, np.shape(rasters))


def _chunk_rasters(ds, cfg: LsmConfig, rasters, lo: int, hi: int) -> np.ndarray:
    """Rasters of samples ``lo:hi``: a view of the caller's, or made now from the events."""
    if rasters is not None:
        return rasters[lo:hi]
    out = ds.rasters(None, progress=False, indices=np.arange(lo, hi))
    _check_shape(ds, cfg, out.shape)
    return out


def chunk_bounds(n: int, chunk: int, lo: int = 0) -> list[tuple[int, int]]:
    """``[(a, b), ...]`` covering ``lo:n`` in steps of ``chunk`` samples."""
    if chunk < 1:
        raise ConfigError(f"chunk must be >= 1, got {chunk}")
    return [(a, min(a + chunk, n)) for a in range(int(lo), int(n), int(chunk))]


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not progress, leave=False)


def encode_inputs(ds, cfg: LsmConfig, rasters=None, progress: bool = True, *,
                  chunk_size: int = 2048, kind: str = INPUT_KIND,
                  n_windows: int = 5) -> Features:
    """Features of ``ds``'s input rasters with the reservoir and the chip bypassed (a kind
    of :data:`lsm.features.INPUT_KINDS`): the ablation baselines. ``rasters``: the
    dataset's rasters if already made (else they are made ``chunk_size`` samples at a
    time)."""
    _checked_rasters(ds, cfg, rasters)
    width = cfg.n_inputs * (n_windows if kind in WINDOWED_KINDS else 1)
    values = np.empty((len(ds), width), np.float32)
    with _bar(len(ds), f"{ds.name} inputs", progress) as bar:
        for lo, hi in chunk_bounds(len(ds), max(1, int(chunk_size))):
            values[lo:hi] = input_features(_chunk_rasters(ds, cfg, rasters, lo, hi), kind,
                                           n_windows=n_windows)
            bar.update(hi - lo)
    meta = {**dataset_meta(ds), "kind": kind, "reservoir": "bypassed",
            "n_windows": n_windows if kind in WINDOWED_KINDS else None,
            "lsm_config": dataclasses.asdict(cfg)}
    return Features(values, ds.labels, ds.is_test, meta)


@dataclass
class SpikeStats:
    """Spike totals of a run, added chunk by chunk: the firing rate and the silent neurons
    of the whole dataset come out exactly as from one array of all spikes."""

    n_spikes: int = 0
    """Spikes counted."""
    n_cells: int = 0
    """Samples x steps x neurons counted."""
    per_neuron: np.ndarray | None = None
    """int64 spikes of each neuron over all samples counted (None before the first)."""

    def add(self, spikes: np.ndarray) -> None:
        """Count spikes uint8 (N, T, n)."""
        per = spikes.sum(axis=(0, 1), dtype=np.int64)
        self.n_spikes += int(per.sum())
        self.n_cells += int(spikes.size)
        self.per_neuron = per if self.per_neuron is None else self.per_neuron + per

    def merge(self, other: "SpikeStats") -> "SpikeStats":
        """The totals of both (for parts encoded apart)."""
        out = SpikeStats(self.n_spikes, self.n_cells, self.per_neuron)
        if other.per_neuron is not None:
            out.n_spikes += other.n_spikes
            out.n_cells += other.n_cells
            out.per_neuron = (other.per_neuron.copy() if out.per_neuron is None
                              else out.per_neuron + other.per_neuron)
        return out

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron per step."""
        return self.n_spikes / self.n_cells if self.n_cells else 0.0

    @property
    def silent_fraction(self) -> float:
        """Fraction of neurons that never spiked."""
        if self.per_neuron is None or self.n_cells == 0:
            return 0.0
        return float((self.per_neuron == 0).mean())


def _run_chunk(reservoir: Reservoir, chunk: np.ndarray, chosen: str, options: EncodeOptions):
    membrane = options.kind == "membrane"
    out = reservoir.run(chunk, chosen, batch_size=options.batch_size,
                        return_membrane=membrane)
    spikes, v_final = out if membrane else (out, None)
    values = spike_features(spikes, options.kind, v_final=v_final,
                            n_windows=options.n_windows,
                            span=active_span(chunk) if options.kind == "span" else None)
    return values, spikes


def _check_start(lo: int, options: EncodeOptions) -> None:
    if lo % options.batch_size:
        raise ConfigError(f"a range must start at a multiple of the batch size "
                          f"({options.batch_size}), got {lo}: only then does the macro see "
                          "the batches of a serial run")


def replay_runs(reservoir: Reservoir, n_samples: int, options: EncodeOptions = EncodeOptions()
                ) -> None:
    """Run all-zero rasters through the batches a serial encode runs for its first
    ``n_samples`` samples (a multiple of ``options.batch_size``), so that the tile's read
    noise streams and ``reservoir.runs`` stand where they would after those samples.

    Exact where a macro's noise draws depend only on the shapes of its calls, not on the
    inputs (the simulator: one key per ``mvm``, one seed per sample of ``run_reservoir``).
    A physical chip's noise is not replayable: there a split encode differs from a serial
    one by its read noise, as two serial runs do.
    """
    _check_start(int(n_samples), options)
    cfg = reservoir.config
    chosen = reservoir._choose_path(options.path, options.kind == "membrane")
    for lo, hi in chunk_bounds(int(n_samples), options.chunk):
        zeros = np.zeros((hi - lo, cfg.n_steps, cfg.n_inputs), np.uint8)
        reservoir.run(zeros, chosen, batch_size=options.batch_size,
                      return_membrane=options.kind == "membrane")


def encode_range(reservoir: Reservoir, ds, options: EncodeOptions, lo: int, hi: int, *,
                 rasters=None) -> tuple[np.ndarray, SpikeStats, str]:
    """Features float32 (hi - lo, F) of samples ``lo:hi`` of ``ds``, their
    :class:`SpikeStats` and the path run, streaming chunk by chunk. ``lo`` must be a
    multiple of the batch size; the tile must stand where a serial run has it at ``lo``
    (:func:`replay_runs`)."""
    cfg = reservoir.config
    if options.kind in INPUT_KINDS:
        raise ConfigError(f"the {options.kind} kind has no reservoir: use encode_inputs")
    n = len(ds)
    if not 0 <= lo <= hi <= n:
        raise ConfigError(f"range {lo}:{hi} is not within the {n} samples of {ds.name}")
    _check_start(lo, options)
    _checked_rasters(ds, cfg, rasters)
    chosen = reservoir._choose_path(options.path, options.kind == "membrane")
    stats, values = SpikeStats(), None
    with _bar(hi - lo, f"{ds.name} LSM ({chosen})", options.progress) as bar:
        for a, b in chunk_bounds(hi, options.chunk, lo):
            feats, spikes = _run_chunk(reservoir, _chunk_rasters(ds, cfg, rasters, a, b),
                                       chosen, options)
            if values is None:
                values = np.empty((hi - lo, feats.shape[1]), np.float32)
            values[a - lo:b - lo] = feats
            stats.add(spikes)
            bar.update(b - a)
    if values is None:  # an empty range
        width = cfg.n_neurons * (options.n_windows if options.kind in WINDOWED_KINDS else 1)
        values = np.zeros((0, width), np.float32)
    return values, stats, chosen


def encode_key(reservoir: Reservoir, ds, options: EncodeOptions, cache: FeatureCache) -> str:
    """The cache key of ``encode_dataset(reservoir, ds, options)`` now: the dataset's
    fingerprint, the chip's identity, the tile, config, forming, clock, earlier runs and
    the options that change the features."""
    return cache.key({
        "fingerprint": ds.fingerprint(None), **reservoir.identity(),
        "lsm": dataclasses.asdict(reservoir.config),
        "forming": dataclasses.asdict(reservoir.forming),
        "clock_s": reservoir.clock_s(), "runs_before": reservoir.runs,
        "path": options.path, "kind": options.kind,
        "n_windows": options.n_windows if options.kind in WINDOWED_KINDS else None,
    })


def features_of(reservoir: Reservoir, ds, options: EncodeOptions, values: np.ndarray,
                stats: SpikeStats, chosen: str, meta: dict | None = None) -> Features:
    """:class:`Features` with the provenance a reservoir records, from the values and spike
    totals of every sample of ``ds`` (encoded in one range or several)."""
    info = {
        "lsm_config": dataclasses.asdict(reservoir.config),
        "g_ref_us": reservoir.spec.g_ref_us,
        "forming": dataclasses.asdict(reservoir.forming),
        **reservoir.placement(),
        "path": chosen,
        "kind": options.kind,
        "n_windows": options.n_windows if options.kind in WINDOWED_KINDS else None,
        "firing_rate_per_step": stats.firing_rate,
        "silent_fraction": stats.silent_fraction,
        **dataset_meta(ds), "chip_age_s": reservoir.clock_s(),
    }
    info.update(meta or {})
    return Features(values, ds.labels, ds.is_test, info)


def encode_dataset(reservoir: Reservoir, ds, options: EncodeOptions = EncodeOptions(), *,
                   rasters=None, cache: FeatureCache | None = None,
                   meta: dict | None = None) -> Features:
    """Features of every sample of EventDataset ``ds`` through ``reservoir``, streaming:
    ``options.chunk_size`` samples' rasters at a time (``rasters``: all of them if already
    made; then chunks are views of it).

    With ``cache``, the result is stored under :func:`encode_key` (the dataset's
    fingerprint, the chip's ``identity()``, the tile, the reservoir's config and forming, the
    chip's clock, how many batches the tile had run before (read noise makes later runs
    differ) and ``options``); an identical call loads it without running the chip. ``meta``
    is merged into the features' provenance. An input kind is :func:`encode_inputs`.
    """
    cfg = reservoir.config
    if options.kind in INPUT_KINDS:
        return encode_inputs(ds, cfg, rasters, options.progress, chunk_size=options.chunk,
                             kind=options.kind, n_windows=options.n_windows)
    key = None
    if cache is not None:
        key = encode_key(reservoir, ds, options, cache)
        hit = cache.load(key)
        if hit is not None:
            return Features(hit.values, hit.labels, hit.is_test,
                            {**hit.meta, **dataset_meta(ds), **(meta or {}), "cache": "hit",
                             "cache_key": key})
    values, stats, chosen = encode_range(reservoir, ds, options, 0, len(ds), rasters=rasters)
    feats = features_of(reservoir, ds, options, values, stats, chosen, meta)
    if key is not None:
        cache.store(key, feats)
        feats = Features(feats.values, feats.labels, feats.is_test,
                         {**feats.meta, "cache": "miss", "cache_key": key})
    return feats
