"""The simulator-only fast path: the fused kernel fed with the chip's noise-free conductances."""
from __future__ import annotations

import numpy as np

from rram_lsm.macro import Region, ReservoirSpec

from .kernels.lif import RESET_SUBTRACT, RESET_ZERO, accumulator_zero, fused_kernel
from .reservoir import _drive_factor

__all__ = ["FastRunner"]

# Below this batch size the kernel runs on one thread: spawning workers costs more than
# it saves, and streaming (batch 1) latency is what matters there.
_SERIAL_BELOW = 4


class FastRunner:
    """Everything the fused kernel needs, gathered once per run from a ``sim.SimMacro``.

    ``g`` is the tile as the kernel reads it (uint16 / int32 conductance-grid codes of
    ``step_us`` µS, or float64 µS with ``step_us`` 1.0 off the grid; see ``_tile_layout``).

    ``g_var_us2`` is the per-cell read-noise variance (µS²) from the profile's relative read
    noise, or None when noise is off; noise is then added analytically per column with a
    seeded stream (per batch, one seed per sample drawn from ``rng``).
    """

    def __init__(self, g_us: np.ndarray, g_var_us2: np.ndarray | None, spec: ReservoirSpec,
                 read_voltage_v: float, adc_bits: int | None, adc_lsb_ua: float,
                 rng: np.random.Generator):
        self.g, self.step_us = _tile_layout(np.asarray(g_us, dtype=np.float64))
        self.noise = g_var_us2 is not None
        self.g_var = (np.ascontiguousarray(g_var_us2, dtype=np.float64) if self.noise
                      else np.zeros((1, 1)))
        self.spec = spec
        self.read_voltage_v = float(read_voltage_v)
        self.adc_bits = 0 if adc_bits is None else int(adc_bits)
        self.adc_lsb_ua = float(adc_lsb_ua)
        self.factor = _drive_factor(spec, read_voltage_v)
        self.reset_mode = RESET_ZERO if spec.reset == "zero" else RESET_SUBTRACT
        self.rng = rng
        self.last_events = np.zeros(0, np.int64)
        # the kernel's arguments after the outputs, fixed here so run() only allocates
        self._params = (self.step_us, accumulator_zero(self.g), self.read_voltage_v,
                        self.adc_bits, self.adc_lsb_ua, self.factor, float(spec.decay),
                        float(spec.threshold), self.reset_mode, int(spec.refractory_steps),
                        self.noise)
        self._no_seeds = np.zeros(1, np.uint64)

    @classmethod
    def from_macro(cls, macro, region: Region, spec: ReservoirSpec,
                   rng: np.random.Generator) -> "FastRunner":
        """Read the chip's effective (noise-free, drifted) conductances and ADC settings."""
        info = macro.info()
        g = macro.effective_conductance_us(region)
        noise_rel = float(macro.profile.read.noise_rel)
        g_var = (noise_rel * g) ** 2 if noise_rel > 0 else None
        return cls(g, g_var, spec, info.read_voltage_v, info.adc_bits, info.adc_lsb_ua, rng)

    def run(self, rasters: np.ndarray, parallel: bool | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        """Spikes uint8 (batch, T, n) and final membrane float64 (batch, n) of ``rasters``.

        ``rasters`` must already be C-contiguous uint8 (batch, T, n_inputs). ``parallel``:
        use numba's thread pool (default: for batches of 4 or more).
        """
        batch, n_steps, _ = rasters.shape
        n = self.spec.n_neurons
        spikes = np.empty((batch, n_steps, n), np.uint8)
        v_final = np.empty((batch, n))
        events = np.empty(batch, np.int64)
        if self.noise:
            seeds = self.rng.integers(0, 2 ** 63, size=batch, dtype=np.uint64)
        else:
            seeds = self._no_seeds if batch == 1 else np.zeros(batch, np.uint64)
        if parallel is None:
            parallel = batch >= _SERIAL_BELOW
        # straight to the compiled kernel with the arguments fixed at set-up: at batch 1 the
        # per-call Python work is a few allocations
        fused_kernel(parallel)(self.g, self.g_var, rasters, spikes, v_final, events,
                               *self._params, seeds)
        self.last_events = events
        return spikes, v_final


def _tile_layout(g_us: np.ndarray) -> tuple[np.ndarray, float]:
    """The tile as integer codes of the simulator's conductance grid when that is exact,
    else float64 µS; and the µS per unit (1.0 for float64).

    Codes are summed in int32: exactly, as long as no column's codes can reach 2**31 in
    total, and then the sum times the step equals the macro contract's float64
    ascending-order sum (every partial sum is a grid value, exact in float64). uint16 codes
    (any G below 64 µS on the 2**-10 µS grid) quarter the tile's bytes against float64, so
    it stays in L2 and each row costs half the bandwidth of int32 codes. Tiles off the grid
    (other profiles or backends) keep the float64 kernel: correctness never depends on it.
    """
    from sim.kernels.read import CONDUCTANCE_STEP_US

    codes = np.rint(g_us * (1.0 / CONDUCTANCE_STEP_US))
    if not (g_us.size and np.array_equal(codes * CONDUCTANCE_STEP_US, g_us)
            and np.abs(codes).sum(axis=0).max() < 2 ** 31):
        return np.ascontiguousarray(g_us), 1.0
    if codes.min() >= 0 and codes.max() <= np.iinfo(np.uint16).max:
        return np.ascontiguousarray(codes, dtype=np.uint16), CONDUCTANCE_STEP_US
    return np.ascontiguousarray(codes, dtype=np.int32), CONDUCTANCE_STEP_US
