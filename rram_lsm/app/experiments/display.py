"""Readable Jupyter output: compact HTML for results, chips and profiles.

The result objects of this package (EnergyReport, SweepResult, DemoResult) define
``_repr_html_`` through the functions here. For objects of other packages, :func:`show`
returns a wrapper that renders a chip (any Macro) or a device profile as an HTML table.
"""
from __future__ import annotations

import html

import numpy as np

__all__ = ["show", "html_table", "text_table", "energy_html", "energy_text", "sweep_html",
           "sweep_text"]


def html_table(header, rows, title: str | None = None) -> str:
    """A small HTML table (values escaped) with an optional bold title."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    cap = f"<b>{html.escape(title)}</b>" if title else ""
    return f"{cap}<table><tr>{head}</tr>{body}</table>"


def text_table(header, rows) -> str:
    """A plain-text table with aligned columns (for the terminal)."""
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(r):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule] + [fmt(r) for r in cells[1:]])


_ENERGY_HEADER = ["inference", "RRAM nJ", "digital nJ", "energy ratio", "RRAM µs", "digital µs",
                  "latency ratio"]


def _energy_rows(reports: dict) -> list:
    rows = []
    for name, r in reports.items():
        passes = getattr(r.counts, "passes", 1)
        label = (name or "inference") + (f" ({passes} drives)" if passes > 1 else "")
        rows.append([label, f"{r.rram_total_j * 1e9:.3g}",
                     f"{r.digital_total_j * 1e9:.3g}", f"{r.energy_ratio:.1f}x",
                     f"{sum(r.rram_latency_s.values()) * 1e6:.3g}",
                     f"{sum(r.digital_latency_s.values()) * 1e6:.3g}",
                     f"{r.latency_ratio:.1f}x"])
    return rows


def energy_html(reports: dict) -> str:
    """Energy/latency per inference and ratios, one row per report."""
    return html_table(_ENERGY_HEADER, _energy_rows(reports), "Energy and latency per inference")


def energy_text(reports: dict, data: dict | None = None) -> str:
    """The same as :func:`energy_html`, as terminal text with the caveat spelled out;
    ``data`` (``energy_reports``' provenance) adds what each dataset's samples were."""
    lines = []
    for name, d in (data or {}).items():
        kind = "SYNTHETIC stand-ins (no data directory)" if d.get("synthetic") else "real data"
        line = f"  {name}: {d.get('samples')} samples, {kind}"
        gains = d.get("cochlea_gain_per_s")
        if gains and len(gains) > 1:
            line += (f", cochlea at {len(gains)} drives (" + ", ".join(f"{g:g}" for g in gains)
                     + " per s): a reservoir pass per drive, one head on both")
        lines.append(line)
    return ("Energy and latency per inference (RRAM co-design vs the same network in digital)\n"
            + text_table(_ENERGY_HEADER, _energy_rows(reports))
            + "".join("\n" + line for line in lines)
            + "\n(per-operation values and their sources: energy_params.toml; "
              "paper's claims: 23.34x / 160x)")


def _sweep_rows(result) -> list:
    from .sweep import nice_value

    rows = []
    for axis, s in result.summary().items():
        for v, m, sd, lo, hi in zip(s["values"], s["mean"], s["std"], s["min"], s["max"]):
            rows.append([axis, nice_value(axis, v), f"{m:.3f} ± {sd:.3f}",
                         f"{lo:.3f} .. {hi:.3f}"])
    return rows


_SWEEP_HEADER = ["axis", "value", "accuracy mean ± std", "min .. max"]


def _sweep_title(result) -> str:
    synthetic = " (SYNTHETIC data)" if result.rows and result.rows[0]["synthetic"] else ""
    return (f"Sweep on {result.spec.dataset}{synthetic}: {len(result.rows)} tasks, "
            f"{len(result.spec.chip_seeds)} chips per setting, {result.spec.metric} readout")


def sweep_html(result) -> str:
    """Mean ± std and range of the accuracy per setting, one row per (axis, value)."""
    return html_table(_SWEEP_HEADER, _sweep_rows(result), _sweep_title(result))


def sweep_text(result) -> str:
    """The same as :func:`sweep_html`, as terminal text."""
    return _sweep_title(result) + "\n" + text_table(_SWEEP_HEADER, _sweep_rows(result))


class _Shown:
    """Wraps an object of another package with an HTML rendering and a plain repr."""

    def __init__(self, obj, html_text: str):
        self.obj = obj
        self._html = html_text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return repr(self.obj)


def _chip_html(chip) -> str:
    info = chip.info()
    rows = [["model", info.model], ["firmware", info.firmware_version],
            ["array", f"{info.rows} x {info.cols}"], ["read voltage", f"{info.read_voltage_v} V"],
            ["ADC", "ideal" if info.adc_bits is None
             else f"{info.adc_bits} bit, LSB {info.adc_lsb_ua:.3g} µA"],
            ["clock", f"{chip.clock_s():.3g} s"],
            ["capabilities", ", ".join(info.capabilities) or "—"]]
    for attr in ("seed", "profile"):
        if hasattr(chip, attr):
            value = getattr(chip, attr)
            rows.append([attr, getattr(value, "name", value)])
    return html_table(["", ""], rows, type(chip).__name__)


def show(obj):
    """Return something Jupyter renders readably: the object itself if it already has
    ``_repr_html_`` (SimMacro, DeviceProfile, results); a chip without one (anything with
    ``info()`` and ``clock_s()``, e.g. SerialMacro) as a table; a dataclass or dict as a
    key/value table; anything else unchanged."""
    if hasattr(obj, "_repr_html_"):
        return obj
    if hasattr(obj, "info") and hasattr(obj, "clock_s"):
        return _Shown(obj, _chip_html(obj))
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif isinstance(obj, dict):
        items = obj
    else:
        return obj

    def fmt(v):
        if isinstance(v, np.ndarray):
            return f"array{v.shape} {v.dtype}"
        return v
    return _Shown(obj, html_table(["", ""], [[k, fmt(v)] for k, v in items.items()],
                                  type(obj).__name__))
