"""Figures of the protocol (matplotlib, Agg-safe); every function returns the Figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rram_lsm.errors import ConfigError

from .protocol import _get

__all__ = ["plot_embedding", "plot_similarity", "plot_confusion", "plot_learning_curves",
           "plot_per_split", "save_figures"]


def _figure(ax, size=(5, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    return ax.figure, ax


def _first_per_class(y, n):
    # class-grouped order: the similarity matrix draws its class blocks from it
    y = np.asarray(y)
    return np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)])


def plot_embedding(z_image, y_image, z_audio, y_audio, ax=None, title="embedding (PCA)",
                   max_per_class: int = 60):
    """Both modalities in one 2-D PCA of the shared space: colour = class, marker = modality.

    At most ``max_per_class`` samples per class and modality are drawn (the PCA uses all).
    """
    import matplotlib.pyplot as plt

    fig, ax = _figure(ax, (5.5, 4.5))
    both = np.concatenate([z_image, z_audio]).astype(np.float64)
    centred = both - both.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    xi, xa = xy[:len(z_image)], xy[len(z_image):]
    keep_i, keep_a = _first_per_class(y_image, max_per_class), _first_per_class(
        y_audio, max_per_class)
    xi, y_image = xi[keep_i], np.asarray(y_image)[keep_i]
    xa, y_audio = xa[keep_a], np.asarray(y_audio)[keep_a]
    classes = np.union1d(y_image, y_audio)
    cmap = plt.get_cmap("tab10")
    for k, c in enumerate(classes):
        col = cmap(k % 10)
        ax.scatter(*xi[y_image == c].T, s=10, marker="o", color=col, alpha=0.6,
                   label=f"{c} image")
        ax.scatter(*xa[y_audio == c].T, s=14, marker="x", color=col, alpha=0.6,
                   label=f"{c} audio")
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title)
    ax.legend(fontsize=6, ncol=2, markerscale=1.2, loc="best")
    return fig


def plot_similarity(z_audio, y_audio, z_image, y_image, ax=None, max_per_class: int = 30,
                    title="audio x image similarity"):
    """Cosine similarity of audio (rows) to image (columns) samples, sorted by class."""
    fig, ax = _figure(ax, (5, 4.5))

    ia, ii = _first_per_class(y_audio, max_per_class), _first_per_class(y_image, max_per_class)
    sim = z_audio[ia] @ z_image[ii].T
    im = ax.imshow(sim, cmap="viridis", aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="cosine similarity")
    for y, idx, setter, lines in ((y_audio, ia, ax.set_yticks, ax.axhline),
                                  (y_image, ii, ax.set_xticks, ax.axvline)):
        lab = np.asarray(y)[idx]
        edges = np.flatnonzero(np.diff(lab)) + 0.5
        for e in edges:
            lines(e, color="w", lw=0.5)
        centres = [np.flatnonzero(lab == c).mean() for c in np.unique(lab)]
        setter(centres, [str(c) for c in np.unique(lab)])
    ax.set(xlabel="image class", ylabel="audio class", title=title)
    return fig


def plot_confusion(true, pred, classes=None, ax=None, title="audio -> image top-1"):
    """Row-normalised confusion matrix of true query class vs retrieved class."""
    fig, ax = _figure(ax, (4.2, 3.8))
    true, pred = np.asarray(true), np.asarray(pred)
    classes = np.union1d(true, pred) if classes is None else np.asarray(classes)
    m = np.array([[np.sum((true == a) & (pred == b)) for b in classes] for a in classes],
                 float)
    m /= np.maximum(m.sum(1, keepdims=True), 1)
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="w" if v > 0.5 else "k")
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set(xlabel="retrieved class", ylabel="query class", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


def plot_learning_curves(curves: dict, best_epoch: int | None = None, ax=None):
    """Training and validation loss, and validation top-1, per epoch."""
    fig, ax = _figure(ax, (5.5, 3.5))
    if not curves or not curves.get("train_loss"):
        raise ConfigError("no learning curves to plot (method without training?)")
    ep = np.arange(1, len(curves["train_loss"]) + 1)
    ax.plot(ep, curves["train_loss"], label="train loss")
    ax.plot(ep, curves["val_loss"], label="val loss")
    ax.set(xlabel="epoch", ylabel="loss", title="learning curves")
    ax2 = ax.twinx()
    ax2.plot(ep, curves["val_top1"], color="C2", label="val top-1")
    ax2.set_ylabel("validation top-1 (mean of both directions)")
    if best_epoch:
        ax.axvline(best_epoch, color="k", ls=":", lw=1, label=f"selected ({best_epoch})")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    return fig


def plot_per_split(result, key=("unseen", "audio_to_image", "top1"), ax=None):
    """Mean ± std over seeds of one metric for every split, with the chance level."""
    fig, ax = _figure(ax, (max(5, 0.35 * len(result.splits) + 2), 3.5))
    means, stds, chance, names = [], [], [], []
    for seen, unseen in result.splits:
        runs = [r.to_dict() for r in result.runs if tuple(r.unseen_classes) == unseen
                and tuple(r.seen_classes) == seen]
        vals = [_get(r, key) for r in runs]
        if any(v is None for v in vals):
            raise ConfigError(f"metric {'.'.join(key)} missing from the runs")
        means.append(np.mean(vals))
        stds.append(np.std(vals))
        ch_key = key[:-1] + ("chance_" + key[-1],)
        ch = [_get(r, ch_key) for r in runs]
        chance.append(np.mean(ch) if all(c is not None for c in ch) else np.nan)
        names.append(",".join(map(str, unseen)))
    x = np.arange(len(means))
    ax.bar(x, means, yerr=stds, color="C0", alpha=0.8, capsize=2)
    ax.plot(x, chance, "k_", markersize=14, label="chance")
    ax.axhline(np.mean(means), color="C1", ls="--", lw=1, label=f"mean {np.mean(means):.3f}")
    ax.set_xticks(x, names, rotation=90 if len(x) > 12 else 0, fontsize=7)
    ax.set(ylim=(0, 1.05), xlabel="unseen classes", ylabel=".".join(key),
           title=f"{result.method.name}: per split")
    ax.legend(fontsize=7)
    return fig


def save_figures(result, data, out_dir) -> list[Path]:
    """Rerun the first split and seed of ``result`` with its model kept and save PNGs.

    The rerun trains alone (:func:`~projections.protocol.evaluate_split`); both engines
    give the same model, so the figures show the run that ``result`` holds.
    """
    import matplotlib.pyplot as plt

    from .protocol import evaluate_split

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen, unseen = result.splits[0]
    run = evaluate_split(data, seen, unseen, result.method, seed=result.seeds[0],
                         keep_model=True)
    z, parts = run.embeddings, run.parts
    figs = {}
    ii = np.concatenate([parts["image"]["test"], parts["image"]["unseen"]])
    ia = np.concatenate([parts["audio"]["test"], parts["audio"]["unseen"]])
    yi, ya = data.image_labels[ii], data.audio_labels[ia]
    figs["embedding"] = plot_embedding(z["image"][ii], yi, z["audio"][ia], ya,
                                       title=f"seen test + unseen {unseen} (PCA)")
    figs["similarity"] = plot_similarity(z["audio"][ia], ya, z["image"][ii], yi)
    ui, ua = parts["image"]["unseen"], parts["audio"]["unseen"]
    retrieved = data.image_labels[ui][np.argmax(z["audio"][ua] @ z["image"][ui].T, axis=1)]
    figs["confusion_unseen"] = plot_confusion(data.audio_labels[ua], retrieved,
                                              title=f"unseen {unseen}: audio -> image")
    if run.train is not None:
        figs["learning_curves"] = plot_learning_curves(run.train.curves, run.train.best_epoch)
        figs["per_split"] = plot_per_split(result)
    if result.shots:
        figs["per_split_fewshot"] = plot_per_split(
            result, ("fewshot", str(max(result.shots)), "unseen", "audio_to_image", "top1"))
    paths = []
    for name, fig in figs.items():
        path = out_dir / f"zeroshot_{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
