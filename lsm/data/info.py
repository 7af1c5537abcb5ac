"""Summaries of the datasets in a data directory (``rram-lsm data info``)."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from lsm.events.formats import read_bs1
from rram_lsm.errors import DataNotFoundError

from .datasets import EventDataset, open_dataset

__all__ = ["dataset_summary", "reference_summary", "data_info", "format_info",
           "REFERENCE_RECORDING"]

REFERENCE_RECORDING = Path("ntidigits_format") / "NTIDIGITS_1.bs1"
"""The real N-TIDIGITS recording (relative to a data directory) the cochlea is compared to."""


def _stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"min": None, "mean": None, "max": None}
    return {"min": float(np.min(values)), "mean": float(np.mean(values)),
            "max": float(np.max(values))}


def _wav_seconds(path: str) -> float:
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def dataset_summary(ds: EventDataset, progress: bool = True) -> dict:
    """Per split counts (``per_class`` indexed by class id), totals and event statistics.

    Audio datasets also get events per second and active channels per sample (for FSDD
    over the wav's duration, otherwise up to the last event).
    """
    counts = ds.event_counts(progress=progress)
    out = {"synthetic": ds.synthetic, "modality": ds.modality, "n_classes": ds.n_classes,
           "class_names": list(ds.class_names), "total": len(ds)}
    for split, mask in (("train", ~ds.is_test), ("test", ds.is_test)):
        out[split] = {
            "total": int(mask.sum()),
            "per_class": np.bincount(ds.labels[mask], minlength=ds.n_classes).tolist(),
            "events": _stats(counts[mask]),
        }
    out["events"] = _stats(counts)
    if ds.modality == "audio":
        seconds, active = np.zeros(len(ds)), np.zeros(len(ds))
        for i in range(len(ds)):
            ev = ds[i][0]
            active[i] = len(np.unique(ev["x"]))
            path = ds.meta[i].get("path")
            if ds.name == "fsdd" and path:
                seconds[i] = _wav_seconds(path)
            else:
                seconds[i] = (ev["t"].max() + 1) / 1e6 if len(ev) else np.nan
        ok = seconds > 0
        out["events_per_s"] = _stats(counts[ok] / seconds[ok])
        out["events_per_s"]["pooled"] = float(counts[ok].sum() / seconds[ok].sum())
        out["active_channels"] = _stats(active)
    return out


def reference_summary(path: Path) -> dict:
    """Events/s and active channels of the real ``.bs1`` recording."""
    ev = read_bs1(path)
    seconds = (ev["t"].max() + 1) / 1e6 if len(ev) else float("nan")
    return {"path": str(path), "events": len(ev), "duration_s": float(seconds),
            "events_per_s": float(len(ev) / seconds), "active_channels":
            int(len(np.unique(ev["x"])))}


def data_info(data_dir, progress: bool = True) -> dict:
    """Summaries of nmnist, fsdd and (if present) ntidigits in ``data_dir``.

    ``data_dir=None`` describes the synthetic stand-ins. nmnist and fsdd are always
    reported: a dataset missing from ``data_dir`` falls back to synthetic with a ``note``.
    ntidigits appears with ``available: false`` when absent.
    """
    out: dict = {"data_dir": None if data_dir is None else str(data_dir)}
    totals = {}
    for name in ("nmnist", "fsdd", "ntidigits"):
        try:
            ds = open_dataset(name, data_dir)
            note = None
        except DataNotFoundError as exc:
            if name == "ntidigits":
                out[name] = {"available": False, "note": str(exc).splitlines()[0]}
                continue
            ds = open_dataset(name, None)
            note = f"{str(exc).splitlines()[0]}; using synthetic data instead"
        summary = {"available": True, **dataset_summary(ds, progress=progress)}
        if note:
            summary["note"] = note
        out[name] = summary
        totals[name] = len(ds)
    if data_dir is not None and (Path(data_dir) / REFERENCE_RECORDING).is_file():
        out["reference_recording"] = reference_summary(Path(data_dir) / REFERENCE_RECORDING)
    out["totals"] = {"per_dataset": totals, "samples": int(sum(totals.values()))}
    return out


def format_info(info: dict) -> str:
    """Readable table of :func:`data_info`'s result."""
    lines = [f"data directory: {info['data_dir'] or '(none: synthetic data)'}"]
    for name in ("nmnist", "fsdd", "ntidigits"):
        d = info.get(name)
        if d is None:
            continue
        if not d.get("available"):
            lines.append(f"\n{name}: not available ({d.get('note')})")
            continue
        kind = "SYNTHETIC" if d["synthetic"] else "real"
        lines.append(f"\n{name} ({kind}, {d['modality']}, {d['n_classes']} classes, "
                     f"{d['total']} samples)")
        if d.get("note"):
            lines.append(f"  note: {d['note']}")
        width = max(len(c) for c in d["class_names"])
        lines.append("  " + "class".ljust(width + 5) + "train   test")
        for c, cname in enumerate(d["class_names"]):
            lines.append(f"  {c:>2} {cname:<{width}}  {d['train']['per_class'][c]:>5}  "
                         f"{d['test']['per_class'][c]:>5}")
        lines.append("  " + "total".ljust(width + 3) + f"  {d['train']['total']:>5}  "
                     f"{d['test']['total']:>5}")
        e = d["events"]
        lines.append(f"  events/sample: min {e['min']:.0f}  mean {e['mean']:.1f}  "
                     f"max {e['max']:.0f}")
        if "events_per_s" in d:
            lines.append(f"  events/s: mean {d['events_per_s']['mean']:.0f} (pooled "
                         f"{d['events_per_s']['pooled']:.0f}); active channels: mean "
                         f"{d['active_channels']['mean']:.1f}")
    ref = info.get("reference_recording")
    if ref:
        lines.append(f"\nreal N-TIDIGITS recording {ref['path']}: {ref['events']} events in "
                     f"{ref['duration_s']:.2f} s = {ref['events_per_s']:.0f} events/s, "
                     f"{ref['active_channels']} active channels")
    lines.append(f"\ntotal samples: {info['totals']['samples']}")
    return "\n".join(lines)
