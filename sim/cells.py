"""Per-chip cell properties, drawn once for the whole array from the named streams.

Every property is a fixed transform of standard draws (normal or uniform) taken for the full
array in one call, so a cell's value depends only on the chip seed and the profile, never on
which regions were touched first, and changing a distribution's parameters moves each cell
monotonically instead of reshuffling the chip.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtr, ndtri

from .kernels.read import STUCK_HIGH, STUCK_NONE, STUCK_OPEN
from .profile import DeviceProfile, FormingConfig
from .streams import stream


class CellParams(NamedTuple):
    """Per-cell, per-chip quantities, each of the full array's shape."""

    breakdown_v: np.ndarray
    """Breakdown voltage (V)."""
    formed_us: np.ndarray
    """Conductance the cell takes when it forms (µS)."""
    pristine_us: np.ndarray
    """Conductance before forming (µS)."""
    nu: np.ndarray
    """Drift exponent (>= 0)."""
    stuck: np.ndarray
    """int8 code: 0 none, 1 stuck open, 2 stuck high."""
    stuck_us: np.ndarray
    """Conductance of a stuck cell (µS); unused elsewhere."""
    stall: np.ndarray
    """bool: programming pulses have no effect on this cell."""


def formed_law(cfg: FormingConfig) -> tuple[float, float, float, float, bool]:
    """``(loc, scale, low, high, log)``: the formed law as a normal on G (or on log G)
    truncated to [low, high]."""
    if cfg.formed_distribution == "lognormal":
        s2 = np.log1p((cfg.formed_std_us / cfg.formed_mean_us) ** 2)
        return (float(np.log(cfg.formed_mean_us) - s2 / 2), float(np.sqrt(s2)),
                float(np.log(cfg.formed_min_us)), float(np.log(cfg.formed_max_us)), True)
    return (cfg.formed_mean_us, cfg.formed_std_us, cfg.formed_min_us, cfg.formed_max_us, False)


def formed_from_uniform(u: np.ndarray, cfg: FormingConfig) -> np.ndarray:
    """Inverse-CDF transform of uniforms in [0, 1) to the truncated formed law (µS)."""
    loc, scale, low, high, log = formed_law(cfg)
    a, b = ndtr((low - loc) / scale), ndtr((high - loc) / scale)
    x = loc + scale * ndtri(a + u * (b - a))
    x = np.clip(x, low, high)
    return np.exp(x) if log else x


def stuck_codes(u: np.ndarray, open_fraction: float, high_fraction: float) -> np.ndarray:
    """Stuck code per cell from uniforms: open below ``open_fraction``, high just above."""
    codes = np.full(u.shape, STUCK_NONE, dtype=np.int8)
    codes[u < open_fraction] = STUCK_OPEN
    codes[(u >= open_fraction) & (u < open_fraction + high_fraction)] = STUCK_HIGH
    return codes


def draw_cells(profile: DeviceProfile, seed: int, stuck_map: np.ndarray | None = None,
               macro_index: int = 0
               ) -> CellParams:
    """Draw every per-cell property of macro ``macro_index`` of chip ``seed``; ``stuck_map``
    (codes) overrides."""
    shape = (profile.array.rows, profile.array.cols)
    f = profile.forming

    def draw(name: str) -> np.random.Generator:
        return stream(seed, name, macro_index)

    breakdown = f.breakdown_mean_v + f.breakdown_std_v * draw("forming").standard_normal(shape)
    formed = formed_from_uniform(draw("formed_conductance").random(shape), f)
    pristine = f.pristine_us * np.exp(
        f.pristine_spread_rel * draw("pristine").standard_normal(shape))
    d = profile.drift
    nu = np.maximum(d.nu_mean + d.nu_std * draw("drift").standard_normal(shape), 0.0)
    if stuck_map is None:
        stuck = stuck_codes(draw("stuck").random(shape),
                            profile.stuck.open_fraction, profile.stuck.high_fraction)
    else:
        stuck = np.ascontiguousarray(stuck_map, dtype=np.int8)
    stuck_us = np.where(stuck == STUCK_HIGH, profile.program.g_max_us, pristine)
    stall = draw("stall").random(shape) < profile.program.stall_fraction
    return CellParams(breakdown, formed, pristine, nu, stuck, stuck_us, stall)
