"""Drift, reads, the binary MVM and the column ADC.

MVM contract (rram_lsm.macro): per sample and column, the noise-free sum is accumulated in
float64 over the active rows in ascending order from 0.0, then multiplied by V_read; the ADC
maps ``I`` to ``code * lsb`` with ``code = clip(floor(I / lsb + 0.5), 0, 2**bits - 1)``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .rng import ZIG_RATIO, ZIG_X, splitmix64, ziggurat

STUCK_NONE = 0
STUCK_OPEN = 1
STUCK_HIGH = 2


@njit(cache=True, parallel=True)
def effective_conductance(g0_us, formed, written_s, nu, stuck, stuck_us, clock_s, t0_s, out):
    """Noise-free conductance now: drift ``(t / t0) ** -nu`` on formed cells, stuck override."""
    for i in prange(g0_us.shape[0]):
        for j in range(g0_us.shape[1]):
            if stuck[i, j] != STUCK_NONE:
                out[i, j] = stuck_us[i, j]
            elif formed[i, j]:
                age = clock_s - written_s[i, j]
                if age > t0_s:
                    out[i, j] = g0_us[i, j] * (age / t0_s) ** (-nu[i, j])
                else:
                    out[i, j] = g0_us[i, j]
            else:
                out[i, j] = g0_us[i, j]


@njit(cache=True, inline="always")
def adc(current_ua, bits, lsb_ua):
    """Digitise one current (µA); ``bits <= 0`` means ideal."""
    if bits <= 0:
        return current_ua
    code = math.floor(current_ua / lsb_ua + 0.5)
    top = 2.0 ** bits - 1.0
    if code > top:
        code = top
    elif code < 0.0:
        code = 0.0
    return code * lsb_ua


@njit(cache=True)
def adc_array(currents_ua, bits, lsb_ua, out):
    """Digitise a 2-D array of currents into ``out``."""
    for b in range(currents_ua.shape[0]):
        for j in range(currents_ua.shape[1]):
            out[b, j] = adc(currents_ua[b, j], bits, lsb_ua)


@njit(cache=True, parallel=True)
def mvm_clean(x, g_us, v_read, bits, lsb_ua, out):
    """Noise-free binary MVM: ``x`` uint8 (B, R), ``g_us`` (R, C) -> ``out`` (B, C) µA."""
    n_rows, n_cols = g_us.shape
    for b in prange(x.shape[0]):
        acc = np.zeros(n_cols)
        for i in range(n_rows):
            if x[b, i] != 0:
                for j in range(n_cols):
                    acc[j] += g_us[i, j]
        for j in range(n_cols):
            out[b, j] = adc(acc[j] * v_read, bits, lsb_ua)


@njit(cache=True, parallel=True)
def mvm_column_noise(x, g_us, v_read, noise_rel, key, bits, lsb_ua, out):
    """Binary MVM with read noise added per column: the sum of independent per-cell Gaussians
    ``N(0, (noise_rel * G_ij)**2)`` over the active rows is ``N(0, noise_rel**2 * sum G_ij**2)``.

    The standard normals come from a ziggurat on a splitmix64 sequence seeded by
    ``(key, sample)``, so results do not depend on thread scheduling.
    """
    n_rows, n_cols = g_us.shape
    for b in prange(x.shape[0]):
        acc = np.zeros(n_cols)
        sq = np.zeros(n_cols)
        for i in range(n_rows):
            if x[b, i] != 0:
                for j in range(n_cols):
                    g = g_us[i, j]
                    acc[j] += g
                    sq[j] += g * g
        state = splitmix64(key ^ splitmix64(np.uint64(b)))
        for j in range(n_cols):
            z, state = ziggurat(state, ZIG_X, ZIG_RATIO)
            total = acc[j] + noise_rel * math.sqrt(sq[j]) * z
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
