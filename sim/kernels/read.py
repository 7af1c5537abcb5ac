"""Drift, reads, the binary MVM and the column ADC.

MVM contract (rram_lsm.macro): per sample and column, the noise-free sum is accumulated in
float64 over the active rows in ascending order from 0.0, then multiplied by V_read; the ADC
maps ``I`` to ``code * lsb`` with ``code = clip(floor(I / lsb + 0.5), 0, 2**bits - 1)``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .rng import ZIG_RATIO, ZIG_X, splitmix64, ziggurat, ziggurat_pair

STUCK_NONE = 0
STUCK_OPEN = 1
STUCK_HIGH = 2

CONDUCTANCE_STEP_US = 2.0 ** -10
"""Grid of the noise-free effective conductance (µS): every value is ``code * 2**-10`` µS
(0.98 nS; rounding error std 0.28 nS, 7x below the read noise of a 0.1 µS pristine cell and
1000x below that of a formed one, 2500x below an 8-bit ADC step) with an integer ``code``.

Why: a sum of grid values below 2**43 µS is exact in float64, so column sums do not depend
on the order of accumulation and equal ``code_sum * CONDUCTANCE_STEP_US`` exactly; a fast
path may add integer codes instead (sim.kernels and lsm's fused kernel rely on this).
Bounds: codes fit uint16 for G < 64 µS (the default G_max is 40 µS); a whole column of
codes fits int32 while ``rows * G_max < 2**31 * 2**-10 µS = 2,097,152 µS`` (G_max < 4096 µS
at 512 rows). Fast paths still check their tile and fall back to float64.
"""
_GRID_PER_US = 1.0 / CONDUCTANCE_STEP_US


@njit(cache=True, parallel=True)
def effective_conductance(g0_us, formed, written_s, nu, stuck, stuck_us, clock_s, t0_s, out):
    """Noise-free conductance now: drift ``(t / t0) ** -nu`` on formed cells, stuck override,
    rounded to the :data:`CONDUCTANCE_STEP_US` grid (to nearest, ties to even)."""
    for i in prange(g0_us.shape[0]):
        for j in range(g0_us.shape[1]):
            if stuck[i, j] != STUCK_NONE:
                g = stuck_us[i, j]
            elif formed[i, j]:
                age = clock_s - written_s[i, j]
                if age > t0_s:
                    g = g0_us[i, j] * (age / t0_s) ** (-nu[i, j])
                else:
                    g = g0_us[i, j]
            else:
                g = g0_us[i, j]
            # scaling by a power of two is exact, so the result is exactly code * step
            out[i, j] = np.rint(g * _GRID_PER_US) * CONDUCTANCE_STEP_US


@njit(cache=True, inline="always")
def adc_code(current_ua, lsb_ua, top):
    """The ADC code ``clip(floor(I / lsb + 0.5), 0, top)`` of one current, as a float.

    Branch-free with a float floor, so loops over columns that call it are vectorised;
    ``top = 2**bits - 1`` is computed once by the caller.
    """
    return min(max(np.floor(current_ua / lsb_ua + 0.5), 0.0), top)


@njit(cache=True, inline="always")
def adc(current_ua, bits, lsb_ua):
    """Digitise one current (µA): ``code * lsb`` (see :func:`adc_code`); ``bits <= 0`` means
    ideal."""
    if bits <= 0:
        return current_ua
    return adc_code(current_ua, lsb_ua, float((1 << bits) - 1)) * lsb_ua


@njit(cache=True, inline="always")
def active_rows(xb, idx):
    """Write the indices of the non-zero entries of ``xb`` (ascending) to ``idx``; count."""
    n = 0
    for i in range(xb.shape[0]):
        if xb[i] != 0:
            idx[n] = i
            n += 1
    return n


@njit(cache=True, inline="always")
def sum_rows(g_us, idx, n, acc):
    """``acc[j] += g_us[idx[k], j]`` for k = 0..n-1, in that order, for every column.

    Four rows per pass, still added one after another, so each column sees exactly the
    ascending-order float64 sum of the contract while ``acc`` is loaded and stored a quarter
    as often.
    """
    k = 0
    while k + 4 <= n:
        g0, g1, g2, g3 = g_us[idx[k]], g_us[idx[k + 1]], g_us[idx[k + 2]], g_us[idx[k + 3]]
        for j in range(acc.shape[0]):
            acc[j] = (((acc[j] + g0[j]) + g1[j]) + g2[j]) + g3[j]
        k += 4
    while k < n:
        g0 = g_us[idx[k]]
        for j in range(acc.shape[0]):
            acc[j] += g0[j]
        k += 1


@njit(cache=True, inline="always")
def sum_rows_and_squares(g_us, idx, n, acc, sq):
    """:func:`sum_rows` into ``acc`` plus the sum of squares into ``sq`` (any order)."""
    k = 0
    while k + 4 <= n:
        g0, g1, g2, g3 = g_us[idx[k]], g_us[idx[k + 1]], g_us[idx[k + 2]], g_us[idx[k + 3]]
        for j in range(acc.shape[0]):
            a0, a1, a2, a3 = g0[j], g1[j], g2[j], g3[j]
            acc[j] = (((acc[j] + a0) + a1) + a2) + a3
            sq[j] += (a0 * a0 + a1 * a1) + (a2 * a2 + a3 * a3)
        k += 4
    while k < n:
        g0 = g_us[idx[k]]
        for j in range(acc.shape[0]):
            acc[j] += g0[j]
            sq[j] += g0[j] * g0[j]
        k += 1


@njit(cache=True, parallel=True)
def mvm_clean(x, g_us, v_read, bits, lsb_ua, out):
    """Noise-free binary MVM: ``x`` uint8 (B, R), ``g_us`` (R, C) -> ``out`` (B, C) µA."""
    n_rows, n_cols = g_us.shape
    for b in prange(x.shape[0]):
        idx = np.empty(n_rows, np.int64)
        acc = np.zeros(n_cols)
        sum_rows(g_us, idx, active_rows(x[b], idx), acc)
        for j in range(n_cols):
            out[b, j] = adc(acc[j] * v_read, bits, lsb_ua)


@njit(cache=True, parallel=True)
def mvm_column_noise(x, g_us, v_read, noise_rel, key, bits, lsb_ua, out):
    """Binary MVM with read noise added per column: the sum of independent per-cell Gaussians
    ``N(0, (noise_rel * G_ij)**2)`` over the active rows is ``N(0, noise_rel**2 * sum G_ij**2)``.

    The standard normals come from a ziggurat (two per hash) on a splitmix64 sequence seeded
    by ``(key, sample)``, so results do not depend on thread scheduling.
    """
    n_rows, n_cols = g_us.shape
    for b in prange(x.shape[0]):
        idx = np.empty(n_rows, np.int64)
        acc = np.zeros(n_cols)
        sq = np.zeros(n_cols)
        sum_rows_and_squares(g_us, idx, active_rows(x[b], idx), acc, sq)
        # normals first (branchy, scalar), then one branch-free pass the compiler vectorises
        z = np.empty(n_cols)
        state = splitmix64(key ^ splitmix64(np.uint64(b)))
        for j in range(0, n_cols - 1, 2):
            z[j], z[j + 1], state = ziggurat_pair(state, ZIG_X, ZIG_RATIO)
        if n_cols % 2:
            z[n_cols - 1], state = ziggurat(state, ZIG_X, ZIG_RATIO)
        for j in range(n_cols):
            total = acc[j] + noise_rel * math.sqrt(sq[j]) * z[j]
            out[b, j] = adc(total * v_read, bits, lsb_ua)


@njit(cache=True, parallel=True)
def mvm_cell_noise(x, g_us, v_read, noise_rel, z, bits, lsb_ua, out):
    """Binary MVM with exact per-cell read noise; ``z`` (B, R, C) holds standard normals."""
    n_rows, n_cols = g_us.shape
    for b in prange(x.shape[0]):
        acc = np.zeros(n_cols)
        for i in range(n_rows):
            if x[b, i] != 0:
                for j in range(n_cols):
                    acc[j] += g_us[i, j] * (1.0 + noise_rel * z[b, i, j])
        for j in range(n_cols):
            out[b, j] = adc(acc[j] * v_read, bits, lsb_ua)
