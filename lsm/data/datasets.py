"""Event datasets: N-MNIST, FSDD through the cochlea, N-TIDIGITS, and synthetic stand-ins.

``open_dataset(name, data_dir, split)`` is the one entry point. A dataset lists its samples
up front (labels, official-test flags, metadata) and loads events lazily; ``rasters()``
converts the whole dataset in batches (one vectorised decode and one fancy-indexed
assignment per batch). Samples are ordered official-train first, then by class, then by
file name, so indices are stable across runs and machines.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lsm.events.cochlea import CochleaConfig, cochlea_events, read_wav
from lsm.events.formats import (AUDIO_EVENT_DTYPE, NMNIST_SENSOR, NTIDIGITS_CLASSES,
                                VISION_EVENT_DTYPE, NTidigitsFile, check_record_bytes, decode_nmnist,
                                ntidigits_class)
from lsm.events.frames import (AudioRasterConfig, VisionRasterConfig, audio_raster,
                               vision_raster)
from rram_lsm.errors import ConfigError, DataError, DataNotFoundError

from .synthetic import synthetic_audio_sample, synthetic_vision_sample

__all__ = ["EventDataset", "open_dataset", "DATASETS", "SPLITS", "FRONTEND_VERSION",
           "DOWNLOAD_HELP", "INPUTS", "raster_preset"]

DATASETS = ("nmnist", "fsdd", "ntidigits")
SPLITS = ("train", "test", "all")
FRONTEND_VERSION = 1
"""Bumped whenever a reader or the preprocessing changes its output (enters fingerprints)."""

INPUTS: dict[str, dict] = {
    "nmnist": {
        # the paper's input: a 16 x 16 centre crop of the ON polarity, 256 inputs
        "crop": VisionRasterConfig(),
        # the whole 34 x 34 sensor, OFF inputs then ON: 2 x 34 x 34 = 2,312 inputs
        "full": VisionRasterConfig(crop_px=NMNIST_SENSOR, polarity="both"),
    },
    # the cochlea's (or N-TIDIGITS') 64 channels, binned as in the paper
    "fsdd": {"cochlea": AudioRasterConfig()},
    "ntidigits": {"cochlea": AudioRasterConfig()},
}
"""Input front ends of each dataset by name: the raster each preset of
``lsm.reservoir.PRESETS`` expects (``nmnist``: ``crop``, ``nmnist-full``: ``full``). The
first entry of each dataset is its default."""


def raster_preset(dataset: str, input: str | None = None):
    """The raster config of ``dataset`` for front end ``input`` (None: the dataset's
    default, the first of :data:`INPUTS`); ConfigError names the choices otherwise."""
    if dataset not in INPUTS:
        raise ConfigError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    choices = INPUTS[dataset]
    if input is None:
        return next(iter(choices.values()))
    if input not in choices:
        raise ConfigError(f"{dataset} has no input {input!r}; choose one of {sorted(choices)}")
    return choices[input]


DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")
_BATCH = 512

DOWNLOAD_HELP = """\
Expected layout of a data directory:
  nmnist_small/ or nmnist/   Train|Test/<label>/<index>.bin   (N-MNIST, Orchard et al. 2015)
      download: https://www.garrickorchard.com/datasets/n-mnist
  fsdd/recordings/           {digit}_{speaker}_{take}.wav     (Free Spoken Digit Dataset)
      download: https://github.com/Jakobovski/free-spoken-digit-dataset
  ntidigits/n-tidigits.hdf5  official N-TIDIGITS release (Anumula et al. 2018)
      download: https://docs.google.com/document/d/1Uxe7GsKKXcy6SlDUX4hoJVAC0-UkH-8kr5UXp0Ndi1M
Without a data directory the commands run on synthetic event digits and label every
output as synthetic."""


class _Source:
    """How samples' events are loaded; ``identity`` enters the fingerprint."""

    identity: dict = {}

    def events(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Concatenated events of ``indices`` and the per-sample start offsets (len + 1)."""
        parts = [self.events(int(i)) for i in indices]
        starts = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        if not parts:
            return np.zeros(0, dtype=self.dtype), starts
        return np.concatenate(parts), starts


class _NmnistSource(_Source):
    def __init__(self, root: Path, paths: list[Path]):
        self.paths = paths
        self.dtype = VISION_EVENT_DTYPE
        self.identity = {"root": root.name, "files": [
            [str(p.relative_to(root)), p.stat().st_size] for p in paths]}

    def events(self, i):
        return self.batch([i])[0]

    def batch(self, indices):
        paths = [self.paths[int(i)] for i in indices]
        blobs = []
        for p in paths:
            with open(p, "rb") as fh:
                b = fh.read()
            # checked per file: in the concatenated buffer the file would be unknown
            check_record_bytes(len(b), p)
            blobs.append(b)
        rec_starts = np.concatenate([[0], np.cumsum([len(b) // 5 for b in blobs])])
        raw = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        return decode_nmnist(raw, rec_starts, path=paths)


class _FsddSource(_Source):
    """FSDD wavs through the cochlea; converted in a thread pool (the kernel releases the
    GIL) and cached on disk per (file list, cochlea config), since the cochlea is the costly
    step and every chip seed of the LSM re-reads the rasters."""

    def __init__(self, root: Path, paths: list[Path], cochlea: CochleaConfig,
                 cache_dir: Path | None):
        self.dtype = AUDIO_EVENT_DTYPE
        self.cache_dir = cache_dir
        self.paths = paths
        self.cochlea = cochlea
        self._memo: dict[int, np.ndarray] = {}
        self.identity = {"files": [[p.name, p.stat().st_size] for p in paths],
                         "cochlea": dataclasses.asdict(cochlea)}

    def _convert(self, i: int) -> np.ndarray:
        x, rate = read_wav(self.paths[i])
        return cochlea_events(x, rate, self.cochlea)

    def _cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        from ..cache import source_fingerprint

        key = json.dumps([FRONTEND_VERSION, source_fingerprint("events"), self.identity],
                         sort_keys=True)
        return (Path(self.cache_dir) / "cochlea"
                / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".npz"))

    def _load(self, indices) -> None:
        """Fill the memo for ``indices``: from the disk cache when it exists, else by
        converting just the missing files; saves the cache once every file is converted."""
        todo = [int(i) for i in indices if int(i) not in self._memo]
        if not todo:
            return
        path = self._cache_path()
        cached = self._read_cache(path) if path is not None and path.is_file() else None
        if cached is not None:
            events, starts = cached
            self._memo = {i: events[starts[i]:starts[i + 1]] for i in range(len(self.paths))}
            return
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for i, ev in zip(todo, pool.map(self._convert, todo)):
                self._memo[i] = ev
        if path is not None and len(self._memo) == len(self.paths):
            from rram_lsm.records import atomic_write

            events, starts = _Source.batch(self, range(len(self.paths)))
            # crash-safe: concurrent readers and the next run never see half a file
            atomic_write(path, lambda fh: np.savez(fh, events=events, starts=starts))

    def _read_cache(self, path: Path):
        """``(events, starts)`` from the cochlea cache, or None (with a RuntimeWarning) when
        the file is unreadable or does not match this file list: then it is rebuilt."""
        import warnings
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as z:
                events, starts = z["events"], z["starts"]
            ok = (events.dtype == AUDIO_EVENT_DTYPE and starts.ndim == 1
                  and len(starts) == len(self.paths) + 1 and starts[0] == 0
                  and bool(np.all(np.diff(starts) >= 0)) and starts[-1] == len(events))
        except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            ok, why = False, str(exc)
        else:
            why = "its contents do not match the file list"
        if not ok:
            warnings.warn(f"cochlea cache: ignoring the unreadable entry {path} ({why}); "
                          "converting again", RuntimeWarning, stacklevel=3)
            return None
        return events, starts

    def events(self, i):
        self._load([i])
        return self._memo[i]

    def batch(self, indices):
        self._load(indices)
        return _Source.batch(self, indices)


class _NtidigitsSource(_Source):
    def __init__(self, path: Path, keys: list[tuple[str, str]]):
        self.dtype = AUDIO_EVENT_DTYPE
        self.file = NTidigitsFile(path)
        self.keys = keys
        self.identity = {"file": path.name, "size": path.stat().st_size, "keys": keys}

    def events(self, i):
        split, sid = self.keys[i]
        return self.file.events(split, sid)


class _MemorySource(_Source):
    def __init__(self, make, specs, identity, dtype):
        self.make = make
        self.specs = specs
        self.identity = identity
        self.dtype = dtype
        self._memo: dict[int, np.ndarray] = {}

    def events(self, i):
        if i not in self._memo:
            self._memo[i] = self.make(*self.specs[i])
        return self._memo[i]


class EventDataset:
    """An indexable event dataset: ``ds[i] -> (events, label)``; build with :func:`open_dataset`.

    Attributes: ``name``, ``split``, ``synthetic`` (bool), ``labels`` (int64, N),
    ``is_test`` (bool, N: official test split), ``n_classes``, ``class_names``, ``meta``
    (one dict per sample), ``raster_config`` (default preprocessing), ``modality``
    ("vision" or "audio"), ``cochlea`` (the CochleaConfig of FSDD's front end, else None).
    """

    def __init__(self, name: str, split: str, modality: str, labels, is_test, meta: list,
                 class_names, raster_config, source: _Source, synthetic: bool):
        self.name = name
        self.split = split
        self.modality = modality
        self.labels = np.asarray(labels, dtype=np.int64)
        self.is_test = np.asarray(is_test, dtype=bool)
        self.meta = meta
        self.class_names = tuple(class_names)
        self.n_classes = len(self.class_names)
        self.raster_config = raster_config
        self.synthetic = synthetic
        self._source = source

    @property
    def cochlea(self):
        """The :class:`CochleaConfig` that turns this dataset's wavs into events (FSDD), or
        None where the events are recorded (N-MNIST, N-TIDIGITS) or synthetic."""
        return getattr(self._source, "cochlea", None)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        n = len(self)
        if not isinstance(i, (int, np.integer)):
            raise ConfigError(f"index must be an integer, got {type(i).__name__}")
        if not -n <= i < n:
            raise ConfigError(f"index {i} out of range for {n} samples")
        i = int(i) % n
        return self._source.events(i), int(self.labels[i])

    def __repr__(self) -> str:
        kind = "synthetic" if self.synthetic else "real"
        return (f"EventDataset({self.name!r}, split={self.split!r}, n={len(self)}, {kind}, "
                f"{self.n_classes} classes)")

    def _check_config(self, config):
        config = config or self.raster_config
        want = type(self.raster_config)
        if not isinstance(config, want):
            raise ConfigError(f"{self.name} rasters need a {want.__name__}, "
                              f"got {type(config).__name__}")
        return config

    def rasters(self, config=None, progress: bool = True, indices=None) -> np.ndarray:
        """Binary rasters, uint8 ``(N, n_steps, n_inputs)``: all samples, or only
        ``indices`` (in that order) without loading the others."""
        from tqdm.auto import tqdm

        config = self._check_config(config)
        idx_all = np.arange(len(self)) if indices is None else self._check_indices(indices)
        raster = vision_raster if self.modality == "vision" else audio_raster
        out = np.zeros((len(idx_all), config.n_steps, config.n_inputs), dtype=np.uint8)
        with tqdm(total=len(idx_all), desc=f"{self.name} rasters", unit="sample",
                  disable=not progress, leave=False) as bar:
            for lo in range(0, len(idx_all), _BATCH):
                idx = idx_all[lo:lo + _BATCH]
                events, starts = self._source.batch(idx)
                sample = np.repeat(np.arange(len(idx)), np.diff(starts))
                out[lo:lo + len(idx)] = raster(events, config, sample, len(idx))
                bar.update(len(idx))
        return out

    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or (len(idx) and not np.issubdtype(idx.dtype, np.integer)):
            raise ConfigError(f"indices must be a 1-D integer array, got {idx.dtype} "
                              f"{idx.shape}")
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise ConfigError(f"indices must lie in [0, {len(self)}), got "
                              f"{idx.min()}..{idx.max()}")
        return idx.astype(np.int64)

    def event_counts(self, progress: bool = True) -> np.ndarray:
        """Number of events per sample (int64, N)."""
        from tqdm.auto import tqdm

        counts = np.zeros(len(self), dtype=np.int64)
        with tqdm(total=len(self), desc=f"{self.name} events", unit="sample",
                  disable=not progress, leave=False) as bar:
            for lo in range(0, len(self), _BATCH):
                idx = np.arange(lo, min(lo + _BATCH, len(self)))
                counts[idx] = np.diff(self._source.batch(idx)[1])
                bar.update(len(idx))
        return counts

    def fingerprint(self, config=None) -> str:
        """Stable hash of the dataset's identity (files, labels, split, generator) and the
        preprocessing ``config`` (default: ``raster_config``); keys the LSM feature cache."""
        config = self._check_config(config)
        payload = {
            "version": FRONTEND_VERSION, "name": self.name, "split": self.split,
            "synthetic": self.synthetic, "source": self._source.identity,
            "labels": hashlib.sha256(self.labels.tobytes()).hexdigest(),
            "is_test": hashlib.sha256(self.is_test.tobytes()).hexdigest(),
            "config": [type(config).__name__, dataclasses.asdict(config)],
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _missing(what: str, expected: str) -> DataNotFoundError:
    return DataNotFoundError(f"{what} not found; expected {expected}.\n{DOWNLOAD_HELP}")


def _empty_split(dataset: str, split: str, where, expected: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{dataset} {split} split is empty: no samples in {where}; expected {expected}. "
        f"A dataset needs both its train and test splits.\n{DOWNLOAD_HELP}")


def _order(labels, is_test, names):
    return sorted(range(len(labels)), key=lambda i: (bool(is_test[i]), labels[i], names[i]))


def _nmnist_root(data_dir: Path) -> Path:
    for sub in ("nmnist", "nmnist_small"):
        root = data_dir / sub
        if (root / "Train").is_dir() or (root / "Test").is_dir():
            return root
    raise _missing(f"N-MNIST in {data_dir}",
                   "<data_dir>/nmnist/ or <data_dir>/nmnist_small/ with Train|Test/<label>/*.bin")


def _open_nmnist(data_dir: Path, split: str):
    root = _nmnist_root(data_dir)
    paths, labels, is_test = [], [], []
    for sub, test in (("Train", False), ("Test", True)):
        if (split == "train" and test) or (split == "test" and not test):
            continue
        folder = root / sub
        if not folder.is_dir():
            raise _missing(f"N-MNIST split folder {folder}", "Train/ and Test/ folders")
        n_before = len(paths)
        for label_dir in sorted(folder.iterdir()):
            if not label_dir.is_dir():
                continue
            if label_dir.name not in [str(d) for d in range(10)]:
                raise DataError(f"unknown layout: {label_dir} is not a digit folder; "
                                f"expected {sub}/<0-9>/*.bin")
            for f in sorted(label_dir.glob("*.bin")):
                paths.append(f)
                labels.append(int(label_dir.name))
                is_test.append(test)
        if len(paths) == n_before:
            # half a dataset would train on nothing, or evaluate on nothing, with exit 0
            raise _empty_split("N-MNIST", sub, folder, f"{sub}/<0-9>/*.bin")
    order = _order(labels, is_test, [str(p) for p in paths])
    paths = [paths[i] for i in order]
    labels = [labels[i] for i in order]
    is_test = [is_test[i] for i in order]
    meta = [{"path": str(p), "index": p.stem} for p in paths]
    return ("vision", labels, is_test, meta, DIGIT_NAMES, VisionRasterConfig(),
            _NmnistSource(root, paths))


def _open_fsdd(data_dir: Path, split: str, cochlea: CochleaConfig, cache_dir: Path | None):
    folder = data_dir / "fsdd" / "recordings"
    if not folder.is_dir():
        raise _missing(f"FSDD in {data_dir}", "<data_dir>/fsdd/recordings/*.wav")
    items = []
    for f in sorted(folder.glob("*.wav")):
        m = _FSDD_NAME.match(f.name)
        if m is None:
            raise DataError(f"unknown layout: {f} is not named {{digit}}_{{speaker}}_"
                            f"{{take}}.wav as in the Free Spoken Digit Dataset")
        digit, speaker, take = int(m[1]), m[2], int(m[3])
        test = take <= 4  # the customary FSDD split: takes 0-4 are the test set
        if (split == "train" and test) or (split == "test" and not test):
            continue
        items.append((test, digit, speaker, take, f))
    if not items:
        raise _missing(f"FSDD wav files in {folder}", "{digit}_{speaker}_{take}.wav files")
    for name, test in (("train", False), ("test", True)):
        if split in (name, "all") and not any(it[0] == test for it in items):
            raise _empty_split("FSDD", name, folder, "{digit}_{speaker}_{take}.wav files with "
                               + ("takes 0-4" if test else "takes 5 and up"))
    items.sort(key=lambda it: (it[0], it[1], it[2], it[3]))
    meta = [{"path": str(f), "speaker": s, "take": k, "digit": d} for _, d, s, k, f in items]
    return ("audio", [it[1] for it in items], [it[0] for it in items], meta, DIGIT_NAMES,
            AudioRasterConfig(n_channels=cochlea.n_channels),
            _FsddSource(folder, [it[4] for it in items], cochlea, cache_dir))


def _open_ntidigits(data_dir: Path, split: str):
    for path in (data_dir / "ntidigits" / "n-tidigits.hdf5", data_dir / "n-tidigits.hdf5"):
        if path.is_file():
            break
    else:
        raise _missing(f"N-TIDIGITS in {data_dir}",
                       "<data_dir>/ntidigits/n-tidigits.hdf5 or <data_dir>/n-tidigits.hdf5")
    reader = NTidigitsFile(path)
    keys, labels, is_test, meta = [], [], [], []
    for part, test in (("train", False), ("test", True)):
        if (split == "train" and test) or (split == "test" and not test):
            continue
        for sid in reader.labels(part):
            c = ntidigits_class(sid)
            if c is None:
                continue  # multi-digit utterance: the paper uses single digits only
            speaker = sid.split("-")[1] if sid.count("-") >= 2 else ""
            keys.append((part, sid))
            labels.append(c)
            is_test.append(test)
            meta.append({"path": str(path), "id": sid, "speaker": speaker, "split": part})
    reader.close()
    for part, test in (("train", False), ("test", True)):
        if split in (part, "all") and test not in is_test:
            raise _empty_split("N-TIDIGITS", part, path, f"single-digit utterances in "
                               f"{part}_labels (e.g. b'man-ae-1')")
    order = _order(labels, is_test, [k[1] for k in keys])
    return ("audio", [labels[i] for i in order], [is_test[i] for i in order],
            [meta[i] for i in order], NTIDIGITS_CLASSES, AudioRasterConfig(),
            _NtidigitsSource(path, [keys[i] for i in order]))


def _open_synthetic(name: str, split: str, per_class: tuple[int, int], seed: int):
    vision = name == "nmnist"
    names = NTIDIGITS_CLASSES if name == "ntidigits" else DIGIT_NAMES
    specs, labels, is_test, meta = [], [], [], []
    for test, n in ((False, per_class[0]), (True, per_class[1])):
        if (split == "train" and test) or (split == "test" and not test):
            continue
        for c in range(len(names)):
            for k in range(n):
                index = k + (per_class[0] if test else 0)
                specs.append((c, index, seed))
                labels.append(c)
                is_test.append(test)
                meta.append({"path": None, "synthetic": True, "index": index,
                             "speaker": "synthetic", "take": index})
    make = synthetic_vision_sample if vision else synthetic_audio_sample
    identity = {"generator": make.__name__, "seed": seed, "per_class": list(per_class)}
    source = _MemorySource(make, specs, identity,
                           VISION_EVENT_DTYPE if vision else AUDIO_EVENT_DTYPE)
    config = VisionRasterConfig() if vision else AudioRasterConfig()
    return ("vision" if vision else "audio", labels, is_test, meta, names, config, source)


def open_dataset(name: str, data_dir: str | os.PathLike | None, split: str = "all", *,
                 progress: bool = True, cochlea: CochleaConfig | None = None,
                 synthetic_per_class: tuple[int, int] = (40, 10),
                 synthetic_seed: int = 0, cache_dir: str | os.PathLike | None = None,
                 input: str | None = None) -> EventDataset:
    """Open dataset ``name`` ("nmnist", "fsdd", "ntidigits") from ``data_dir``.

    ``data_dir=None`` gives the seeded synthetic stand-in (``synthetic_per_class`` train and
    test samples per class, ``ds.synthetic`` True). ``split``: "train", "test" or "all"
    (official splits; FSDD takes 0-4 are test). ``cochlea`` configures FSDD's front end.
    A missing dataset raises DataNotFoundError naming the layout and download sources.
    Opening only lists files (events load lazily), so ``progress`` shows no bar here; it is
    kept for the shared signature, and ``rasters``/``event_counts`` take their own.
    ``cache_dir``: where FSDD's cochlea events are kept between runs (None: not kept).
    ``input``: the front end of :data:`INPUTS` (N-MNIST: ``"crop"``, the paper's 16 x 16 ON
    crop, default; ``"full"``, 34 x 34 x 2 polarities); it sets ``raster_config``.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {SPLITS}")
    if input is not None:
        raster_preset(name, input)  # an unknown front end fails before any file is listed
    if cochlea is not None and (name != "fsdd" or data_dir is None):
        raise ConfigError("cochlea= configures the FSDD front end only (real FSDD data)")
    if len(synthetic_per_class) != 2 or min(synthetic_per_class) < 0:
        raise ConfigError(f"synthetic_per_class must be (train, test) counts >= 0, got "
                          f"{synthetic_per_class}")
    if data_dir is None:
        parts = _open_synthetic(name, split, tuple(synthetic_per_class), synthetic_seed)
        synthetic = True
    else:
        root = Path(data_dir).expanduser()
        if root.exists() and not root.is_dir():
            raise DataNotFoundError(f"data directory {root} is a file, not a directory.\n"
                                    f"{DOWNLOAD_HELP}")
        if not root.is_dir():
            raise DataNotFoundError(f"data directory {root} does not exist.\n{DOWNLOAD_HELP}")
        if name == "nmnist":
            parts = _open_nmnist(root, split)
        elif name == "fsdd":
            parts = _open_fsdd(root, split, cochlea or CochleaConfig(), cache_dir)
        else:
            parts = _open_ntidigits(root, split)
        synthetic = False
    modality, labels, is_test, meta, class_names, config, source = parts
    if input is not None:
        chosen = raster_preset(name, input)
        # FSDD's channel count follows its cochlea
        config = chosen if modality == "vision" else config
    return EventDataset(name, split, modality, labels, is_test, meta, class_names, config,
                        source, synthetic)
