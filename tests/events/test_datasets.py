"""open_dataset on generated directories, the shared data and the synthetic fallback."""
from __future__ import annotations

import dataclasses
import wave

import numpy as np
import pytest

from lsm.data import EventDataset, open_dataset
from lsm.data.synthetic import synthetic_audio_sample, synthetic_vision_sample
from lsm.events import CochleaConfig, VisionRasterConfig, write_nmnist, write_ntidigits_hdf5
from rram_lsm.errors import ConfigError, DataError, DataNotFoundError, EventFileError


def make_nmnist(root, n_train=3, n_test=1, classes=range(10)):
    for split, n in (("Train", n_train), ("Test", n_test)):
        for c in classes:
            folder = root / "nmnist_small" / split / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                write_nmnist(folder / f"{k:05d}.bin", synthetic_vision_sample(c, k))
    return root


def make_fsdd(root, speakers=("ann", "bob"), takes=(0, 5, 6)):
    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    t = np.arange(2400) / 8000
    for d in range(10):
        for s, speaker in enumerate(speakers):
            for take in takes:
                sig = 0.4 * np.sin(2 * np.pi * (200 + 150 * d + 10 * s) * t) * np.hanning(len(t))
                with wave.open(str(folder / f"{d}_{speaker}_{take}.wav"), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(8000)
                    w.writeframes(np.round(sig * 32767).astype("<i2").tobytes())
    return root


def test_nmnist_layout_splits_and_order(tmp_path):
    root = make_nmnist(tmp_path)
    ds = open_dataset("nmnist", root)
    assert isinstance(ds, EventDataset) and not ds.synthetic and len(ds) == 40
    assert ds.is_test.tolist() == [False] * 30 + [True] * 10
    assert ds.labels[:30].tolist() == sorted(list(range(10)) * 3)
    ev, label = ds[31]
    np.testing.assert_array_equal(ev, synthetic_vision_sample(1, 0))
    assert label == 1 and ds.meta[31]["path"].endswith("Test/1/00000.bin")
    assert ds.n_classes == 10 and ds.class_names[3] == "three"
    train = open_dataset("nmnist", root, "train")
    assert len(train) == 30 and not train.is_test.any()
    r = ds.rasters(progress=False)
    assert r.shape == (40, 50, 256) and r.dtype == np.uint8
    from lsm.events import vision_raster

    np.testing.assert_array_equal(r[7], vision_raster(ds[7][0]))


def test_fingerprint_tracks_data_and_preprocessing(tmp_path):
    root = make_nmnist(tmp_path, n_train=1, n_test=1, classes=(0, 1))
    a = open_dataset("nmnist", root)
    assert a.fingerprint() == open_dataset("nmnist", root).fingerprint()
    assert a.fingerprint() != open_dataset("nmnist", root, "train").fingerprint()
    cfg = dataclasses.replace(a.raster_config, n_steps=20)
    assert a.fingerprint(cfg) != a.fingerprint()
    assert a.rasters(cfg, progress=False).shape == (4, 20, 256)
    write_nmnist(root / "nmnist_small" / "Train" / "0" / "00000.bin",
                 synthetic_vision_sample(5, 5))  # different content, different size
    assert open_dataset("nmnist", root).fingerprint() != a.fingerprint()
    with pytest.raises(ConfigError):
        a.rasters(open_dataset("fsdd", None).raster_config)


def test_fsdd_take_split_speakers_and_cache(tmp_path):
    root = make_fsdd(tmp_path)
    ds = open_dataset("fsdd", root)
    assert len(ds) == 60 and ds.is_test.sum() == 20
    assert all(m["take"] <= 4 for m, t in zip(ds.meta, ds.is_test) if t)
    assert {m["speaker"] for m in ds.meta} == {"ann", "bob"}
    r = ds.rasters(progress=False)
    assert r.shape == (60, 129, 64) and r.sum() > 0
    # the second open reads the cochlea cache and gives the same rasters
    again = open_dataset("fsdd", root)
    np.testing.assert_array_equal(again.rasters(progress=False), r)
    np.testing.assert_array_equal(again[5][0], ds[5][0])
    # a higher tone (class 9) drives higher channels than a low one (class 0)
    mean_channel = [np.mean(ds[i][0]["x"]) for i in range(len(ds))]
    assert np.mean(np.array(mean_channel)[ds.labels == 9]) > \
        np.mean(np.array(mean_channel)[ds.labels == 0]) + 10


def test_fsdd_bad_name_is_an_actionable_error(tmp_path):
    root = make_fsdd(tmp_path, speakers=("ann",), takes=(0,))
    (root / "fsdd" / "recordings" / "hello.wav").write_bytes(b"")
    with pytest.raises(DataError, match="digit"):
        open_dataset("fsdd", root)


def test_ntidigits_single_digits_and_class_ids(tmp_path):
    ev = synthetic_audio_sample(1, 0)
    samples = {"train": [("man-aa-1", ev), ("man-aa-z", ev), ("man-aa-o", ev),
                         ("man-aa-123", ev)],
               "test": [("woman-bb-9", ev)]}
    (tmp_path / "ntidigits").mkdir()
    write_ntidigits_hdf5(tmp_path / "ntidigits" / "n-tidigits.hdf5", samples)
    ds = open_dataset("ntidigits", tmp_path)
    assert ds.n_classes == 11 and ds.class_names[10] == "oh"
    assert ds.labels.tolist() == [0, 1, 10, 9] and ds.is_test.tolist() == [0, 0, 0, 1]
    assert ds.meta[0]["speaker"] == "aa"
    assert ds.rasters(progress=False).shape == (4, 129, 64)
    assert ds[3][0]["t"][-1] == ev["t"][-1]


def test_missing_data_names_layout_and_sources(tmp_path):
    for name in ("nmnist", "fsdd", "ntidigits"):
        with pytest.raises(DataNotFoundError) as err:
            open_dataset(name, tmp_path)
        assert "download" in str(err.value) and "synthetic" in str(err.value)
    with pytest.raises(DataNotFoundError):
        open_dataset("nmnist", tmp_path / "nowhere")
    with pytest.raises(ConfigError):
        open_dataset("mnist", None)
    with pytest.raises(ConfigError):
        open_dataset("nmnist", None, split="val")
    with pytest.raises(ConfigError):
        open_dataset("nmnist", None, cochlea=CochleaConfig())
    with pytest.raises(ConfigError):
        open_dataset("fsdd", None, synthetic_per_class=(-1, 2))


def test_bad_index_is_typed():
    ds = open_dataset("nmnist", None, synthetic_per_class=(1, 0))
    with pytest.raises(ConfigError):
        ds[10]
    with pytest.raises(ConfigError):
        ds["a"]
    assert ds[-1][1] == 9


def test_shared_data_counts(shared_data_dir):
    ds = open_dataset("nmnist", shared_data_dir)
    assert np.bincount(ds.labels[~ds.is_test]).tolist() == [97, 116, 99, 93, 105, 92, 94,
                                                            117, 87, 100]
    assert np.bincount(ds.labels[ds.is_test]).tolist() == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    fsdd = open_dataset("fsdd", shared_data_dir, "test")
    assert len(fsdd) == 300 and len({m["speaker"] for m in fsdd.meta}) == 6


def _nearest_centroid_accuracy(ds):
    x = ds.rasters(progress=False).sum(axis=1, dtype=float)  # active steps per input
    train, test = ~ds.is_test, ds.is_test
    cent = np.stack([x[train & (ds.labels == c)].mean(0) for c in range(ds.n_classes)])
    pred = np.argmin(((x[test, None, :] - cent[None]) ** 2).sum(-1), axis=1)
    return np.mean(pred == ds.labels[test])


@pytest.mark.parametrize("name", ["nmnist", "fsdd", "ntidigits"])
def test_synthetic_is_flagged_deterministic_and_learnable(name):
    ds = open_dataset(name, None, synthetic_per_class=(10, 4))
    assert ds.synthetic and len(ds) == 14 * ds.n_classes
    again = open_dataset(name, None, synthetic_per_class=(10, 4))
    np.testing.assert_array_equal(ds[3][0], again[3][0])
    other = open_dataset(name, None, synthetic_per_class=(10, 4), synthetic_seed=1)
    assert ds.fingerprint() != other.fingerprint()
    # far above chance (10 % / 9 %) with a trivial classifier on the rasters
    assert _nearest_centroid_accuracy(ds) > 0.6


def test_synthetic_audio_rate_is_realistic():
    ev = synthetic_audio_sample(4, 2)
    seconds = ev["t"].max() / 1e6
    assert 400 < len(ev) / seconds < 1600
    assert VisionRasterConfig().n_inputs == 256


def test_rasters_of_a_subset(tmp_path):
    root = make_fsdd(tmp_path, speakers=("ann",), takes=(0, 5))
    ds = open_dataset("fsdd", root)
    part = ds.rasters(progress=False, indices=[7, 2])
    assert len(ds._source._memo) == 2  # the other files never went through the cochlea
    full = ds.rasters(progress=False)
    np.testing.assert_array_equal(part, full[[7, 2]])
    with pytest.raises(ConfigError):
        ds.rasters(progress=False, indices=[len(ds)])
    with pytest.raises(ConfigError):
        ds.rasters(progress=False, indices=[0.5])


def test_truncated_file_in_a_dataset_names_that_file(tmp_path):
    root = make_nmnist(tmp_path, n_train=2, n_test=1, classes=(0, 1))
    bad = root / "nmnist_small" / "Train" / "1" / "00001.bin"
    data = bad.read_bytes()
    bad.write_bytes(data[:-3])
    ds = open_dataset("nmnist", root)
    with pytest.raises(EventFileError) as err:
        ds.rasters(progress=False)
    assert err.value.path == bad and err.value.offset == len(data) - 5
    assert ds[0][0].size > 0  # the other files still load one by one


@pytest.mark.parametrize("empty", ["Train", "Test"])
def test_nmnist_with_an_empty_split_is_not_real_data(tmp_path, empty):
    """An empty Train/ used to give a 'real' dataset with 0 training samples (issue 15)."""
    root = make_nmnist(tmp_path, n_train=1, n_test=1, classes=(0, 1))
    for f in (root / "nmnist_small" / empty).rglob("*.bin"):
        f.unlink()
    with pytest.raises(DataNotFoundError, match=f"N-MNIST {empty} split is empty"):
        open_dataset("nmnist", root)
    other = "test" if empty == "Train" else "train"
    assert len(open_dataset("nmnist", root, split=other)) == 2  # the full half still opens


def test_fsdd_and_ntidigits_with_an_empty_split(tmp_path):
    make_fsdd(tmp_path / "a", speakers=("ann",), takes=(5,))
    with pytest.raises(DataNotFoundError, match="FSDD test split is empty"):
        open_dataset("fsdd", tmp_path / "a")
    ev = synthetic_audio_sample(1, 0)
    (tmp_path / "b").mkdir()
    write_ntidigits_hdf5(tmp_path / "b" / "n-tidigits.hdf5",
                         {"train": [("man-aa-1", ev)], "test": [("man-aa-12", ev)]})
    with pytest.raises(DataNotFoundError, match="N-TIDIGITS test split is empty"):
        open_dataset("ntidigits", tmp_path / "b")
    assert len(open_dataset("ntidigits", tmp_path / "b", split="train")) == 1


def test_data_dir_that_is_a_file_says_so(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataNotFoundError, match="is a file, not a directory"):
        open_dataset("nmnist", tmp_path / "f")


def test_a_corrupt_cochlea_cache_is_rebuilt_with_a_warning(tmp_path):
    root = make_fsdd(tmp_path / "d", speakers=("ann",), takes=(0, 5))
    cache = tmp_path / "cache"
    first = open_dataset("fsdd", root, cache_dir=cache).rasters(progress=False)
    (entry,) = (cache / "cochlea").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:200])  # a half-copied file
    with pytest.warns(RuntimeWarning, match="ignoring the unreadable entry"):
        again = open_dataset("fsdd", root, cache_dir=cache).rasters(progress=False)
    np.testing.assert_array_equal(first, again)
    open_dataset("fsdd", root, cache_dir=cache).rasters(progress=False)  # rebuilt: no warning
