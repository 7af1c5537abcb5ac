"""Encode a whole dataset through a reservoir that is already on a chip, with a feature cache.

Opening chips, placing tiles and finding data are the app layer's business
(``rram_lsm.app.session``); here a :class:`~lsm.reservoir.Reservoir` and an
:class:`~lsm.data.EventDataset` go in and :class:`~lsm.features.Features` come out.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rram_lsm.errors import ConfigError, ShapeError

from .cache import FeatureCache
from .features import FEATURE_KINDS, INPUT_KIND, Features, input_features
from .reservoir import PATHS, LsmConfig, Reservoir, preset

__all__ = ["DATASETS", "EncodeOptions", "resolve_config", "encode_dataset", "encode_inputs",
           "dataset_meta"]

DATASETS = ("nmnist", "fsdd", "ntidigits")


@dataclass(frozen=True)
class EncodeOptions:
    """How a dataset is turned into features (everything but the chip and the data)."""

    kind: str = "counts"
    """Feature kind, one of :data:`lsm.features.FEATURE_KINDS`, or ``"input"`` (the reservoir
    bypassed: :func:`encode_inputs`)."""
    path: str = "auto"
    """Run path: ``auto``, ``fast`` (the macro's ``run_reservoir``) or ``generic``."""
    n_windows: int = 5
    """Time windows of the ``windowed`` kind."""
    batch_size: int = 256
    """Samples per call to the macro."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS + (INPUT_KIND,):
            raise ConfigError(f"feature kind must be one of {FEATURE_KINDS + (INPUT_KIND,)}, "
                              f"got {self.kind!r}")
        if self.path not in PATHS:
            raise ConfigError(f"path must be one of {PATHS}, got {self.path!r}")
        if int(self.n_windows) < 1 or int(self.batch_size) < 1:
            raise ConfigError("n_windows and batch_size must be >= 1")


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
    return {"dataset": ds.name, "synthetic": bool(ds.synthetic),
            "fingerprint": ds.fingerprint(None), "n_classes": int(ds.n_classes),
            "class_names": list(ds.class_names)}


def _checked_rasters(ds, cfg: LsmConfig, rasters, progress: bool) -> np.ndarray:
    """``rasters`` (computed when None) after checking they fit ``ds`` and ``cfg``."""
    if rasters is None:
        rasters = ds.rasters(None, progress=progress)
    elif len(rasters) != len(ds):
        raise ShapeError(f"rasters has {len(rasters)} samples but {ds.name} has {len(ds)}")
    if rasters.shape[1:] != (cfg.n_steps, cfg.n_inputs):
        raise ShapeError(
            f"{ds.name} rasters are (T, inputs) = {rasters.shape[1:]} but the LSM config "
            f"{cfg.name} expects {(cfg.n_steps, cfg.n_inputs)}: pick the matching preset")
    return rasters


def encode_inputs(ds, cfg: LsmConfig, rasters=None, progress: bool = True) -> Features:
    """The input rates of ``ds`` with the reservoir and the chip bypassed (feature kind
    ``input``): the ablation baseline. ``rasters``: the dataset's rasters if already made."""
    rasters = _checked_rasters(ds, cfg, rasters, progress)
    meta = {**dataset_meta(ds), "kind": INPUT_KIND, "reservoir": "bypassed",
            "lsm_config": dataclasses.asdict(cfg)}
    return Features(input_features(rasters), ds.labels, ds.is_test, meta)


def encode_dataset(reservoir: Reservoir, ds, options: EncodeOptions = EncodeOptions(), *,
                   rasters=None, cache: FeatureCache | None = None,
                   meta: dict | None = None) -> Features:
    """Features of every sample of EventDataset ``ds`` through ``reservoir``.

    With ``cache``, the result is stored under a key of the dataset's fingerprint, the
    chip's ``identity()``, the tile, the reservoir's config and forming, the chip's clock,
    how many batches the tile had run before (read noise makes later runs differ) and
    ``options``; an identical call loads it without running the chip. ``meta`` is merged
    into the features' provenance. ``kind="input"`` is :func:`encode_inputs`.
    """
    cfg = reservoir.config
    if options.kind == INPUT_KIND:
        return encode_inputs(ds, cfg, rasters, options.progress)
    key = None
    if cache is not None:
        key = cache.key({
            "fingerprint": ds.fingerprint(None), **reservoir.identity(),
            "lsm": dataclasses.asdict(cfg),
            "forming": dataclasses.asdict(reservoir.forming),
            "clock_s": reservoir.clock_s(), "runs_before": reservoir.runs,
            "path": options.path, "kind": options.kind,
            "n_windows": options.n_windows if options.kind == "windowed" else None,
        })
        hit = cache.load(key)
        if hit is not None:
            return Features(hit.values, hit.labels, hit.is_test,
                            {**hit.meta, **(meta or {}), "cache": "hit", "cache_key": key})
    rasters = _checked_rasters(ds, cfg, rasters, options.progress)
    feats = reservoir.features(
        rasters, options.kind, options.path, options.progress, labels=ds.labels,
        is_test=ds.is_test, n_windows=options.n_windows, batch_size=options.batch_size,
        meta={**dataset_meta(ds), "chip_age_s": reservoir.clock_s(),
              **(meta or {})})
    if key is not None:
        cache.store(key, feats)
        feats = Features(feats.values, feats.labels, feats.is_test,
                         {**feats.meta, "cache": "miss", "cache_key": key})
    return feats
