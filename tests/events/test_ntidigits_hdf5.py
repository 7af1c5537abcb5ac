"""The N-TIDIGITS HDF5 reader: any file gives events or EventFileError (issue 15).

Regressions for each defect found from outside, then hypothesis fuzzing as for the binary
parsers (test_formats.py): arbitrary bytes, 1-3 flipped bits of a valid small file the test
writes in the release's layout, and layouts with wrong types, shapes and values.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsm.events import AUDIO_EVENT_DTYPE, NTidigitsFile, read_bs1, write_ntidigits_hdf5
from lsm.events.formats import NTIDIGITS_MAX_T_S, audio_events
from rram_lsm.errors import ConfigError, EventFileError


def _samples():
    a = audio_events(np.array([0, 5, 63, 7]), np.array([0, 123, 1_000_001, 42]))
    b = audio_events(np.array([7, 1]), np.array([42, 50]))
    return {"train": [("man-ae-1", a), ("man-ae-z", b)], "test": [("woman-x-o", b)]}


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("h5") / "small.hdf5"
    write_ntidigits_hdf5(path, _samples())
    return path.read_bytes()


def read_all(path, n_channels=64):
    """Every sample of both splits; raises what the reader raises."""
    f = NTidigitsFile(path, n_channels=n_channels)
    try:
        return {(split, sid): f.events(split, sid)
                for split in ("train", "test") for sid in f.labels(split)}
    finally:
        f.close()


def assert_events_or_typed_error(path, n_channels=64):
    try:
        out = read_all(path, n_channels)
    except EventFileError as exc:
        assert exc.path == path
        return None
    for ev in out.values():
        assert ev.dtype == AUDIO_EVENT_DTYPE
        assert ((ev["x"] >= 0) & (ev["x"] < n_channels)).all()
        assert ((ev["t"] >= 0) & (ev["t"] <= NTIDIGITS_MAX_T_S * 1e6)).all()
    return out


def _layout(path, labels=(b"man-ae-1",), addresses=None, timestamps=None, *,
            address_group=True):
    """A hand-built file: ``labels`` as given, one sample per label unless overridden."""
    with h5py.File(path, "w") as h5:
        h5.create_dataset("train_labels", data=labels)
        addresses = {"man-ae-1": np.array([1, 2], np.int16)} if addresses is None \
            else addresses
        timestamps = {"man-ae-1": np.array([0.0, 0.5])} if timestamps is None \
            else timestamps
        if address_group:
            ga = h5.create_group("train_addresses")
            for k, v in addresses.items():
                ga.create_dataset(k, data=v)
        else:
            h5.create_dataset("train_addresses", data=np.array([1, 2], np.int16))
        gt = h5.create_group("train_timestamps")
        for k, v in timestamps.items():
            gt.create_dataset(k, data=v)
    return path


# --- regressions: each of these raised a builtin error or returned nonsense before ----------


def test_non_utf8_label_is_an_event_file_error(tmp_path):
    path = _layout(tmp_path / "a.hdf5", labels=np.array([b"man-\xff\xfe-1"]))
    with pytest.raises(EventFileError, match="not UTF-8") as err:
        NTidigitsFile(path).labels("train")
    assert err.value.path == path


def test_addresses_stored_as_a_dataset_not_a_group(tmp_path):
    path = _layout(tmp_path / "a.hdf5", address_group=False)
    with pytest.raises(EventFileError, match="not a group"):
        NTidigitsFile(path).labels("train")
    with pytest.raises(EventFileError, match="not a group"):
        NTidigitsFile(path).events("train", "man-ae-1")


def test_scalar_labels_dataset_is_rejected_not_split_into_characters(tmp_path):
    path = _layout(tmp_path / "a.hdf5", labels=b"man-ae-1")
    with pytest.raises(EventFileError, match="1-D dataset of label strings"):
        NTidigitsFile(path).labels("train")


def test_numeric_labels_are_rejected(tmp_path):
    path = _layout(tmp_path / "a.hdf5", labels=np.array([1, 2]))
    with pytest.raises(EventFileError, match="label strings"):
        NTidigitsFile(path).labels("train")


def test_label_without_its_sample_is_found_when_listing(tmp_path):
    path = _layout(tmp_path / "a.hdf5", labels=np.array([b"man-ae-1", b"man-ae-2"]))
    with pytest.raises(EventFileError, match="man-ae-2"):
        NTidigitsFile(path).labels("train")


@pytest.mark.parametrize("t", [6.2e16, np.inf, np.nan, -1e-3, NTIDIGITS_MAX_T_S + 1])
def test_timestamps_out_of_range_are_rejected(tmp_path, t):
    """6.2e16 s used to become t = -2**63 µs without a word."""
    path = _layout(tmp_path / "a.hdf5", timestamps={"man-ae-1": np.array([0.0, t])})
    with pytest.raises(EventFileError, match="event 1 has timestamp"):
        NTidigitsFile(path).events("train", "man-ae-1")


@pytest.mark.parametrize("channels, bad", [
    (np.array([1.0, 2.5]), "2.5"),            # was truncated to 2
    (np.array([1, 64], np.int16), "64"),      # was accepted; .bs1 rejects it
    (np.array([-1, 3], np.int16), "-1"),
    (np.array([1.0, np.nan]), "nan"),
])
def test_channels_must_be_integers_below_64(tmp_path, channels, bad):
    path = _layout(tmp_path / "a.hdf5", addresses={"man-ae-1": channels})
    with pytest.raises(EventFileError, match=f"channel address {bad}"):
        NTidigitsFile(path).events("train", "man-ae-1")
    if bad == "64":
        assert NTidigitsFile(path, n_channels=65).events("train", "man-ae-1")["x"][1] == 64


def test_integral_float_channels_and_other_widths_are_fine(tmp_path):
    path = _layout(tmp_path / "a.hdf5", addresses={"man-ae-1": np.array([3.0, 63.0])},
                   timestamps={"man-ae-1": np.array([0, 2], np.int32)})
    ev = NTidigitsFile(path).events("train", "man-ae-1")
    assert ev["x"].tolist() == [3, 63] and ev["t"].tolist() == [0, 2_000_000]


@pytest.mark.parametrize("addresses, timestamps, match", [
    (np.array([[1, 2]], np.int16), np.array([[0.0, 0.1]]), "1-D array"),
    (np.array([1, 2], np.int16), np.array([0.1]), "differ"),
    (np.array([b"a", b"b"]), np.array([0.0, 0.1]), "numbers"),
    (np.array([True, False]), np.array([0.0, 0.1]), "numbers"),
])
def test_sample_arrays_of_the_wrong_shape_or_type(tmp_path, addresses, timestamps, match):
    path = _layout(tmp_path / "a.hdf5", addresses={"man-ae-1": addresses},
                   timestamps={"man-ae-1": timestamps})
    with pytest.raises(EventFileError, match=match):
        NTidigitsFile(path).events("train", "man-ae-1")


def test_bad_split_and_channel_count_are_config_errors(tmp_path):
    path = _layout(tmp_path / "a.hdf5")
    with pytest.raises(ConfigError):
        NTidigitsFile(path).events("dev", "man-ae-1")
    with pytest.raises(ConfigError):
        NTidigitsFile(path, n_channels=0)
    with pytest.raises(EventFileError, match="directory"):
        NTidigitsFile(tmp_path).labels("train")


# Single bits of the small file above that made the old reader raise RuntimeError, KeyError,
# TypeError, UnicodeDecodeError, OSError or ValueError, or return channels >= 64 / times
# < 0 (found by flipping every 7th bit: 315 of 10,972 files). With another HDF5 version the
# file's bytes may differ; then these are just more flips.
OLD_FAILURES = [140, 154, 903, 6405, 6468, 6531, 6538, 6888, 7126, 16415, 16520, 16534,
                43974, 44289, 46529, 53480]


@pytest.mark.parametrize("bit", OLD_FAILURES)
def test_flipped_bits_that_broke_the_old_reader(tmp_path, valid_bytes, bit):
    blob = bytearray(valid_bytes)
    blob[bit // 8] ^= 1 << (bit % 8)
    path = tmp_path / "flip.hdf5"
    path.write_bytes(bytes(blob))
    assert_events_or_typed_error(path)


def test_the_small_file_reads_back(tmp_path, valid_bytes):
    path = tmp_path / "ok.hdf5"
    path.write_bytes(valid_bytes)
    out = read_all(path)
    for split, items in _samples().items():
        for sid, ev in items:
            np.testing.assert_array_equal(out[(split, sid)], ev)


# --- fuzzing --------------------------------------------------------------------------------


@given(st.lists(st.integers(0, 9600 * 8 - 1), min_size=1, max_size=3, unique=True))
@settings(max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_bit_flips_of_a_valid_file(tmp_path_factory, valid_bytes, bits):
    blob = bytearray(valid_bytes)
    for bit in bits:
        bit %= len(blob) * 8
        blob[bit // 8] ^= 1 << (bit % 8)
    path = tmp_path_factory.mktemp("flip") / "f.hdf5"
    path.write_bytes(bytes(blob))
    assert_events_or_typed_error(path)


@given(st.binary(max_size=600), st.booleans())
def test_fuzz_arbitrary_bytes(tmp_path_factory, blob, signed):
    # half of them start with the HDF5 signature, so the library gets past the first check
    path = tmp_path_factory.mktemp("fz") / "f.hdf5"
    path.write_bytes((b"\x89HDF\r\n\x1a\n" if signed else b"") + blob)
    assert assert_events_or_typed_error(path) is None or signed


_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_labels = st.one_of(
    st.lists(st.binary(min_size=1, max_size=12), min_size=0, max_size=3).map(
        lambda v: np.array(v, dtype=object if not v else None)),
    st.binary(max_size=12).map(np.array),  # a scalar dataset
    st.lists(st.integers(-5, 5), min_size=1, max_size=3).map(np.array),
)
_arrays = st.one_of(
    st.lists(st.integers(-3, 70), max_size=5).map(lambda v: np.array(v, np.int16)),
    st.lists(_floats, max_size=5).map(lambda v: np.array(v, np.float64)),
    st.lists(st.integers(0, 70), max_size=4).map(lambda v: np.array(v, np.uint8)[None]),
    st.just(np.array([b"x", b"y"])),
)


@given(_labels, st.dictionaries(st.sampled_from(["man-ae-1", "woman-b-z", "x"]),
                                st.tuples(_arrays, _arrays), max_size=3),
       st.booleans())
def test_fuzz_layouts(tmp_path_factory, labels, samples, address_group):
    path = tmp_path_factory.mktemp("lay") / "f.hdf5"
    with h5py.File(path, "w") as h5:
        if labels.dtype == object:
            labels = labels.astype("S") if len(labels) else np.zeros(0, "S1")
        h5.create_dataset("train_labels", data=labels)
        h5.create_dataset("test_labels", data=np.zeros(0, "S1"))
        for split in ("train", "test"):
            gt = h5.create_group(f"{split}_timestamps")
            if address_group:
                ga = h5.create_group(f"{split}_addresses")
            else:
                h5.create_dataset(f"{split}_addresses", data=np.arange(3))
            if split == "train":
                for sid, (a, t) in samples.items():
                    if address_group:
                        ga.create_dataset(sid, data=a)
                    gt.create_dataset(sid, data=t)
    assert_events_or_typed_error(path)
    f = NTidigitsFile(path)
    for sid in samples:  # sample ids read directly, whatever the labels say
        try:
            ev = f.events("train", sid)
        except EventFileError:
            continue
        assert ((ev["x"] >= 0) & (ev["x"] < 64)).all() and (ev["t"] >= 0).all()
    f.close()


def test_real_recording_in_the_hdf5_layout(shared_data_dir, tmp_path):
    """The one real N-TIDIGITS recording, written in the release's HDF5 layout: read back
    exactly, and its bit flips give events or EventFileError."""
    src = shared_data_dir / "ntidigits_format" / "NTIDIGITS_1.bs1"
    if not src.is_file():
        pytest.skip("no real N-TIDIGITS recording")
    ev = read_bs1(src)
    ev["p"] = True  # the HDF5 stores no polarity
    path = tmp_path / "real.hdf5"
    write_ntidigits_hdf5(path, {"train": [("man-xx-1", ev)], "test": [("man-xx-2", ev)]})
    np.testing.assert_array_equal(read_all(path)[("train", "man-xx-1")], ev)
    blob = path.read_bytes()
    rng = np.random.default_rng(15)
    for bit in rng.integers(0, len(blob) * 8, 150):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        assert_events_or_typed_error(path)
