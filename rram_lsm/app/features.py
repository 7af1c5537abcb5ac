"""Features of a dataset, or of the image/audio pair, encoded on a chip session.

This is where the settings meet the library: the data directory and the cache directory are
resolved here (``rram_lsm.app.settings``), the chip is a :class:`~rram_lsm.app.session.
ChipSession`, and ``lsm.encode_dataset`` does the work.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lsm import EncodeOptions, FeatureCache, encode_dataset, open_dataset
from lsm.encode import DATASETS, encode_inputs, resolve_config
from ..errors import ConfigError
from .session import ChipSession
from .settings import cache_dir, resolve_data_dir

__all__ = ["AUDIO_CHOICES", "resolve_audio", "feature_cache", "open_data", "encode",
           "encode_pair"]

AUDIO_CHOICES = ("auto", "fsdd", "ntidigits")
"""``auto`` uses N-TIDIGITS when its hdf5 is in the data directory, else FSDD."""


def resolve_audio(audio: str, data_dir) -> str:
    """The audio dataset name for ``audio`` (``auto`` looks for the N-TIDIGITS hdf5)."""
    if audio not in AUDIO_CHOICES:
        raise ConfigError(f"unknown audio dataset {audio!r}; choose one of {AUDIO_CHOICES}")
    if audio != "auto":
        return audio
    if data_dir is not None:
        root = Path(data_dir)
        if (root / "ntidigits" / "n-tidigits.hdf5").is_file() or \
                (root / "n-tidigits.hdf5").is_file():
            return "ntidigits"
    return "fsdd"


def feature_cache() -> FeatureCache:
    """The feature cache in the user cache directory ($RRAM_LSM_CACHE)."""
    return FeatureCache(cache_dir() / "lsm-features")


def open_data(name: str, data_dir=None, *, progress: bool = True):
    """Dataset ``name`` from ``data_dir`` or $RRAM_LSM_DATA (synthetic when neither), with
    the cochlea's event cache in the user cache directory."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    return open_dataset(name, resolve_data_dir(data_dir), split="all", progress=progress,
                        cache_dir=cache_dir())


def _profile_name(profile, macro):
    return getattr(getattr(macro, "profile", None), "name", profile)


def encode(session: ChipSession, name: str, ds=None, *, lsm_preset=None,
           chip_age_s: float = 0.0, options: EncodeOptions = EncodeOptions(),
           rasters=None, cache: bool = True) -> "object":
    """Features of dataset ``name`` through its reservoir on ``session`` (formed on first
    use, placed by the session's floorplan), after ageing the chip to ``chip_age_s``.

    ``ds``: the dataset if already open (else :func:`open_data` with the default data
    directory); ``rasters``: its rasters if already made.
    """
    if chip_age_s < 0:
        raise ConfigError(f"chip_age_s must be >= 0, got {chip_age_s}")
    ds = open_data(name, progress=options.progress) if ds is None else ds
    if ds.name != name:
        raise ConfigError(f"dataset is {ds.name!r} but name is {name!r}")
    cfg = resolve_config(name, lsm_preset)
    if options.kind == "input":
        return encode_inputs(ds, cfg, rasters, options.progress)
    res = session.reservoir(name, cfg)
    if chip_age_s > 0:
        session.age(chip_age_s)
    meta = {"chip_seed": session.chip_seed, "backend": session.backend,
            "noise": session.noise, "profile": _profile_name(session.profile, res.macro),
            "placement": (res.tilemap.to_dict() if hasattr(res, "tilemap")
                          else session.allocator.get(name).to_dict())}
    return encode_dataset(res, ds, options, rasters=rasters,
                          cache=feature_cache() if cache else None, meta=meta)


def encode_pair(data_dir=None, *, backend: str = "sim", chip_seed: int = 0, profile=None,
                noise: bool = True, audio: str = "auto", kind: str = "counts+input",
                progress: bool = True, session: ChipSession | None = None):
    """Encode N-MNIST and the audio dataset on one chip (feature cache on).

    Both modalities use the same chip: ``session`` if given (its backend and seed win),
    else one opened here from ``backend``/``chip_seed``/``profile``/``noise``, with each
    reservoir on a tile of its own. ``kind`` is one of
    :data:`projections.train.FEATURE_KINDS`; ``a+b`` puts both side by side. It is recorded
    in ``meta["feature_kind"]``, and each part's columns in ``meta["feature_blocks"]``, so
    the default ``counts+input`` serves recipes on ``counts``, ``input`` or both
    (:meth:`PairedFeatures.select_kind`). ``meta["chip"]`` is the session's record.
    Returns :class:`projections.PairedFeatures`.
    """
    # projections loads torch: only a pair needs it, not every encode or data check
    from projections import PairedFeatures
    from projections.train import FEATURE_KINDS

    if kind not in FEATURE_KINDS:
        raise ConfigError(f"unknown feature kind {kind!r}; choose one of {FEATURE_KINDS}")
    if session is None:
        with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise) as s:
            return encode_pair(data_dir, audio=audio, kind=kind, progress=progress, session=s)
    root = resolve_data_dir(data_dir)
    audio_name = resolve_audio(audio, root)
    kinds = kind.split("+")
    by_role = {}
    for role, name in (("image", "nmnist"), ("audio", audio_name)):
        ds = open_data(name, root, progress=progress)
        # one raster pass serves the input rates and, on a cache miss, the reservoir
        rasters = ds.rasters(None, progress=progress) if "input" in kinds else None
        by_role[role] = [encode(session, name, ds, rasters=rasters,
                                options=EncodeOptions(kind=k, progress=progress))
                         for k in kinds]
    parts = [PairedFeatures.from_features(i, a)
             for i, a in zip(by_role["image"], by_role["audio"])]
    first = parts[0]
    blocks = {}
    for m in ("image", "audio"):
        edges = np.cumsum([0] + [getattr(p, f"{m}_values").shape[1] for p in parts])
        blocks[m] = {k: [int(a), int(b)] for k, a, b in zip(kinds, edges[:-1], edges[1:])}
    return PairedFeatures(
        np.concatenate([p.image_values for p in parts], axis=1), first.image_labels,
        first.image_is_test, np.concatenate([p.audio_values for p in parts], axis=1),
        first.audio_labels, first.audio_is_test,
        {**first.meta, "feature_kind": kind, "feature_blocks": blocks,
         "chip": session.record()})
