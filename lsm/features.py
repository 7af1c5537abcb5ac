"""Reservoir features: spike counts (the paper's), windowed counts, first-spike time, membrane.

Time windows come in two kinds. ``windowed`` cuts the T steps of every sample alike.
``span`` cuts each sample's *active span* (its first to its last input event) into equal
parts instead: a spoken digit said slowly and one said fast then fill the same windows,
so the order of sounds is kept while the speaking rate and the silence around the word
are factored out (the normalisation dynamic time warping does by alignment, here linear).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rram_lsm.errors import ConfigError, DataError, ShapeError

__all__ = ["FEATURE_KINDS", "INPUT_KIND", "INPUT_KINDS", "WINDOWED_KINDS", "Features",
           "spike_features", "input_features", "active_span", "span_rates"]

FEATURE_KINDS = ("counts", "windowed", "span", "first_spike", "membrane")
INPUT_KIND = "input"
"""Not a reservoir feature: the input raster's rate per input row, with the reservoir
bypassed. An ablation: it shows what the reservoir adds to (or loses from) its input."""
INPUT_KINDS = (INPUT_KIND, "input_span")
"""Features of the input rasters themselves: ``input`` (rate per input row) and
``input_span`` (the same in each window of the active span)."""


WINDOWED_KINDS = ("windowed", "span", "input_span")
"""Kinds whose width and values depend on ``n_windows``."""
_SPAN_BLOCK = 64
"""Samples whose cumulative counts :func:`span_rates` holds at once."""


def active_span(rasters: np.ndarray) -> np.ndarray:
    """int64 (N, 2): the steps ``[first, last + 1)`` in which each binary raster
    (N, T, n_inputs) has any input event; ``[0, T)`` for a raster without one."""
    r = np.asarray(rasters)
    if r.ndim != 3:
        raise ShapeError(f"rasters must be (N, T, n_inputs), got shape {r.shape}")
    active = r.any(axis=2)
    n_steps = r.shape[1]
    has = active.any(axis=1)
    first = np.where(has, active.argmax(axis=1), 0)
    last = np.where(has, n_steps - active[:, ::-1].argmax(axis=1), n_steps)
    return np.stack([first, last], axis=1).astype(np.int64)


def span_rates(x: np.ndarray, span: np.ndarray, n_windows: int) -> np.ndarray:
    """float32 (N, n_windows * n): events per row and step of ``x`` (N, T, n) in each of
    ``n_windows`` equal parts of every sample's ``span`` (N, 2), window-major. A span
    shorter than ``n_windows`` steps gives each empty part the one step at its start."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ShapeError(f"x must be (N, T, n), got shape {x.shape}")
    n_samples, n_steps, _ = x.shape
    span = np.asarray(span, np.int64)
    if span.shape != (n_samples, 2):
        raise ShapeError(f"span must be ({n_samples}, 2), got {span.shape}")
    if not 1 <= n_windows <= n_steps:
        raise ConfigError(f"n_windows must be in [1, T={n_steps}], got {n_windows}")
    if n_samples and ((span[:, 0] < 0) | (span[:, 0] >= span[:, 1]) |
                      (span[:, 1] > n_steps)).any():
        raise ConfigError(f"every span must be steps [first, last + 1) within [0, "
                          f"T={n_steps}], first < last + 1 (active_span gives them)")
    frac = np.linspace(0.0, 1.0, n_windows + 1)
    edges = np.rint(span[:, :1] + frac * (span[:, 1:] - span[:, :1])).astype(np.int64)
    lo = np.minimum(edges[:, :-1], n_steps - 1)
    hi = np.minimum(np.maximum(edges[:, 1:], lo + 1), n_steps)
    out = np.empty((n_samples, n_windows, x.shape[2]), np.float32)
    # cumulative counts turn every window into two lookups; a block of samples at a time
    # keeps the (block, T, n) int32 sums small for wide reservoirs
    for a in range(0, n_samples, _SPAN_BLOCK):
        b = min(a + _SPAN_BLOCK, n_samples)
        cum = np.zeros((b - a, n_steps + 1, x.shape[2]), np.int32)
        np.cumsum(x[a:b], axis=1, dtype=np.int32, out=cum[:, 1:])
        rows = np.arange(b - a)[:, None]
        counts = cum[rows, hi[a:b]] - cum[rows, lo[a:b]]         # (block, n_windows, n)
        out[a:b] = counts / (hi[a:b] - lo[a:b])[:, :, None]
    return out.reshape(n_samples, -1)


def spike_features(spikes: np.ndarray, kind: str = "counts", *, v_final=None,
                   n_windows: int = 5, span=None) -> np.ndarray:
    """Turn spikes uint8 (N, T, n) into float32 features (N, F).

    * ``counts``: spikes per neuron divided by T (the paper's rate feature), F = n.
    * ``windowed``: the same per each of ``n_windows`` consecutive time windows (near-equal
      lengths), F = n_windows * n, window-major.
    * ``span``: the same over ``n_windows`` equal parts of each sample's active input span
      ``span`` (N, 2), from :func:`active_span` of its input rasters; F = n_windows * n.
    * ``first_spike``: step of each neuron's first spike divided by T; 1.0 if it never
      spiked, F = n.
    * ``membrane``: the final membrane ``v_final`` (N, n) as given, F = n.
    """
    if kind not in FEATURE_KINDS:
        raise ConfigError(f"feature kind must be one of {FEATURE_KINDS}, got {kind!r}")
    s = np.asarray(spikes)
    if s.ndim != 3:
        raise ShapeError(f"spikes must be (N, T, n_neurons), got shape {s.shape}")
    n_samples, n_steps, n = s.shape
    if kind == "counts":
        return (s.sum(axis=1, dtype=np.int32) / n_steps).astype(np.float32)
    if kind == "windowed":
        if not 1 <= n_windows <= n_steps:
            raise ConfigError(f"n_windows must be in [1, T={n_steps}], got {n_windows}")
        edges = np.linspace(0, n_steps, n_windows + 1).round().astype(int)
        parts = [s[:, a:b].sum(axis=1, dtype=np.int32) / (b - a)
                 for a, b in zip(edges[:-1], edges[1:])]
        return np.concatenate(parts, axis=1).astype(np.float32)
    if kind == "span":
        if span is None:
            raise ConfigError("span features need each sample's active span "
                              "(active_span of its input rasters)")
        return span_rates(s, span, n_windows)
    if kind == "first_spike":
        any_spike = s.any(axis=1)
        first = np.where(any_spike, s.argmax(axis=1), n_steps)
        return (first / n_steps).astype(np.float32)
    if v_final is None:
        raise ConfigError("membrane features need the final membrane (run with "
                          "return_membrane=True on a local path)")
    v = np.asarray(v_final)
    if v.shape != (n_samples, n):
        raise ShapeError(f"v_final must be {(n_samples, n)}, got {v.shape}")
    return v.astype(np.float32)


def input_features(rasters: np.ndarray, kind: str = INPUT_KIND, *,
                   n_windows: int = 5) -> np.ndarray:
    """Features of binary rasters (N, T, n_inputs) with the reservoir bypassed, float32:
    ``input``, input spikes per row divided by T (N, n_inputs), the counts feature of the
    reservoir's input instead of its neurons; ``input_span``, the same in each of
    ``n_windows`` parts of the active span (N, n_windows * n_inputs), as ``span``."""
    r = np.asarray(rasters)
    if r.ndim != 3:
        raise ShapeError(f"rasters must be (N, T, n_inputs), got shape {r.shape}")
    if kind not in INPUT_KINDS:
        raise ConfigError(f"input feature kind must be one of {INPUT_KINDS}, got {kind!r}")
    if kind == "input_span":
        return span_rates(r, active_span(r), n_windows)
    return (r.sum(axis=1, dtype=np.int32) / max(r.shape[1], 1)).astype(np.float32)


@dataclass(frozen=True)
class Features:
    """Encoded dataset: one feature row per sample, with labels, split and provenance."""

    values: np.ndarray
    """float32 (N, F) feature matrix."""
    labels: np.ndarray
    """int64 (N,) class ids."""
    is_test: np.ndarray
    """bool (N,): True for the dataset's official test split."""
    meta: dict = field(default_factory=dict)
    """Provenance: dataset, synthetic, fingerprint, lsm config, chip seed, profile, backend,
    path, kind, forming record, firing rate."""

    def __post_init__(self):
        n = len(self.values)
        if self.values.ndim != 2 or len(self.labels) != n or len(self.is_test) != n:
            raise ShapeError(
                f"Features needs values (N, F), labels (N,), is_test (N,); got "
                f"{self.values.shape}, {np.shape(self.labels)}, {np.shape(self.is_test)}")

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return (f"Features({self.meta.get('dataset', '?')}: {self.values.shape[0]} x "
                f"{self.values.shape[1]}, kind={self.meta.get('kind', '?')}, "
                f"test={int(self.is_test.sum())}, synthetic={self.meta.get('synthetic')})")

    def subset(self, mask) -> "Features":
        """Rows selected by a boolean mask or index array (meta is shared)."""
        return Features(self.values[mask], self.labels[mask], self.is_test[mask], self.meta)

    def save(self, path) -> Path:
        """Write an ``.npz`` (arrays + meta as JSON) crash-safely (a killed process leaves
        the old file or the complete new one, never part of one); returns the path."""
        from rram_lsm.records import atomic_write

        return atomic_write(path, self.write)

    def write(self, fh) -> None:
        """Write the ``.npz`` bytes to the open binary file ``fh`` (what :meth:`save` puts
        in its temporary file)."""
        from rram_lsm.records import to_jsonable

        np.savez(fh, values=self.values, labels=self.labels, is_test=self.is_test,
                 meta=np.array(json.dumps(to_jsonable(self.meta))))

    @classmethod
    def load(cls, path) -> "Features":
        """Read a file written by :meth:`save`; DataError for anything else (a truncated,
        corrupt or foreign file)."""
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as z:
                feats = cls(z["values"], z["labels"].astype(np.int64),
                            z["is_test"].astype(bool), json.loads(str(z["meta"])))
        except (OSError, KeyError, ValueError, TypeError, EOFError,
                zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable Features file ({exc}); delete it to "
                            "re-encode") from exc
        if not isinstance(feats.meta, dict) or feats.values.dtype.kind != "f":
            raise DataError(f"{path}: not a Features file (values {feats.values.dtype}, "
                            f"meta {type(feats.meta).__name__}); delete it to re-encode")
        return feats
