"""Figures of a chip: conductance histogram with the model over it, heat map, drift curves.

Each function returns a matplotlib Figure (Agg-safe; nothing is shown).
"""
from __future__ import annotations

import numpy as np

from .cells import formed_law
from .presets import load_profile
from .profile import DeviceProfile

__all__ = ["plot_conductance_histogram", "plot_conductance_map", "plot_drift"]


def formed_pdf(g_us: np.ndarray, profile: DeviceProfile) -> np.ndarray:
    """Density (per µS) of the profile's formed-conductance law at ``g_us``."""
    from scipy import stats

    loc, scale, low, high, log = formed_law(profile.forming)
    x = np.log(g_us) if log else g_us
    pdf = stats.truncnorm.pdf(x, (low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)
    return pdf / g_us if log else pdf


def plot_conductance_histogram(conductance_us: np.ndarray, profile=None, *,
                               formed_threshold_us: float = 1.0, max_us: float | None = None,
                               bins: int = 60, ax=None):
    """Histogram of the formed cells' conductances (µS) with the profile's model pdf over it.

    Cells at or below ``formed_threshold_us`` count as unformed and cells above ``max_us``
    (stuck high; None keeps every cell) are left out; both fractions are in the legend, so
    a few stuck cells at ``g_max_us`` do not stretch the axis away from the formed law.
    """
    import matplotlib.pyplot as plt

    prof = load_profile(profile)
    g = np.asarray(conductance_us, dtype=float).ravel()
    above = g > max_us if max_us is not None else np.zeros(g.shape, bool)
    formed = g[(g > formed_threshold_us) & ~above]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.5))
    label = f"formed cells, n={formed.size}\nunformed {np.mean(g <= formed_threshold_us):.1%}"
    if max_us is not None:
        label += f", above {max_us:.3g} µS {above.mean():.2%}"
    ax.hist(formed, bins=bins, density=True, alpha=0.6, label=label)
    if formed.size:
        grid = np.linspace(max(formed.min(), 1e-3), formed.max(), 400)
        ax.plot(grid, formed_pdf(grid, prof), "k-", lw=1.5,
                label=f"model ({prof.forming.formed_distribution}, {prof.name})")
    ax.set_xlabel("conductance (µS)")
    ax.set_ylabel("density (1/µS)")
    ax.set_title("formed-conductance distribution")
    ax.set_ylim(0.0, ax.get_ylim()[1] * 1.3)  # headroom: the legend sits above the peak
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_conductance_map(conductance_us: np.ndarray, *, title: str = "conductance",
                         vmax_us: float | None = None, ax=None):
    """Heat map of a region's conductances (µS), rows down, columns across.

    ``vmax_us`` caps the colour scale (brighter cells saturate), so stuck-high cells do not
    squeeze the formed range into a few colours; None scales to the largest value.
    """
    import matplotlib.pyplot as plt

    g = np.asarray(conductance_us, dtype=float)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(g, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0,
                   vmax=vmax_us)
    extend = "max" if vmax_us is not None and g.size and g.max() > vmax_us else "neither"
    fig.colorbar(im, ax=ax, label="µS", extend=extend)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_drift(profile=None, *, g0_us: float | None = None, times_s=None,
               quantiles=(0.05, 0.5, 0.95), ax=None):
    """Drift curves ``G(t) = G0 (t / t0) ** -nu`` at quantiles of the profile's nu spread."""
    import matplotlib.pyplot as plt
    from scipy import stats

    prof = load_profile(profile)
    d = prof.drift
    g0 = prof.forming.formed_mean_us if g0_us is None else g0_us
    t = np.logspace(0, np.log10(10 * 365.25 * 86400), 200) if times_s is None else np.asarray(times_s)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.5))
    for q in quantiles:
        nu = max(d.nu_mean + d.nu_std * stats.norm.ppf(q), 0.0)
        g = g0 * np.where(t > d.t0_s, (t / d.t0_s) ** -nu, 1.0)
        ax.plot(t, g, label=f"nu = {nu:.4f} (q {q:g})")
    for seconds, name in ((86400.0, "1 day"), (365.25 * 86400, "1 year")):
        if t.min() <= seconds <= t.max():
            ax.axvline(seconds, color="0.7", lw=0.8, ls=":")
            ax.annotate(name, (seconds, 1.0), xycoords=("data", "axes fraction"),
                        ha="right", va="top", rotation=90, fontsize=8, color="0.4")
    ax.set_xscale("log")
    ax.set_title(f"drift of a {g0:g} µS cell")
    ax.set_xlabel("time since write (s)")
    ax.set_ylabel("conductance (µS)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
