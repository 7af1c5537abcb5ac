"""Streaming encode: rasters made and consumed in chunks, features identical to one big run."""
from __future__ import annotations

import numpy as np
import pytest

from lsm import EncodeOptions, FeatureCache, Reservoir, encode_dataset, preset
from lsm.data import open_dataset
from lsm.encode import SpikeStats, chunk_bounds, encode_range, replay_runs
from rram_lsm.errors import ConfigError, ShapeError
from sim import SimMacro


@pytest.fixture
def small():
    # 3 train + 1 test per class: 40 samples, enough for several chunks of 8
    return open_dataset("nmnist", None, progress=False, synthetic_per_class=(3, 1))


def _whole(ds, kind="counts", batch=8, path="generic"):
    """The pre-streaming path: every raster at once through Reservoir.features."""
    res = Reservoir.setup(SimMacro(3), preset("nmnist", n_neurons=40))
    rasters = ds.rasters(None, progress=False)
    return res.features(rasters, kind, path, progress=False, batch_size=batch,
                        labels=ds.labels, is_test=ds.is_test)


@pytest.mark.parametrize("kind,path", [("counts", "fast"), ("windowed", "fast"),
                                       ("membrane", "fast"), ("counts", "generic")])
def test_streamed_features_equal_the_whole_array_run(small, kind, path, monkeypatch):
    whole = _whole(small, kind, path=path)
    made = []
    original = type(small).rasters

    def spy(self, config=None, progress=True, indices=None):
        made.append(len(self) if indices is None else len(indices))
        return original(self, config, progress, indices)

    monkeypatch.setattr(type(small), "rasters", spy)
    res = Reservoir.setup(SimMacro(3), preset("nmnist", n_neurons=40))  # read noise on: same draws needed
    opts = EncodeOptions(kind=kind, path=path, batch_size=8, chunk_size=16, progress=False)
    feats = encode_dataset(res, small, opts)
    np.testing.assert_array_equal(feats.values, whole.values)
    np.testing.assert_array_equal(feats.labels, small.labels)
    assert feats.meta["firing_rate_per_step"] == pytest.approx(
        whole.meta["firing_rate_per_step"], rel=1e-12)
    assert feats.meta["silent_fraction"] == whole.meta["silent_fraction"]
    # bounded memory: never more than one chunk of rasters made at once
    assert made == [16, 16, 8]
    assert res.runs == 5  # 40 samples in batches of 8, as the whole-array run


def test_chunk_size_rounds_up_to_whole_batches(small):
    opts = EncodeOptions(path="fast", batch_size=8, chunk_size=10, progress=False)
    assert opts.chunk == 16
    a = encode_dataset(Reservoir.setup(SimMacro(1), preset("nmnist", n_neurons=40)), small, opts)
    b = encode_dataset(Reservoir.setup(SimMacro(1), preset("nmnist", n_neurons=40)), small,
                       EncodeOptions(path="fast", batch_size=8, chunk_size=4096,
                                     progress=False))
    np.testing.assert_array_equal(a.values, b.values)
    with pytest.raises(ConfigError, match="chunk_size"):
        EncodeOptions(chunk_size=0)


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_replayed_ranges_equal_the_serial_run(small, path):
    """A range encoded on a fresh copy of the chip after replay_runs equals that range of the
    serial run: the unit of work of a distributed encode."""
    opts = EncodeOptions(path=path, batch_size=8, chunk_size=8, progress=False)
    serial = encode_dataset(Reservoir.setup(SimMacro(5), preset("nmnist", n_neurons=40)), small, opts)
    parts = []
    for lo, hi in [(0, 16), (16, 32), (32, 40)]:
        res = Reservoir.setup(SimMacro(5), preset("nmnist", n_neurons=40))
        replay_runs(res, lo, opts)
        assert res.runs == lo // 8
        values, stats, chosen = encode_range(res, small, opts, lo, hi)
        parts.append(values)
        assert chosen == path
    np.testing.assert_array_equal(np.concatenate(parts), serial.values)
    # without the replay the noise of the first batches is used again: different features
    res = Reservoir.setup(SimMacro(5), preset("nmnist", n_neurons=40))
    wrong, _, _ = encode_range(res, small, opts, 16, 32)
    assert not np.array_equal(wrong, serial.values[16:32])
    with pytest.raises(ConfigError, match="multiple of the batch size"):
        encode_range(res, small, opts, 4, 12)
    with pytest.raises(ConfigError, match="not within"):
        encode_range(res, small, opts, 0, 41)


def test_spike_stats_merge_like_one_array():
    rng = np.random.default_rng(0)
    spikes = (rng.random((10, 7, 5)) < 0.1).astype(np.uint8)
    spikes[:, :, 2] = 0  # a silent neuron
    a, b = SpikeStats(), SpikeStats()
    a.add(spikes[:4])
    b.add(spikes[4:])
    both = a.merge(b)
    assert both.firing_rate == float(spikes.mean())
    assert both.silent_fraction == pytest.approx(0.2)
    assert SpikeStats().merge(a).n_spikes == a.n_spikes
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]


def test_given_rasters_are_checked_and_used_chunkwise(small):
    opts = EncodeOptions(path="fast", batch_size=8, chunk_size=8, progress=False)
    rasters = small.rasters(None, progress=False)
    a = encode_dataset(Reservoir.setup(SimMacro(2), preset("nmnist", n_neurons=40)), small, opts,
                       rasters=rasters)
    b = encode_dataset(Reservoir.setup(SimMacro(2), preset("nmnist", n_neurons=40)), small, opts)
    np.testing.assert_array_equal(a.values, b.values)
    with pytest.raises(ShapeError, match="samples"):
        encode_dataset(Reservoir.setup(SimMacro(2), preset("nmnist", n_neurons=40)), small, opts,
                       rasters=rasters[:5])
    with pytest.raises(ShapeError, match="nmnist-full"):
        encode_dataset(Reservoir.setup(SimMacro(2), preset("nmnist", n_inputs=100, n_neurons=40)), small,
                       opts)


def test_cache_hit_after_a_streamed_encode(small, tmp_path):
    cache = FeatureCache(tmp_path)
    opts = EncodeOptions(path="fast", batch_size=8, chunk_size=8, progress=False)
    a = encode_dataset(Reservoir.setup(SimMacro(4), preset("nmnist", n_neurons=40)), small, opts,
                       cache=cache)
    b = encode_dataset(Reservoir.setup(SimMacro(4), preset("nmnist", n_neurons=40)), small,
                       EncodeOptions(path="fast", batch_size=8, chunk_size=32,
                                     progress=False), cache=cache)
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    np.testing.assert_array_equal(a.values, b.values)
