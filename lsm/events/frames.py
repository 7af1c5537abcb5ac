"""Events -> binary spike rasters ``(T, n_inputs)`` uint8 for the reservoir.

Index arithmetic is vectorised numpy over events (no per-event Python), and the same
functions serve one sample or a whole dataset concatenated (``sample`` index per event), so
a batch is a single fancy-indexed assignment.

Time origin is t = 0 (the start of the recording) and the span is the recording's last
event time (before any crop or polarity filter, so every crop of a sample shares one time
axis) unless ``duration_us`` fixes it. Differences from tonic's ``ToFrame(n_time_bins=T)``,
which are deliberate and tested: tonic's bins start at the first event, have width
``(t_last - t_first) // T`` (integer floor), and so drop the events of the floor's remainder
including every event at ``t_last``; ours keep every event. Tonic's ``CenterCrop`` stores the
size back into ``self`` on first call and pads silently when the crop exceeds the sensor;
ours is a pure function and rejects an oversize crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rram_lsm.errors import ConfigError

from .formats import NMNIST_SENSOR, check_fields
from .kernels.denoise import denoise_mask

__all__ = ["VisionRasterConfig", "AudioRasterConfig", "vision_raster", "audio_raster",
           "vision_indices", "audio_indices", "POLARITIES"]

POLARITIES = ("on", "off", "merge", "both")


@dataclass(frozen=True)
class VisionRasterConfig:
    """Preprocessing of vision events into a ``(n_steps, n_inputs)`` raster."""

    crop_px: tuple[int, int] = (16, 16)
    """Centre crop (width, height) in pixels; offset ``(sensor - crop) // 2`` per axis."""
    polarity: str = "on"
    """"on" (p = True only, the paper's single polarity), "off", "merge" (either polarity
    sets the same input) or "both" (OFF inputs first, then ON: doubles ``n_inputs``)."""
    n_steps: int = 50
    """Number of equal time bins over the span (T)."""
    sensor_px: tuple[int, int] = NMNIST_SENSOR
    """Sensor (width, height) in pixels."""
    duration_us: int | None = None
    """Span of the bins in µs from t = 0; None: each recording's last event time. Events
    after a fixed span are dropped."""
    denoise_us: int | None = None
    """Background-activity filter window in µs (tonic's ``Denoise(filter_time)``, applied on
    the full sensor before the crop); None: off."""

    def __post_init__(self):
        if self.denoise_us is not None and self.denoise_us < 1:
            raise ConfigError(f"denoise_us must be >= 1 or None, got {self.denoise_us}")
        if self.polarity not in POLARITIES:
            raise ConfigError(f"polarity must be one of {POLARITIES}, got {self.polarity!r}")
        if self.n_steps < 1:
            raise ConfigError(f"n_steps must be >= 1, got {self.n_steps}")
        for c, s, axis in zip(self.crop_px, self.sensor_px, "xy"):
            if not 1 <= c <= s:
                raise ConfigError(f"crop {self.crop_px} does not fit the sensor "
                                  f"{self.sensor_px} along {axis}")
        if self.duration_us is not None and self.duration_us < 1:
            raise ConfigError(f"duration_us must be >= 1 or None, got {self.duration_us}")

    @property
    def n_inputs(self) -> int:
        """Inputs per step: crop width x height (x 2 for polarity "both")."""
        n = self.crop_px[0] * self.crop_px[1]
        return 2 * n if self.polarity == "both" else n

    @property
    def offset_px(self) -> tuple[int, int]:
        """(x, y) of the crop's top-left corner on the sensor."""
        return ((self.sensor_px[0] - self.crop_px[0]) // 2,
                (self.sensor_px[1] - self.crop_px[1]) // 2)


@dataclass(frozen=True)
class AudioRasterConfig:
    """Preprocessing of audio events: ``bin_us`` bins, then ``n_steps`` chunks, binarised.

    As in the paper: 1 ms bins over the recording, split into T = 129 chunks of (nearly)
    equal numbers of bins with ``np.array_split``'s rule (the first ``n_bins % T`` chunks
    get one bin more); a chunk is 1 on a channel when any of its bins had an event.
    Recordings shorter than T bins leave the last chunks empty.
    """

    n_channels: int = 64
    """Cochlea channels (inputs per step)."""
    bin_us: int = 1000
    """Width of the first-stage bins in µs."""
    n_steps: int = 129
    """Number of chunks (T)."""
    duration_us: int | None = None
    """Span from t = 0 in µs; None: each recording's last event time. Later events are
    dropped."""

    def __post_init__(self):
        if self.n_channels < 1 or self.bin_us < 1 or self.n_steps < 1:
            raise ConfigError("n_channels, bin_us and n_steps must all be >= 1")
        if self.duration_us is not None and self.duration_us < 1:
            raise ConfigError(f"duration_us must be >= 1 or None, got {self.duration_us}")

    @property
    def n_inputs(self) -> int:
        """Inputs per step: one per channel."""
        return self.n_channels


def _span(t: np.ndarray, sample: np.ndarray, n_samples: int, duration_us) -> np.ndarray:
    """Per-event span in µs: the fixed duration or the last event time of its sample."""
    if duration_us is not None:
        return np.full(len(t), duration_us, dtype=np.int64)
    last = np.zeros(n_samples, dtype=np.int64)
    np.maximum.at(last, sample, t)
    return last[sample]


def _denoise(events, sample, config: VisionRasterConfig) -> np.ndarray:
    if len(sample) > 1 and np.any(np.diff(sample) < 0):
        raise ConfigError("denoising a batch needs each sample's events contiguous")
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    w, h = config.sensor_px
    if len(x) and (x.min() < 0 or y.min() < 0 or x.max() >= w or y.max() >= h):
        raise ConfigError(f"events outside the {w} x {h} sensor cannot be denoised")
    return denoise_mask(x, y, events["t"].astype(np.int64), sample, int(config.denoise_us),
                        w, h)


def vision_indices(events: np.ndarray, config: VisionRasterConfig,
                   sample: np.ndarray | None = None, n_samples: int = 1):
    """``(keep, step, channel)`` per event: a mask and the raster indices of kept events.

    ``sample`` (int64 per event) groups a concatenated batch; None means one sample.
    Channel = ``y * crop_w + x`` after the crop (plus ``crop_w * crop_h`` for ON events
    under polarity "both").
    """
    check_fields(events, ("x", "y", "t", "p"), "a vision raster")
    t = events["t"].astype(np.int64)
    if sample is None:
        sample = np.zeros(len(t), dtype=np.int64)
    span = _span(t, sample, n_samples, config.duration_us)
    x0, y0 = config.offset_px
    w, h = config.crop_px
    x = events["x"].astype(np.int64) - x0
    y = events["y"].astype(np.int64) - y0
    p = events["p"].astype(bool)
    keep = (x >= 0) & (x < w) & (y >= 0) & (y < h) & (t >= 0) & (t <= span)
    if config.denoise_us is not None:
        keep &= _denoise(events, sample, config)
    if config.polarity == "on":
        keep &= p
    elif config.polarity == "off":
        keep &= ~p
    channel = y * w + x
    if config.polarity == "both":
        channel = channel + p * (w * h)
    # span + 1 so that the event at the last time lands in the last bin, not past it
    step = (t * config.n_steps) // (span + 1)
    return keep, step[keep], channel[keep]


def audio_indices(events: np.ndarray, config: AudioRasterConfig,
                  sample: np.ndarray | None = None, n_samples: int = 1):
    """``(keep, step, channel)`` per event for an audio raster; see :class:`AudioRasterConfig`."""
    check_fields(events, ("x", "t"), "an audio raster")
    t = events["t"].astype(np.int64)
    if sample is None:
        sample = np.zeros(len(t), dtype=np.int64)
    span = _span(t, sample, n_samples, config.duration_us)
    ch = events["x"].astype(np.int64)
    keep = (ch >= 0) & (ch < config.n_channels) & (t >= 0) & (t <= span)
    n_bins = span // config.bin_us + 1
    b = t // config.bin_us
    q, r = np.divmod(n_bins, config.n_steps)
    # chunk of bin b under np.array_split(range(n_bins), T): the first r chunks hold q + 1
    big = r * (q + 1)
    step = np.where(b < big, b // (q + 1), r + (b - big) // np.maximum(q, 1))
    return keep, step[keep], ch[keep]


def _raster(indices, events, config, sample=None, n_samples=1) -> np.ndarray:
    out = np.zeros((n_samples, config.n_steps, config.n_inputs), dtype=np.uint8)
    keep, step, channel = indices(events, config, sample, n_samples)
    s = np.zeros(len(step), np.int64) if sample is None else sample[keep]
    out[s, step, channel] = 1
    return out


def vision_raster(events: np.ndarray, config: VisionRasterConfig | None = None,
                  sample: np.ndarray | None = None, n_samples: int = 1) -> np.ndarray:
    """Binary raster of vision events: ``(n_steps, n_inputs)`` uint8, or
    ``(n_samples, n_steps, n_inputs)`` when ``sample`` groups a concatenated batch."""
    config = config or VisionRasterConfig()
    out = _raster(vision_indices, events, config, sample, n_samples)
    return out if sample is not None else out[0]


def audio_raster(events: np.ndarray, config: AudioRasterConfig | None = None,
                 sample: np.ndarray | None = None, n_samples: int = 1) -> np.ndarray:
    """Binary raster of audio events: ``(n_steps, n_channels)`` uint8 (batched like
    :func:`vision_raster`)."""
    config = config or AudioRasterConfig()
    out = _raster(audio_indices, events, config, sample, n_samples)
    return out if sample is not None else out[0]
