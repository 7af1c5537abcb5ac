"""``RUN_RESERVOIR`` on the simulator: the fused kernel fed with the chip's own conductances.

:class:`ReservoirRunner` is a snapshot of one tile (noise-free effective conductances, ADC,
the spec) for ``sim.kernels.lif``; ``SimMacro.run_reservoir`` builds and caches one per tile
and draws its read noise from the chip's ``reservoir_read`` stream of that tile.
"""
from __future__ import annotations

import numpy as np

from rram_lsm.reservoir import ReservoirSpec, drive_factor

from .kernels.lif import (RESET_SUBTRACT, RESET_ZERO, FusedOutputs, FusedParams,
                          accumulator_zero, fused_kernel)
from .kernels.read import CONDUCTANCE_STEP_US

__all__ = ["ReservoirRunner"]

# Below this batch size the kernel runs on one thread: spawning workers costs more than
# it saves, and streaming (batch 1) latency is what matters there.
_SERIAL_BELOW = 4


class ReservoirRunner:
    """Everything the fused kernel needs for one tile, gathered once.

    ``g_us``: the tile's noise-free conductances (µS); ``g_var_us2``: per-cell read-noise
    variance (µS²), or None when noise is off — noise is then added analytically per
    column, each sample seeded from ``rng``. ``run(rasters)`` has no per-call set-up, for
    streaming one sample at a time; build a new runner after the chip changes.
    """

    def __init__(self, g_us: np.ndarray, g_var_us2: np.ndarray | None, spec: ReservoirSpec,
                 read_voltage_v: float, adc_bits: int | None, adc_lsb_ua: float,
                 rng: np.random.Generator):
        self.g, step_us = _tile_layout(np.asarray(g_us, dtype=np.float64))
        self.noise = g_var_us2 is not None
        self.g_var = (np.ascontiguousarray(g_var_us2, dtype=np.float64) if self.noise
                      else np.zeros((1, 1)))
        self.spec = spec
        self.rng = rng
        self.params = FusedParams(
            step_us=step_us, acc_zero=accumulator_zero(self.g),
            v_read=float(read_voltage_v), adc_bits=0 if adc_bits is None else int(adc_bits),
            adc_lsb_ua=float(adc_lsb_ua), factor=drive_factor(spec, read_voltage_v),
            decay=spec.decay, threshold=spec.threshold,
            reset_mode=RESET_ZERO if spec.reset == "zero" else RESET_SUBTRACT,
            refractory_steps=spec.refractory_steps, noise=self.noise)
        self.last_events = np.zeros(0, np.int64)
        self._no_seeds = np.zeros(1, np.uint64)

    def run(self, rasters: np.ndarray, parallel: bool | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        """Spikes uint8 (batch, T, n) and final membrane float64 (batch, n) of ``rasters``.

        ``rasters`` must already be C-contiguous uint8 (batch, T, n_inputs). ``parallel``:
        use numba's thread pool (default: for batches of 4 or more).
        """
        batch, n_steps, _ = rasters.shape
        out = FusedOutputs.empty(batch, n_steps, self.spec.n_neurons)
        if self.noise:
            seeds = self.rng.integers(0, 2 ** 63, size=batch, dtype=np.uint64)
        else:
            seeds = self._no_seeds if batch == 1 else np.zeros(batch, np.uint64)
        if parallel is None:
            parallel = batch >= _SERIAL_BELOW
        # straight to the compiled kernel with the arguments fixed at set-up: at batch 1 the
        # per-call Python work is a few allocations
        fused_kernel(parallel)(self.g, self.g_var, rasters, *out, *self.params, seeds)
        self.last_events = out.events
        return out.spikes, out.v_final


def _tile_layout(g_us: np.ndarray) -> tuple[np.ndarray, float]:
    """The tile as integer codes of the simulator's conductance grid when that is exact,
    else float64 µS; and the µS per unit (1.0 for float64).

    Codes are summed in int32: exactly, as long as no column's codes can reach 2**31 in
    total, and then the sum times the step equals the macro contract's float64
    ascending-order sum (every partial sum is a grid value, exact in float64). uint16 codes
    (any G below 64 µS on the 2**-10 µS grid) quarter the tile's bytes against float64, so
    it stays in L2 and each row costs half the bandwidth of int32 codes. Tiles off the grid
    keep the float64 kernel: correctness never depends on it.
    """
    codes = np.rint(g_us * (1.0 / CONDUCTANCE_STEP_US))
    if not (g_us.size and np.array_equal(codes * CONDUCTANCE_STEP_US, g_us)
            and np.abs(codes).sum(axis=0).max() < 2 ** 31):
        return np.ascontiguousarray(g_us), 1.0
    if codes.min() >= 0 and codes.max() <= np.iinfo(np.uint16).max:
        return np.ascontiguousarray(codes, dtype=np.uint16), CONDUCTANCE_STEP_US
    return np.ascontiguousarray(codes, dtype=np.int32), CONDUCTANCE_STEP_US
