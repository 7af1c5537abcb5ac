"""The fused, event-driven reservoir kernel behind ``SimMacro.run_reservoir``.

It reproduces ``rram_lsm.reservoir.run_reference`` exactly: the membrane update of
:func:`_neuron_update` has the reference's float64 operation order, and the column sums
follow the macro contract (active rows ascending, from 0.0, then x V_read), the ADC and the
differential subtraction, so with read noise off the spikes are bit-identical.
"""
from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

# One definition of the ADC and of splitmix64. Numba's on-disk cache is keyed on this file's
# source only: after changing them there, edit this file too (or clear
# sim/kernels/__pycache__) or the cached kernel keeps the old code.
from .read import adc, adc_code
from .rng import splitmix64

# splitmix64's state increment: the stream's n-th number is splitmix64(seed + n * _GOLDEN)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_LITTLE_ENDIAN = sys.byteorder == "little"

RESET_ZERO = 0
RESET_SUBTRACT = 1


@njit(cache=True, inline="always")
def _neuron_update(v, s_prev, ref, drive, decay, threshold, reset_mode, refractory_steps):
    """One neuron, one step -> (v, s, ref); ``s_prev`` and ``s`` are 0.0 or 1.0.

    The same float64 expressions, in the same order, as ``rram_lsm.reservoir.lif_step``.
    Written without data-dependent branches so that the compiler can vectorise loops over
    neurons.
    """
    if reset_mode == RESET_ZERO:
        v = decay * v * (1.0 - s_prev) + drive
    else:
        v = decay * v + drive - threshold * s_prev
    fire = (v > threshold) & (ref == 0)
    s = 1.0 if fire else 0.0
    ref = refractory_steps if fire else max(ref - 1, 0)
    return v, s, ref


@njit(cache=True, inline="always")
def _normal_pair(state):
    # Box-Muller on two 53-bit uniforms; u1 in (0, 1] so the log is finite.
    a = splitmix64(state)
    b = splitmix64(state + _GOLDEN)
    state = state + _GOLDEN + _GOLDEN
    u1 = ((a >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740992.0)
    u2 = (b >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    r = np.sqrt(-2.0 * np.log(u1))
    return state, r * np.cos(2.0 * np.pi * u2), r * np.sin(2.0 * np.pi * u2)


@njit(cache=True, inline="always")
def _accumulate(dst, src, rows, n_active):
    """``dst[c] = sum of src[rows[k], c]`` over k ascending, from the first row (no zeroing).

    Rows are added eight (then four) at a time with the parentheses of one-by-one addition,
    so the float64 result is that of the sequential sum while ``dst`` is loaded and stored
    up to 8x less often.
    """
    n2 = dst.shape[0]
    row = src[rows[0]]
    for c in range(n2):
        dst[c] = row[c]
    k = 1
    while k + 8 <= n_active:
        r1 = src[rows[k]]
        r2 = src[rows[k + 1]]
        r3 = src[rows[k + 2]]
        r4 = src[rows[k + 3]]
        r5 = src[rows[k + 4]]
        r6 = src[rows[k + 5]]
        r7 = src[rows[k + 6]]
        r8 = src[rows[k + 7]]
        for c in range(n2):
            dst[c] = (((((((dst[c] + r1[c]) + r2[c]) + r3[c]) + r4[c]) + r5[c]) + r6[c])
                      + r7[c]) + r8[c]
        k += 8
    while k + 4 <= n_active:
        r1 = src[rows[k]]
        r2 = src[rows[k + 1]]
        r3 = src[rows[k + 2]]
        r4 = src[rows[k + 3]]
        for c in range(n2):
            dst[c] = (((dst[c] + r1[c]) + r2[c]) + r3[c]) + r4[c]
        k += 4
    while k < n_active:
        r1 = src[rows[k]]
        for c in range(n2):
            dst[c] += r1[c]
        k += 1


@njit(cache=True, inline="always")
def _drive(acc, var, drive, step, v_read, adc_bits, lsb, factor, noise, state):
    """Differential drive of every neuron from the column sums, as the macro reads them.

    ``acc * step`` is the float64 column sum (µS): exact for int32 grid codes, and ``acc``
    itself for a float64 tile (``step`` 1.0). Kept free of the spike bookkeeping so that the
    compiler can vectorise it (the ADC's division and floor dominate otherwise).
    """
    n = drive.shape[0]
    if noise:
        for j in range(n):
            state, z0, z1 = _normal_pair(state)
            i_pos = (acc[2 * j] * step) * v_read + np.sqrt(var[2 * j]) * v_read * z0
            i_neg = (acc[2 * j + 1] * step) * v_read + np.sqrt(var[2 * j + 1]) * v_read * z1
            drive[j] = (adc(i_pos, adc_bits, lsb) - adc(i_neg, adc_bits, lsb)) * factor
    elif adc_bits <= 0:
        for j in range(n):
            drive[j] = ((acc[2 * j] * step) * v_read
                        - (acc[2 * j + 1] * step) * v_read) * factor
    else:
        # adc_code with the top code hoisted: adc's own bits test inside this loop keeps it
        # from being vectorised (measured 3.5x slower)
        top = float((1 << adc_bits) - 1)
        for j in range(n):
            drive[j] = (adc_code((acc[2 * j] * step) * v_read, lsb, top) * lsb
                        - adc_code((acc[2 * j + 1] * step) * v_read, lsb, top) * lsb) * factor
    return state


@njit(cache=True, inline="always")
def _update_all(v, s_prev, ref, drive, out, decay, threshold, reset_mode, refractory_steps):
    """:func:`_neuron_update` for every neuron of one sample; spikes to ``out`` (uint8)."""
    for j in range(v.shape[0]):
        vj, sj, rj = _neuron_update(v[j], s_prev[j], ref[j], drive[j], decay, threshold,
                                    reset_mode, refractory_steps)
        v[j] = vj
        ref[j] = rj
        s_prev[j] = sj
        out[j] = np.uint8(sj)


@njit(cache=True, inline="always")
def _words(a):
    """The rows of a C-contiguous uint8 matrix as uint64 words; no words (every byte is then
    visited) when a row is not a whole number of words or the machine is big-endian."""
    if a.shape[1] % 8 == 0 and _LITTLE_ENDIAN:
        return a.view(np.uint64)
    return np.empty((a.shape[0], 0), np.uint64)


@njit(cache=True, inline="always")
def _append_nonzero(words, x, rows, n, offset):
    """Append ``offset + i`` for every non-zero ``x[i]`` (ascending) to ``rows[n:]``; return
    the new count. ``words``: ``x`` as uint64 (see :func:`_words`).

    Inputs and spikes are sparse: eight bytes are tested at once and only the non-zero
    bytes of a word are visited (lowest first: the lowest address, little-endian).
    """
    for w in range(words.shape[0]):
        m = words[w]
        while m != 0:
            byte = trailing_zeros(m) >> 3
            rows[n] = offset + 8 * w + byte
            n += 1
            m &= ~(np.uint64(0xFF) << np.uint64(8 * byte))
    for i in range(8 * words.shape[0], x.shape[0]):
        rows[n] = offset + i
        n += x[i] != 0
    return n


@njit(cache=True)
def _run_one(g, g_var, raster, spikes_out, v_out, step, acc_zero, v_read, adc_bits, lsb,
             factor, decay, threshold, reset_mode, refractory_steps, noise, seed):
    n_steps, n_inputs = raster.shape
    n2 = g.shape[1]
    n = n2 // 2
    acc = np.full(n2, acc_zero)
    var = np.empty(n2)
    drive = np.empty(n)
    v = np.zeros(n)
    ref = np.zeros(n, np.int64)
    s_prev = np.zeros(n, np.float64)
    # Active rows of a step in ascending order: input events, then the recurrent rows of
    # the neurons that spiked at the previous step.
    rows = np.empty(n_inputs + n, np.int64)
    raster_words = _words(raster)
    spike_words = _words(spikes_out)
    state = np.uint64(seed)
    synaptic_events = 0
    for t in range(n_steps):
        n_active = _append_nonzero(raster_words[t], raster[t], rows, 0, 0)
        if t > 0:
            n_active = _append_nonzero(spike_words[t - 1], spikes_out[t - 1], rows, n_active,
                                       n_inputs)
        synaptic_events += n_active
        if n_active == 0:
            acc[:] = 0
            var[:] = 0.0
        else:
            _accumulate(acc, g, rows, n_active)
            if noise:
                _accumulate(var, g_var, rows, n_active)
        state = _drive(acc, var, drive, step, v_read, adc_bits, lsb, factor, noise,
                       state)
        out = spikes_out[t]
        # one call per reset mode, so that the mode is a constant in each loop (vectorised)
        if reset_mode == RESET_ZERO:
            _update_all(v, s_prev, ref, drive, out, decay, threshold, RESET_ZERO,
                        refractory_steps)
        else:
            _update_all(v, s_prev, ref, drive, out, decay, threshold, RESET_SUBTRACT,
                        refractory_steps)
    v_out[:] = v
    return synaptic_events


@njit(cache=True, parallel=True)
def _run_parallel(g, g_var, rasters, spikes, v_final, events, step, acc_zero, v_read,
                  adc_bits, lsb, factor, decay, threshold, reset_mode, refractory_steps, noise,
                  seeds):
    for b in prange(rasters.shape[0]):
        events[b] = _run_one(g, g_var, rasters[b], spikes[b], v_final[b], step, acc_zero,
                             v_read, adc_bits, lsb, factor, decay, threshold, reset_mode,
                             refractory_steps, noise, seeds[b])


@njit(cache=True)
def _run_serial(g, g_var, rasters, spikes, v_final, events, step, acc_zero, v_read, adc_bits,
                lsb, factor, decay, threshold, reset_mode, refractory_steps, noise, seeds):
    for b in range(rasters.shape[0]):
        events[b] = _run_one(g, g_var, rasters[b], spikes[b], v_final[b], step, acc_zero,
                             v_read, adc_bits, lsb, factor, decay, threshold, reset_mode,
                             refractory_steps, noise, seeds[b])


def accumulator_zero(g):
    """The zero of the column accumulator for tile ``g``: float64, or int32 for integer codes
    (a uint16 tile is summed in int32)."""
    return np.int32(0) if g.dtype.kind in "iu" else 0.0


class FusedParams(NamedTuple):
    """Everything of a fused run that is fixed for a tile (after the conductances)."""

    step_us: float
    """µS per unit of the tile's values (1.0 for a float64 tile)."""
    acc_zero: object
    """Zero of the column accumulator (:func:`accumulator_zero`)."""
    v_read: float
    """Read voltage (V)."""
    adc_bits: int
    """ADC resolution; <= 0 means ideal."""
    adc_lsb_ua: float
    """Current of one ADC code (µA)."""
    factor: float
    """µA of differential current -> membrane units."""
    decay: float
    """Membrane decay per step."""
    threshold: float
    """Spike threshold."""
    reset_mode: int
    """RESET_ZERO or RESET_SUBTRACT."""
    refractory_steps: int
    """Silent steps after a spike."""
    noise: bool
    """Whether to add read noise from ``g_var``."""


class FusedOutputs(NamedTuple):
    """Preallocated outputs of a fused run of ``batch`` samples."""

    spikes: np.ndarray
    """uint8 (batch, T, n): every element is written."""
    v_final: np.ndarray
    """float64 (batch, n): the membrane after the last step."""
    events: np.ndarray
    """int64 (batch,): row additions done per sample (active rows summed over steps)."""

    @classmethod
    def empty(cls, batch: int, n_steps: int, n: int) -> "FusedOutputs":
        """Outputs for ``batch`` samples of ``n_steps`` steps and ``n`` neurons."""
        return cls(np.empty((batch, n_steps, n), np.uint8), np.empty((batch, n)),
                   np.empty(batch, np.int64))


def run_fused(g, g_var, rasters, out: FusedOutputs, params: FusedParams, seeds,
              parallel: bool = True) -> None:
    """Run the whole reservoir for a batch into ``out``.

    ``g`` (n_inputs + n, 2n) noise-free tile conductances (rows = inputs then neurons,
    interleaved differential columns): float64 µS with ``params.step_us`` 1.0, or uint16 /
    int32 grid codes of ``step_us`` µS each (exact only while no column's codes sum past
    int32, see ``sim.kernels.read.CONDUCTANCE_STEP_US``); ``g_var`` float64 of the same
    shape: per-cell read-noise variance (µS², only read when ``params.noise``); ``rasters``
    uint8 (batch, T, n_inputs); ``seeds`` uint64 (batch,) seed each sample's noise stream.
    """
    fused_kernel(parallel)(g, g_var, rasters, *out, *params, seeds)


def fused_kernel(parallel: bool):
    """The compiled kernel behind :func:`run_fused`, for callers that stream one sample at a
    time and want no Python layer in between: arguments ``(g, g_var, rasters, *outputs,
    *params, seeds)``, each tuple unpacked in field order."""
    return _run_parallel if parallel else _run_serial
