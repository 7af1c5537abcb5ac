"""Features of a dataset, or of the image/audio pair, encoded on a chip session.

This is where the settings meet the library: the data directory and the cache directory are
resolved here (``rram_lsm.app.settings``), the chip is a :class:`~rram_lsm.app.session.
ChipSession`, and ``lsm.encode_dataset`` does the work.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsm import EncodeOptions, FeatureCache, encode_dataset, open_dataset
from lsm.encode import DATASETS, encode_inputs, resolve_config
from lsm.events import CALIBRATED_GAINS, CochleaConfig
from lsm.features import INPUT_KINDS
from ..errors import ConfigError
from .session import ChipSession
from .settings import cache_dir, resolve_data_dir
from .threads import repin_torch_threads

__all__ = ["AUDIO_CHOICES", "resolve_audio", "feature_cache", "open_data", "cochlea_for",
           "drives_of", "PAIR_DRIVES", "SINGLE_DRIVE",
           "encode", "encode_pair", "encode_distributed", "EncodePart", "encode_part", "split_parts",
           "max_macros_for", "lsm_config_for", "pair_configs"]

AUDIO_CHOICES = ("auto", "fsdd", "ntidigits")
"""``auto`` uses N-TIDIGITS when its hdf5 is in the data directory, else FSDD."""


def resolve_audio(audio: str, data_dir) -> str:
    """The audio dataset name for ``audio`` (``auto`` looks for the N-TIDIGITS hdf5)."""
    if audio not in AUDIO_CHOICES:
        raise ConfigError(f"unknown audio dataset {audio!r}; choose one of {AUDIO_CHOICES}")
    if audio != "auto":
        return audio
    if data_dir is not None:
        root = Path(data_dir)
        if (root / "ntidigits" / "n-tidigits.hdf5").is_file() or \
                (root / "n-tidigits.hdf5").is_file():
            return "ntidigits"
    return "fsdd"


def feature_cache() -> FeatureCache:
    """The feature cache in the user cache directory ($RRAM_LSM_CACHE)."""
    return FeatureCache(cache_dir() / "lsm-features")


def open_data(name: str, data_dir=None, *, progress: bool = True, input: str | None = None,
              cochlea=None):
    """Dataset ``name`` from ``data_dir`` or $RRAM_LSM_DATA (synthetic when neither), with
    the cochlea's event cache in the user cache directory. ``input``: the front end
    (N-MNIST ``crop`` or ``full``, see ``lsm.data.datasets.INPUTS``; None: the default).
    ``cochlea``: FSDD's :class:`~lsm.events.CochleaConfig` (None: the calibrated one;
    :func:`cochlea_for`)."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    return open_dataset(name, resolve_data_dir(data_dir), split="all", progress=progress,
                        cache_dir=cache_dir(), input=input, cochlea=cochlea)


SINGLE_DRIVE = CochleaConfig()
"""The one calibrated drive (``utterance``, 875) that every pair read before round 17;
``encode_pair(cochlea=SINGLE_DRIVE)`` gives those features and cache entries."""

PAIR_DRIVES = ("utterance", "speech")
"""The drives (names in ``lsm.events.CALIBRATED_GAINS``) at which :func:`encode_pair` reads
FSDD's cochlea by default, side by side: selection round 17 (docs/zeroshot.md)."""


def drives_of(cochlea, audio_name: str | None = None) -> tuple:
    """``encode_pair``'s ``cochlea`` as a tuple of front ends: one
    :class:`~lsm.events.CochleaConfig`, or several (one audio pass per drive); None is
    :data:`PAIR_DRIVES` for real FSDD (``audio_name`` ``"fsdd"``) and the dataset's own
    front end otherwise (recorded or synthetic events: ``audio_name`` None)."""
    if cochlea is None and audio_name == "fsdd":
        return tuple(cochlea_for(CALIBRATED_GAINS[d]) for d in PAIR_DRIVES)
    drives = tuple(cochlea) if isinstance(cochlea, (list, tuple)) else (cochlea,)
    if not drives:
        raise ConfigError("need at least one cochlea front end")
    if audio_name != "fsdd":
        # no cochlea to set: the calibrated one (SINGLE_DRIVE) means "as recorded"
        if any(d is not None and d != SINGLE_DRIVE for d in drives) or len(drives) > 1:
            raise ConfigError("cochlea drives configure the front end that turns FSDD's "
                              "wavs into events: recorded N-TIDIGITS and synthetic audio "
                              "have one front end")
        return (None,)
    return drives


def cochlea_for(gain_per_s: float | None):
    """The FSDD front end with the cochlea's drive ``gain_per_s`` (None: the calibrated
    default; 875 gives the same events and cache entries); what ``--cochlea-gain`` gives.
    ``lsm.events.CALIBRATED_GAINS`` names the two calibrations on the real recording."""
    if gain_per_s is None:
        return None
    return CochleaConfig(gain_per_s=float(gain_per_s))


def _profile_name(profile, macro):
    return getattr(getattr(macro, "profile", None), "name", profile)


def encode(session: ChipSession, name: str, ds=None, *, lsm_preset=None,
           chip_age_s: float = 0.0, options: EncodeOptions = EncodeOptions(),
           rasters=None, cache: bool = True, reservoir: str | None = None) -> "object":
    """Features of dataset ``name`` through its reservoir on ``session`` (formed on first
    use, placed by the session's floorplan), after ageing the chip to ``chip_age_s``.

    ``ds``: the dataset if already open (else :func:`open_data` with the default data
    directory); ``rasters``: its rasters if already made. ``reservoir``: the name of the
    reservoir on the session (default ``name``); another name forms another reservoir of
    the same config on tiles of its own (a member of an ensemble).
    """
    if chip_age_s < 0:
        raise ConfigError(f"chip_age_s must be >= 0, got {chip_age_s}")
    ds = open_data(name, progress=options.progress) if ds is None else ds
    if ds.name != name:
        raise ConfigError(f"dataset is {ds.name!r} but name is {name!r}")
    cfg = resolve_config(name, lsm_preset)
    if options.kind in INPUT_KINDS:
        return encode_inputs(ds, cfg, rasters, options.progress, chunk_size=options.chunk,
                             kind=options.kind, n_windows=options.n_windows)
    reservoir = name if reservoir is None else reservoir
    res = session.reservoir(reservoir, cfg)
    if chip_age_s > 0:
        session.age(chip_age_s)
    meta = {"chip_seed": session.chip_seed, "backend": session.backend,
            "noise": session.noise, "profile": _profile_name(session.profile, res.macro),
            "placement": (res.tilemap.to_dict() if hasattr(res, "tilemap")
                          else session.allocator.get(reservoir).to_dict())}
    try:
        return encode_dataset(res, ds, options, rasters=rasters,
                              cache=feature_cache() if cache else None, meta=meta)
    finally:
        # the simulator's parallel kernels reset torch's thread count (threads.py)
        repin_torch_threads()


@dataclass(frozen=True)
class EncodePart:
    """One contiguous range of samples of a distributed encode: the unit of work sent to a
    Dask worker. It names everything the worker rebuilds (dataset, chip, reservoir), so a
    part depends only on its own fields and every scheduler gives the same features."""

    dataset: str
    """Dataset name."""
    data_dir: str | None
    """Resolved data directory (None: synthetic data)."""
    input: str | None
    """Front end (``lsm.data.datasets.INPUTS``)."""
    config: object
    """The reservoir's LsmConfig."""
    backend: str
    """Backend URL of the chip (``sim``, ``emulator``; each worker opens its own copy)."""
    chip_seed: int
    """Seed of the virtual chip."""
    profile: object
    """Device profile (name, path or None)."""
    noise: bool
    """Read/programming noise of a virtual chip."""
    chip_age_s: float
    """Age of the chip when encoding (s after forming)."""
    options: EncodeOptions
    """Feature kind, path, batch and chunk sizes."""
    lo: int
    """First sample (a multiple of the batch size)."""
    hi: int
    """One past the last sample."""
    cache_dir: str | None
    """Where FSDD's cochlea events are cached (the client's setting, passed on)."""
    synthetic_per_class: tuple = (40, 10)
    """Synthetic dataset size (data_dir None)."""
    cochlea: object = None
    """FSDD's CochleaConfig (None: the calibrated default)."""


def max_macros_for(cfg, backend: str, array=(512, 512)):
    """Virtual macros a session needs for ``cfg``'s tiles on ``array``-sized arrays: the
    default (``session.VIRTUAL_MACROS``) or more for a very large reservoir; None (one per
    port) on ``serial:``."""
    from .session import VIRTUAL_MACROS

    if backend.split(":")[0] == "serial":
        return None
    rows, cols = cfg.tile_shape
    if rows <= array[0] and cols <= array[1]:
        return VIRTUAL_MACROS
    tiles = -(-rows // array[0]) * -(-cfg.n_neurons // (array[1] // 2))
    return max(VIRTUAL_MACROS, tiles)


def lsm_config_for(dataset: str, input: str | None = None, neurons: int | None = None,
                   regime: str | None = None):
    """The LsmConfig of ``dataset`` read through front end ``input`` (``lsm.reservoir.
    preset_for``: N-MNIST ``crop`` or ``full``; None: the dataset's own preset), in
    ``regime`` (None: the preset's default), with ``neurons`` reservoir neurons (None: the
    preset's). What ``rram-lsm encode --input/--neurons/--regime`` describes."""
    from lsm import preset
    from lsm.reservoir import preset_for

    cfg = preset(preset_for(dataset, input)) if regime is None else \
        preset(preset_for(dataset, input), regime)
    if neurons is not None:
        if int(neurons) < 1:
            raise ConfigError(f"reservoir neurons must be >= 1, got {neurons}")
        cfg = cfg.replace(n_neurons=int(neurons))
    return cfg


def pair_configs(audio_name: str, *, image_input: str | None = None,
                 image_neurons: int | None = None, audio_neurons: int | None = None):
    """``{"nmnist": cfg, audio_name: cfg}`` for :func:`encode_pair`: each the preset, or
    None where none of its options is given (so the default pair keeps its cache keys)."""
    image = (None if image_input is None and image_neurons is None
             else lsm_config_for("nmnist", image_input, image_neurons))
    audio = None if audio_neurons is None else lsm_config_for(audio_name, None, audio_neurons)
    return {"nmnist": image, audio_name: audio}


def _pair_macros(configs: dict, backend: str) -> int | None:
    """Macros for the pair's reservoirs side by side: the default, or the tiles of both
    when one of them spans many arrays."""
    from .session import VIRTUAL_MACROS

    per = [max_macros_for(c, backend) for c in configs.values()]
    if any(m is None for m in per):
        return None
    # tiled reservoirs take whole macros each (rram_lsm.mapping), so their counts add up
    big = sum(m for m in per if m > VIRTUAL_MACROS)
    return max(VIRTUAL_MACROS, big + len(per))


def _session_reservoir(session: ChipSession, part: EncodePart):
    res = session.reservoir(part.dataset, part.config)
    if part.chip_age_s > 0:
        session.age(part.chip_age_s)
    return res


def _open_part_data(part: EncodePart):
    return open_dataset(part.dataset, part.data_dir, split="all", progress=False,
                        cache_dir=part.cache_dir, input=part.input,
                        synthetic_per_class=part.synthetic_per_class, cochlea=part.cochlea)


def encode_part(part: EncodePart):
    """Encode samples ``part.lo:part.hi`` on a fresh copy of the chip: form the reservoir
    as a serial run does, replay the earlier samples' batches with empty rasters (so the
    tile's read-noise streams stand where a serial run has them, ``lsm.encode.
    replay_runs``), then stream the range. Returns ``(values, SpikeStats, path)``."""
    from lsm.encode import encode_range, replay_runs

    ds = _open_part_data(part)
    with ChipSession(part.backend, chip_seed=part.chip_seed, profile=part.profile,
                     noise=part.noise,
                     max_macros=max_macros_for(part.config, part.backend)) as session:
        res = _session_reservoir(session, part)
        replay_runs(res, part.lo, part.options)
        return encode_range(res, ds, part.options, part.lo, part.hi)


def split_parts(n: int, parts: int, batch_size: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering ``0:n``, each starting at a multiple of
    ``batch_size`` (so that every part runs the batches of a serial run), near-equal in
    whole batches; fewer when there are fewer batches than parts."""
    if parts < 1:
        raise ConfigError(f"parts must be >= 1, got {parts}")
    n_batches = -(-n // batch_size)
    parts = max(1, min(parts, n_batches))
    base, extra = divmod(n_batches, parts)
    out, b = [], 0
    for k in range(parts):
        nb = base + (1 if k < extra else 0)
        out.append((b * batch_size, min((b + nb) * batch_size, n)))
        b += nb
    return out


def encode_distributed(scheduler: str, name: str, data_dir=None, lsm_preset=None, *,
                       input: str | None = None, backend: str = "sim", chip_seed: int = 0,
                       profile=None, noise: bool = True, chip_age_s: float = 0.0,
                       options: EncodeOptions = EncodeOptions(), parts: int | None = None,
                       cache: bool = True, synthetic_per_class=(40, 10), cochlea=None):
    """:func:`encode` spread over a Dask cluster: features identical to a serial run.

    ``scheduler``: a scheduler address (``tcp://host:8786``, workers must have this
    package), ``None`` (a local cluster of 2 processes) or ``"serial"`` (in this process).
    The dataset is cut into ``parts`` contiguous ranges (default: one per worker) at
    multiples of the batch size; each worker forms its own copy of the chip (same backend,
    seed and floorplan) and runs :func:`encode_part`. The client forms one too, for the
    cache key, the provenance and the placement record. Returns ``(Features, chip
    record)``. Backends whose read noise cannot be replayed (a physical chip) cannot give
    identical features: ``serial:`` is refused. ``cochlea``: as :func:`open_data`'s.
    """
    from lsm.encode import SpikeStats, dataset_meta, encode_key, features_of

    from .experiments.sweep import map_tasks

    if backend.split(":")[0] == "serial":
        raise ConfigError("a distributed encode needs a backend every worker can open as "
                          "an identical copy (sim, emulator); a serial port is one chip")
    if options.kind in INPUT_KINDS:
        raise ConfigError(f"the {options.kind} kind has no reservoir to distribute: encode "
                          "serially")
    root = resolve_data_dir(data_dir)
    ds = open_dataset(name, root, split="all", progress=False, cache_dir=cache_dir(),
                      input=input, synthetic_per_class=synthetic_per_class, cochlea=cochlea)
    cfg = resolve_config(name, lsm_preset)
    with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise,
                     max_macros=max_macros_for(cfg, backend)) as session:
        template = EncodePart(name, None if root is None else str(root), input, cfg, backend,
                              int(chip_seed), profile, bool(noise), float(chip_age_s),
                              options, 0, 0, str(cache_dir()), tuple(synthetic_per_class),
                              cochlea)
        res = _session_reservoir(session, template)
        store = feature_cache() if cache else None
        key = encode_key(res, ds, options, store) if store is not None else None
        meta = {"chip_seed": session.chip_seed, "backend": session.backend,
                "noise": session.noise, "profile": _profile_name(session.profile, res.macro),
                "placement": (res.tilemap.to_dict() if hasattr(res, "tilemap")
                              else session.allocator.get(name).to_dict())}
        record = session.record()
        if store is not None:
            hit = store.load(key)
            if hit is not None:
                from lsm import Features

                return Features(hit.values, hit.labels, hit.is_test,
                                {**hit.meta, **dataset_meta(ds), **meta, "cache": "hit",
                                 "cache_key": key}), record
        if parts is None:
            parts = _n_workers(scheduler)
        ranges = split_parts(len(ds), parts, options.batch_size)
        worker_opts = dataclasses.replace(options, progress=False)
        tasks = [dataclasses.replace(template, options=worker_opts, lo=lo, hi=hi)
                 for lo, hi in ranges]
        results = map_tasks(encode_part, tasks, scheduler=scheduler, workers=2,
                            progress=options.progress)
        values = np.concatenate([r[0] for r in results])
        stats = SpikeStats()
        for r in results:
            stats = stats.merge(r[1])
        meta["distributed"] = {"scheduler": scheduler or "local", "parts": ranges}
        feats = features_of(res, ds, options, values, stats, results[0][2], meta)
    if key is not None:
        store.store(key, feats)
        from lsm import Features

        feats = Features(feats.values, feats.labels, feats.is_test,
                         {**feats.meta, "cache": "miss", "cache_key": key})
    return feats, record


def _n_workers(scheduler) -> int:
    """Workers of the cluster at ``scheduler`` (2 for a local cluster, 1 in-process)."""
    if scheduler == "serial":
        return 1
    if scheduler is None:
        return 2
    from dask.distributed import Client

    with Client(scheduler, timeout=30) as client:
        return max(1, len(client.scheduler_info().get("workers", {})))


def encode_pair(data_dir=None, *, backend: str = "sim", chip_seed: int = 0, profile=None,
                noise: bool = True, audio: str = "auto", kind: str | None = None,
                progress: bool = True, session: ChipSession | None = None,
                image_input: str | None = None, image_neurons: int | None = None,
                audio_neurons: int | None = None, n_windows: int = 5, cochlea=None):
    """Encode N-MNIST and the audio dataset on one chip (feature cache on).

    Both modalities use the same chip: ``session`` if given (its backend and seed win),
    else one opened here from ``backend``/``chip_seed``/``profile``/``noise``, with each
    reservoir on a tile of its own. ``kind`` is one of
    :data:`projections.train.FEATURE_KINDS`; ``a+b`` puts both side by side. It is recorded
    in ``meta["feature_kind"]``, and each part's columns in ``meta["feature_blocks"]``, so
    data of ``a+b`` serve recipes on ``a``, ``b`` or both
    (:meth:`PairedFeatures.select_kind`). None (the default) encodes what the default
    recipe reads (``METHODS["default"].encoded_kind``); another recipe's is its
    ``.encoded_kind``. ``meta["chip"]`` is the session's record.

    ``image_input`` (N-MNIST ``crop`` or ``full``), ``image_neurons`` and ``audio_neurons``
    pick other reservoirs, as ``rram-lsm encode --input/--neurons`` does
    (:func:`lsm_config_for`; a reservoir larger than one array is split over tiles);
    ``meta["reservoirs"]`` records each modality's preset, inputs and neurons. None keeps
    the paper's reservoirs (and their cache entries). ``n_windows``: time windows of the
    ``windowed``, ``span`` and ``input_span`` kinds (``meta["n_windows"]``). ``cochlea``:
    the audio front end (FSDD only; :func:`open_data`), recorded in ``meta["cochlea"]``;
    a sequence of them reads the sensor at several drives: each drive's events pass
    through the same audio reservoir as a pair of its own would (on a virtual chip a fresh
    copy of it per extra drive, so the same features and cache entries whether or not
    ``session`` is given; a serial chip runs the drives one after the other) and every
    kind's audio columns hold the drives side by side, in order (``meta["cochlea"]`` a
    list, ``meta["audio_drives"]`` each pass's record). None: real FSDD at
    :data:`PAIR_DRIVES` (round 17), any other audio at its own front end;
    :data:`SINGLE_DRIVE` is the one drive of earlier records.
    Returns :class:`projections.PairedFeatures`.
    """
    # projections loads torch: only a pair needs it, not every encode or data check
    from projections import PairedFeatures
    from projections.train import FEATURE_KINDS, METHODS

    kind = METHODS["default"].encoded_kind if kind is None else kind
    if kind not in FEATURE_KINDS:
        raise ConfigError(f"unknown feature kind {kind!r}; choose one of {FEATURE_KINDS}")
    root = resolve_data_dir(data_dir)
    audio_name = resolve_audio(audio, root)
    # recorded and synthetic audio have one front end: checked before any encoding
    drives = drives_of(cochlea, audio_name if root is not None else None)
    configs = pair_configs(audio_name, image_input=image_input,
                           image_neurons=image_neurons, audio_neurons=audio_neurons)
    resolved = {n: resolve_config(n, c) for n, c in configs.items()}
    if session is None:
        with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise,
                         max_macros=_pair_macros(resolved, backend)) as s:
            return encode_pair(data_dir, audio=audio, kind=kind, progress=progress, session=s,
                               image_input=image_input, image_neurons=image_neurons,
                               audio_neurons=audio_neurons, n_windows=n_windows,
                               cochlea=list(drives))
    kinds = kind.split("+")

    def side(chip, role, name, front_end):
        ds = open_data(name, root, progress=progress,
                       input=image_input if role == "image" else None, cochlea=front_end)
        # one raster pass serves the input rates and, on a cache miss, the reservoir
        rasters = (ds.rasters(None, progress=progress)
                   if set(kinds) & set(INPUT_KINDS) else None)
        return ds, [encode(chip, name, ds, rasters=rasters, lsm_preset=configs[name],
                           options=EncodeOptions(kind=k, progress=progress,
                                                 n_windows=n_windows)) for k in kinds]

    _, image = side(session, "image", "nmnist", None)
    ds, first = side(session, "audio", audio_name, drives[0])
    speakers = _speakers_of(ds, first[0])
    front_ends, audio_passes = [ds.cochlea], [first]
    for drive in drives[1:]:
        if session.backend.split(":")[0] != "serial":
            # a fresh copy of the chip, its tiles placed as a pair's (image first), so each
            # drive's pass is the one-drive pair's: same features, same cache entry
            with ChipSession(session.backend, chip_seed=session.chip_seed,
                             profile=session.profile, noise=session.noise,
                             max_macros=_pair_macros(resolved, session.backend)) as copy:
                copy.reservoir("nmnist", resolved["nmnist"])
                ds, feats = side(copy, "audio", audio_name, drive)
        else:   # one physical chip: the drives run one after the other on it
            ds, feats = side(session, "audio", audio_name, drive)
        front_ends.append(ds.cochlea)
        audio_passes.append(feats)
    reservoirs = {role: {"preset": c.name, "n_inputs": int(c.n_inputs),
                         "n_neurons": int(c.n_neurons), "n_steps": int(c.n_steps)}
                  for role, c in (("image", resolved["nmnist"]),
                                  ("audio", resolved[audio_name]))}
    image_cols = [f.values for f in image]
    audio_cols = [np.concatenate([p[j].values for p in audio_passes], axis=1)
                  for j in range(len(kinds))]
    blocks = {}
    for m, cols in (("image", image_cols), ("audio", audio_cols)):
        edges = np.cumsum([0] + [c.shape[1] for c in cols])
        blocks[m] = {k: [int(a), int(b)] for k, a, b in zip(kinds, edges[:-1], edges[1:])}
    meta = {"image": dict(image[0].meta or {}), "audio": dict(first[0].meta or {}),
            "feature_kind": kind, "feature_blocks": blocks, "n_windows": int(n_windows),
            "reservoirs": reservoirs, "chip": session.record()}
    if front_ends[0] is not None:
        cochleas = [dataclasses.asdict(f) for f in front_ends]
        meta["cochlea"] = cochleas[0] if len(cochleas) == 1 else cochleas
    if len(audio_passes) > 1:
        meta["audio_drives"] = [dict(p[0].meta or {}) for p in audio_passes]
    return PairedFeatures(
        np.concatenate(image_cols, axis=1).astype(np.float32),
        np.asarray(image[0].labels, np.int64), np.asarray(image[0].is_test, bool),
        np.concatenate(audio_cols, axis=1).astype(np.float32),
        np.asarray(first[0].labels, np.int64), np.asarray(first[0].is_test, bool), meta,
        audio_speakers=speakers)


def _speakers_of(ds, features):
    """Who spoke each of ``features``' rows, from the dataset's listing (its rows' order).

    None where any utterance has no speaker named, or where the official test files
    have speakers the training files lack (TIDIGITS' speaker-independent split): speaker
    centring names every unseen utterance after a training speaker, which there would
    be a stranger's name."""
    speakers = np.array([str(m.get("speaker") or "") for m in ds.meta])
    if len(speakers) != len(features.labels) or \
            not np.array_equal(ds.labels, features.labels) or \
            not np.array_equal(ds.is_test, features.is_test):
        raise RuntimeError(f"{ds.name}'s listing and its features are not in one order")
    if "" in speakers or not set(speakers[ds.is_test]) <= set(speakers[~ds.is_test]):
        return None
    return speakers
