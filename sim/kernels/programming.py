"""Write-verify programming kernel."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .rng import normal


@njit(cache=True, parallel=True)
def write_verify(g_start_us, target_us, programmable, tolerance_us, max_pulses,
                 step_fraction, noise_us, read_noise_rel, g_min_us, g_max_us, grid_us, key,
                 g_out_us, verified_us, pulses, converged):
    """Verify-then-pulse loop per cell, at most ``max_pulses`` pulses.

    Each pulse moves G by ``step_fraction * (target - G)`` plus ``N(0, noise_us**2)``, clipped
    to [g_min_us, g_max_us] and rounded to a multiple of ``grid_us`` (the conductance grid;
    an argument, because numba's cache would not notice a change of an imported constant);
    cells with ``programmable`` False (unformed, stalled, stuck) do not move. Every verify
    read carries relative read noise. Noise comes from
    ``rng.normal(key, counter)`` with a counter unique per (cell, draw). Writes the final
    conductance, the last verify read, the pulse count and convergence per cell.
    """
    n_rows, n_cols = g_start_us.shape
    stride = np.uint64(2 * max_pulses + 2)
    for i in prange(n_rows):
        for j in range(n_cols):
            g = g_start_us[i, j]
            t = target_us[i, j]
            base = np.uint64(i * n_cols + j) * stride
            n = 0
            ok = False
            r = g
            while True:
                r = g * (1.0 + read_noise_rel * normal(key, base + np.uint64(2 * n)))
                if abs(r - t) <= tolerance_us:
                    ok = True
                    break
                if n >= max_pulses:
                    break
                if programmable[i, j]:
                    g += step_fraction * (t - g) + noise_us * normal(key, base + np.uint64(2 * n + 1))
                    g = min(max(g, g_min_us), g_max_us)
                    # the cell holds a grid value, so verify reads see what mvm later sums
                    g = np.rint(g / grid_us) * grid_us
                n += 1
            g_out_us[i, j] = g
            verified_us[i, j] = r
            pulses[i, j] = n
            converged[i, j] = ok
