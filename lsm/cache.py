"""On-disk feature cache: one ``.npz`` per key, written atomically, in a directory the
caller names (the app layer puts it in the user cache directory, never the data directory)."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from rram_lsm.records import to_jsonable

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
    top = Path(__file__).resolve().parent
    root = top / subpackage if subpackage else top
    digest = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        digest.update(f.relative_to(top).as_posix().encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:24]


class FeatureCache:
    """Features stored under keys in ``directory`` (created on demand)."""

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
        """The cached Features for ``key``, or None when absent."""
        path = self.path(key)
        return Features.load(path) if path.is_file() else None

    def store(self, key: str, features: Features) -> Path:
        """Write ``features`` under ``key`` atomically (temporary file + rename)."""
        path = self.path(key)
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
