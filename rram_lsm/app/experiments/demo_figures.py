"""The demo's figures: reservoir raster, conductance histogram with the device model,
embedding map, similarity matrix, accuracy table and energy report.

Each ``plot_*`` returns a Figure; :func:`write_all` saves them as PNGs and returns the paths.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .plots import _figure, plot_energy, plot_table

__all__ = ["plot_reservoir_raster", "plot_tile_histograms", "plot_embedding_map",
           "plot_similarity_matrix", "write_all"]

_MODALITY = {"nmnist": "vision (N-MNIST)", "fsdd": "audio (FSDD cochlea)",
             "ntidigits": "audio (N-TIDIGITS)"}


def plot_reservoir_raster(rasters: dict, spikes: dict, labels: dict, synthetic: dict):
    """Input events and reservoir spikes of one example per modality (time on x)."""
    fig = _figure((12, 6.5))
    axes = fig.subplots(2, len(rasters), squeeze=False)
    for col, name in enumerate(rasters):
        x, s = rasters[name], spikes[name]
        # The example with the median activity is typical, not an outlier.
        k = int(np.argsort(x.sum(axis=(1, 2)))[len(x) // 2])
        tag = " (synthetic)" if synthetic.get(name) else ""
        for row, (arr, what, colour) in enumerate(((x[k], "input rows", "#444444"),
                                                   (s[k], "reservoir neurons", "#c0392b"))):
            ax = axes[row, col]
            t, i = np.nonzero(arr)
            ax.scatter(t, i, s=3 if row else 2, marker="|", color=colour, linewidths=0.8)
            ax.set_xlim(-0.5, arr.shape[0] - 0.5)
            ax.set_ylim(-0.5, arr.shape[1] - 0.5)
            ax.set_ylabel(what)
            ax.set_xlabel("time step")
            rate = arr.mean()
            ax.set_title(f"{_MODALITY.get(name, name)}{tag}, digit {int(labels[name][k])}: "
                         f"{int(arr.sum())} {'events' if row == 0 else 'spikes'} "
                         f"({rate:.2g} per {'row' if row == 0 else 'neuron'} per step)",
                         fontsize=9.5)
    fig.suptitle("LSM on the RRAM tile: input raster (top) and reservoir spike raster (bottom)")
    return fig


def plot_tile_histograms(g_tiles: dict, profile=None):
    """Conductance histogram of each formed reservoir tile with the device model over it."""
    from sim import load_profile
    from sim.plots import plot_conductance_histogram

    fig = _figure((5.5 * len(g_tiles), 4))
    axes = fig.subplots(1, len(g_tiles), squeeze=False)[0]
    prof = load_profile(profile)
    high = prof.forming.formed_max_us * 1.25
    for ax, (name, g) in zip(axes, g_tiles.items()):
        with warnings.catch_warnings():
            # it calls tight_layout on our constrained-layout figure; layout is ours here
            warnings.simplefilter("ignore", UserWarning)
            plot_conductance_histogram(np.minimum(g, high), profile, ax=ax)
        n_high = int((g > high).sum())
        ax.set_xlim(0, high + 0.5)
        ax.set_title(f"{name} tile {g.shape[0]} x {g.shape[1]}, read back"
                     + (f"; {n_high} stuck-high cells (> {high:.0f} µS) in the last bin"
                        if n_high else ""), fontsize=9)
    fig.set_layout_engine("constrained")
    fig.suptitle("Formed-cell conductances vs the device model "
                 f"({prof.name}; read noise included)")
    return fig


def _unit(z):
    z = np.asarray(z, dtype=np.float64)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _pick(kept: dict, data, part: str, per_class: int, seed: int) -> dict:
    """Up to ``per_class`` samples per class of ``part``, per modality (seeded)."""
    rng = np.random.default_rng(seed)
    labels = {"image": data.image_labels, "audio": data.audio_labels}
    out = {}
    for m in ("image", "audio"):
        idx = np.asarray(kept["parts"][m][part])
        out[m] = np.concatenate([np.sort(rng.permutation(idx[labels[m][idx] == c])[:per_class])
                                 for c in np.unique(labels[m][idx])])
    return out


def plot_embedding_map(kept: dict, data, max_per_class: int = 60, seed: int = 0):
    """PCA of the learned embedding (``projections.plots.plot_embedding``): seen-class test
    samples and unseen classes side by side, both modalities (o image, x audio)."""
    from projections.plots import plot_embedding

    fig = _figure((12, 5.4))
    axes = fig.subplots(1, 2)
    for ax, part, title in ((axes[0], "test", "seen digits 1-7 (official test files)"),
                            (axes[1], "unseen", "unseen digits 8-9 (never trained on)")):
        sel = _pick(kept, data, part, max_per_class, seed)
        plot_embedding(_unit(kept["embeddings"]["image"][sel["image"]]),
                       data.image_labels[sel["image"]],
                       _unit(kept["embeddings"]["audio"][sel["audio"]]),
                       data.audio_labels[sel["audio"]], ax=ax, title=title)
    fig.suptitle("Shared embedding after contrastive training (PCA of unit vectors; "
                 "colour = digit, o = image, x = audio)")
    return fig


def plot_similarity_matrix(kept: dict, data, per_class: int = 25, seed: int = 0):
    """Cosine similarity audio (rows) x image (columns) on unseen classes, sorted by class
    (``projections.plots.plot_similarity`` on unit vectors)."""
    from projections.plots import plot_similarity

    sel = _pick(kept, data, "unseen", per_class, seed)
    fig = _figure((6.4, 5.6))
    ax = fig.add_subplot(1, 1, 1)
    plot_similarity(_unit(kept["embeddings"]["audio"][sel["audio"]]),
                    data.audio_labels[sel["audio"]],
                    _unit(kept["embeddings"]["image"][sel["image"]]),
                    data.image_labels[sel["image"]], ax=ax, max_per_class=per_class,
                    title="Zero-shot similarity on unseen digits\n(same digit should be "
                          "bright on the diagonal blocks)")
    return fig


def write_all(out: Path, *, opts, rasters, spikes, labels, g_tiles, kept, data, energy,
              table, synthetic) -> list[Path]:
    """Save every demo figure under ``out``; return the paths in a fixed order."""
    out = Path(out)
    note = ("SYNTHETIC DATA — pipeline check only. " if any(synthetic.values()) else "") + \
        "Our protocol selects on validation pairs only; the paper selected on test sets."
    figures = {
        "reservoir_raster.png": lambda: plot_reservoir_raster(rasters, spikes, labels, synthetic),
        "conductance_histogram.png": lambda: plot_tile_histograms(g_tiles, opts.profile),
        "embedding_map.png": lambda: plot_embedding_map(kept, data, seed=opts.seed),
        "similarity_matrix.png": lambda: plot_similarity_matrix(kept, data, seed=opts.seed),
        "accuracy_table.png": lambda: plot_table(table[0], table[1], table[2], note=note),
        "energy.png": lambda: plot_energy(energy),
    }
    paths = []
    for name, make in figures.items():
        fig = make()
        path = out / name
        fig.savefig(path, dpi=130)
        paths.append(path)
    return paths
