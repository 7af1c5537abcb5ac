"""Rasters: crop, polarity, binning (and where they differ from tonic on purpose)."""
from __future__ import annotations

import numpy as np
import pytest
import tonic.transforms as T
from hypothesis import given
from hypothesis import strategies as st

from lsm.events import (AUDIO_EVENT_DTYPE, VISION_EVENT_DTYPE, AudioRasterConfig,
                        VisionRasterConfig, audio_raster, vision_raster)
from rram_lsm.errors import ConfigError


def vision(x, y, t, p):
    ev = np.empty(len(t), VISION_EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def audio(x, t):
    ev = np.empty(len(t), AUDIO_EVENT_DTYPE)
    ev["x"], ev["t"], ev["p"] = x, t, True
    return ev


def test_fixed_vision_raster():
    # crop offset (34 - 16) // 2 = 9; span = last event time 999 -> bin = t * 50 // 1000
    ev = vision(x=[9, 24, 8, 10, 12], y=[9, 24, 9, 11, 9], t=[0, 999, 500, 20, 500],
                p=[True, True, True, False, True])
    r = vision_raster(ev)
    assert r.shape == (50, 256) and r.dtype == np.uint8
    expected = np.zeros((50, 256), np.uint8)
    expected[0, 0] = 1            # (9, 9) -> channel 0, t = 0
    expected[49, 15 * 16 + 15] = 1  # last pixel of the crop at the last time: kept
    expected[25, 3] = 1           # (12, 9) at t = 500; (8, 9) lies left of the crop
    np.testing.assert_array_equal(r, expected)  # OFF event (10, 11) dropped under "on"


def test_polarity_modes():
    ev = vision(x=[9, 9], y=[9, 9], t=[0, 10], p=[True, False])  # t = 10 -> 500 // 11 = 45
    off = vision_raster(ev, VisionRasterConfig(polarity="off"))
    assert off.sum() == 1 and off[45, 0] == 1
    merged = vision_raster(ev, VisionRasterConfig(polarity="merge"))
    assert merged[:, 0].sum() == 2 and merged.shape == (50, 256)
    both = vision_raster(ev, VisionRasterConfig(polarity="both"))
    assert both.shape == (50, 512) and both[45, 0] == 1 and both[0, 256] == 1


def test_tonic_toframe_drops_the_last_events_we_keep():
    # span 0..99 over 50 bins: tonic's window is 99 // 50 = 1 us, so it only covers 0..49
    t = np.arange(100)
    ev = vision(x=np.full(100, 9), y=np.full(100, 9), t=t, p=np.ones(100, bool))
    ours = vision_raster(ev, VisionRasterConfig(crop_px=(34, 34), polarity="merge"))
    frames = T.ToFrame(sensor_size=(34, 34, 2), n_time_bins=50)(ev.copy())
    assert frames.sum() == 50  # half the events are gone in tonic
    assert ours[:, 9 * 34 + 9].sum() == 50  # every bin gets two events, all kept
    assert (ours[:, 9 * 34 + 9] == 1).all()


def test_centre_crop_matches_tonic_for_fitting_crops():
    rng = np.random.default_rng(0)
    n = 500
    ev = vision(rng.integers(0, 34, n), rng.integers(0, 34, n), np.sort(rng.integers(0, 10**5, n)),
                rng.random(n) < 0.5)
    ev["t"][-1] = 10**5  # fix the span so tonic and ours see the same recording
    cropped = T.CenterCrop(sensor_size=(34, 34, 2), size=16)(ev.copy())
    cfg = VisionRasterConfig(polarity="merge", n_steps=1)
    ours = vision_raster(ev, cfg)[0]
    ref = np.zeros(256, np.uint8)
    ref[cropped["y"].astype(int) * 16 + cropped["x"]] = 1
    np.testing.assert_array_equal(ours, ref)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError):
        VisionRasterConfig(crop_px=(40, 16))  # tonic would pad silently
    with pytest.raises(ConfigError):
        VisionRasterConfig(polarity="up")
    with pytest.raises(ConfigError):
        AudioRasterConfig(n_steps=0)


def _array_split_reference(events, config):
    n_bins = int(events["t"].max()) // config.bin_us + 1
    binned = np.zeros((n_bins, config.n_channels), np.int64)
    np.add.at(binned, (events["t"] // config.bin_us, events["x"]), 1)
    chunks = np.array_split(binned, config.n_steps, axis=0)
    return np.stack([(c.sum(axis=0) > 0) for c in chunks]).astype(np.uint8)


@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 400_000)), min_size=1,
                max_size=80), st.integers(1, 200))
def test_audio_chunks_follow_array_split(rows, n_steps):
    ev = audio(*zip(*rows))
    cfg = AudioRasterConfig(n_steps=n_steps)
    np.testing.assert_array_equal(audio_raster(ev, cfg), _array_split_reference(ev, cfg))


def test_short_audio_leaves_late_chunks_empty():
    ev = audio([3, 4], [0, 9_500])  # 10 one-ms bins < 129 chunks
    r = audio_raster(ev)
    assert r.shape == (129, 64)
    assert r[0, 3] == 1 and r[9, 4] == 1 and r[10:].sum() == 0


def test_fixed_duration_drops_later_events():
    ev = audio([1, 2], [1000, 50_000])
    r = audio_raster(ev, AudioRasterConfig(duration_us=10_000, n_steps=11))
    assert r.sum() == 1 and r[1, 1] == 1


@given(st.integers(1, 6), st.integers(0, 1000))
def test_batch_equals_per_sample(n, seed):
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        k = int(rng.integers(0, 40))
        samples.append(vision(rng.integers(0, 34, k), rng.integers(0, 34, k),
                              np.sort(rng.integers(0, 3000, k)), rng.random(k) < 0.5))
    events = np.concatenate(samples)
    which = np.repeat(np.arange(n), [len(s) for s in samples])
    batch = vision_raster(events, sample=which, n_samples=n)
    for i, s in enumerate(samples):
        np.testing.assert_array_equal(batch[i], vision_raster(s))


def test_wrong_event_array_is_a_typed_error():
    with pytest.raises(ConfigError, match="fields"):
        vision_raster(np.zeros(5))
    with pytest.raises(ConfigError, match="fields"):
        audio_raster(np.zeros(3, dtype=[("t", "<i8")]))


def test_denoise_agrees_with_tonic_after_the_first_window(shared_data_dir):
    from tonic.functional import denoise_numpy

    from lsm.events import read_nmnist
    from lsm.events.kernels.denoise import denoise_mask

    window = 5000
    for f in sorted((shared_data_dir / "nmnist_small" / "Test").glob("*/*.bin"))[:5]:
        ev = read_nmnist(f)
        ours = ev[denoise_mask(ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["t"],
                               np.zeros(len(ev), np.int64), window, 34, 34)]
        ref = denoise_numpy(ev, filter_time=window)
        # tonic treats every pixel as having fired at t = 0, so it differs only early on
        np.testing.assert_array_equal(ours[ours["t"] >= window], ref[ref["t"] >= window])
        assert 0 < len(ours) < len(ev)


def test_denoise_drops_isolated_events_in_rasters():
    # two neighbours 100 us apart survive (the second sees the first); a lone pixel does not
    ev = vision(x=[10, 11, 20], y=[10, 10, 20], t=[0, 100, 200], p=[True, True, True])
    cfg = VisionRasterConfig(crop_px=(34, 34), n_steps=1, denoise_us=1000)
    r = vision_raster(ev, cfg)[0]
    assert r.sum() == 1 and r[10 * 34 + 11] == 1
    both = np.concatenate([ev, ev])
    batch = vision_raster(both, cfg, sample=np.repeat([0, 1], 3), n_samples=2)
    np.testing.assert_array_equal(batch[0], batch[1])  # memory restarts per sample
    with pytest.raises(ConfigError):
        vision_raster(both, cfg, sample=np.array([0, 1, 0, 1, 0, 1]), n_samples=2)
