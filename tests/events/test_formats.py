"""Readers and writers of the event formats: round trips, tonic agreement, bad files."""
from __future__ import annotations

import numpy as np
import pytest
import tonic.io
from hypothesis import given
from hypothesis import strategies as st

from lsm.events import (AUDIO_EVENT_DTYPE, VISION_EVENT_DTYPE, NTidigitsFile, ntidigits_class,
                        read_bs1, read_nmnist, write_bs1, write_nmnist, write_ntidigits_hdf5)
from lsm.events.formats import OVERFLOW_US, decode_nmnist
from rram_lsm.errors import ConfigError, EventFileError


def vision(x, y, t, p):
    ev = np.empty(len(t), VISION_EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def audio(x, t, p=True):
    ev = np.empty(len(t), AUDIO_EVENT_DTYPE)
    ev["x"], ev["t"], ev["p"] = x, t, p
    return ev


def test_nmnist_exact_bytes(tmp_path):
    # x=3, y=7, ON at t=0x012345; x=33, y=0, OFF at t=1
    path = tmp_path / "a.bin"
    write_nmnist(path, vision([3, 33], [7, 0], [0x012345, 0x012346], [True, False]))
    assert path.read_bytes() == bytes([3, 7, 0x81, 0x23, 0x45, 33, 0, 0x01, 0x23, 0x46])


def test_nmnist_overflow_markers_shift_later_events(tmp_path):
    raw = bytes([1, 2, 0x00, 0x00, 0x10,     # t = 16
                 0, 240, 0x00, 0x00, 0x00,   # marker: +8192 from here on
                 4, 5, 0x80, 0x00, 0x20])    # t = 32 + 8192, ON
    path = tmp_path / "o.bin"
    path.write_bytes(raw)
    ev = read_nmnist(path)
    assert ev["t"].tolist() == [16, 32 + OVERFLOW_US]
    assert ev["x"].tolist() == [1, 4] and ev["p"].tolist() == [False, True]
    ref = tonic.io.read_mnist_file(str(path), dtype=VISION_EVENT_DTYPE)
    np.testing.assert_array_equal(ev, ref)


def test_overflow_count_restarts_per_file_in_a_batch():
    one = np.frombuffer(bytes([0, 240, 0, 0, 0, 1, 1, 0, 0, 5]), np.uint8)
    raw = np.concatenate([one, one])
    ev, starts = decode_nmnist(raw, [0, 2, 4])
    assert starts.tolist() == [0, 1, 2]
    assert ev["t"].tolist() == [5 + OVERFLOW_US] * 2


@given(st.lists(st.tuples(st.integers(0, 33), st.integers(0, 33), st.integers(0, 2**25),
                          st.booleans()), max_size=60))
def test_nmnist_round_trip_with_overflow(tmp_path_factory, rows):
    rows = sorted(rows, key=lambda r: r[2])  # overflow markers need time order past 2**23
    ev = vision(*zip(*rows)) if rows else np.zeros(0, VISION_EVENT_DTYPE)
    path = tmp_path_factory.mktemp("rt") / "f.bin"
    write_nmnist(path, ev)
    np.testing.assert_array_equal(read_nmnist(path), ev)
    np.testing.assert_array_equal(
        tonic.io.read_mnist_file(str(path), dtype=VISION_EVENT_DTYPE), ev)


def test_writer_rejects_unrepresentable_events(tmp_path):
    with pytest.raises(ConfigError):
        write_nmnist(tmp_path / "x.bin", vision([0, 0], [0, 0], [2**24, 5], [True, True]))
    with pytest.raises(ConfigError):
        write_nmnist(tmp_path / "x.bin", vision([0], [240], [0], [True]))
    with pytest.raises(ConfigError):
        write_bs1(tmp_path / "x.bs1", audio([1], [2**23]))
    with pytest.raises(ConfigError):
        write_nmnist(tmp_path / "x.bin", np.zeros(3))


def test_agrees_with_tonic_on_every_shared_file(shared_data_dir):
    files = sorted((shared_data_dir / "nmnist_small").glob("*/*/*.bin"))
    assert len(files) == 1100
    for f in files:
        ours = read_nmnist(f)
        ref = tonic.io.read_mnist_file(str(f), dtype=VISION_EVENT_DTYPE)
        assert ours.dtype == ref.dtype
        np.testing.assert_array_equal(ours, ref, err_msg=str(f))


def test_truncated_nmnist_names_file_and_offset(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(bytes(5 * 3 + 2))
    with pytest.raises(EventFileError) as err:
        read_nmnist(path)
    assert err.value.offset == 15 and err.value.path == path
    assert "t.bin at byte 15" in str(err.value)


def test_corrupt_nmnist_record_outside_sensor(tmp_path):
    path = tmp_path / "c.bin"
    path.write_bytes(bytes([1, 1, 0, 0, 1, 50, 1, 0, 0, 2]))
    with pytest.raises(EventFileError) as err:
        read_nmnist(path)
    assert err.value.offset == 5
    assert isinstance(err.value, ValueError)  # callers may catch the builtin too


def test_missing_file_is_typed(tmp_path):
    with pytest.raises(EventFileError):
        read_nmnist(tmp_path / "nope.bin")
    with pytest.raises(EventFileError):
        read_bs1(tmp_path)


@given(st.binary(max_size=200))
def test_fuzz_nmnist_parser(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fz") / "f.bin"
    path.write_bytes(blob)
    try:
        ev = read_nmnist(path)
    except EventFileError as exc:
        assert exc.path == path and (exc.offset is None or 0 <= exc.offset <= len(blob))
        return
    assert len(ev) <= len(blob) // 5
    assert ev["x"].max(initial=0) < 34 and ev["y"].max(initial=0) < 34
    assert (ev["t"] >= 0).all()


@given(st.binary(max_size=200), st.integers(1, 70000))
def test_fuzz_bs1_parser(tmp_path_factory, blob, n_channels):
    path = tmp_path_factory.mktemp("fz") / "f.bs1"
    path.write_bytes(blob)
    try:
        ev = read_bs1(path, n_channels=n_channels)
    except EventFileError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(blob)
        return
    assert len(ev) == len(blob) // 5 and (ev["x"] < n_channels).all()


def test_bs1_exact_bytes_and_round_trip(tmp_path):
    ev = audio([63, 0x0102], [0x7FFFFF, 256], [True, False])
    path = tmp_path / "a.bs1"
    write_bs1(path, ev)
    assert path.read_bytes() == bytes([0, 63, 0xFF, 0xFF, 0xFF, 1, 2, 0x00, 0x01, 0x00])
    np.testing.assert_array_equal(read_bs1(path, n_channels=2**16), ev)
    with pytest.raises(EventFileError) as err:
        read_bs1(path)  # 0x0102 = 258 is no channel of a 64-channel cochlea
    assert err.value.offset == 5


def test_real_bs1_recording(shared_data_dir):
    ev = read_bs1(shared_data_dir / "ntidigits_format" / "NTIDIGITS_1.bs1")
    assert len(ev) == 898 and ev["p"].all()
    assert (np.diff(ev["t"]) >= 0).all() and 1.0e6 < ev["t"].max() < 1.1e6
    assert len(np.unique(ev["x"])) == 44


def test_ntidigits_labels():
    assert [ntidigits_class(s) for s in ("man-ae-z", "woman-xy-o", "boy-a-7", "man-b-1z")] \
        == [0, 10, 7, None]


def test_ntidigits_hdf5_round_trip_and_rounding(tmp_path):
    path = tmp_path / "n.hdf5"
    a = audio([0, 5, 63], [0, 123, 1_000_001])
    b = audio([7], [42])
    write_ntidigits_hdf5(path, {"train": [("man-ae-1", a), ("man-ae-12", b)],
                                "test": [("woman-x-o", b)]})
    f = NTidigitsFile(path)
    assert f.labels("train") == ["man-ae-1", "man-ae-12"]
    np.testing.assert_array_equal(f.events("train", "man-ae-1"), a)
    np.testing.assert_array_equal(f.events("test", "woman-x-o"), b)
    with pytest.raises(EventFileError):
        f.events("test", "nobody")
    with pytest.raises(ConfigError):
        f.labels("validation")
    f.close()


def test_ntidigits_unknown_layout(tmp_path):
    import h5py

    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("train_labels", data=np.array([b"a-b-1"]))
    with pytest.raises(EventFileError, match="train_addresses"):
        NTidigitsFile(path).labels("train")
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(EventFileError):
        NTidigitsFile(tmp_path / "junk.hdf5").labels("train")
