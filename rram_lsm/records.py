"""Results as JSON records that carry the config, seeds and versions that made them.

``write_record`` writes crash-safely (:func:`atomic_write`: a temporary file in the same
directory, flushed to disk, renamed over the target, the directory flushed too): a process
killed at any point, a bad value or a full disk never leaves a half-written record, and an
existing record is replaced only by a complete one. ``read_record`` raises
:class:`~rram_lsm.errors.RecordError` for anything that is not a record.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import stat
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import OutputError, RecordError

__all__ = ["to_jsonable", "environment", "source_digest", "atomic_write", "write_record",
           "read_record", "get_path"]

def source_digest(package_dir, subdir: str = "") -> str:
    """Digest (24 hex) of the Python sources under ``package_dir / subdir``, each file named
    by its path relative to ``package_dir``: moving a checkout changes nothing, editing any
    file changes the digest. Cache keys and chip identities use it as the code's version."""
    import hashlib

    top = Path(package_dir).resolve()
    digest = hashlib.sha256()
    for f in sorted((top / subdir if subdir else top).rglob("*.py")):
        digest.update(f.relative_to(top).as_posix().encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:24]


_PACKAGES = ("rram-lsm", "numpy", "numba", "torch", "snntorch", "tonic", "pyserial", "scipy")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, paths and tuples to plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict:
    """Package versions, Python, platform and git revision, for provenance."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "git_revision": _git_revision(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


TEMP_PREFIX = ".tmp-"
"""Names of the temporary files :func:`atomic_write` leaves behind only when its process is
killed mid-write; readers never look at them."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory handles: the rename is all we get
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    """The process's umask (reading it means setting it, briefly: done once, at import)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _set_mode(fd: int, path: Path) -> None:
    """mkstemp makes the file 0600; give it the mode of the file it replaces, else what
    any file written here gets (0666 less the umask). Best effort: a file system without
    modes keeps mkstemp's."""
    if not hasattr(os, "fchmod"):   # POSIX (and Windows from Python 3.13)
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o666 & ~_UMASK
        os.fchmod(fd, mode)
    except OSError:
        pass


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Write ``path`` so that it holds either its old content or the complete new one,
    whatever happens: ``write(fh)`` fills a temporary binary file in the same directory,
    which is flushed and fsynced, renamed over ``path`` (``os.replace``, atomic on POSIX and
    Windows) and the directory fsynced, so the rename itself survives a power cut.

    A failure inside ``write`` removes the temporary file and leaves ``path`` untouched; a
    process killed with SIGKILL may leave a ``.tmp-*`` file beside it, never a partial
    ``path``. Raises OutputError when the directory cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".part",
                                   dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write here: {exc.strerror or exc}", path) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            _set_mode(fh.fileno(), path)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write: {exc.strerror or exc}", path) from exc
        raise
    _fsync_dir(path.parent)
    return path


def write_record(path: str | os.PathLike, results: dict, *, command: str,
                 config: dict | None = None, seeds: Any = None) -> dict:
    """Write ``results`` plus provenance to ``path`` crash-safely; return the full record.

    The record's top level is ``results`` merged with ``command``, ``config``, ``seeds`` and
    ``environment`` keys, so metric keys stay where users expect them (``lsm.test_accuracy``).
    The JSON text is built before the file is touched, so a value that cannot be written
    (TypeError) leaves any earlier record in place.
    """
    record = dict(to_jsonable(results))
    record["command"] = command
    record["config"] = to_jsonable(config or {})
    record["seeds"] = to_jsonable(seeds)
    record["environment"] = environment()
    data = (json.dumps(record, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()
    atomic_write(path, lambda fh: fh.write(data))
    return record


def read_record(path: str | os.PathLike) -> dict:
    """Load a record written by :func:`write_record`.

    Raises RecordError (naming the file) when it is missing or is not a JSON object in
    UTF-8 text, e.g. a binary file or a truncated copy.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise RecordError("no such record", path) from exc
    except IsADirectoryError as exc:
        raise RecordError("is a directory, not a JSON record", path) from exc
    except OSError as exc:
        raise RecordError(f"cannot read it ({exc.strerror or exc})", path) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not a JSON record: byte {exc.start} is not UTF-8 text (a binary "
                          "file?)", path) from exc
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not a JSON record: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}", path) from exc
    if not isinstance(record, dict):
        raise RecordError(f"not a result record: the JSON is a {type(record).__name__}, "
                          "not an object", path)
    return record


def get_path(record: dict, dotted: str) -> Any:
    """``get_path(r, "lsm.test_accuracy.mean")`` -> nested lookup; KeyError names the key."""
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{dotted!r}: no key {part!r}")
        node = node[part]
    return node
