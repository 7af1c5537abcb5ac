"""Event dtypes and the binary formats they are stored in.

Time unit: every timestamp in this project is an integer number of **microseconds** (µs)
from the start of the recording. Two structured dtypes, one per modality:

* :data:`VISION_EVENT_DTYPE` -- tonic's ``tonic.io.events_struct``: ``x`` (int16, column),
  ``y`` (int16, row), ``t`` (int64, µs), ``p`` (bool, True = ON / brighter).
* :data:`AUDIO_EVENT_DTYPE` -- ``x`` (int16, cochlea channel), ``t`` (int64, µs), ``p``
  (bool). There is no ``y`` field: a cochlea is a 1-D sensor, and tonic's frame transforms
  treat a dtype without ``y`` as one. Channel 0 is the lowest centre frequency of our
  cochlea model (for real recordings it is whatever the sensor's address 0 is).

Formats (all big-endian, 5 bytes per record):

* N-MNIST ``.bin``: byte0 = x, byte1 = y, bit 7 of byte2 = polarity, lower 23 bits of
  bytes 2-4 = timestamp. A record with y == 240 is a timestamp-overflow marker: like tonic
  (and Orchard's ``eventvision.py``) each marker adds 2**13 µs to every later timestamp and
  is itself dropped.
* N-TIDIGITS ``.bs1``: bytes 0-1 = channel address, bit 7 of byte2 = polarity, lower 23
  bits of bytes 2-4 = timestamp. No overflow markers (2**23 µs = 8.4 s covers a digit).
* N-TIDIGITS ``n-tidigits.hdf5``: ``{train,test}_labels`` (byte strings such as
  ``b"man-ae-1"``), ``{train,test}_addresses/<id>`` (channel per event) and
  ``{train,test}_timestamps/<id>`` (seconds, float). Timestamps are rounded to the nearest
  µs (tonic truncates, which turns 0.000123 s into 122 µs). Channels must be integers
  below 64 and times finite seconds in ``[0, NTIDIGITS_MAX_T_S]``, as the ``.bs1`` reader
  checks its records; anything else, h5py's own failures on a damaged file included, is
  an EventFileError.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rram_lsm.errors import ConfigError, EventFileError

__all__ = [
    "VISION_EVENT_DTYPE", "AUDIO_EVENT_DTYPE", "NMNIST_SENSOR", "OVERFLOW_US",
    "read_nmnist", "write_nmnist", "decode_nmnist", "read_bs1", "write_bs1",
    "NTidigitsFile", "write_ntidigits_hdf5", "NTIDIGITS_CLASSES", "ntidigits_class",
    "audio_events", "check_record_bytes", "check_fields", "NTIDIGITS_MAX_T_S",
    "NTIDIGITS_MAX_ITEMS",
]

VISION_EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
AUDIO_EVENT_DTYPE = np.dtype([("x", "<i2"), ("t", "<i8"), ("p", "?")])

NMNIST_SENSOR = (34, 34)
"""N-MNIST sensor width and height in pixels."""
OVERFLOW_US = 2**13
"""Time added by each N-MNIST overflow marker (tonic's value)."""
_TS_LIMIT = 2**23
_RECORD = 5
_MARKER_Y = 240

NTIDIGITS_CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                     "nine", "oh")
"""Class names by id for the 11 single-digit N-TIDIGITS classes: "z" -> 0, "1".."9" ->
1..9, "o" (oh) -> 10, so ids 0-9 mean the same digit as in N-MNIST and FSDD."""
_NTIDIGITS_LABEL = {"z": 0, "o": 10, **{str(d): d for d in range(1, 10)}}


def check_record_bytes(n_bytes: int, path) -> None:
    """Raise EventFileError (offset of the incomplete last record) unless ``n_bytes`` is a
    whole number of 5-byte records."""
    if n_bytes % _RECORD:
        raise EventFileError(
            f"truncated: {n_bytes} bytes is not a whole number of {_RECORD}-byte records "
            f"(the last record is incomplete)", path, n_bytes - n_bytes % _RECORD)


def _records(raw: np.ndarray, path) -> np.ndarray:
    check_record_bytes(raw.size, path)
    return raw.reshape(-1, _RECORD)


def audio_events(channel: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """ON events (:data:`AUDIO_EVENT_DTYPE`) from channels and µs times, sorted by time then
    channel (the order every audio reader and generator here returns)."""
    order = np.lexsort((channel, t_us))
    ev = np.empty(len(order), dtype=AUDIO_EVENT_DTYPE)
    ev["x"] = np.asarray(channel)[order]
    ev["t"] = np.asarray(t_us)[order]
    ev["p"] = True
    return ev


def _timestamps(rec: np.ndarray) -> np.ndarray:
    return (((rec[:, 2] & 0x7F).astype(np.int64) << 16) | (rec[:, 3].astype(np.int64) << 8)
            | rec[:, 4])


def decode_nmnist(raw: np.ndarray, file_starts=None, *, path=None,
                  sensor_size=NMNIST_SENSOR) -> tuple[np.ndarray, np.ndarray]:
    """Decode N-MNIST records of one or many files concatenated in one byte buffer.

    ``raw`` is uint8; ``file_starts`` (int64, one per file plus the end) are *record*
    indices where each file begins (None: one file). Returns ``(events, event_starts)``:
    all files' events concatenated and the event index where each file begins. Overflow
    markers only shift later timestamps of their own file. ``path`` (a path or a list of
    paths, one per file) names the file in errors; ``sensor_size=None`` skips the bounds
    check.
    """
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1)
    rec = _records(raw, path if not isinstance(path, list) else None)
    n = len(rec)
    starts = np.array([0, n] if file_starts is None else file_starts, dtype=np.int64)
    y = rec[:, 1]
    marker = y == _MARKER_Y
    # tonic adds the increment from each marker on, marker included; a running count of
    # markers, restarted at every file boundary, gives the same shift without a loop.
    count = np.cumsum(marker, dtype=np.int64)
    before = np.concatenate([[0], count])[starts[:-1]]
    file_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    shift = (count - before[file_of]) * OVERFLOW_US
    keep = ~marker
    if sensor_size is not None:
        bad = keep & ((rec[:, 0] >= sensor_size[0]) | (y >= sensor_size[1]))
        if bad.any():
            i = int(np.argmax(bad))
            f = int(file_of[i])
            name = path[f] if isinstance(path, list) else path
            raise EventFileError(
                f"corrupt N-MNIST record: x={rec[i, 0]}, y={rec[i, 1]} outside the "
                f"{sensor_size[0]} x {sensor_size[1]} sensor (y == 240 is the only marker)",
                name, int(i - starts[f]) * _RECORD)
    ev = np.empty(int(keep.sum()), dtype=VISION_EVENT_DTYPE)
    ev["x"] = rec[keep, 0]
    ev["y"] = y[keep]
    ev["t"] = (_timestamps(rec) + shift)[keep]
    ev["p"] = (rec[keep, 2] & 0x80) != 0
    kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    return ev, kept_before[starts]


def _read_bytes(path) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            return np.frombuffer(fh.read(), dtype=np.uint8)
    except FileNotFoundError as exc:
        raise EventFileError("file not found", path) from exc
    except IsADirectoryError as exc:
        raise EventFileError("expected a file, found a directory", path) from exc


def read_nmnist(path: str | os.PathLike, sensor_size=NMNIST_SENSOR) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file into a :data:`VISION_EVENT_DTYPE` array.

    Agrees event for event with ``tonic.io.read_mnist_file``. Raises EventFileError (with
    path and byte offset) for a truncated file or a record outside the sensor.
    """
    return decode_nmnist(_read_bytes(path), path=path, sensor_size=sensor_size)[0]


def _pack(hi0: np.ndarray, hi1: np.ndarray, p: np.ndarray, t: np.ndarray) -> bytes:
    out = np.empty((len(t), _RECORD), dtype=np.uint8)
    out[:, 0] = hi0
    out[:, 1] = hi1
    out[:, 2] = ((t >> 16) & 0x7F) | (np.asarray(p, bool).astype(np.int64) << 7)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    return out.tobytes()


def check_fields(events: np.ndarray, names: tuple[str, ...], what: str) -> None:
    """Raise ConfigError unless ``events`` is a structured array with fields ``names``."""
    if events.dtype.names is None or any(n not in events.dtype.names for n in names):
        raise ConfigError(f"{what} needs a structured array with fields {names}, "
                          f"got dtype {events.dtype}")


def write_nmnist(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write vision events as an N-MNIST ``.bin`` file (inverse of :func:`read_nmnist`).

    Timestamps of 2**23 µs or more are written with overflow markers (x = 0, y = 240,
    timestamp 0), as few as possible; that needs non-decreasing timestamps past 2**23 µs.
    """
    check_fields(events, ("x", "y", "t", "p"), "write_nmnist")
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    t = events["t"].astype(np.int64)
    if len(t) and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 255
                   or np.any(y == _MARKER_Y) or t.min() < 0):
        raise ConfigError("N-MNIST events need 0 <= x, y <= 255, y != 240 and t >= 0")
    need = np.maximum(0, -(-(t - (_TS_LIMIT - 1)) // OVERFLOW_US))
    markers = np.maximum.accumulate(need) if len(t) else need
    resid = t - markers * OVERFLOW_US
    if np.any(resid < 0):
        raise ConfigError("timestamps past 2**23 µs must be non-decreasing to be written "
                          "with N-MNIST overflow markers")
    n_new = np.diff(np.concatenate([[0], markers]))
    # n_new[i] markers go right before event i
    order_events = np.arange(len(t)) + np.cumsum(n_new)
    total = len(t) + int(markers[-1] if len(t) else 0)
    buf = np.zeros((total, _RECORD), dtype=np.uint8)
    is_marker = np.ones(total, dtype=bool)
    is_marker[order_events] = False
    buf[is_marker, 1] = _MARKER_Y
    ev_bytes = np.frombuffer(_pack(x, y, events["p"], resid), dtype=np.uint8)
    buf[order_events] = ev_bytes.reshape(-1, _RECORD)
    Path(path).write_bytes(buf.tobytes())


def read_bs1(path: str | os.PathLike, n_channels: int = 64) -> np.ndarray:
    """Read an N-TIDIGITS ``.bs1`` file into an :data:`AUDIO_EVENT_DTYPE` array.

    Raises EventFileError for a truncated file or a channel address >= ``n_channels``.
    """
    raw = _read_bytes(path)
    rec = _records(raw, path).astype(np.int64)
    addr = (rec[:, 0] << 8) | rec[:, 1]
    bad = addr >= n_channels
    if bad.any():
        i = int(np.argmax(bad))
        raise EventFileError(f"corrupt .bs1 record: channel address {addr[i]} >= "
                             f"{n_channels} channels", path, i * _RECORD)
    ev = np.empty(len(rec), dtype=AUDIO_EVENT_DTYPE)
    ev["x"] = addr
    ev["t"] = _timestamps(rec)
    ev["p"] = (rec[:, 2] & 0x80) != 0
    return ev


def write_bs1(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write audio events as an N-TIDIGITS ``.bs1`` file (inverse of :func:`read_bs1`)."""
    check_fields(events, ("x", "t", "p"), "write_bs1")
    x = events["x"].astype(np.int64)
    t = events["t"].astype(np.int64)
    if len(t) and (x.min() < 0 or x.max() > 0xFFFF or t.min() < 0 or t.max() >= _TS_LIMIT):
        raise ConfigError(".bs1 events need 0 <= channel < 65536 and 0 <= t < 2**23 µs")
    Path(path).write_bytes(_pack(x >> 8, x & 0xFF, events["p"], t))


def ntidigits_class(label: str) -> int | None:
    """Class id of an N-TIDIGITS label (``"man-ae-1"`` -> 1, ``"z"`` -> 0, ``"o"`` -> 10);
    None for a multi-digit utterance."""
    digits = label.rsplit("-", 1)[-1]
    return _NTIDIGITS_LABEL.get(digits) if len(digits) == 1 else None


NTIDIGITS_MAX_T_S = 3600.0
"""Latest timestamp (s) the N-TIDIGITS HDF5 reader accepts: an utterance lasts seconds, so a
later (or non-finite, or negative) time is a corrupt value, not an hour-long digit."""
NTIDIGITS_MAX_ITEMS = 2**24
"""Most labels per split and events per sample the HDF5 reader reads: a dataset claiming
more is corrupt (one flipped bit in its size), and reading it would exhaust memory."""

# Everything h5py raises for a damaged file: a flipped bit surfaces as any of these (from
# the HDF5 library, from h5py's wrappers, or from numpy converting what came back).
_H5_FAILURES = (OSError, RuntimeError, KeyError, TypeError, ValueError, IndexError,
                AttributeError, OverflowError, UnicodeDecodeError, SystemError)


class NTidigitsFile:
    """Reader of the official ``n-tidigits.hdf5`` (opened lazily, reopened after pickling).

    Every failure of a damaged or foreign file is an EventFileError naming the file:
    missing or mistyped datasets, labels that are not 1-D UTF-8 strings, addresses that
    are not integer channels below ``n_channels`` (64 as in :func:`read_bs1`), timestamps
    that are not finite seconds in ``[0, NTIDIGITS_MAX_T_S]``, and anything h5py raises
    while reading (a flipped bit may surface as OSError, RuntimeError, KeyError...).
    """

    def __init__(self, path: str | os.PathLike, n_channels: int = 64):
        if not 1 <= int(n_channels) <= 2**15:
            raise ConfigError(f"n_channels must be in [1, 32768] (int16 channels), got "
                              f"{n_channels}")
        self.path = Path(path)
        self.n_channels = int(n_channels)
        self._h5 = None

    def _file(self):
        if self._h5 is None:
            import h5py

            try:
                self._h5 = h5py.File(self.path, "r")
            except FileNotFoundError as exc:
                raise EventFileError("file not found", self.path) from exc
            except IsADirectoryError as exc:
                raise EventFileError("expected a file, found a directory", self.path) from exc
            except _H5_FAILURES as exc:
                raise EventFileError(f"not a readable HDF5 file ({exc})", self.path) from exc
        return self._h5

    def __getstate__(self):
        return {"path": self.path, "n_channels": self.n_channels, "_h5": None}

    def close(self) -> None:
        """Close the HDF5 handle (it reopens on the next read)."""
        if self._h5 is not None:
            try:
                self._h5.close()
            except _H5_FAILURES:
                pass  # a damaged file may fail to close; the handle is dropped either way
            self._h5 = None

    def _guarded(self, what: str, read):
        """``read()``, with anything h5py raises for a damaged file as EventFileError."""
        h5 = self._file()
        try:
            return read(h5)
        except EventFileError:
            raise
        except _H5_FAILURES as exc:
            raise EventFileError(f"corrupt HDF5 file: reading {what} failed "
                                 f"({type(exc).__name__}: {exc})", self.path) from exc

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in ("train", "test"):
            raise ConfigError(f"N-TIDIGITS split must be 'train' or 'test', got {split!r}")

    def _groups(self, h5, split: str):
        import h5py

        key = f"{split}_labels"
        for needed in (key, f"{split}_addresses", f"{split}_timestamps"):
            if needed not in h5:
                raise EventFileError(
                    f"unknown layout: no dataset {needed!r}; expected {{train,test}}_labels, "
                    f"{{train,test}}_addresses/<id>, {{train,test}}_timestamps/<id>", self.path)
        groups = []
        for name in (f"{split}_addresses", f"{split}_timestamps"):
            obj = h5[name]
            if not isinstance(obj, h5py.Group):
                raise EventFileError(f"unknown layout: {name!r} is a {type(obj).__name__}, "
                                     "not a group with one dataset per sample id", self.path)
            groups.append(obj)
        return h5[key], groups[0], groups[1]

    def _vector(self, obj, what: str) -> np.ndarray:
        """The 1-D numeric dataset ``obj`` as an array, after checking its type and size."""
        import h5py

        if not isinstance(obj, h5py.Dataset):
            raise EventFileError(f"{what} is a {type(obj).__name__}, not a dataset", self.path)
        if obj.ndim != 1 or obj.dtype.kind not in "iuf":
            raise EventFileError(f"{what} must be a 1-D array of numbers, got dtype "
                                 f"{obj.dtype} shape {obj.shape}", self.path)
        if obj.size > NTIDIGITS_MAX_ITEMS:
            raise EventFileError(f"{what} claims {obj.size} values (more than "
                                 f"{NTIDIGITS_MAX_ITEMS}: a corrupt size)", self.path)
        values = np.asarray(obj[()])
        if values.shape != obj.shape:
            raise EventFileError(f"{what}: read {values.shape} values, expected {obj.shape}",
                                 self.path)
        return values

    def labels(self, split: str) -> list[str]:
        """Sample ids (also the label strings) of ``split`` ("train" or "test"); each names
        a dataset in both ``<split>_addresses`` and ``<split>_timestamps``."""
        self._check_split(split)
        return self._guarded(f"{split}_labels", lambda h5: self._labels(h5, split))

    def _labels(self, h5, split: str) -> list[str]:
        import h5py

        key = f"{split}_labels"
        ds, addresses, timestamps = self._groups(h5, split)
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 \
                or h5py.check_string_dtype(ds.dtype) is None:
            shape = getattr(ds, "shape", None)
            raise EventFileError(f"{key!r} must be a 1-D dataset of label strings (e.g. "
                                 f"b'man-ae-1'), got {type(ds).__name__} dtype "
                                 f"{getattr(ds, 'dtype', None)} shape {shape}", self.path)
        if ds.size > NTIDIGITS_MAX_ITEMS:
            raise EventFileError(f"{key!r} claims {ds.size} labels (a corrupt size)", self.path)
        out = []
        for i, v in enumerate(ds[()]):
            if isinstance(v, bytes):
                try:
                    v = v.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise EventFileError(f"{key}[{i}] = {v!r} is not UTF-8 text",
                                         self.path) from exc
            if not isinstance(v, str):
                raise EventFileError(f"{key}[{i}] is a {type(v).__name__}, not a string",
                                     self.path)
            if not v or v not in addresses or v not in timestamps:
                raise EventFileError(f"{key}[{i}] = {v!r} has no dataset in "
                                     f"{split}_addresses and {split}_timestamps", self.path)
            out.append(v)
        return out

    def events(self, split: str, sample_id: str) -> np.ndarray:
        """Events of one sample as :data:`AUDIO_EVENT_DTYPE` (p = True: no polarity stored)."""
        self._check_split(split)
        return self._guarded(f"sample {sample_id!r} of {split}",
                             lambda h5: self._events(h5, split, sample_id))

    def _events(self, h5, split: str, sample_id: str) -> np.ndarray:
        _, addresses, timestamps = self._groups(h5, split)
        if not isinstance(sample_id, str) or not sample_id or sample_id not in addresses \
                or sample_id not in timestamps:
            raise EventFileError(f"no sample {sample_id!r} in split {split!r}", self.path)
        what = f"sample {sample_id!r} of {split}"
        addr = self._vector(addresses[sample_id], f"{split}_addresses/{sample_id}")
        ts = self._vector(timestamps[sample_id], f"{split}_timestamps/{sample_id}")
        if addr.shape != ts.shape:
            raise EventFileError(f"{what}: addresses {addr.shape} and timestamps {ts.shape} "
                                 "differ", self.path)
        a = addr.astype(np.float64) if addr.dtype.kind == "f" else addr
        bad = ~((a >= 0) & (a < self.n_channels))
        if addr.dtype.kind == "f":
            bad |= a != np.floor(a)  # NaN fails the range test above
        if bad.any():
            i = int(np.argmax(bad))
            raise EventFileError(f"{what}: event {i} has channel address {addr[i].item()!r}; "
                                 f"addresses are integers in [0, {self.n_channels})", self.path)
        t = ts.astype(np.float64)
        bad = ~((t >= 0) & (t <= NTIDIGITS_MAX_T_S))  # NaN and inf fail too
        if bad.any():
            i = int(np.argmax(bad))
            raise EventFileError(f"{what}: event {i} has timestamp {ts[i].item()!r} s; timestamps "
                                 f"are finite seconds in [0, {NTIDIGITS_MAX_T_S:g}]", self.path)
        ev = np.empty(len(addr), dtype=AUDIO_EVENT_DTYPE)
        ev["x"] = a.astype(np.int64)
        ev["t"] = np.rint(t * 1e6).astype(np.int64)
        ev["p"] = True
        return ev


def write_ntidigits_hdf5(path: str | os.PathLike, samples: dict) -> None:
    """Write ``{"train": [(label, events), ...], "test": [...]}`` in the official layout.

    Labels must be unique within a split (they are the sample ids, as in the release).
    """
    import h5py

    with h5py.File(path, "w") as h5:
        for split, items in samples.items():
            labels = [lab for lab, _ in items]
            if len(set(labels)) != len(labels):
                raise ConfigError(f"duplicate labels in split {split!r}")
            h5.create_dataset(f"{split}_labels", data=np.array([s.encode() for s in labels]))
            ga = h5.create_group(f"{split}_addresses")
            gt = h5.create_group(f"{split}_timestamps")
            for lab, ev in items:
                ga.create_dataset(lab, data=ev["x"].astype(np.int16))
                gt.create_dataset(lab, data=ev["t"].astype(np.float64) / 1e6)
