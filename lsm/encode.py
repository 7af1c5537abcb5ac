"""Encode a whole dataset through a reservoir on a backend, with an on-disk feature cache."""
from __future__ import annotations

import dataclasses

from rram_lsm.errors import ConfigError, ShapeError

from .cache import cache_key, load_cached, store
from .features import INPUT_KIND, Features, input_features
from .reservoir import LsmConfig, Reservoir, preset

__all__ = ["DATASETS", "resolve_config", "encode_dataset"]

DATASETS = ("nmnist", "fsdd", "ntidigits")


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


def _profile_identity(backend_kind: str, profile, noise: bool):
    if backend_kind == "serial":
        return None  # a physical chip has its own physics; only its URL identifies it
    from sim import load_profile

    prof = load_profile(profile)
    if not noise:
        prof = prof.noise_free()
    return prof.to_dict()


def encode_dataset(name: str, data_dir=None, *, backend: str = "sim", chip_seed: int = 0,
                   profile=None, noise: bool = True, lsm_preset=None, chip_age_s: float = 0.0,
                   kind: str = "counts", cache: bool = True, progress: bool = True,
                   path: str = "auto", n_windows: int = 5, dataset=None,
                   rasters=None) -> Features:
    """Features of every sample of dataset ``name`` (nmnist | fsdd | ntidigits).

    Opens ``backend`` (``rram_lsm.backends.open_backend``) with ``chip_seed``/``profile``/
    ``noise``, the dataset with ``lsm.data.open_dataset`` (``data_dir`` None and no
    ``$RRAM_LSM_DATA``: synthetic data, flagged in ``meta["synthetic"]``), forms the tile,
    ages the chip by ``chip_age_s`` seconds and encodes. With ``cache`` the result is stored
    under a key of dataset fingerprint + preprocessing, profile, chip seed, chip age, LSM
    config, backend, path, feature kind; a second identical call loads it. ``kind="input"``
    (:data:`lsm.features.INPUT_KIND`) bypasses the reservoir and the backend: the rates of
    the input rasters, an ablation baseline (not cached; it takes a raster pass). Serial backends
    are cached by URL: clear the cache when the chip itself changes. ``dataset``: an
    already opened ``lsm.data.EventDataset`` of ``name`` to use instead of opening one, and
    ``rasters`` its default-preprocessing rasters if the caller already has them.
    """
    from rram_lsm.backends import open_backend, parse_backend
    from rram_lsm.settings import resolve_data_dir

    from .data import open_dataset

    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if chip_age_s < 0:
        raise ConfigError(f"chip_age_s must be >= 0, got {chip_age_s}")
    cfg = resolve_config(name, lsm_preset)
    backend_kind, url = parse_backend(backend)
    if dataset is not None and dataset.name != name:
        raise ConfigError(f"dataset is {dataset.name!r} but name is {name!r}")
    ds = dataset if dataset is not None else open_dataset(name, resolve_data_dir(data_dir),
                                                           split="all", progress=progress)
    if kind == INPUT_KIND:
        rasters = _checked_rasters(name, ds, dataset, cfg, rasters, progress)
        meta = {**_dataset_meta(name, ds), "kind": INPUT_KIND, "reservoir": "bypassed",
                "lsm_config": dataclasses.asdict(cfg)}
        return Features(input_features(rasters), ds.labels, ds.is_test, meta)
    key = None
    if cache:
        key = cache_key({
            "dataset": name, "fingerprint": ds.fingerprint(None),
            "profile": _profile_identity(backend_kind, profile, noise), "noise": noise,
            "chip_seed": chip_seed, "chip_age_s": float(chip_age_s),
            "lsm": dataclasses.asdict(cfg), "backend": [backend_kind, url],
            "path": path, "kind": kind, "n_windows": n_windows if kind == "windowed" else None,
        })
        hit = load_cached(key)
        if hit is not None:
            return Features(hit.values, hit.labels, hit.is_test,
                            {**hit.meta, "cache": "hit", "cache_key": key})
    rasters = _checked_rasters(name, ds, dataset, cfg, rasters, progress)
    with open_backend(backend, seed=chip_seed, profile=profile, noise=noise) as macro:
        res = Reservoir.setup(macro, cfg)
        if chip_age_s > 0:
            macro.advance_time(chip_age_s)
        meta = {
            **_dataset_meta(name, ds), "chip_seed": chip_seed,
            "profile": getattr(getattr(macro, "profile", None), "name", profile),
            "noise": noise, "backend": backend, "chip_age_s": float(chip_age_s),
        }
        feats = res.features(rasters, kind, path, progress, labels=ds.labels,
                             is_test=ds.is_test, n_windows=n_windows, meta=meta)
    if key is not None:
        store(key, feats)
        feats = Features(feats.values, feats.labels, feats.is_test,
                         {**feats.meta, "cache": "miss", "cache_key": key})
    return feats


def _checked_rasters(name, ds, dataset, cfg: LsmConfig, rasters, progress: bool):
    """``rasters`` (computed when None) after checking they fit ``ds`` and ``cfg``."""
    if rasters is None:
        rasters = ds.rasters(None, progress=progress)
    elif dataset is None or len(rasters) != len(ds):
        raise ConfigError("rasters= needs dataset= and one raster per sample of it")
    if rasters.shape[1:] != (cfg.n_steps, cfg.n_inputs):
        raise ShapeError(
            f"{name} rasters are (T, inputs) = {rasters.shape[1:]} but the LSM config "
            f"{cfg.name} expects {(cfg.n_steps, cfg.n_inputs)}: pick the matching preset")
    return rasters


def _dataset_meta(name, ds) -> dict:
    return {"dataset": name, "synthetic": bool(ds.synthetic),
            "fingerprint": ds.fingerprint(None), "n_classes": int(ds.n_classes),
            "class_names": list(ds.class_names)}
