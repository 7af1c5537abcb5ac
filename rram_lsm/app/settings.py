"""Where data and caches live.

The data directory comes from ``--data-dir`` or else the ``RRAM_LSM_DATA`` environment
variable; with neither, commands fall back to synthetic data and say so. The feature cache
lives in a user cache directory (``RRAM_LSM_CACHE`` or ``~/.cache/rram-lsm``), never inside
the data directory, which may be read-only.
"""
from __future__ import annotations

import os
from pathlib import Path

from lsm.data.datasets import DOWNLOAD_HELP

from ..errors import DataNotFoundError, OutputError

__all__ = ["DATA_ENV", "CACHE_ENV", "DOWNLOAD_HELP", "resolve_data_dir", "cache_dir"]

DATA_ENV = "RRAM_LSM_DATA"
CACHE_ENV = "RRAM_LSM_CACHE"



def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """Return the data directory from the argument or ``$RRAM_LSM_DATA``, or None.

    Raises DataNotFoundError (with download sources) when a directory was named but does
    not exist or is a file; returns None when none was named, meaning "use synthetic data".
    """
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(DATA_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    source = "--data-dir" if data_dir else "$" + DATA_ENV
    if path.exists() and not path.is_dir():
        raise DataNotFoundError(
            f"data directory {path} (from {source}) is a file, not a directory: name the "
            f"folder that holds nmnist/, fsdd/ and ntidigits/.\n{DOWNLOAD_HELP}")
    if not path.is_dir():
        raise DataNotFoundError(
            f"data directory {path} does not exist (from {source}).\n{DOWNLOAD_HELP}"
        )
    return path.resolve()


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The feature-cache directory (created on demand)."""
    chosen = override or os.environ.get(CACHE_ENV)
    if chosen:
        path = Path(chosen).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "rram-lsm"
    origin = ("given" if override else f"from ${CACHE_ENV}" if os.environ.get(CACHE_ENV)
              else "the default")
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"the cache directory ({origin}) is a file, not a directory",
                              path)
        path.mkdir(parents=True, exist_ok=True)
    except OutputError:
        raise
    except OSError as exc:   # no permission, a read-only or virtual file system
        raise OutputError(f"cannot create the cache directory ({origin}): "
                          f"{exc.strerror or exc}", path) from None
    return path
