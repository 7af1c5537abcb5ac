"""Saved paired features: the ``.npz`` layout the protocol reads and writes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from rram_lsm.errors import ConfigError, DataNotFoundError

from .protocol import PairedFeatures

__all__ = ["load_npz", "save_npz"]

_KEYS = ("values", "labels", "is_test")


def load_npz(path: str | os.PathLike) -> PairedFeatures:
    """Features saved by :func:`save_npz` (``image_values``, ``audio_labels``, ...), with
    their feature kind, column blocks and speakers (``audio_speakers``) when the file
    records them."""
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
        speakers = z["audio_speakers"].astype(str) if "audio_speakers" in z.files else None
    return PairedFeatures(
        arrays["image_values"].astype(np.float32), arrays["image_labels"].astype(np.int64),
        arrays["image_is_test"].astype(bool), arrays["audio_values"].astype(np.float32),
        arrays["audio_labels"].astype(np.int64), arrays["audio_is_test"].astype(bool), meta,
        audio_speakers=speakers)


def save_npz(data: PairedFeatures, path: str | os.PathLike) -> None:
    """Save features in the layout :func:`load_npz` reads (plus their feature kind and
    column blocks, when known, as JSON in ``feature_meta``)."""
    extra = {k: data.meta[k] for k in ("feature_kind", "feature_blocks")
             if data.meta.get(k) is not None}
    arrays = {f"{m}_{k}": getattr(data, f"{m}_{k}") for m in ("image", "audio") for k in _KEYS}
    if extra:
        arrays["feature_meta"] = np.array(json.dumps(extra))
    if data.audio_speakers is not None:
        arrays["audio_speakers"] = np.asarray(data.audio_speakers, dtype=str)
    np.savez(path, **arrays)
