"""Features, the feature cache, the encode/classify CLI and the plots (synthetic data)."""
from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from lsm import EncodeOptions, FeatureCache, Features, encode_dataset, open_dataset, preset
from rram_lsm.app.features import encode
from rram_lsm.app.session import ChipSession
from lsm.features import spike_features
from lsm.plots import plot_activity, plot_raster
from rram_lsm.app.cli import main
from rram_lsm.errors import ConfigError, ShapeError
from rram_lsm.records import get_path


@pytest.fixture
def synthetic(monkeypatch):
    """No data directory anywhere: every dataset is the synthetic stand-in."""
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)


def test_spike_features_by_hand():
    s = np.zeros((1, 10, 3), np.uint8)
    s[0, [2, 3, 8], 0] = 1
    s[0, 9, 2] = 1
    np.testing.assert_allclose(spike_features(s, "counts")[0], [0.3, 0.0, 0.1])
    np.testing.assert_allclose(spike_features(s, "first_spike")[0], [0.2, 1.0, 0.9])
    w = spike_features(s, "windowed", n_windows=2)[0]
    np.testing.assert_allclose(w, [0.4, 0.0, 0.0, 0.2, 0.0, 0.2])
    assert spike_features(s, "counts").dtype == np.float32
    with pytest.raises(ConfigError, match="membrane"):
        spike_features(s, "membrane")
    with pytest.raises(ConfigError, match="kind"):
        spike_features(s, "rates")


def test_windowed_counts_average_back_to_counts():
    s = (np.random.default_rng(0).random((5, 50, 7)) < 0.2).astype(np.uint8)
    w = spike_features(s, "windowed", n_windows=5).reshape(5, 5, 7)
    np.testing.assert_allclose(w.mean(axis=1), spike_features(s, "counts"), rtol=1e-6)


def test_span_windows_follow_each_samples_active_input():
    """span features cut [first, last input event] into equal parts, per sample: the same
    word said at half the speed, later in its recording, gives the same features."""
    from lsm.features import active_span, input_features

    fast = np.zeros((1, 20, 2), np.uint8)
    fast[0, [2, 3], 0] = 1      # sound A, then sound B: the active span is steps 2-5
    fast[0, [4, 5], 1] = 1
    slow = np.zeros((1, 20, 2), np.uint8)
    slow[0, [8, 9, 10, 11], 0] = 1      # the same at half the speed, starting at step 8
    slow[0, [12, 13, 14, 15], 1] = 1
    both = np.concatenate([fast, slow])
    np.testing.assert_array_equal(active_span(both), [[2, 6], [8, 16]])
    span = input_features(both, "input_span", n_windows=2)
    np.testing.assert_allclose(span, [[1.0, 0.0, 0.0, 1.0]] * 2)  # window-major: A then B
    # fixed windows see timing, not order: both samples land in the first half alike
    assert not np.allclose(spike_features(both, "windowed", n_windows=2)[0],
                           spike_features(both, "windowed", n_windows=2)[1])
    # a reservoir's spikes are cut at its *input's* span
    spikes = np.zeros((2, 20, 1), np.uint8)
    spikes[0, 3, 0] = spikes[1, 14, 0] = 1
    np.testing.assert_allclose(spike_features(spikes, "span", n_windows=2,
                                              span=active_span(both)),
                               [[0.5, 0.0], [0.0, 0.25]])
    silent = np.zeros((1, 6, 2), np.uint8)  # no input: the whole sample is the span
    np.testing.assert_array_equal(active_span(silent), [[0, 6]])
    short = np.zeros((1, 6, 1), np.uint8)
    short[0, 4, 0] = 1          # a 1-step span in 3 parts [4,4) [4,5) [5,5): an empty part
    np.testing.assert_allclose(  # reads the one step at its start, never divides by 0
        input_features(short, "input_span", n_windows=3), [[1, 1, 0]])
    with pytest.raises(ConfigError, match="active span"):
        spike_features(spikes, "span")
    with pytest.raises(ShapeError):
        spike_features(spikes, "span", span=active_span(both)[:1])
    with pytest.raises(ConfigError, match="input feature kind"):
        input_features(both, "span")
    from lsm.features import span_rates

    for bad in ([[-3, 2]], [[4, 2]], [[3, 21]], [[5, 5]]):   # wrapping, reversed, beyond T
        with pytest.raises(ConfigError, match="span"):
            span_rates(fast, np.array(bad), 2)
    with pytest.raises(ConfigError, match="n_windows"):
        span_rates(fast, active_span(fast), 21)


def test_span_kinds_encode_through_the_pipeline(synthetic):
    ds = open_dataset("nmnist", None, progress=False, synthetic_per_class=(2, 1))
    with ChipSession("sim", chip_seed=0) as chip:
        span = encode(chip, ds.name, ds, options=EncodeOptions(kind="span", n_windows=3,
                                                               progress=False))
        inputs = encode(chip, ds.name, ds, options=EncodeOptions(
            kind="input_span", n_windows=3, progress=False))
    n_neurons = span.meta["lsm_config"]["n_neurons"]
    assert span.values.shape == (len(ds), 3 * n_neurons) and span.meta["n_windows"] == 3
    assert inputs.values.shape[1] == 3 * inputs.meta["lsm_config"]["n_inputs"]
    assert inputs.meta["reservoir"] == "bypassed" and inputs.meta["kind"] == "input_span"
    assert span.values.sum() > 0 and inputs.values.sum() > 0


def _encode(ds, chip_seed=0, age=0.0, **kw):
    with ChipSession("sim", chip_seed=chip_seed) as chip:
        return encode(chip, ds.name, ds, chip_age_s=age,
                      options=EncodeOptions(progress=False), **kw)


def test_encode_is_cached_and_keyed_by_chip_seed_and_age(synthetic, tmp_path):
    from lsm.data import open_dataset

    small = open_dataset("nmnist", None, progress=False, synthetic_per_class=(6, 2))
    first = _encode(small)
    assert first.meta["cache"] == "miss" and first.meta["synthetic"] is True
    assert first.values.shape == (80, 200) and first.values.dtype == np.float32
    assert 0.001 < first.meta["firing_rate_per_step"] < 0.5  # synthetic input is sparse
    assert first.meta["placement"] == {"name": "nmnist", "macro": 0,
                                       "region": [0, 0, 456, 400]}
    # a fresh process would open the dataset again: the key must not depend on the object
    again = _encode(open_dataset("nmnist", None, progress=False, synthetic_per_class=(6, 2)))
    assert again.meta["cache"] == "hit"
    assert again.meta["cache_key"] == first.meta["cache_key"]
    np.testing.assert_array_equal(again.values, first.values)
    np.testing.assert_array_equal(again.labels, first.labels)
    other_chip = _encode(small, chip_seed=1)
    older = _encode(small, age=1e6)
    keys = {f.meta["cache_key"] for f in (first, other_chip, older)}
    assert len(keys) == 3 and other_chip.meta["cache"] == older.meta["cache"] == "miss"
    assert not np.array_equal(other_chip.values, first.values)
    path = first.save(tmp_path / "f.npz")
    loaded = Features.load(path)
    np.testing.assert_array_equal(loaded.is_test, first.is_test)
    assert loaded.meta["lsm_config"]["n_neurons"] == 200


def test_cache_key_counts_earlier_runs_of_the_tile(synthetic, tmp_path):
    """Read noise makes a tile's second run differ from its first: a cached first run is
    never served for a later one."""
    from lsm.data import open_dataset
    from sim import SimMacro
    from lsm import Reservoir

    small = open_dataset("nmnist", None, progress=False, synthetic_per_class=(2, 1))
    cache = FeatureCache(tmp_path)
    res = Reservoir.setup(SimMacro(0), preset("nmnist"))
    a = encode_dataset(res, small, EncodeOptions(progress=False), cache=cache)
    b = encode_dataset(res, small, EncodeOptions(progress=False), cache=cache)
    assert a.meta["cache"] == b.meta["cache"] == "miss"
    assert a.meta["cache_key"] != b.meta["cache_key"]
    assert not np.array_equal(a.values, b.values)
    fresh = Reservoir.setup(SimMacro(0), preset("nmnist"))
    c = encode_dataset(fresh, small, EncodeOptions(progress=False), cache=cache)
    assert c.meta["cache"] == "hit" and c.meta["cache_key"] == a.meta["cache_key"]
    np.testing.assert_array_equal(c.values, a.values)


def test_encode_keeps_the_callers_torch_thread_pin(synthetic):
    """numba's OpenMP layer resets the thread count torch reads before every parallel
    kernel (forming, LIF); an encode inside ``torch_threads(1)`` must leave torch on one
    thread, or the heads trained after it (and the protocol's workers, which copy the
    count) run on every core."""
    import torch

    from lsm.data import open_dataset
    from rram_lsm.app.threads import torch_threads

    fsdd = open_dataset("fsdd", None, progress=False, synthetic_per_class=(1, 1))
    with torch_threads(1):
        _encode(fsdd, cache=False)
        assert torch.get_num_threads() == 1


def test_encode_rejects_mismatched_preset(synthetic):
    from lsm.data import open_dataset

    fsdd = open_dataset("fsdd", None, progress=False, synthetic_per_class=(1, 1))
    with pytest.raises(ShapeError, match="preset"):
        _encode(fsdd, lsm_preset="nmnist", cache=False)
    with pytest.raises(ConfigError, match="dataset"):
        open_dataset("mnist", None)
    with pytest.raises(ConfigError, match="kind"):
        EncodeOptions(kind="rates")


def test_classify_cli_writes_the_accuracy_keys(synthetic, tmp_path):
    out = tmp_path / "classify.json"
    assert main(["classify", "--dataset", "nmnist", "--seeds", "1", "--epochs", "3",
                 "--no-progress", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    for key in ("lsm.test_accuracy.mean", "lsm.test_accuracy.std",
                "raw_input.test_accuracy.mean"):
        assert 0.0 <= get_path(record, key) <= 1.0
    assert record["synthetic"] is True
    # synthetic digits are learnable: far above the 10 % of chance
    assert get_path(record, "lsm.test_accuracy.mean") > 0.3


def test_encode_cli_json_and_figure(synthetic, tmp_path):
    out, png = tmp_path / "encode.json", tmp_path / "activity.png"
    assert main(["encode", "--dataset", "fsdd", "--no-progress", "--json", str(out),
                 "--plot", str(png)]) == 0
    record = json.loads(out.read_text())
    assert record["n_features"] == 200 and record["synthetic"] is True
    assert png.stat().st_size > 10_000


def test_encode_cli_span_kind(synthetic, tmp_path):
    from lsm.features import FEATURE_KINDS
    from rram_lsm.app.commands import lsm as lsm_cmd

    assert lsm_cmd.KINDS == FEATURE_KINDS
    out = tmp_path / "encode.json"
    assert main(["encode", "--dataset", "fsdd", "--kind", "span", "--no-progress",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["n_features"] == 5 * 200
    assert main(["encode", "--dataset", "fsdd", "--kind", "span", "--n-windows", "3",
                 "--no-progress", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["n_features"] == 3 * 200
    assert main(["encode", "--dataset", "fsdd", "--n-windows", "0", "--no-progress"]) == 1


def test_plots_return_figures():
    s = (np.random.default_rng(1).random((20, 6)) < 0.2).astype(np.uint8)
    v = np.random.default_rng(2).normal(size=(20, 6))
    fig = plot_raster(s, inputs=np.ones((20, 4), np.uint8))
    assert isinstance(fig, matplotlib.figure.Figure)
    fig2 = plot_activity(s, v, threshold=1.0)
    assert len(fig2.axes) == 2
    from lsm.plots import plot_span_windows

    x = np.zeros((2, 30, 4), np.uint8)
    x[0, 5:10, 1] = x[1, 12:28, 2] = 1
    fig3 = plot_span_windows(x, 3, titles=["fast", "slow"])
    assert len(fig3.axes) == 2
    # 2 fixed inner edges + 4 span edges per panel, at the span's ends 4.5 and 9.5
    lines = [ln.get_xdata()[0] for ln in fig3.axes[0].lines if len(ln.get_xdata())]
    assert len(lines) == 6 and 4.5 in lines and 9.5 in lines
    with pytest.raises(ShapeError):
        plot_span_windows(x[0])


def test_input_kind_bypasses_the_reservoir(synthetic):
    from lsm import open_dataset
    from lsm.features import input_features

    ds = open_dataset("fsdd", None, split="all", progress=False)
    # a backend that cannot open: the input kind never touches it
    with ChipSession("serial:/dev/no-such-port") as chip:
        feats = encode(chip, "fsdd", ds, options=EncodeOptions(kind="input", progress=False))
    rasters = ds.rasters(None, progress=False)
    np.testing.assert_allclose(feats.values, rasters.mean(axis=1), rtol=1e-6)
    assert feats.values.shape == (len(ds), 64) and feats.meta["reservoir"] == "bypassed"
    np.testing.assert_array_equal(feats.labels, ds.labels)
    with pytest.raises(ShapeError, match="rasters must be"):
        input_features(rasters[0])


def test_cache_keys_change_with_the_encoding_code(monkeypatch):
    """An entry written by older code is never served: the key holds the lsm sources' digest,
    and a simulated chip's identity holds the simulator's."""
    import lsm.cache as cache
    from sim import SimMacro

    assert len(cache.source_fingerprint()) == 24
    assert cache.source_fingerprint("events") != cache.source_fingerprint()
    parts = {"dataset": "nmnist", "chip": SimMacro(0).identity()}
    assert len(parts["chip"]["code"]) == 24
    key = FeatureCache.key(parts)
    monkeypatch.setattr(cache, "source_fingerprint", lambda: "edited-code")
    assert FeatureCache.key(parts) != key


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 2],          # half a file (BadZipFile crashed the encode before)
    lambda b: b"",                       # empty
    lambda b: b"not an npz at all",
    lambda b: b[:-30] + bytes(30),       # a zeroed tail
])
def test_a_corrupt_cache_entry_is_a_miss_that_says_so(synthetic, tmp_path, damage):
    from lsm.data import open_dataset
    from lsm import Reservoir
    from sim import SimMacro

    small = open_dataset("nmnist", None, progress=False, synthetic_per_class=(1, 1))
    cache = FeatureCache(tmp_path)

    def run():
        res = Reservoir.setup(SimMacro(0), preset("nmnist"))
        return encode_dataset(res, small, EncodeOptions(progress=False), cache=cache)

    first = run()
    entry = cache.path(first.meta["cache_key"])
    entry.write_bytes(damage(entry.read_bytes()))
    with pytest.warns(RuntimeWarning, match="ignoring the unreadable entry"):
        again = run()
    assert again.meta["cache"] == "miss"
    np.testing.assert_array_equal(again.values, first.values)
    assert run().meta["cache"] == "hit"  # the fresh features replaced the damaged entry


def test_cache_store_leaves_no_temporaries_and_sweeps_stale_ones(tmp_path):
    import os

    cache = FeatureCache(tmp_path)
    stale = tmp_path / ".tmp-old.npz.abc.part"  # left by a process killed long ago
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    recent = tmp_path / ".tmp-now.npz.def.part"  # maybe another process writing right now
    recent.write_bytes(b"partial")
    f = Features(np.zeros((2, 3), np.float32), np.arange(2), np.zeros(2, bool), {"a": 1})
    cache.store("k", f)
    assert sorted(p.name for p in tmp_path.iterdir()) == [recent.name, "k.npz"]
    assert cache.load("k").meta == {"a": 1} and cache.load("missing") is None
