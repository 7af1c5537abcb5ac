"""Typed errors shared by every package.

Each error is a subclass of :class:`RramLsmError` *and* of the builtin that fits it
(``ValueError``, ``FileNotFoundError``...), so callers can catch either. Messages say what
was wrong and what to do about it.
"""
from __future__ import annotations

__all__ = [
    "RramLsmError",
    "ConfigError",
    "DataError",
    "DataNotFoundError",
    "EventFileError",
    "MacroError",
    "RegionError",
    "PlacementError",
    "ShapeError",
    "SafetyLimitError",
    "RecordError",
    "OutputError",
]


class RramLsmError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(RramLsmError, ValueError):
    """A configuration value or key is invalid (unknown key, out-of-range value)."""


class DataError(RramLsmError):
    """Base class for problems with data files or data directories."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data directory or dataset is missing; the message names where to get it."""


class EventFileError(DataError, ValueError):
    """An event or audio file is truncated, corrupt or of an unknown layout.

    ``path`` names the file and ``offset`` the byte offset where parsing failed (or None).
    """

    def __init__(self, message: str, path: object = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if offset is not None:
                where += f" at byte {offset}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.offset = offset


class RecordError(RramLsmError, ValueError):
    """A JSON results record cannot be read: missing, not UTF-8 text, not JSON, or not an
    object. ``path`` names the file."""

    def __init__(self, message: str, path: object = None):
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path


class OutputError(RramLsmError, OSError):
    """An output file or directory cannot be written there (a file where a directory is
    needed or the reverse, no such parent, no permission). ``path`` names it."""

    def __init__(self, message: str, path: object = None):
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path

    def __str__(self) -> str:  # OSError's own __str__ would print the args tuple
        return str(self.args[0]) if self.args else ""


class MacroError(RramLsmError):
    """Base class for errors raised by a macro backend (simulator or hardware)."""


class RegionError(MacroError, ValueError):
    """A region lies outside the array or has a non-positive size."""


class ShapeError(MacroError, ValueError):
    """An array argument has the wrong shape or dtype for the region it addresses."""


class SafetyLimitError(MacroError, ValueError):
    """A voltage, current or pulse width exceeds the limits the macro reports."""


class PlacementError(RegionError):
    """A tile cannot be placed: it overlaps a placed tile or does not fit on the chip."""
