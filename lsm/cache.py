"""On-disk feature cache in the user cache directory (never the data directory)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from rram_lsm.records import to_jsonable
from rram_lsm.settings import cache_dir

from .features import Features

__all__ = ["CACHE_VERSION", "cache_key", "cache_path", "load_cached", "store"]

CACHE_VERSION = 2
"""Bumped whenever encoding changes so that old entries are never reused."""


def cache_key(parts: dict) -> str:
    """A stable hex digest of ``parts`` (any JSON-able dict: fingerprint, config, seeds...)."""
    text = json.dumps({"v": CACHE_VERSION, **to_jsonable(parts)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_path(key: str) -> Path:
    """Where the entry for ``key`` lives (``$RRAM_LSM_CACHE/lsm-features/<key>.npz``)."""
    return cache_dir() / "lsm-features" / f"{key}.npz"


def load_cached(key: str) -> Features | None:
    """The cached Features for ``key``, or None when absent."""
    path = cache_path(key)
    return Features.load(path) if path.is_file() else None


def store(key: str, features: Features) -> Path:
    """Write ``features`` under ``key`` atomically (temporary file + rename)."""
    path = cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        features.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
