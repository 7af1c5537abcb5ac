"""On-disk feature cache in the user cache directory (never the data directory)."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from rram_lsm.records import to_jsonable
from rram_lsm.settings import cache_dir

from .features import Features

__all__ = ["CACHE_VERSION", "cache_key", "cache_path", "load_cached", "store",
           "source_fingerprint"]

CACHE_VERSION = 3
"""Bumped when the cache layout changes. Changes of the encoding code need no bump: the
key holds :func:`source_fingerprint` of the code that encodes."""

_TOP = Path(__file__).resolve().parent.parent
ENCODING_SOURCES = ("lsm", "sim", "hardware", "rram_lsm/macro.py", "rram_lsm/backends.py")
"""Code whose edits can change encoded features (paths relative to the installed packages)."""


@functools.lru_cache(maxsize=None)
def source_fingerprint(sources: tuple = ENCODING_SOURCES, root: Path | None = None) -> str:
    """Digest of the Python sources in ``sources`` (package folders or files, relative to
    ``root``, default the folder holding the installed packages).

    Part of every cache key, so that features or events cached by an older version of the
    code are never served: a stale entry once silently replaced the output of a changed
    forming sweep.
    """
    top = _TOP if root is None else Path(root)
    digest = hashlib.sha256()
    for source in sources:
        path = top / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                digest.update(f.relative_to(top).as_posix().encode())
                digest.update(f.read_bytes())
    return digest.hexdigest()[:24]


def cache_key(parts: dict) -> str:
    """A stable hex digest of ``parts`` (any JSON-able dict: fingerprint, config, seeds...)
    and of the encoding code (:func:`source_fingerprint`)."""
    text = json.dumps({"v": CACHE_VERSION, "code": source_fingerprint(),
                       **to_jsonable(parts)}, sort_keys=True)
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
