"""Feature sources for the protocol: the LSM encoder, or a saved ``.npz`` file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from rram_lsm.errors import ConfigError, DataNotFoundError

from .protocol import PairedFeatures
from .train import FEATURE_KINDS

__all__ = ["AUDIO_CHOICES", "resolve_audio", "encode_pair", "load_npz", "save_npz"]

AUDIO_CHOICES = ("auto", "fsdd", "ntidigits")
"""``auto`` uses N-TIDIGITS when its hdf5 is in the data directory, else FSDD."""

_KEYS = ("values", "labels", "is_test")


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


def encode_pair(data_dir=None, *, backend: str = "sim", chip_seed: int = 0, profile=None,
                noise: bool = True, audio: str = "auto", kind: str = "counts+input",
                progress: bool = True) -> PairedFeatures:
    """Encode N-MNIST and the audio dataset with ``lsm.encode_dataset`` (feature cache on).

    Both modalities use the same virtual or physical chip (``backend``, ``chip_seed``).
    ``kind`` is one of :data:`projections.train.FEATURE_KINDS`; ``a+b`` puts both side by
    side. It is recorded in ``meta["feature_kind"]``, and each part's columns in
    ``meta["feature_blocks"]``, so the default ``counts+input`` serves recipes on
    ``counts``, ``input`` or both (:meth:`PairedFeatures.select_kind`).
    """
    from lsm import encode_dataset, open_dataset
    from rram_lsm.settings import resolve_data_dir

    if kind not in FEATURE_KINDS:
        raise ConfigError(f"unknown feature kind {kind!r}; choose one of {FEATURE_KINDS}")
    root = resolve_data_dir(data_dir)
    audio_name = resolve_audio(audio, root)
    kinds = kind.split("+")
    kw = dict(backend=backend, chip_seed=chip_seed, profile=profile, noise=noise,
              cache=True, progress=progress)
    by_role = {}
    for role, name in (("image", "nmnist"), ("audio", audio_name)):
        ds = open_dataset(name, root, split="all", progress=progress)
        # one raster pass serves the input rates and, on a cache miss, the reservoir
        rasters = ds.rasters(None, progress=progress) if "input" in kinds else None
        by_role[role] = [encode_dataset(name, kind=k, dataset=ds, rasters=rasters, **kw)
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
        {**first.meta, "feature_kind": kind, "feature_blocks": blocks})


def load_npz(path: str | os.PathLike) -> PairedFeatures:
    """Features saved by :func:`save_npz` (``image_values``, ``audio_labels``, ...), with
    their feature kind and column blocks when the file records them."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"feature file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        missing = [f"{m}_{k}" for m in ("image", "audio") for k in _KEYS
                   if f"{m}_{k}" not in z.files]
        if missing:
            raise ConfigError(f"{path} lacks arrays {missing}; expected image_/audio_ "
                              f"values, labels, is_test")
        arrays = {f"{m}_{k}": z[f"{m}_{k}"] for m in ("image", "audio") for k in _KEYS}
        meta = {"source": str(path)}
        if "feature_meta" in z.files:
            meta.update(json.loads(str(z["feature_meta"])))
    return PairedFeatures(
        arrays["image_values"].astype(np.float32), arrays["image_labels"].astype(np.int64),
        arrays["image_is_test"].astype(bool), arrays["audio_values"].astype(np.float32),
        arrays["audio_labels"].astype(np.int64), arrays["audio_is_test"].astype(bool), meta)


def save_npz(data: PairedFeatures, path: str | os.PathLike) -> None:
    """Save features in the layout :func:`load_npz` reads (plus their feature kind and
    column blocks, when known, as JSON in ``feature_meta``)."""
    extra = {k: data.meta[k] for k in ("feature_kind", "feature_blocks")
             if data.meta.get(k) is not None}
    arrays = {f"{m}_{k}": getattr(data, f"{m}_{k}") for m in ("image", "audio") for k in _KEYS}
    if extra:
        arrays["feature_meta"] = np.array(json.dumps(extra))
    np.savez(path, **arrays)
