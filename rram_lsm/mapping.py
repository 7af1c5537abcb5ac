"""Networks larger than one array: a reservoir's weight matrix split over tiles of macros.

A reservoir's matrix has ``n_inputs + n_neurons`` rows (inputs, then the recurrent rows) and
``2 * n_neurons`` columns (interleaved differential pairs). :func:`plan_tiles` cuts it into
row blocks of at most ``tile_rows`` rows and column blocks of at most ``tile_pairs``
neuron pairs, and places every part on a tile of its own with a
:class:`~rram_lsm.placement.TileAllocator`. The result, a :class:`TileMap`, is data: it goes
into results records.

How a tiled MVM is computed (:func:`tiled_mvm`, the definition every backend follows):
each part's tile is read with ``mvm(..., differential=True)`` on its own macro, so each
part's column currents are digitised by that tile's ADC; then, per column block, the
digitised partial results of its row blocks are added in float64 **in ascending row-block
order, starting from the first block's value**. With an ideal ADC this equals one big tile's
read whenever the partial sums are exact (the simulator's conductances lie on a 2^-10 µS
grid, so they are, for a read voltage that is a power of two); otherwise the two differ by
the float rounding of the extra additions, and with a finite ADC exactly by each tile's own
quantisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, MacroError
from .macro import Region
from .placement import Placement, TileAllocator

__all__ = ["TilePart", "TileMap", "plan_tiles", "tiled_mvm"]


@dataclass(frozen=True)
class TilePart:
    """One part of the matrix: which network rows and neuron pairs, and where it lives."""

    row_block: int
    """Index of the row block (0 = the first rows)."""
    col_block: int
    """Index of the column block."""
    row0: int
    """First network row of the part."""
    n_rows: int
    """Rows in the part."""
    pair0: int
    """First neuron (pair of columns) of the part."""
    n_pairs: int
    """Neurons in the part (its tile has 2 * n_pairs columns)."""
    placement: Placement
    """Its tile."""

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"row_block": self.row_block, "col_block": self.col_block,
                "rows": [self.row0, self.n_rows], "neurons": [self.pair0, self.n_pairs],
                **self.placement.to_dict()}


@dataclass(frozen=True)
class TileMap:
    """Where every part of a ``n_rows x 2 n_neurons`` matrix lives."""

    name: str
    """The network's name (its parts are placed as ``name[i,j]``)."""
    n_rows: int
    """Rows of the matrix."""
    n_neurons: int
    """Neurons (column pairs)."""
    parts: tuple[TilePart, ...]
    """Row-block-major order: for each column block, its row blocks ascending."""

    @property
    def n_row_blocks(self) -> int:
        """Row blocks."""
        return 1 + max(p.row_block for p in self.parts)

    @property
    def n_col_blocks(self) -> int:
        """Column blocks."""
        return 1 + max(p.col_block for p in self.parts)

    @property
    def macros(self) -> tuple[int, ...]:
        """Indices of the macros the parts use, ascending."""
        return tuple(sorted({p.placement.macro for p in self.parts}))

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"name": self.name, "shape": [self.n_rows, 2 * self.n_neurons],
                "blocks": [self.n_row_blocks, self.n_col_blocks],
                "parts": [p.to_dict() for p in self.parts]}

    def matrix(self, read) -> np.ndarray:
        """The whole ``n_rows x 2 n_neurons`` matrix assembled from ``read(part)`` (e.g.
        each part's conductances read back)."""
        out = np.empty((self.n_rows, 2 * self.n_neurons))
        for p in self.parts:
            out[p.row0:p.row0 + p.n_rows, 2 * p.pair0:2 * (p.pair0 + p.n_pairs)] = read(p)
        return out


def _blocks(total: int, size: int) -> list[tuple[int, int]]:
    """``total`` split into as few blocks of at most ``size`` as possible, near-equal."""
    count = math.ceil(total / size)
    base, extra = divmod(total, count)
    out, start = [], 0
    for k in range(count):
        n = base + (1 if k < extra else 0)
        out.append((start, n))
        start += n
    return out


def plan_tiles(name: str, n_rows: int, n_neurons: int, allocator: TileAllocator, *,
               tile_rows: int | None = None, tile_pairs: int | None = None) -> TileMap:
    """Split a ``n_rows x 2 n_neurons`` matrix over tiles of at most ``tile_rows`` rows and
    ``tile_pairs`` neuron pairs (default: the allocator's whole array) and place each part.

    The fewest blocks that fit, near-equal in size, so every tile is used evenly. Raises
    PlacementError (from the allocator) when the chip has no room left.
    """
    array_rows, array_cols = allocator.array_shape
    tile_rows = array_rows if tile_rows is None else int(tile_rows)
    tile_pairs = array_cols // 2 if tile_pairs is None else int(tile_pairs)
    if not (1 <= tile_rows <= array_rows and 1 <= tile_pairs <= array_cols // 2):
        raise ConfigError(f"tiles of {tile_rows} rows x {tile_pairs} pairs do not fit a "
                          f"{array_rows} x {array_cols} array")
    if n_rows < 1 or n_neurons < 1:
        raise ConfigError(f"a matrix needs rows and neurons, got {n_rows} x {n_neurons}")
    parts = []
    for j, (pair0, n_pairs) in enumerate(_blocks(n_neurons, tile_pairs)):
        for i, (row0, rows) in enumerate(_blocks(n_rows, tile_rows)):
            label = name if (n_rows <= tile_rows and n_neurons <= tile_pairs) \
                else f"{name}[{i},{j}]"
            placement = allocator.place(label, (rows, 2 * n_pairs))
            parts.append(TilePart(i, j, row0, rows, pair0, n_pairs, placement))
    return TileMap(name, int(n_rows), int(n_neurons), tuple(parts))


def tiled_mvm(macros, tilemap: TileMap, inputs: np.ndarray) -> np.ndarray:
    """Differential column currents (µA, batch x n_neurons) of binary ``inputs`` (batch x
    n_rows) through every part: per part its own macro's ``mvm`` (and ADC), partial results
    added per column block in ascending row-block order (module docstring). ``macros``:
    macro index -> Macro (a dict or a sequence)."""
    x = np.asarray(inputs)
    out = np.empty((x.shape[0], tilemap.n_neurons))
    filled = np.zeros(tilemap.n_neurons, bool)
    for p in tilemap.parts:  # row blocks ascending within each column block
        region: Region = p.placement.region
        part = np.asarray(macros[p.placement.macro].mvm(
            region, x[:, p.row0:p.row0 + p.n_rows], differential=True), dtype=np.float64)
        if part.shape != (x.shape[0], p.n_pairs):
            raise MacroError(f"mvm on {p.placement.name} returned {part.shape}, expected "
                             f"{(x.shape[0], p.n_pairs)}")
        cols = slice(p.pair0, p.pair0 + p.n_pairs)
        if p.row_block == 0:
            out[:, cols] = part
            filled[cols] = True
        else:
            out[:, cols] += part
    if not filled.all():
        raise MacroError(f"{tilemap.name}: the tile map leaves neurons without a first block")
    return out
