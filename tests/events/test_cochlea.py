"""Silicon-cochlea front end: selectivity, determinism, rates against the real recording."""
from __future__ import annotations

import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lsm.events import CochleaConfig, centre_frequencies_hz, cochlea_events, read_bs1, read_wav
from rram_lsm.errors import ConfigError, EventFileError

FS = 8000.0


def tone(freq_hz, seconds=0.3, amp=0.5):
    t = np.arange(int(seconds * FS)) / FS
    return amp * np.sin(2 * np.pi * freq_hz * t)


def write_wav(path, signal, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())


def test_centre_frequencies_are_log_spaced():
    fc = centre_frequencies_hz(CochleaConfig())
    assert len(fc) == 64 and fc[0] == pytest.approx(100) and fc[-1] == pytest.approx(3800)
    ratios = fc[1:] / fc[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_pure_tone_excites_its_own_channel(freq):
    ev = cochlea_events(tone(freq), FS)
    counts = np.bincount(ev["x"], minlength=64)
    fc = centre_frequencies_hz(CochleaConfig())
    best = int(np.argmin(np.abs(np.log(fc / freq))))
    assert abs(int(np.argmax(counts)) - best) <= 2
    assert ev["p"].all() and (np.diff(ev["t"]) >= 0).all()


def test_silence_and_level_invariance():
    assert len(cochlea_events(np.zeros(4000), FS)) == 0
    # the level normalisation makes a quiet and a loud copy of a sound identical (a power
    # of two scales exactly in floating point, so the events must match bit for bit)
    sig = tone(700) + 0.3 * tone(1900)
    np.testing.assert_array_equal(cochlea_events(sig, FS), cochlea_events(sig / 64, FS))
    assert len(cochlea_events(sig, FS)) > 100


def test_deterministic_across_threads():
    rng = np.random.default_rng(3)
    sigs = [rng.normal(0, 0.1, 3000) + tone(200 + 300 * k, 0.375) for k in range(6)]
    serial = [cochlea_events(s, FS) for s in sigs]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(lambda s: cochlea_events(s, FS), sigs))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


def test_refractory_period_bounds_the_rate():
    cfg = CochleaConfig(gain_per_s=1e6, refractory_s=0.004)
    ev = cochlea_events(tone(1000), FS, cfg)
    for c in np.unique(ev["x"]):
        assert np.diff(ev["t"][ev["x"] == c]).min() >= 4000


def test_config_validation():
    with pytest.raises(ConfigError):
        CochleaConfig(f_low_hz=500, f_high_hz=100)
    with pytest.raises(ConfigError):
        cochlea_events(tone(100), 4000.0)  # 3.8 kHz is above a 4 kHz signal's Nyquist
    with pytest.raises(ConfigError):
        cochlea_events(np.zeros((2, 10)), FS)


def test_wav_round_trip_and_truncation(tmp_path):
    path = tmp_path / "a.wav"
    sig = tone(440, 0.1)
    write_wav(path, sig)
    x, rate = read_wav(path)
    assert rate == 8000 and len(x) == len(sig)
    np.testing.assert_allclose(x, sig, atol=1 / 32767)
    data = path.read_bytes()
    # an extra chunk before "data" (as many recorders write) moves the samples past byte 44
    extra = b"LIST" + (10).to_bytes(4, "little") + bytes(10)
    data = data[:36] + extra + data[36:]
    (tmp_path / "short.wav").write_bytes(data[:-101])
    with pytest.raises(EventFileError, match="truncated") as err:
        read_wav(tmp_path / "short.wav")
    # the offset is the end of the last whole 2-byte sample in the truncated file
    assert err.value.offset == len(data) - 101 - 1
    (tmp_path / "junk.wav").write_bytes(b"RIFFxxxx")
    with pytest.raises(EventFileError):
        read_wav(tmp_path / "junk.wav")
    # a file cut inside its header: a reason, not "()" (EOFError has no message)
    (tmp_path / "header.wav").write_bytes(data[:30])
    with pytest.raises(EventFileError, match="ends inside its header"):
        read_wav(tmp_path / "header.wav")


def test_events_per_utterance_match_the_real_cochlea_recording(shared_data_dir):
    """Calibrated per utterance: the real file is one digit in ~1 s of mostly silence."""
    ref = read_bs1(shared_data_dir / "ntidigits_format" / "NTIDIGITS_1.bs1")
    files = sorted((shared_data_dir / "fsdd" / "recordings").glob("*.wav"))[::60]
    per_file, active = [], []
    for f in files:
        x, rate = read_wav(f)
        ev = cochlea_events(x, rate)
        per_file.append(len(ev))
        active.append(len(np.unique(ev["x"])))
    assert len(ref) / 1.5 < np.mean(per_file) < len(ref) * 1.5, (np.mean(per_file), len(ref))
    assert 30 < np.mean(active) < 60
