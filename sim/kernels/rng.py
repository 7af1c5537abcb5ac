"""Counter-based standard normals: ``normal(key, counter)`` is a pure function.

Write-verify needs a random number per pulse, and the number of pulses is known only inside
the kernel; a counter-based generator (splitmix64 hash, Box-Muller) gives each (cell, draw)
its own number from a key the caller draws from the chip's named stream, independent of
thread scheduling.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * math.pi
_INV_2_53 = 1.0 / 9007199254740992.0
_INV_2_52 = 2.0 * _INV_2_53
_INV_2_24 = 1.0 / 16777216.0


@njit(cache=True, inline="always")
def _mix64(z):
    """splitmix64's output function (uint64, wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def splitmix64(x):
    """One splitmix64 output for state ``x`` (uint64, wrapping arithmetic)."""
    return _mix64(x + _GOLDEN)


@njit(cache=True, inline="always")
def normal(key, counter):
    """Standard normal for ``(key, counter)`` (both uint64)."""
    h1 = splitmix64(key ^ splitmix64(counter))
    h2 = splitmix64(h1)
    u1 = (float(h1 >> np.uint64(11)) + 1.0) * _INV_2_53
    u2 = float(h2 >> np.uint64(11)) * _INV_2_53
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


def _ziggurat_tables(layers: int = 128, r: float = 3.442619855899,
                     v: float = 9.91256303526217e-3) -> tuple[np.ndarray, np.ndarray]:
    """Layer edges ``x`` and ratios ``x[i+1] / x[i]`` of Doornik's ZIGNOR ziggurat."""
    x = np.zeros(layers + 1)
    f = math.exp(-0.5 * r * r)
    x[0] = v / f
    x[1] = r
    for i in range(2, layers):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    return x, x[1:] / x[:-1]


ZIG_X, ZIG_RATIO = _ziggurat_tables()
ZIG_R = 3.442619855899


@njit(cache=True, inline="always")
def next_state(state):
    """Advance a sequential splitmix64 state (returns the new state)."""
    return state + _GOLDEN


@njit(cache=True)
def _zig_tail(state, negative):
    while True:
        state = next_state(state)
        u1 = (float(_mix64(state) >> np.uint64(11)) + 1.0) * _INV_2_53
        state = next_state(state)
        u2 = (float(_mix64(state) >> np.uint64(11)) + 1.0) * _INV_2_53
        x = math.log(u1) / ZIG_R
        y = math.log(u2)
        if -2.0 * y >= x * x:
            break
    return (x - ZIG_R if negative else ZIG_R - x), state


@njit(cache=True, inline="always")
def _zig_attempt(u, i, state, zig_x, zig_ratio):
    """One ziggurat attempt for ``u`` in [-1, 1) and layer ``i``: ``(z, accepted, state)``."""
    if abs(u) < zig_ratio[i]:
        return u * zig_x[i], True, state
    if i == 0:
        z, state = _zig_tail(state, u < 0)
        return z, True, state
    x = u * zig_x[i]
    f0 = math.exp(-0.5 * (zig_x[i] * zig_x[i] - x * x))
    f1 = math.exp(-0.5 * (zig_x[i + 1] * zig_x[i + 1] - x * x))
    state = next_state(state)
    w = float(_mix64(state) >> np.uint64(11)) * _INV_2_53
    return x, f1 + w * (f0 - f1) < 1.0, state


@njit(cache=True, inline="always")
def ziggurat(state, zig_x, zig_ratio):
    """One standard normal from the sequential splitmix64 ``state`` (ZIGNOR, 128 layers).

    Returns ``(z, new_state)``. One hash per attempt (53-bit u, 7-bit layer); about 1 %
    of attempts need the wedge or tail test.
    """
    while True:
        state = next_state(state)
        h = _mix64(state)
        # signed view: the top 53 bits give u in [-1, 1) with a fast int64 -> float convert
        u = float(np.int64(h) >> np.int64(11)) * _INV_2_52
        z, ok, state = _zig_attempt(u, np.int64(h & np.uint64(0x7F)), state, zig_x, zig_ratio)
        if ok:
            return z, state


@njit(cache=True, inline="always")
def _half(bits32, state, zig_x, zig_ratio):
    # bits 0-6 pick the layer, bits 7-31 give u in [-1, 1) in steps of 2**-24
    u = float(np.int64(bits32 >> np.uint64(7))) * _INV_2_24 - 1.0
    z, ok, state = _zig_attempt(u, np.int64(bits32 & np.uint64(0x7F)), state, zig_x, zig_ratio)
    if ok:
        return z, state
    return ziggurat(state, zig_x, zig_ratio)


@njit(cache=True, inline="always")
def ziggurat_pair(state, zig_x, zig_ratio):
    """Two independent standard normals from one hash (24-bit u each); ``(z1, z2, state)``.

    Read noise needs far less than 53 bits of resolution, and halving the hashes per normal
    is what keeps the MVM's noise cost small next to the accumulation.
    """
    state = next_state(state)
    h = _mix64(state)
    z1, state = _half(h & np.uint64(0xFFFFFFFF), state, zig_x, zig_ratio)
    z2, state = _half(h >> np.uint64(32), state, zig_x, zig_ratio)
    return z1, z2, state


@njit(cache=True)
def fill_normal(key, out):
    """Fill a 1-D array with standard normals from ``key``, as the MVM kernel draws them:
    in pairs from :func:`ziggurat_pair`, an odd last one from :func:`ziggurat`."""
    state = splitmix64(key)
    n = out.shape[0]
    for k in range(0, n - 1, 2):
        out[k], out[k + 1], state = ziggurat_pair(state, ZIG_X, ZIG_RATIO)
    if n % 2:
        out[n - 1], state = ziggurat(state, ZIG_X, ZIG_RATIO)
