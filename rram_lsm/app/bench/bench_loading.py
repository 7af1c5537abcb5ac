"""Loading benchmark: N-MNIST files -> rasters, and FSDD wavs -> cochlea events.

Uses the real data under ``--data-dir`` / ``$RRAM_LSM_DATA`` when present; otherwise writes
synthetic recordings in the real N-MNIST format to a temporary directory, so the parser is
measured on real-format files either way. The cochlea part runs only with real FSDD data
(or ``--skip-fsdd`` to leave it out); it bypasses the on-disk cochlea cache.
"""
from __future__ import annotations

import argparse

DESCRIPTION = "N-MNIST files -> rasters (s per 1,000 samples) and FSDD cochlea conversion"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Benchmark options."""
    parser.add_argument("--data-dir", default=None,
                        help="data directory (default: $RRAM_LSM_DATA, else synthetic files)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (best kept)")
    parser.add_argument("--skip-fsdd", action="store_true", help="skip the cochlea timing")


def _nmnist_dir(data_dir, tmp):
    from pathlib import Path

    from lsm.data.synthetic import synthetic_vision_sample
    from lsm.events import write_nmnist

    if data_dir is not None and any((data_dir / s).is_dir() for s in ("nmnist", "nmnist_small")):
        return data_dir, False
    root = Path(tmp) / "nmnist_small"
    for split, n in (("Train", 100), ("Test", 10)):
        for c in range(10):
            folder = root / split / str(c)
            folder.mkdir(parents=True)
            for k in range(n):
                write_nmnist(folder / f"{k:05d}.bin", synthetic_vision_sample(c, k))
    return Path(tmp), True


def run(args) -> dict:
    """Time loading and rasterising; return the measurements."""
    import os
    import tempfile
    import time

    import numpy as np

    from lsm.data import open_dataset
    from rram_lsm.app.settings import resolve_data_dir

    data_dir = resolve_data_dir(getattr(args, "data_dir", None))
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root, generated = _nmnist_dir(data_dir, tmp)
        open_dataset("nmnist", root).rasters(progress=False)  # warm the OS file cache
        times, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            ds = open_dataset("nmnist", root)
            rasters = ds.rasters(progress=False)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        best = min(times)
        results["nmnist"] = {
            "files": len(ds), "synthetic_files": generated, "raster_shape": rasters.shape,
            "seconds_best": best, "seconds_median": float(np.median(times)),
            "seconds_per_1000": best / len(ds) * 1000,
            # CPU time is what the machine's other load does not inflate
            "cpu_seconds_per_1000": min(cpu) / len(ds) * 1000,
            "samples_per_s": len(ds) / best,
            "includes": "listing files, reading, decoding, crop/polarity/binning",
        }
    if not args.skip_fsdd and data_dir is not None and (data_dir / "fsdd").is_dir():
        from concurrent.futures import ThreadPoolExecutor

        from lsm.events import cochlea_events, read_wav

        paths = [m["path"] for m in open_dataset("fsdd", data_dir).meta]

        def convert(path):
            signal, rate = read_wav(path)
            return len(signal) / rate, len(cochlea_events(signal, rate))

        convert(paths[0])  # compile (or load the cached kernel) outside the timing
        t0, c0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            done = list(pool.map(convert, paths))
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - c0
        audio_s = sum(d[0] for d in done)
        n_events = sum(d[1] for d in done)
        results["fsdd_cochlea"] = {
            "files": len(paths), "seconds": seconds, "files_per_s": len(paths) / seconds,
            "cpu_seconds": cpu_seconds, "cpu_ms_per_file": cpu_seconds / len(paths) * 1000,
            "audio_seconds": audio_s, "realtime_factor": audio_s / seconds,
            "events": n_events, "events_per_audio_s": n_events / audio_s,
            "threads": os.cpu_count(),
        }
    return results


if __name__ == "__main__":
    import sys

    from rram_lsm.app.cli import main

    # one code path with ``rram-lsm bench loading`` (same options, same JSON record)
    sys.exit(main(["bench", "loading", *sys.argv[1:]]))
