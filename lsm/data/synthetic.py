"""Seeded synthetic event digits, in the same dtypes as the real readers.

Used when no data directory is given, so demos and tests run on a fresh machine; every
dataset built from them has ``synthetic = True``. They are learnable, not realistic:

* vision: a seven-segment glyph per class (segments jittered per sample) drawn on the
  34 x 34 sensor and moved along N-MNIST's three-saccade triangle (100 ms per saccade);
  pixels that light up give ON events, pixels that go dark OFF events, at 1 ms resolution
  with jittered timestamps, plus sparse background noise;
* audio: per class, three formant-like tracks (start and end channel drawn from the seed)
  over 64 channels; a sample time-warps and shifts them and draws Poisson events per 1 ms
  bin around the tracks, about 800 events/s in total like the real cochlea recording.

Each sample has its own generator, ``default_rng([seed, stream, class, index])``, so a
sample does not change when the number of samples does.
"""
from __future__ import annotations

import numpy as np

from lsm.events.formats import NMNIST_SENSOR, VISION_EVENT_DTYPE, audio_events

__all__ = ["synthetic_vision_sample", "synthetic_audio_sample", "SEGMENTS"]

_VISION_STREAM, _AUDIO_STREAM, _PROTO_STREAM = 1, 2, 3

# segments a..g of a seven-segment display, per digit 0-9
SEGMENTS = ("abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg",
            "abcdfg")
"""Lit segments (a top, b upper right, c lower right, d bottom, e lower left, f upper left,
g middle) of the glyph of each vision class."""

_GLYPH_W, _GLYPH_H = 10, 16
_SEGMENT_ENDS = {  # (x0, y0, x1, y1) in glyph box units
    "a": (0, 0, 1, 0), "b": (1, 0, 1, 0.5), "c": (1, 0.5, 1, 1), "d": (0, 1, 1, 1),
    "e": (0, 0.5, 0, 1), "f": (0, 0, 0, 0.5), "g": (0, 0.5, 1, 0.5),
}
_SACCADE_MS = 100
_SACCADE_PX = ((0.0, 0.0), (3.0, 3.0), (-3.0, 3.0), (0.0, 0.0))


def _glyph(label: int, rng: np.random.Generator) -> np.ndarray:
    w, h = NMNIST_SENSOR
    img = np.zeros((h, w), dtype=bool)
    ox, oy = (w - _GLYPH_W) / 2 - 1.5, (h - _GLYPH_H) / 2 - 1.5
    thick = rng.integers(1, 3)
    for seg in SEGMENTS[label % len(SEGMENTS)]:
        x0, y0, x1, y1 = _SEGMENT_ENDS[seg]
        ends = np.array([x0 * _GLYPH_W + ox, y0 * _GLYPH_H + oy, x1 * _GLYPH_W + ox,
                         y1 * _GLYPH_H + oy]) + rng.normal(0.0, 0.6, 4)
        s = np.linspace(0.0, 1.0, 40)
        xs = np.rint(ends[0] + s * (ends[2] - ends[0])).astype(int)
        ys = np.rint(ends[1] + s * (ends[3] - ends[1])).astype(int)
        for d in range(thick):
            img[np.clip(ys + d, 0, h - 1), np.clip(xs, 0, w - 1)] = True
            img[np.clip(ys, 0, h - 1), np.clip(xs + d, 0, w - 1)] = True
    return img


def synthetic_vision_sample(label: int, index: int, seed: int = 0) -> np.ndarray:
    """One synthetic N-MNIST-like recording (:data:`VISION_EVENT_DTYPE`, ~300 ms)."""
    rng = np.random.default_rng([seed, _VISION_STREAM, label, index])
    img = _glyph(label, rng)
    pad = 4
    padded = np.pad(img, pad)
    n_ms = _SACCADE_MS * (len(_SACCADE_PX) - 1)
    ms = np.arange(n_ms + 1)
    leg = np.minimum(ms // _SACCADE_MS, len(_SACCADE_PX) - 2)
    frac = (ms - leg * _SACCADE_MS) / _SACCADE_MS
    way = np.array(_SACCADE_PX)
    pos = way[leg] + frac[:, None] * (way[leg + 1] - way[leg])
    shift = np.rint(pos).astype(int)
    h, w = img.shape
    xs, ys, ts, ps = [], [], [], []
    prev = img
    for m in range(1, n_ms + 1):
        if np.array_equal(shift[m], shift[m - 1]):
            continue
        dx, dy = shift[m]
        cur = padded[pad - dy:pad - dy + h, pad - dx:pad - dx + w]
        for pol, changed in ((True, cur & ~prev), (False, prev & ~cur)):
            y, x = np.nonzero(changed)
            reps = rng.integers(1, 4, len(x))  # a moving edge fires a pixel a few times
            xs.append(np.repeat(x, reps))
            ys.append(np.repeat(y, reps))
            ts.append(m * 1000 + rng.integers(0, 3000, reps.sum()))
            ps.append(np.full(reps.sum(), pol))
        prev = cur
    n_noise = rng.poisson(40)
    xs.append(rng.integers(0, w, n_noise))
    ys.append(rng.integers(0, h, n_noise))
    ts.append(rng.integers(0, n_ms * 1000, n_noise))
    ps.append(rng.random(n_noise) < 0.5)
    t = np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    ev = np.empty(len(t), dtype=VISION_EVENT_DTYPE)
    ev["x"] = np.concatenate(xs)[order]
    ev["y"] = np.concatenate(ys)[order]
    ev["t"] = t[order]
    ev["p"] = np.concatenate(ps)[order]
    return ev


def _formants(label: int, seed: int, n_channels: int) -> np.ndarray:
    rng = np.random.default_rng([seed, _PROTO_STREAM, label])
    bands = np.array([[0.05, 0.35], [0.3, 0.65], [0.6, 0.95]]) * (n_channels - 1)
    start = rng.uniform(bands[:, 0], bands[:, 1])
    end = rng.uniform(bands[:, 0], bands[:, 1])
    return np.stack([start, end], axis=1)  # (3 formants, start/end channel)


def synthetic_audio_sample(label: int, index: int, seed: int = 0, n_channels: int = 64,
                           rate_per_s: float = 800.0) -> np.ndarray:
    """One synthetic cochlea recording (:data:`AUDIO_EVENT_DTYPE`), 0.35-0.6 s long."""
    proto = _formants(label, seed, n_channels)
    rng = np.random.default_rng([seed, _AUDIO_STREAM, label, index])
    n_ms = int(rng.integers(350, 600))
    ms = np.arange(n_ms)
    on, off = int(0.1 * n_ms), int(0.9 * n_ms)
    s = np.clip((ms - on) / max(off - on, 1), 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    track = proto[:, 0, None] + s[None, :] * (proto[:, 1] - proto[:, 0])[:, None]
    track = track + rng.normal(0.0, 1.0)
    ch = np.arange(n_channels)
    shape = np.exp(-0.5 * ((ch[None, None, :] - track[:, :, None]) / 2.0) ** 2).sum(axis=0)
    voiced = (ms >= on) & (ms < off)
    shape[~voiced] = 0.0
    lam = shape * (rate_per_s * n_ms / 1000.0 / max(shape.sum(), 1e-12))
    counts = rng.poisson(lam)
    t_ms, c = np.nonzero(counts)
    reps = counts[t_ms, c]
    t = np.repeat(t_ms, reps) * 1000 + rng.integers(0, 1000, reps.sum())
    return audio_events(np.repeat(c, reps), t)
