"""LIF kernels shared by the generic (per-step ``mvm``) and the fused (simulator) paths.

Both paths call :func:`_neuron_update` for the membrane, so their float64 operation order
is the same by construction; the fused kernel additionally reproduces the macro contract's
column sum (active rows ascending, from 0.0, then x V_read), the ADC and the differential
subtraction, so with read noise off it returns bit-identical spikes.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

RESET_ZERO = 0
RESET_SUBTRACT = 1


@njit(cache=True, inline="always")
def _neuron_update(v, s_prev, ref, drive, decay, threshold, reset_mode, refractory_steps):
    """One neuron, one step -> (v, s, ref); ``s_prev`` and ``s`` are 0.0 or 1.0.

    The order of float ops is the contract both paths share. Written without data-dependent
    branches so that the compiler can vectorise loops over neurons.
    """
    if reset_mode == RESET_ZERO:
        v = decay * v * (1.0 - s_prev) + drive
    else:
        v = decay * v + drive - threshold * s_prev
    fire = (v > threshold) & (ref == 0)
    s = 1.0 if fire else 0.0
    ref = refractory_steps if fire else max(ref - 1, 0)
    return v, s, ref


@njit(cache=True)
def lif_step_batch(v, s, ref, drive, decay, threshold, reset_mode, refractory_steps):
    """Advance every neuron of a batch by one step, in place.

    ``v`` float64 (batch, n), ``s`` uint8 (batch, n) previous spikes (overwritten with the
    new ones), ``ref`` int32 (batch, n) remaining refractory steps, ``drive`` float64
    (batch, n) synaptic input of this step.
    """
    batch, n = v.shape
    for b in range(batch):
        for j in range(n):
            vj, sj, rj = _neuron_update(v[b, j], np.float64(s[b, j]), ref[b, j], drive[b, j],
                                        decay, threshold, reset_mode, refractory_steps)
            v[b, j] = vj
            s[b, j] = np.uint8(sj)
            ref[b, j] = rj


@njit(cache=True, inline="always")
def _adc_code(current, lsb, max_code):
    """The macro's ADC code ``clip(floor(I / lsb + 0.5), 0, max_code)`` (as a float)."""
    return min(max(np.floor(current / lsb + 0.5), 0.0), max_code)


@njit(cache=True, inline="always")
def _adc(current, adc_bits, lsb, max_code):
    """The digitised current ``code * lsb``; the analogue one if ``adc_bits <= 0``."""
    if adc_bits <= 0:
        return current
    return _adc_code(current, lsb, max_code) * lsb


@njit(cache=True, inline="always")
def _splitmix64(state):
    state = (state + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = state
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(
        0xFFFFFFFFFFFFFFFF)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(
        0xFFFFFFFFFFFFFFFF)
    z = z ^ (z >> np.uint64(31))
    return state, z


@njit(cache=True, inline="always")
def _normal_pair(state):
    # Box-Muller on two 53-bit uniforms; u1 in (0, 1] so the log is finite.
    state, a = _splitmix64(state)
    state, b = _splitmix64(state)
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
def _drive(acc, var, drive, step, v_read, adc_bits, lsb, max_code, factor, noise, state):
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
            drive[j] = (_adc(i_pos, adc_bits, lsb, max_code)
                        - _adc(i_neg, adc_bits, lsb, max_code)) * factor
    elif adc_bits <= 0:
        for j in range(n):
            drive[j] = ((acc[2 * j] * step) * v_read
                        - (acc[2 * j + 1] * step) * v_read) * factor
    else:
        # The ADC test is hoisted out of this loop by hand: left inside, it keeps the loop
        # from being vectorised (measured 35 % slower).
        for j in range(n):
            drive[j] = (_adc_code((acc[2 * j] * step) * v_read, lsb, max_code) * lsb
                        - _adc_code((acc[2 * j + 1] * step) * v_read, lsb, max_code) * lsb
                        ) * factor
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
def _input_rows(x, rows):
    """Write the indices of the non-zero inputs ``x`` (ascending) to ``rows``; count.

    Event rasters are sparse: eight inputs at a time are skipped when all are zero.
    """
    n_inputs = x.shape[0]
    n_active = 0
    n_words = n_inputs // 8
    words = x[:8 * n_words].view(np.uint64)
    for w in range(n_words):
        if words[w] != 0:
            for i in range(8 * w, 8 * w + 8):
                rows[n_active] = i
                n_active += x[i] != 0
    for i in range(8 * n_words, n_inputs):
        rows[n_active] = i
        n_active += x[i] != 0
    return n_active


@njit(cache=True)
def _run_one(g, g_var, raster, spikes_out, v_out, step, v_read, adc_bits, lsb, max_code,
             factor, decay, threshold, reset_mode, refractory_steps, noise, seed):
    n_steps, n_inputs = raster.shape
    n2 = g.shape[1]
    n = n2 // 2
    acc = np.empty(n2, g.dtype)
    var = np.empty(n2)
    drive = np.empty(n)
    v = np.zeros(n)
    ref = np.zeros(n, np.int64)
    s_prev = np.zeros(n, np.float64)
    # Active rows of a step in ascending order: input events, then the recurrent rows of
    # the neurons that spiked at the previous step (collected in ascending neuron order).
    rows = np.empty(n_inputs + n, np.int64)
    fired = np.empty(n, np.int64)
    n_fired = 0
    state = np.uint64(seed)
    synaptic_events = 0
    for t in range(n_steps):
        n_active = _input_rows(raster[t], rows)
        for k in range(n_fired):
            rows[n_active + k] = n_inputs + fired[k]
        n_active += n_fired
        synaptic_events += n_active
        if n_active == 0:
            acc[:] = 0
            var[:] = 0.0
        else:
            _accumulate(acc, g, rows, n_active)
            if noise:
                _accumulate(var, g_var, rows, n_active)
        state = _drive(acc, var, drive, step, v_read, adc_bits, lsb, max_code, factor, noise,
                       state)
        out = spikes_out[t]
        # one call per reset mode, so that the mode is a constant in each loop (vectorised)
        if reset_mode == RESET_ZERO:
            _update_all(v, s_prev, ref, drive, out, decay, threshold, RESET_ZERO,
                        refractory_steps)
        else:
            _update_all(v, s_prev, ref, drive, out, decay, threshold, RESET_SUBTRACT,
                        refractory_steps)
        n_fired = 0
        for j in range(n):
            fired[n_fired] = j
            n_fired += out[j]
    v_out[:] = v
    return synaptic_events


@njit(cache=True, parallel=True)
def _run_parallel(g, g_var, rasters, spikes, v_final, events, step, v_read, adc_bits, lsb,
                  max_code, factor, decay, threshold, reset_mode, refractory_steps, noise, seeds):
    for b in prange(rasters.shape[0]):
        events[b] = _run_one(g, g_var, rasters[b], spikes[b], v_final[b], step, v_read,
                             adc_bits, lsb, max_code, factor, decay, threshold, reset_mode,
                             refractory_steps, noise, seeds[b])


@njit(cache=True)
def _run_serial(g, g_var, rasters, spikes, v_final, events, step, v_read, adc_bits, lsb,
                max_code, factor, decay, threshold, reset_mode, refractory_steps, noise, seeds):
    for b in range(rasters.shape[0]):
        events[b] = _run_one(g, g_var, rasters[b], spikes[b], v_final[b], step, v_read,
                             adc_bits, lsb, max_code, factor, decay, threshold, reset_mode,
                             refractory_steps, noise, seeds[b])


def run_fused(g, g_var, rasters, spikes, v_final, events, step, v_read, adc_bits, lsb, factor,
              decay, threshold, reset_mode, refractory_steps, noise, seeds, parallel=True):
    """Run the whole reservoir for a batch, writing into preallocated outputs.

    ``g`` (n_inputs + n, 2n) noise-free tile conductances (rows = inputs then neurons,
    interleaved differential columns): float64 µS with ``step`` 1.0, or int32 grid codes
    of ``step`` µS each (exact: no column's codes may sum past int32, see
    ``sim.kernels.read.CONDUCTANCE_STEP_US``); ``g_var`` float64 of the same shape: per-cell
    read-noise variance (µS², only read when ``noise``); ``rasters`` uint8 (batch, T,
    n_inputs); ``spikes`` uint8 (batch, T, n) (every element is written); ``v_final`` float64 (batch, n);
    ``events`` int64 (batch,) receives the row additions done per sample. ``adc_bits`` <= 0
    means an ideal ADC. ``seeds`` uint64 (batch,) seed each sample's noise stream.
    """
    max_code = float(2 ** adc_bits - 1) if adc_bits > 0 else 0.0
    fn = _run_parallel if parallel else _run_serial
    fn(g, g_var, rasters, spikes, v_final, events, step, v_read, adc_bits, lsb, max_code, factor,
       decay, threshold, reset_mode, refractory_steps, noise, seeds)
