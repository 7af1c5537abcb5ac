"""Results as JSON records that carry the config, seeds and versions that made them.

``write_record`` writes atomically (temporary file + rename): a crash or a bad value never
leaves a half-written file, and an existing file is replaced only by a complete one.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_jsonable", "environment", "write_record", "read_record", "get_path"]

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


def write_record(path: str | os.PathLike, results: dict, *, command: str,
                 config: dict | None = None, seeds: Any = None) -> dict:
    """Write ``results`` plus provenance to ``path`` atomically; return the full record.

    The record's top level is ``results`` merged with ``command``, ``config``, ``seeds`` and
    ``environment`` keys, so metric keys stay where users expect them (``lsm.test_accuracy``).
    """
    record = dict(to_jsonable(results))
    record["command"] = command
    record["config"] = to_jsonable(config or {})
    record["seeds"] = to_jsonable(seeds)
    record["environment"] = environment()
    text = json.dumps(record, indent=2, sort_keys=False, allow_nan=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return record


def read_record(path: str | os.PathLike) -> dict:
    """Load a record written by :func:`write_record`."""
    return json.loads(Path(path).read_text())


def get_path(record: dict, dotted: str) -> Any:
    """``get_path(r, "lsm.test_accuracy.mean")`` -> nested lookup; KeyError names the key."""
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{dotted!r}: no key {part!r}")
        node = node[part]
    return node
