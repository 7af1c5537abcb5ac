"""Electroforming kernel."""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def form_region(breakdown_v, formed_g_us, stuck, formed, g0_us, written_s,
                row0, col0, rows, cols, voltage_v, clock_s):
    """Form every unformed, non-stuck cell of the tile whose breakdown voltage <= |voltage_v|.

    Formed cells are left alone, so the result of a voltage sweep does not depend on its
    steps. Updates ``formed``, ``g0_us`` (conductance at write) and ``written_s`` (drift
    origin) in place; returns the number of cells newly formed.
    """
    v = abs(voltage_v)
    count = 0
    for i in range(row0, row0 + rows):
        for j in range(col0, col0 + cols):
            if not formed[i, j] and stuck[i, j] == 0 and breakdown_v[i, j] <= v:
                formed[i, j] = True
                g0_us[i, j] = formed_g_us[i, j]
                written_s[i, j] = clock_s
                count += 1
    return count
