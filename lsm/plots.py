"""Figures of reservoir activity (matplotlib, Agg-safe; each function returns the Figure)."""
from __future__ import annotations

import numpy as np

from rram_lsm.errors import ShapeError

__all__ = ["plot_raster", "plot_membrane", "plot_activity", "plot_span_windows"]


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def plot_raster(spikes, *, inputs=None, ax=None, title: str | None = None):
    """Spike raster of one sample: ``spikes`` (T, n) as dots; ``inputs`` (T, n_inputs), when
    given, are drawn below the neurons in grey."""
    s = np.asarray(spikes)
    if s.ndim != 2:
        raise ShapeError(f"plot_raster takes one sample's spikes (T, n), got {s.shape}")
    fig, ax = _axes(ax, (7, 4))
    offset = 0
    if inputs is not None:
        x = np.asarray(inputs)
        if x.ndim != 2 or x.shape[0] != s.shape[0]:
            raise ShapeError(f"inputs must be (T={s.shape[0]}, n_inputs), got {x.shape}")
        t_in, i_in = np.nonzero(x)
        ax.scatter(t_in, i_in, s=2, c="0.6", marker="|", label="input events")
        offset = x.shape[1]
        ax.axhline(offset - 0.5, color="0.3", lw=0.5)
    t, j = np.nonzero(s)
    ax.scatter(t, j + offset, s=3, c="C0", marker="|", label="reservoir spikes")
    ax.set_xlim(-0.5, s.shape[0] - 0.5)
    ax.set_ylim(-0.5, offset + s.shape[1] - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("input row / neuron" if inputs is not None else "neuron")
    ax.set_title(title or f"{int(s.sum())} spikes, {s.mean():.3f} per neuron-step")
    if inputs is not None:
        ax.legend(loc="upper right", fontsize="small", markerscale=4)
    return fig


def plot_membrane(membrane, *, threshold: float | None = None, neurons=None, spikes=None,
                  ax=None, title: str | None = None):
    """Membrane traces ``membrane`` (T, n) of a few ``neurons`` (default: the first five),
    with the threshold and, when ``spikes`` (T, n) are given, spike marks."""
    v = np.asarray(membrane)
    if v.ndim != 2:
        raise ShapeError(f"plot_membrane takes one sample's membrane (T, n), got {v.shape}")
    neurons = list(range(min(5, v.shape[1]))) if neurons is None else list(neurons)
    fig, ax = _axes(ax, (7, 3.5))
    steps = np.arange(v.shape[0])
    for k, j in enumerate(neurons):
        line, = ax.plot(steps, v[:, j], lw=1, label=f"neuron {j}")
        if spikes is not None:
            t_sp = np.flatnonzero(np.asarray(spikes)[:, j])
            ax.plot(t_sp, v[t_sp, j], "v", color=line.get_color(), ms=4)
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8, label="threshold")
    ax.set_xlabel("time step")
    ax.set_ylabel("membrane (a.u.)")
    ax.set_title(title or "membrane traces")
    ax.legend(loc="upper right", fontsize="small", ncol=2)
    return fig


def plot_activity(spikes, membrane, *, inputs=None, threshold: float | None = None,
                  neurons=None, title: str | None = None):
    """Raster (top) and membrane traces (bottom) of one sample in one Figure."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    plot_raster(spikes, inputs=inputs, ax=ax1, title=title)
    plot_membrane(membrane, threshold=threshold, neurons=neurons, spikes=spikes, ax=ax2)
    fig.tight_layout()
    return fig


def plot_span_windows(rasters, n_windows: int = 5, *, titles=None):
    """Input rasters (N, T, n_inputs) of a few samples, one panel each, with the edges of
    the ``windowed`` kind (fixed, dashed grey) and of the ``span`` kinds (equal parts of
    the sample's active span, solid red): why the span windows line the same sounds up
    across speaking rates."""
    import matplotlib.pyplot as plt

    from .features import active_span

    x = np.asarray(rasters)
    if x.ndim != 3:
        raise ShapeError(f"rasters must be (N, T, n_inputs), got shape {x.shape}")
    n, n_steps, _ = x.shape
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.6 * n + 0.6), sharex=True, squeeze=False)
    spans = active_span(x)
    # the edges the features use: rounded to whole steps
    fixed = np.linspace(0, n_steps, n_windows + 1).round()
    for i, ax in enumerate(axes[:, 0]):
        t, c = np.nonzero(x[i])
        ax.scatter(t, c, s=2, c="0.3", marker="|")
        for e in fixed[1:-1]:
            ax.axvline(e - 0.5, color="0.6", ls="--", lw=0.8)
        a, b = spans[i]
        for e in np.rint(a + np.linspace(0, 1, n_windows + 1) * (b - a)):
            ax.axvline(e - 0.5, color="C3", lw=1.0)
        ax.set_ylabel("channel")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].plot([], [], color="0.6", ls="--", label="windowed (fixed)")
    axes[0, 0].plot([], [], color="C3", label="span (active span)")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
