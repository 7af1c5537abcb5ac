"""Encode benchmark: a full-size N-MNIST (70,000 files) at full resolution, streamed.

``rram-lsm bench encode --json F``. Writes ``--n-files`` N-MNIST recordings in the original
binary format (5 bytes an event, ``lsm.events.write_nmnist``) into a temporary directory,
laid out as the real dataset (``Train/<label>/`` 6/7 of them, ``Test/<label>/`` the rest),
each made from one of the shared real recordings (``--data-dir`` / ``$RRAM_LSM_DATA``,
taken in a seeded order, each once before any twice) by a seeded spatial shift of up to ``--max-shift`` pixels per axis (events
pushed off the 34 x 34 sensor are dropped) and a Gaussian time jitter of ``--jitter-us``
per event (re-sorted, clipped at 0). Without real data the sources are the synthetic
digits, and the header and the JSON (``input``: ``"real"`` / ``"synthetic"``) say so.

Then the whole set is encoded as ``rram-lsm encode`` does (``lsm.encode_dataset``, feature
cache off; the simulator's fused multi-tile kernel, read noise on unless ``--no-noise``):
full resolution (2 x 34 x 34 = 2,312 inputs, preset ``nmnist-full``), 1,000
neurons (``--neurons``) split over 512 x 512 tiles of several simulated macros, rasters
made and consumed ``--chunk-size`` samples at a time. Reported: samples/s of the encode
(listing, reading, decoding, binning, the reservoir, the features), the time of writing
the files, and the peak resident memory of the process (``ru_maxrss``), which must stay
under 2 GB (``peak_rss_ok``): the whole set's rasters would take 70,000 x 50 x 2,312 bytes
= 8.1 GB.
"""
from __future__ import annotations

import argparse

DESCRIPTION = ("full-size N-MNIST (70,000 real-format files from the shared recordings) "
               "encoded at full resolution: samples/s and peak RSS")

RSS_LIMIT_BYTES = 2 * 1024 ** 3
"""Peak resident memory allowed (2 GiB)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Benchmark options."""
    from ..commands.common import seed

    parser.add_argument("--data-dir", default=None,
                        help="data directory with the source recordings (default: "
                        "$RRAM_LSM_DATA, else synthetic sources)")
    parser.add_argument("--n-files", type=int, default=70_000,
                        help="recordings to write and encode (the full N-MNIST: 70,000)")
    parser.add_argument("--neurons", type=int, default=1000, help="reservoir neurons")
    parser.add_argument("--input", default="full", choices=("crop", "full"),
                        help="N-MNIST input (full: 2,312 inputs)")
    parser.add_argument("--chunk-size", type=int, default=1024,
                        help="samples whose rasters are made and run at once")
    parser.add_argument("--max-shift", type=int, default=2,
                        help="largest spatial shift in pixels per axis")
    parser.add_argument("--jitter-us", type=float, default=500.0,
                        help="std of the per-event time jitter (µs)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of shifts and jitter")
    parser.add_argument("--chip-seed", type=seed, default=0, help="seed of the virtual chip")
    parser.add_argument("--no-noise", action="store_true",
                        help="read noise off (the fused multi-tile kernel reproduces the "
                        "column read noise, so both settings run fused)")
    parser.add_argument("--workdir", default=None,
                        help="where to write the files (default: a temporary directory, "
                        "removed after)")


def _sources(data_dir):
    """``(list of (events, label)), real?``: the shared recordings, or synthetic digits."""
    from lsm.data import open_dataset
    from lsm.data.synthetic import synthetic_vision_sample

    if data_dir is not None:
        try:
            ds = open_dataset("nmnist", data_dir, progress=False)
        except Exception:  # noqa: BLE001 - no N-MNIST there: synthetic sources, said loudly
            ds = None
        if ds is not None:
            return [ds[i] for i in range(len(ds))], True
    return [(synthetic_vision_sample(c, k), c) for k in range(20) for c in range(10)], False


def augment(events, rng, max_shift: int, jitter_us: float, sensor=(34, 34)):
    """``events`` shifted by a random (dx, dy) in ``[-max_shift, max_shift]`` (events off the
    sensor dropped) with Gaussian time jitter of std ``jitter_us`` (clipped at 0, sorted)."""
    import numpy as np

    dx, dy = rng.integers(-max_shift, max_shift + 1, size=2)
    x = events["x"].astype(np.int64) + dx
    y = events["y"].astype(np.int64) + dy
    keep = (x >= 0) & (x < sensor[0]) & (y >= 0) & (y < sensor[1])
    out = events[keep].copy()
    out["x"] = x[keep]
    out["y"] = y[keep]
    if jitter_us > 0:
        t = out["t"] + np.rint(rng.normal(0.0, jitter_us, len(out))).astype(np.int64)
        out["t"] = np.maximum(t, 0)
        out = out[np.argsort(out["t"], kind="stable")]
    return out


def write_set(root, sources, n_files: int, seed: int, max_shift: int, jitter_us: float):
    """Write ``n_files`` augmented recordings under ``root/nmnist/{Train,Test}/<label>/``;
    returns the number of events written."""
    from pathlib import Path

    import numpy as np

    from lsm.events import write_nmnist

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sources))  # a smaller set still mixes every class
    n_train = n_files * 6 // 7  # the real split: 60,000 / 10,000
    base = Path(root) / "nmnist"
    made, events = set(), 0
    for k in range(n_files):
        ev, label = sources[order[k % len(sources)]]
        folder = base / ("Train" if k < n_train else "Test") / str(label)
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        out = augment(ev, rng, max_shift, jitter_us)
        write_nmnist(folder / f"{k:05d}.bin", out)
        events += len(out)
    for split in ("Train", "Test"):  # a split with no file of a class still needs a folder
        (base / split / "0").mkdir(parents=True, exist_ok=True)
    return events


def _peak_rss_bytes() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def run(args) -> dict:
    """Write the set, encode it, return the measurements."""
    import shutil
    import sys
    import tempfile
    import time

    from lsm import EncodeOptions, encode_dataset, open_dataset, preset
    from lsm.reservoir import preset_for
    from rram_lsm.app.features import max_macros_for
    from rram_lsm.app.session import ChipSession
    from rram_lsm.app.settings import resolve_data_dir

    if args.n_files < 14:
        from rram_lsm.errors import ConfigError

        raise ConfigError("--n-files must be >= 14 (both splits need files)")
    data_dir = resolve_data_dir(args.data_dir)
    sources, real = _sources(data_dir)
    kind = "real" if real else "synthetic"
    print(f"bench encode: {kind.upper()} sources ({len(sources)} recordings"
          + (f" from {data_dir}" if real else ", SYNTHETIC digits: no N-MNIST found") + "), "
          f"{args.n_files} files, input {args.input}, {args.neurons} neurons",
          file=sys.stderr)
    tmp = args.workdir or tempfile.mkdtemp(prefix="rram-lsm-bench-encode-")
    try:
        t0 = time.perf_counter()
        n_events = write_set(tmp, sources, args.n_files, args.seed, args.max_shift,
                             args.jitter_us)
        t_write = time.perf_counter() - t0
        rss_after_write = _peak_rss_bytes()
        cfg = preset(preset_for("nmnist", args.input), n_neurons=args.neurons)
        t1 = time.perf_counter()
        ds = open_dataset("nmnist", tmp, progress=False, input=args.input)
        options = EncodeOptions(kind="counts", progress=False, chunk_size=args.chunk_size)
        with ChipSession("sim", chip_seed=args.chip_seed, noise=not args.no_noise,
                         max_macros=max_macros_for(cfg, "sim")) as chip:
            t_form0 = time.perf_counter()
            res = chip.reservoir("nmnist", cfg)
            t_form = time.perf_counter() - t_form0
            t2 = time.perf_counter()
            feats = encode_dataset(res, ds, options)
            t_encode = time.perf_counter() - t2
            tiles = len(res.tilemap.parts) if hasattr(res, "tilemap") else 1
        t_total = time.perf_counter() - t1
    finally:
        if args.workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    peak = _peak_rss_bytes()
    n = len(feats)
    return {
        "input": kind, "synthetic_sources": not real,
        "data_dir": None if data_dir is None else str(data_dir),
        "n_files": n, "n_train": int((~feats.is_test).sum()), "n_test": int(feats.is_test.sum()),
        "events_written": int(n_events), "events_per_file": n_events / n,
        "augmentation": {"max_shift_px": args.max_shift, "jitter_us": args.jitter_us,
                         "seed": args.seed},
        "front_end": args.input, "n_inputs": cfg.n_inputs, "n_neurons": cfg.n_neurons,
        "n_steps": cfg.n_steps, "tiles": tiles, "path": feats.meta["path"],
        "read_noise": not args.no_noise,
        "chunk_size": options.chunk, "batch_size": options.batch_size,
        "write_seconds": t_write, "files_written_per_s": n / t_write,
        "form_seconds": t_form, "encode_seconds": t_encode,
        "samples_per_s": n / t_encode,
        "samples_per_s_with_open_and_forming": n / t_total,
        "extrapolated_seconds_for_70000": 70_000 / (n / t_encode),
        "firing_rate_per_step": feats.meta["firing_rate_per_step"],
        "peak_rss_bytes": peak, "peak_rss_gib": peak / 1024 ** 3,
        "peak_rss_after_writing_gib": rss_after_write / 1024 ** 3,
        "peak_rss_limit_gib": RSS_LIMIT_BYTES / 1024 ** 3,
        "peak_rss_ok": peak < RSS_LIMIT_BYTES,
        "whole_set_rasters_gib": 70_000 * cfg.n_steps * cfg.n_inputs / 1024 ** 3,
        "features_shape": list(feats.values.shape),
    }


if __name__ == "__main__":
    import sys

    from rram_lsm.app.cli import main

    sys.exit(main(["bench", "encode", *sys.argv[1:]]))
