"""On-disk feature cache: one ``.npz`` per key in a directory the caller names (the app
layer puts it in the user cache directory, never the data directory).

Crash-safe: an entry is written to a temporary file in the same directory, fsynced and
renamed over the key's file (:func:`rram_lsm.records.atomic_write`), so a process killed at
any point leaves either no entry or a complete one, and two processes storing the same key
at once each rename a complete file (the last one wins; both hold the same features). An
entry that cannot be read anyway (a disk error, a file copied in half) is a miss: a
``RuntimeWarning`` names it and the fresh features replace it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from pathlib import Path

from rram_lsm.errors import DataError
from rram_lsm.records import TEMP_PREFIX, atomic_write, source_digest, to_jsonable

from .features import Features

__all__ = ["CACHE_VERSION", "FeatureCache", "source_fingerprint"]

CACHE_VERSION = 4
"""Bumped when the cache layout changes. Changes of the encoding code need no bump: the key
holds :func:`source_fingerprint` of this package, and the macro's ``identity()`` carries its
own implementation's version."""


@functools.lru_cache(maxsize=None)
def source_fingerprint(subpackage: str = "") -> str:
    """Digest of this package's Python sources (or of ``subpackage``, e.g. ``"events"``),
    paths taken relative to the package itself, so that moving the checkout or the
    installation changes nothing while any edit to the code changes the digest.

    Part of every cache key, so that features or events cached by an older version of the
    code are never served.
    """
    return source_digest(Path(__file__).parent, subpackage)


class FeatureCache:
    """Features stored under keys in ``directory`` (created on demand)."""

    STALE_TEMP_S = 24 * 3600.0
    """Age in seconds after which a temporary file (left by a process killed mid-write) is
    deleted by the next store; no store takes that long."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.directory)!r})"

    @staticmethod
    def key(parts: dict) -> str:
        """A stable hex digest of ``parts`` (any JSON-able dict: dataset fingerprint, macro
        identity, placement, config...) and of the encoding code."""
        text = json.dumps({"v": CACHE_VERSION, "code": source_fingerprint(),
                           **to_jsonable(parts)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        """Where the entry for ``key`` lives."""
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> Features | None:
        """The cached Features for ``key``, or None when absent or unreadable (then a
        RuntimeWarning says so; the next :meth:`store` replaces the entry)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return Features.load(path)
        except DataError as exc:
            warnings.warn(f"feature cache: ignoring the unreadable entry {path} ({exc}); "
                          "encoding again", RuntimeWarning, stacklevel=2)
            return None

    def store(self, key: str, features: Features) -> Path:
        """Write ``features`` under ``key`` crash-safely (temporary file, fsync, rename)."""
        path = atomic_write(self.path(key), features.write)
        self._remove_stale_temporaries()
        return path

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        for tmp in self.directory.glob(f"{TEMP_PREFIX}*"):
            try:
                if now - tmp.stat().st_mtime > self.STALE_TEMP_S:
                    tmp.unlink()
            except OSError:
                pass  # another process removed it first
