"""Silicon-cochlea front end: wav audio -> N-TIDIGITS-like events (:data:`AUDIO_EVENT_DTYPE`).

Design (a software stand-in for the CochleaAMS sensor that recorded N-TIDIGITS):

1. level normalisation: the signal is scaled to unit RMS over its loud part (samples above
   ``gate_rel`` of the peak), so loud and quiet speakers drive the cochlea alike, as the
   sensor's gain control does;
2. ``n_channels`` gammatone band-pass filters (4th order, bandwidth 1.019 ERB, Glasberg &
   Moore) with centre frequencies log-spaced from ``f_low_hz`` to ``f_high_hz``; channel 0
   is the lowest;
3. inner hair cell: half-wave rectification and power-law compression ``r ** exponent``;
4. one leaky integrate-and-fire neuron per channel with a refractory period; every spike
   is an ON event (the real recording has only p = 1 events).

Deterministic: no noise source; the same wav gives the same events on any thread count.
Default gain calibrated on FSDD so that a recording of one spoken digit yields as many
events as the real recording ``NTIDIGITS_1.bs1`` (898): events per utterance, not events
per second, because that recording is mostly silence around a ~0.12 s digit while FSDD
files are trimmed; docs/data.md has the measured figures.
"""
from __future__ import annotations

import os
import wave
from dataclasses import dataclass

import numpy as np

from rram_lsm.errors import ConfigError, EventFileError

from .formats import AUDIO_EVENT_DTYPE, audio_events
from .kernels.cochlea import cochlea_spikes

__all__ = ["CochleaConfig", "CALIBRATED_GAINS", "cochlea_events", "centre_frequencies_hz",
           "read_wav", "speech_event_rate"]

CALIBRATED_GAINS = {"utterance": 875.0, "speech": 1750.0}
"""``gain_per_s`` of the two calibrations on the one real N-TIDIGITS recording (docs/data.md;
``docs/results/zeroshot/cochlea_gain.py`` measures both): ``utterance`` (the default)
matches its events per spoken digit (898), ``speech`` its event rate while the digit
sounds (7,425 events/s over its loud 20 ms bins, :func:`speech_event_rate`)."""


@dataclass(frozen=True)
class CochleaConfig:
    """Parameters of the silicon-cochlea model (see the module docstring)."""

    n_channels: int = 64
    """Number of band-pass channels."""
    f_low_hz: float = 100.0
    """Centre frequency of channel 0, in Hz."""
    f_high_hz: float = 3800.0
    """Centre frequency of the last channel, in Hz (must stay below Nyquist)."""
    order: int = 4
    """Gammatone filter order."""
    bandwidth_erb: float = 1.019
    """Filter bandwidth in units of the equivalent rectangular bandwidth (ERB)."""
    exponent: float = 0.3
    """Power-law compression exponent of the hair cell (dimensionless)."""
    gain_per_s: float = CALIBRATED_GAINS["utterance"]
    """Integrate-and-fire drive: threshold crossings per second for unit compressed input
    (875: FSDD's mean events per recording match the real recording's 898;
    :data:`CALIBRATED_GAINS`)."""
    leak_tau_s: float = 0.005
    """Membrane leak time constant in seconds (sets the quiet-sound floor)."""
    refractory_s: float = 0.002
    """Refractory period after each spike in seconds."""
    gate_rel: float = 0.1
    """Samples above this fraction of the peak define the loud part used for the RMS."""

    def __post_init__(self):
        if self.n_channels < 1 or self.order < 1:
            raise ConfigError("n_channels and order must be >= 1")
        if not 0 < self.f_low_hz < self.f_high_hz:
            raise ConfigError(f"need 0 < f_low_hz < f_high_hz, got {self.f_low_hz}, "
                              f"{self.f_high_hz}")
        for name in ("bandwidth_erb", "exponent", "gain_per_s", "leak_tau_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.refractory_s < 0 or not 0 <= self.gate_rel < 1:
            raise ConfigError("need refractory_s >= 0 and 0 <= gate_rel < 1")


def speech_event_rate(t_us: np.ndarray, bin_s: float = 0.02, rel: float = 0.1) -> float:
    """Events per second of one recording while it sounds: over its ``bin_s`` bins that
    hold at least ``rel`` of the fullest bin's events (the silence around a word left
    out). ``t_us``: event timestamps in µs; 0 for no events."""
    t = np.asarray(t_us)
    if not bin_s > 0 or not 0 < rel <= 1:
        raise ConfigError(f"need bin_s > 0 and 0 < rel <= 1, got {bin_s}, {rel}")
    if len(t) == 0:
        return 0.0
    counts = np.bincount(((t - t.min()) / (bin_s * 1e6)).astype(np.int64))
    loud = counts >= rel * counts.max()
    return float(counts[loud].sum() / (loud.sum() * bin_s))


def centre_frequencies_hz(config: CochleaConfig) -> np.ndarray:
    """Log-spaced centre frequencies (Hz), lowest first."""
    return np.geomspace(config.f_low_hz, config.f_high_hz, config.n_channels)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Read a PCM wav (8/16/32-bit, any channels: averaged) -> (float64 in [-1, 1], Hz)."""
    try:
        with wave.open(os.fspath(path), "rb") as w:
            n_ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), \
                w.getnframes()
            data = w.readframes(n)
    except FileNotFoundError as exc:
        raise EventFileError("file not found", path) from exc
    except (wave.Error, EOFError) as exc:
        # EOFError carries no message: a file that ends inside its header
        raise EventFileError(f"not a PCM wav file ({str(exc) or 'it ends inside its header'})",
                             path) from exc
    if width not in (1, 2, 4):
        raise EventFileError(f"unsupported sample width {width} bytes (8/16/32-bit PCM)", path)
    usable = len(data) - len(data) % (width * n_ch)
    if usable < n * width * n_ch:
        # a truncated data chunk runs to the end of the file, so it starts len(data) before
        data_start = os.path.getsize(path) - len(data)
        raise EventFileError(f"truncated: header says {n} frames, data holds "
                             f"{usable // (width * n_ch)}", path, data_start + usable)
    if width == 1:
        x = (np.frombuffer(data[:usable], np.uint8).astype(np.float64) - 128.0) / 128.0
    else:
        dt = np.int16 if width == 2 else np.int32
        x = np.frombuffer(data[:usable], dt).astype(np.float64) / float(2 ** (8 * width - 1))
    return x.reshape(-1, n_ch).mean(axis=1), float(rate)


def cochlea_events(signal: np.ndarray, sample_rate_hz: float,
                   config: CochleaConfig | None = None) -> np.ndarray:
    """Convert a mono signal to cochlea events, sorted by time then channel.

    Timestamps are the spiking sample's time, rounded to the µs.
    """
    config = config or CochleaConfig()
    if config.f_high_hz >= sample_rate_hz / 2:
        raise ConfigError(f"f_high_hz {config.f_high_hz} must lie below Nyquist "
                          f"({sample_rate_hz / 2} Hz) of this signal")
    x = np.ascontiguousarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ConfigError(f"signal must be 1-D (mono), got shape {x.shape}")
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if not peak > 0:
        return np.zeros(0, dtype=AUDIO_EVENT_DTYPE)
    loud = x[np.abs(x) >= config.gate_rel * peak]
    x = x / np.sqrt(np.mean(loud ** 2))
    fc = centre_frequencies_hz(config)
    erb = 24.7 * (4.37 * fc / 1000.0 + 1.0)
    ref_n = max(1, int(round(config.refractory_s * sample_rate_hz)))
    cap = len(x) // ref_n + 1
    counts = np.zeros(config.n_channels, dtype=np.int64)
    idx = np.empty((config.n_channels, cap), dtype=np.int64)
    cochlea_spikes(x, float(sample_rate_hz), fc, config.bandwidth_erb * erb, config.order,
                   config.exponent, config.gain_per_s, config.leak_tau_s,
                   config.refractory_s, counts, idx)
    ch = np.repeat(np.arange(config.n_channels), counts)
    samples = np.concatenate([idx[c, :counts[c]] for c in range(config.n_channels)])
    return audio_events(ch, np.rint(samples * (1e6 / sample_rate_hz)).astype(np.int64))
