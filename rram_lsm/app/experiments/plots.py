"""Figures of the application layer: energy report, sweep curves, results table.

Every function returns a matplotlib Figure (Agg-safe; nothing is shown or saved here).
"""
from __future__ import annotations

import textwrap

import numpy as np

__all__ = ["plot_energy", "plot_sweep", "plot_table"]

_RRAM_COLOURS = {"cell_reads": "#1b9e77", "row_drivers": "#66a61e", "adc": "#d95f02",
                 "neurons": "#7570b3", "projection": "#e7298a", "partial_sums": "#999999",
                 "projection_cells": "#f4a6cf", "projection_adc": "#c51b7d",
                 "projection_digital": "#8e0152"}
_DIGITAL_COLOURS = {"macs": "#a6761d", "weight_reads": "#e6ab02", "neurons": "#7570b3",
                    "projection": "#e7298a"}


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _si(value: float, unit: str) -> str:
    for prefix, scale in (("", 1.0), ("m", 1e-3), ("µ", 1e-6), ("n", 1e-9), ("p", 1e-12)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value / 1e-15:.3g} f{unit}"


def plot_energy(reports: dict):
    """Energy and latency per inference, co-design vs digital, with the assumptions below.

    ``reports``: ``{label: EnergyReport}`` (e.g. one per modality). Top row: totals (log
    scale, ratio written beside), what each design spends its energy on (shares of the
    total), latency; bottom: every per-operation value with its status and source.
    """
    fig = _figure((15, 8.2))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.0, 0.62], width_ratios=[1.1, 1.0, 1.0])
    ax_e, ax_b, ax_t = (fig.add_subplot(grid[0, i]) for i in range(3))
    ax_txt = fig.add_subplot(grid[1, :])
    labels = list(reports)
    bars = [(name, design) for name in labels for design in ("rram", "digital")]
    y = np.arange(len(bars))[::-1].astype(float)
    names = [f"{name}: {'RRAM co-design' if d == 'rram' else 'digital'}" for name, d in bars]
    colour = {"rram": "#1b9e77", "digital": "#a6761d"}

    totals = [getattr(reports[n], f"{d}_total_j") for n, d in bars]
    ax_e.barh(y, totals, color=[colour[d] for _, d in bars], height=0.7)
    for yi, t in zip(y, totals):
        ax_e.text(t * 1.15, yi, _si(t, "J"), va="center", fontsize=9)
    ax_e.set_xscale("log")
    ax_e.set_xlim(min(totals) / 3, max(totals) * 12)
    ax_e.set_yticks(y, names, fontsize=9)
    ax_e.set_xlabel("energy per inference (J, log scale)")
    ax_e.set_title("Energy per inference")
    for k, name in enumerate(labels):
        r = reports[name]
        ax_e.annotate(f"{r.energy_ratio:.1f}x less", xy=(max(totals) * 4, y[2 * k] - 0.5),
                      ha="center", va="center", fontsize=11, weight="bold", color="#333")

    parts_seen = {}
    for yi, (name, d) in zip(y, bars):
        parts = getattr(reports[name], f"{d}_energy_j")
        total = sum(parts.values())
        left = 0.0
        colours = _RRAM_COLOURS if d == "rram" else _DIGITAL_COLOURS
        for part, value in parts.items():
            label = part.replace("_", " ")
            ax_b.barh(yi, value / total, left=left, height=0.7, color=colours[part],
                      edgecolor="white", label=None if label in parts_seen else label)
            parts_seen[label] = True
            if value / total > 0.08:
                ax_b.text(left + value / total / 2, yi, f"{value / total:.0%}", ha="center",
                          va="center", fontsize=8, color="white")
            left += value / total
    ax_b.set_yticks(y, [""] * len(y))
    ax_b.set_xlim(0, 1)
    ax_b.set_xlabel("share of the design's energy")
    ax_b.set_title("Where the energy goes")
    ax_b.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3,
                frameon=False)

    lat = [sum(getattr(reports[n], f"{d}_latency_s").values()) for n, d in bars]
    ax_t.barh(y, [v * 1e6 for v in lat], color=[colour[d] for _, d in bars], height=0.7)
    for yi, v in zip(y, lat):
        ax_t.text(v * 1e6 * 1.02, yi, _si(v, "s"), va="center", fontsize=9)
    ax_t.set_xlim(0, max(lat) * 1e6 * 1.3)
    ax_t.set_yticks(y, [""] * len(y))
    ax_t.set_xlabel("latency per inference (µs)")
    ax_t.set_title("Latency per inference (phases in sequence)")
    for k, name in enumerate(labels):
        ax_t.text(max(lat) * 1e6 * 1.27, y[2 * k] - 0.5,
                  f"{reports[name].latency_ratio:.1f}x faster",
                  ha="right", va="center", fontsize=11, weight="bold", color="#333")

    ax_txt.axis("off")
    params = next(iter(reports.values())).params
    items = []
    for n, status, src in params.sources:
        value = getattr(params, n)
        shown = f"{value:.3g}" if isinstance(value, float) else f"{value}"
        items.append(textwrap.wrap(f"• {n} = {shown} [{status}]: {src}", width=92,
                                   subsequent_indent="    "))
    half = (len(items) + 1) // 2
    header = ("Assumptions (rram_lsm/experiments/energy_params.toml; [measured] = read back "
              "from the chip that ran). Digital = same network, dense (inputs+neurons) x "
              "neurons MACs per step with SRAM weight reads; paper's claims 23.34x / 160x.")
    ax_txt.text(0.0, 1.0, "\n".join(textwrap.wrap(header, 175)), va="top", ha="left",
                fontsize=8.5, weight="bold", transform=ax_txt.transAxes)
    for col, chunk in enumerate((items[:half], items[half:])):
        ax_txt.text(0.5 * col, 0.86, "\n".join(line for it in chunk for line in it),
                    va="top", ha="left", family="monospace", fontsize=7.4,
                    transform=ax_txt.transAxes)
    return fig


def plot_sweep(result, metric: str = "accuracy"):
    """Mean ± std (band) and every chip (dots) per setting, one panel per axis."""
    from .sweep import nice_value

    summary = result.summary(metric)
    axes_names = list(summary)
    ncols = min(3, len(axes_names))
    nrows = int(np.ceil(len(axes_names) / ncols))
    fig = _figure((4.6 * ncols, 3.6 * nrows))
    chance = None
    for k, axis in enumerate(axes_names):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        s = summary[axis]
        pos = np.arange(len(s["values"]))
        mean, std = np.array(s["mean"]), np.array(s["std"])
        ax.fill_between(pos, mean - std, mean + std, color="#1f77b4", alpha=0.2,
                        label="mean ± std")
        ax.plot(pos, mean, "o-", color="#1f77b4", label="mean over chips")
        for j, v in enumerate(s["values"]):
            pts = [r[metric] for r in result.rows if r["axis"] == axis and r["value"] == v]
            ax.plot(np.full(len(pts), pos[j]) + np.linspace(-0.08, 0.08, len(pts)), pts, ".",
                    color="0.3", ms=4, label="one chip" if j == 0 else None)
        ax.set_xticks(pos, [nice_value(axis, v) for v in s["values"]], fontsize=8)
        ax.set_xlabel(axis)
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if chance is None and result.rows:
            n_test_classes = result.rows[0].get("n_classes")
            chance = 1.0 / n_test_classes if n_test_classes else None
        if chance:
            ax.axhline(chance, color="0.5", ls=":", label="chance")
        if k == 0:
            ax.legend(fontsize=7, loc="lower left")
    spec = result.spec
    first = result.rows[0] if result.rows else {}
    sizes = f", {first['n_train']} train / {first['n_test']} test samples" if first else ""
    fig.suptitle(f"{metric} vs device non-idealities — {spec.dataset}"
                 f"{' (synthetic data)' if first.get('synthetic') else ''},"
                 f" {len(spec.chip_seeds)} chips per setting, {spec.metric} readout{sizes}",
                 fontsize=11)
    return fig


def plot_table(title: str, header: list, rows: list, note: str = ""):
    """A results table as a figure (for the demo's accuracy table PNG); the first column
    (row labels) gets the room its longest label needs."""
    first = max(len(str(r[0])) for r in [header, *rows])
    widths = [0.0105 * first + 0.03] + [0.15] * (len(header) - 1)
    total = sum(widths)
    fig = _figure((13 * total / 1.15 + 0.6, 0.4 * (len(rows) + 1) + 1.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=header, loc="center", cellLoc="center",
                     colWidths=[w / total for w in widths])
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1.0, 1.45)
    for (r, c), cell in table.get_celld().items():
        if r == 0:
            cell.set_facecolor("#dde5f0")
            cell.set_text_props(weight="bold")
        elif c == 0:
            cell.set_text_props(ha="left")
            cell.PAD = 0.02
    ax.set_title("\n".join(textwrap.wrap(title, 120)), fontsize=10.5)
    if note:
        fig.text(0.01, 0.01, "\n".join(textwrap.wrap(note, 150)), fontsize=8, ha="left",
                 va="bottom", color="0.3")
    return fig
