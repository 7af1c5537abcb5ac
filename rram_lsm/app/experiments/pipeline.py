"""Stitching helpers shared by the demo, the energy command and the notebooks.

They use only the public APIs of the other packages: ``rram_lsm.app.session.ChipSession``,
``lsm.data`` datasets, ``lsm.events`` rasters, ``lsm.preset`` / ``lsm.Reservoir``.
"""
from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["subset_rasters", "pick_samples", "sample_passes", "reservoir_on_chip",
           "energy_reports"]


def subset_rasters(ds, indices) -> np.ndarray:
    """Rasters uint8 ``(len(indices), T, n_inputs)`` of some samples of an EventDataset,
    without rastering the rest (the cochlea front end makes a full FSDD pass slow)."""
    from lsm.events import audio_raster, vision_raster

    raster = vision_raster if ds.modality == "vision" else audio_raster
    cfg = ds.raster_config
    out = np.zeros((len(indices), cfg.n_steps, cfg.n_inputs), np.uint8)
    for k, i in enumerate(indices):
        out[k] = raster(ds[int(i)][0], cfg)
    return out


def pick_samples(labels, n: int, seed: int) -> np.ndarray:
    """``n`` indices spread over the classes (round-robin over a seeded shuffle), sorted."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)).tolist()
                 for c in np.unique(labels)]
    chosen = []
    while len(chosen) < min(n, len(labels)):
        for pool in per_class:
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    return np.sort(np.array(chosen, dtype=np.int64))


def sample_passes(name: str, root, n: int, seed: int, cochlea=None):
    """``(labels, passes, datasets)`` of ``n`` samples of dataset ``name``
    (:func:`pick_samples`): their rasters once per front end an inference reads, the same
    samples each time, and the dataset opened for each (real FSDD: a pass per cochlea
    drive, ``cochlea`` as ``encode_pair`` takes it, None the pairs' drives; any other
    data: one pass)."""
    from ..features import drives_of, open_data

    drives = drives_of(cochlea if name == "fsdd" else None,
                       name if root is not None else None)
    sets = [open_data(name, root, progress=False, cochlea=d) for d in drives]
    idx = pick_samples(sets[0].labels, n, seed)
    return sets[0].labels[idx], [subset_rasters(ds, idx) for ds in sets], sets


@contextlib.contextmanager
def reservoir_on_chip(dataset: str, *, backend: str = "sim", chip_seed: int = 0,
                      profile=None, noise: bool = True, chip_age_s: float = 0.0):
    """Open a chip session, form the dataset's reservoir on its floorplan tile, age it;
    yield the ``lsm.Reservoir`` (its ``.macro`` is the chip's macro). The same arguments
    give the same tile as ``rram-lsm encode``, so spikes here match the features it
    encoded."""
    from lsm import preset

    from ..session import ChipSession

    with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise) as chip:
        res = chip.reservoir(dataset, preset(dataset))
        chip.age(chip_age_s)
        yield res


def energy_reports(datasets, *, data_dir=None, backend: str = "sim", chip_seed: int = 0,
                   profile=None, noise: bool = True, samples: int = 64,
                   projection_dim: int = 64, params=None, seed: int = 0,
                   head_features: str | None = None, heads: str = "digital",
                   head_input_bits: int = 6, head_tile_rows: int = 512,
                   cochlea=None, progress: bool = True):
    """Energy reports ``{label: EnergyReport}`` and data provenance for ``datasets``.

    ``heads``: "digital" (the paper's split: reservoir in memory, heads digital; label
    the dataset), "analogue" (heads on macro tiles too; label ``"<dataset>, heads in
    RRAM"``) or "both" (both rows, from the same spikes).

    ``samples`` samples per dataset (spread over classes, seeded) run through the LSM on the
    chip; their operation counts are priced with ``params`` (default parameter file).
    ``head_features``: the feature kind the projection head reads (None: the default
    recipe's, ``projections.METHODS["default"].features``). ``cochlea``: FSDD's front
    end, as ``encode_pair`` takes it (None: real FSDD at the pairs' drives,
    ``PAIR_DRIVES``): an inference runs the reservoir once per drive, and the head reads
    every drive's features (:func:`~rram_lsm.app.experiments.energy.sum_passes`).
    """
    from tqdm.auto import tqdm

    from ...errors import ConfigError
    from ..settings import resolve_data_dir
    from .energy import measure_energy

    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}")
    if heads not in ("digital", "analogue", "both"):
        raise ConfigError(f"heads must be digital, analogue or both, got {heads!r}")
    kinds = ("digital", "analogue") if heads == "both" else (heads,)
    if head_features is None:
        from projections import METHODS

        head_features = METHODS["default"].features
    root = resolve_data_dir(data_dir)
    reports, meta = {}, {}
    for name in tqdm(list(datasets), desc="energy", disable=not progress):
        labels, passes, sets = sample_passes(name, root, samples, seed, cochlea)
        with reservoir_on_chip(name, backend=backend, chip_seed=chip_seed, profile=profile,
                               noise=noise) as res:
            spikes = [res.run(r) for r in passes]
            for kind in kinds:
                label = name if kind == "digital" else f"{name}, heads in RRAM"
                reports[label] = measure_energy(
                    res, passes, projection_dim=projection_dim, params=params,
                    spikes=spikes, head_features=head_features, head=kind,
                    head_input_bits=head_input_bits, head_tile_rows=head_tile_rows)
        meta[name] = {"synthetic": bool(sets[0].synthetic), "samples": int(len(labels)),
                      "data_dir": None if root is None else str(root)}
        if sets[0].cochlea is not None:
            meta[name]["cochlea_gain_per_s"] = [ds.cochlea.gain_per_s for ds in sets]
    return reports, meta
