"""Where the parts of a network live on a chip: non-overlapping tiles of one or more macros.

A *chip* here is a set of macros (arrays) numbered from 0. :class:`TileAllocator` hands out
rectangular regions of them and refuses any request that would overlap a placed tile or leave
its macro's array. Placement is data: :meth:`TileAllocator.to_dict` goes into every results
record, so a run says exactly which cells held which reservoir.

Automatic placement is first fit: macros in order, then candidate corners (the array's
origin and the corners right of and below every placed tile), lowest row first, then lowest
column. Forming is irreversible, so a tile once placed is never moved.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError, PlacementError
from .macro import Region

__all__ = ["Placement", "TileAllocator"]


@dataclass(frozen=True)
class Placement:
    """One named tile: which macro of the chip, and which region of its array."""

    name: str
    """What the tile holds, e.g. ``"nmnist"`` for the image reservoir."""
    macro: int
    """Index of the macro (array) on the chip, from 0."""
    region: Region
    """The tile's cells on that macro."""

    def to_dict(self) -> dict:
        """JSON-ready: ``{"name", "macro", "region": [row0, col0, rows, cols]}``."""
        r = self.region
        return {"name": self.name, "macro": self.macro,
                "region": [r.row0, r.col0, r.rows, r.cols]}


def _overlap(a: Region, b: Region) -> bool:
    return (a.row0 < b.row0 + b.rows and b.row0 < a.row0 + a.rows
            and a.col0 < b.col0 + b.cols and b.col0 < a.col0 + a.cols)


class TileAllocator:
    """Non-overlapping tiles on macros of ``array_shape`` (rows, cols) each.

    ``max_macros`` bounds how many macros automatic placement may use (a physical setup has
    as many as it has ports; a virtual chip as many as it is allowed).
    """

    def __init__(self, array_shape: tuple[int, int], max_macros: int = 1):
        rows, cols = (int(v) for v in array_shape)
        if rows < 1 or cols < 1:
            raise ConfigError(f"array shape must be positive, got {array_shape}")
        if int(max_macros) < 1:
            raise ConfigError(f"max_macros must be >= 1, got {max_macros}")
        self.array_shape = (rows, cols)
        self.max_macros = int(max_macros)
        self._placed: list[Placement] = []

    @property
    def placements(self) -> tuple[Placement, ...]:
        """Every tile placed so far, in the order placed."""
        return tuple(self._placed)

    @property
    def macros_used(self) -> int:
        """Number of macros that hold at least one tile (highest index + 1)."""
        return 1 + max((p.macro for p in self._placed), default=-1)

    def get(self, name: str) -> Placement:
        """The placement called ``name``, or KeyError."""
        for p in self._placed:
            if p.name == name:
                return p
        raise KeyError(name)

    def place(self, name: str, shape: tuple[int, int], *, macro: int | None = None,
              region=None) -> Placement:
        """Place a ``shape`` (rows, cols) tile called ``name`` and return its Placement.

        ``region`` (with ``macro``, default 0) asks for exact cells; otherwise the first fit
        is chosen (on ``macro`` only, when given). Raises PlacementError when the tile would
        overlap another, leave the array, or fit nowhere; ConfigError for a duplicate name.
        """
        if any(p.name == name for p in self._placed):
            raise ConfigError(f"a tile called {name!r} is already placed")
        rows, cols = (int(v) for v in shape)
        if region is not None:
            r = Region.of(region)
            if r.shape != (rows, cols):
                raise PlacementError(f"{name} needs a {rows} x {cols} tile, got region "
                                     f"{r.rows} x {r.cols}")
            index = 0 if macro is None else int(macro)
            self._check(name, index, r)
        else:
            index, r = self._first_fit(name, rows, cols, macro)
        placement = Placement(name, index, r)
        self._placed.append(placement)
        return placement

    def _check(self, name: str, index: int, r: Region) -> None:
        if not 0 <= index < self.max_macros:
            raise PlacementError(f"macro {index} does not exist; this chip has macros "
                                 f"0..{self.max_macros - 1}")
        n_rows, n_cols = self.array_shape
        if (r.rows < 1 or r.cols < 1 or r.row0 < 0 or r.col0 < 0
                or r.row0 + r.rows > n_rows or r.col0 + r.cols > n_cols):
            raise PlacementError(f"{name}: region {tuple(vars(r).values())} leaves the "
                                 f"{n_rows} x {n_cols} array of macro {index}")
        for p in self._placed:
            if p.macro == index and _overlap(p.region, r):
                raise PlacementError(
                    f"{name}: region {tuple(vars(r).values())} on macro {index} overlaps "
                    f"{p.name} at {tuple(vars(p.region).values())}")

    def _first_fit(self, name: str, rows: int, cols: int, only: int | None):
        n_rows, n_cols = self.array_shape
        if rows > n_rows or cols > n_cols:
            raise PlacementError(f"{name} needs a {rows} x {cols} tile, larger than one "
                                 f"{n_rows} x {n_cols} array; split it over tiles")
        indices = range(self.max_macros) if only is None else [int(only)]
        for index in indices:
            on = [p.region for p in self._placed if p.macro == index]
            corners = {(0, 0)} | {(q.row0 + q.rows, q.col0) for q in on} | \
                      {(q.row0, q.col0 + q.cols) for q in on} | \
                      {(q.row0 + q.rows, 0) for q in on} | {(0, q.col0 + q.cols) for q in on}
            for row0, col0 in sorted(corners):
                r = Region(row0, col0, rows, cols)
                if (row0 + rows <= n_rows and col0 + cols <= n_cols
                        and not any(_overlap(q, r) for q in on)):
                    return index, r
        where = f"macro {only}" if only is not None else f"{self.max_macros} macro(s)"
        raise PlacementError(f"{name}: no free {rows} x {cols} tile left on {where} of "
                             f"{n_rows} x {n_cols} (placed: "
                             f"{[p.to_dict() for p in self._placed]})")

    def to_dict(self) -> dict:
        """JSON-ready placement of the chip: array shape and every tile."""
        return {"array": list(self.array_shape), "macros_used": self.macros_used,
                "tiles": [p.to_dict() for p in self._placed]}
