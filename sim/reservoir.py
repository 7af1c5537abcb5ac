"""``RUN_RESERVOIR`` on the simulator: the fused kernel fed with the chip's own conductances.

:class:`ReservoirRunner` is a snapshot of one tile (noise-free effective conductances, ADC,
the spec) for ``sim.kernels.lif``; ``SimMacro.run_reservoir`` builds and caches one per tile
and draws its read noise from the chip's ``reservoir_read`` stream of that tile.

A reservoir split over several tiles (``rram_lsm.mapping.TileMap``) runs on one runner too
(``SimMacro.tiled_reservoir_runner``): the parts' conductances are assembled into the whole
matrix and ``row_blocks`` tells the kernel where each tile's rows start, so that every row
block is summed and digitised on its own and the blocks' results are added in the order
of ``rram_lsm.mapping.tiled_mvm`` (bit-identical to the tiled reference loop).
"""
from __future__ import annotations

import numpy as np

from rram_lsm.reservoir import ReservoirSpec, drive_factor

from .kernels.lif import (RESET_SUBTRACT, RESET_ZERO, FusedParams,
                          accumulator_zero, fused_kernel, split_columns,
                          sv_is_exact)
from .kernels.read import CONDUCTANCE_STEP_US

__all__ = ["ReservoirRunner"]

# Below this batch size the kernel runs on one thread: spawning workers costs more than
# it saves, and streaming (batch 1) latency is what matters there.
_SERIAL_BELOW = 4


class ReservoirRunner:
    """Everything the fused kernel needs for one tile, gathered once.

    ``g_us``: the tile's noise-free conductances (µS, interleaved differential columns as
    on the chip); ``g_var_us2``: per-cell read-noise variance (µS²), or None when noise is
    off — noise is then added analytically per column, each sample seeded from ``rng``.
    ``run(rasters)`` has no per-call set-up, for streaming one sample at a time; build a
    new runner after the chip changes.

    ``g`` is the kernel's tile: grid codes (uint16, int32) or float64 µS
    (:func:`_tile_layout`), columns split into a G+ block and a G- block
    (``sim.kernels.lif.split_columns``), and for integer codes one pair row per two
    inputs after the neuron rows (:func:`_with_pair_rows`, allowed by ``pairs``).

    ``row_blocks``: first network row of every row block of a multi-tile layout, ascending
    from 0 (e.g. ``(0, 512)`` for two tiles of 512 and 256 rows); each block is read as its
    own tile (own ADC), partial results added in ascending block order. ``blocks`` is then
    the block of every kernel row (pair rows never straddle a block boundary).

    ``tile_noise``: ``(noise_rel, parts, rngs)`` for a multi-tile layout whose tiles read
    with column noise (``g_var_us2`` None): ``parts`` int64 (tiles, 3) gives each tile of
    the map, in its order, its row block, first neuron and neurons; ``rngs`` each tile's
    macro's read generator. Every ``run`` then draws one key per tile and step from those
    generators in the order the tiled reference loop does and the kernel adds the noise
    as each tile's ``mvm`` would (``sim.kernels.lif._tiles_noisy_drive``): bit-identical
    to ``run_tiled_reference`` over the same macros, for batches that loop is given.
    """

    def __init__(self, g_us: np.ndarray, g_var_us2: np.ndarray | None, spec: ReservoirSpec,
                 read_voltage_v: float, adc_bits: int | None, adc_lsb_ua: float,
                 rng: np.random.Generator, row_blocks=None, tile_noise=None):
        g, step_us = _tile_layout(np.asarray(g_us, dtype=np.float64), float(read_voltage_v))
        self.noise = g_var_us2 is not None
        starts = _check_row_blocks(row_blocks, spec)
        if len(starts) > 1 and self.noise:
            raise ValueError("a multi-tile runner has no read noise model: run the tiled "
                             "reference loop instead")
        if tile_noise is not None and (self.noise or step_us == 1.0):
            raise ValueError("tiled read noise needs grid codes and no g_var_us2")
        self.g, self.pairs = _with_pair_rows(split_columns(g), spec.n_inputs,
                                             enabled=not self.noise and tile_noise is None)
        self.row_blocks = starts
        self.pairs, self.blocks = _block_map(self.g.shape[0], spec, starts, self.pairs,
                                             always=tile_noise is not None)
        if self.noise:
            self.g_var = split_columns(np.asarray(g_var_us2, dtype=np.float64))
        elif tile_noise is not None:  # G^2: exact on the grid, summed in any order
            self.g_var = split_columns(np.asarray(g_us, dtype=np.float64) ** 2)
        else:
            self.g_var = np.zeros((1, 1))
        self._tile_noise = tile_noise
        self._parts = (np.zeros((0, 3), np.int64) if tile_noise is None
                       else np.ascontiguousarray(tile_noise[1], np.int64))
        self._no_keys = np.zeros((0, 0), np.uint64)
        self.spec = spec
        self.rng = rng
        self.params = FusedParams(
            step_us=step_us, acc_zero=accumulator_zero(self.g),
            v_read=float(read_voltage_v), adc_bits=0 if adc_bits is None else int(adc_bits),
            adc_lsb_ua=float(adc_lsb_ua), factor=drive_factor(spec, read_voltage_v),
            decay=spec.decay, threshold=spec.threshold,
            reset_mode=RESET_ZERO if spec.reset == "zero" else RESET_SUBTRACT,
            refractory_steps=spec.refractory_steps, noise=self.noise, n_blocks=len(starts),
            tile_noise_rel=0.0 if tile_noise is None else float(tile_noise[0]))
        self._fp, self._ip = self.params.packed()
        self._serial, self._parallel = fused_kernel(False), fused_kernel(True)
        self.last_events = np.zeros(0, np.int64)
        self._no_seeds = np.zeros(1, np.uint64)

    def run(self, rasters: np.ndarray, parallel: bool | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        """Spikes uint8 (batch, T, n) and final membrane float64 (batch, n) of ``rasters``.

        ``rasters`` must already be C-contiguous uint8 (batch, T, n_inputs). ``parallel``:
        use numba's thread pool (default: for batches of 4 or more).
        """
        batch, n_steps, _ = rasters.shape
        spikes = np.empty((batch, n_steps, self.spec.n_neurons), np.uint8)
        v_final = np.empty((batch, self.spec.n_neurons))
        events = np.empty(batch, np.int64)
        keys = self._no_keys
        if self.noise:
            seeds = self.rng.integers(0, 2 ** 63, size=batch, dtype=np.uint64)
        elif self._tile_noise is not None:  # sample indices; each tile's keys, step by step
            seeds = np.arange(batch, dtype=np.uint64)
            rngs = self._tile_noise[2]
            keys = np.empty((n_steps, len(rngs)), np.uint64)
            for t in range(n_steps):
                for i, r in enumerate(rngs):
                    keys[t, i] = r.integers(0, 2**64, dtype=np.uint64)
        else:
            seeds = self._no_seeds if batch == 1 else np.zeros(batch, np.uint64)
        if parallel is None:
            parallel = batch >= _SERIAL_BELOW
        # straight to the compiled kernel with the arguments fixed at set-up (parameters
        # packed in two arrays): at batch 1 the per-call Python work is three allocations
        (self._parallel if parallel else self._serial)(
            self.g, self.g_var, self.pairs, self.blocks, self._parts, keys, rasters, spikes,
            v_final, events, self._fp, self._ip, seeds)
        self.last_events = events
        return spikes, v_final


def _tile_layout(g_us: np.ndarray, read_voltage_v: float) -> tuple[np.ndarray, float]:
    """The tile as integer codes of the simulator's conductance grid when that is exact,
    else float64 µS; and the µS per unit (1.0 for float64).

    Codes are summed in int32: exactly, as long as no column's codes can reach 2**31 in
    total, and then the sum times the step equals the macro contract's float64
    ascending-order sum (every partial sum is a grid value, exact in float64). uint16 codes
    (any G below 64 µS on the 2**-10 µS grid) quarter the tile's bytes against float64, so
    it stays in L2 and each row costs half the bandwidth of int32 codes. The kernel reads
    ``(sum * step) * V_read`` as ``sum * (step * V_read)``, exact only when that product is
    a normal double (``sim.kernels.lif.sv_is_exact``; true for any sane V_read). Tiles off
    the grid keep the float64 kernel: correctness never depends on it.
    """
    codes = np.rint(g_us * (1.0 / CONDUCTANCE_STEP_US))
    if not (g_us.size and np.array_equal(codes * CONDUCTANCE_STEP_US, g_us)
            and np.abs(codes).sum(axis=0).max() < 2 ** 31
            and sv_is_exact(CONDUCTANCE_STEP_US, read_voltage_v)):
        return np.ascontiguousarray(g_us), 1.0
    if codes.min() >= 0 and codes.max() <= np.iinfo(np.uint16).max:
        return np.ascontiguousarray(codes, dtype=np.uint16), CONDUCTANCE_STEP_US
    return np.ascontiguousarray(codes, dtype=np.int32), CONDUCTANCE_STEP_US


def _with_pair_rows(g: np.ndarray, n_inputs: int, enabled: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's tile: ``g`` plus one *pair row* per two inputs, and the pair mask.

    Event data is local: an input is active together with its neighbour ``2q <-> 2q + 1``
    at the same step much more often than chance (on N-MNIST 45 % of the events). Row
    ``n_inputs + n + q`` holds the code sum of input rows ``2q`` and ``2q + 1``, so the
    kernel adds one row where the contract adds two: the same integer sum, exactly.
    Bit ``2q`` of the mask (uint64 words, one per 64 inputs) allows pair ``q``: set when
    its row fits the tile's dtype (uint16 codes: every column sum at most 65535). Only for
    integer codes (float64 tiles keep the contract's addition order), without read noise,
    and with whole uint64 words of inputs.
    """
    no_pairs = np.zeros(0, np.uint64)
    if not (enabled and g.dtype.kind in "iu" and n_inputs >= 2 and n_inputs % 8 == 0):
        return g, no_pairs
    n_pairs = n_inputs // 2
    p = (g[0:2 * n_pairs:2].astype(np.int64) + g[1:2 * n_pairs:2].astype(np.int64))
    info = np.iinfo(g.dtype)
    ok = (p.min(axis=1) >= info.min) & (p.max(axis=1) <= info.max)
    if not ok.any():
        return g, no_pairs
    p[~ok] = 0
    mask = np.zeros((n_inputs + 63) // 64, np.uint64)
    for q in np.flatnonzero(ok):
        mask[(2 * q) // 64] |= np.uint64(1) << np.uint64((2 * q) % 64)
    return np.ascontiguousarray(np.concatenate([g, p.astype(g.dtype)])), mask


def _check_row_blocks(row_blocks, spec: ReservoirSpec) -> tuple[int, ...]:
    """``row_blocks`` as a tuple of block starts: ``(0,)`` for one tile, else strictly
    ascending network rows from 0, all inside the ``n_inputs + n_neurons`` rows."""
    if row_blocks is None:
        return (0,)
    starts = tuple(int(r) for r in row_blocks)
    n_rows = spec.n_inputs + spec.n_neurons
    if (not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:]))
            or starts[-1] >= n_rows):
        raise ValueError(f"row_blocks must ascend strictly from 0 and stay below {n_rows} "
                         f"rows, got {row_blocks!r}")
    return starts


def _block_map(kernel_rows: int, spec: ReservoirSpec, starts: tuple[int, ...],
               pairs: np.ndarray, always: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The pair mask without the pairs that straddle a block boundary, and the block of
    every kernel row (network rows by ``starts``; pair row ``q`` in the block of input
    ``2q``); for one block, the mask as given and no map (unless ``always``)."""
    if len(starts) == 1 and not always:
        return pairs, np.zeros(0, np.int64)
    n_rows = spec.n_inputs + spec.n_neurons
    blocks = np.empty(kernel_rows, np.int64)
    blocks[:n_rows] = np.searchsorted(np.asarray(starts), np.arange(n_rows), side="right") - 1
    if pairs.size:
        q = np.arange(kernel_rows - n_rows)
        blocks[n_rows:] = blocks[2 * q]
        pairs = pairs.copy()
        for qq in np.flatnonzero(blocks[2 * q] != blocks[2 * q + 1]):
            pairs[(2 * qq) // 64] &= ~(np.uint64(1) << np.uint64((2 * qq) % 64))
    return pairs, blocks
