"""Benchmark of the simulator's batched binary MVM: noise off vs on, one run.

``rram-lsm bench sim --json F`` or ``python -m rram_lsm.app.bench.bench_sim --json F``. A 456 x 400 tile
(the reservoir: 256 inputs + 200 neurons by 200 differential pairs), formed to sparsity 0.5,
batch 256 of random binary inputs. Clean and noisy calls are interleaved and the ratio is
taken per round, so load from other processes affects both sides alike.
"""
from __future__ import annotations

import argparse

DESCRIPTION = "batched binary MVM throughput of the simulator, read noise off vs on"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Benchmark options."""
    from ..commands.common import seed

    parser.add_argument("--batch", type=int, default=256, help="input vectors per mvm call")
    parser.add_argument("--rows", type=int, default=456, help="tile rows (inputs)")
    parser.add_argument("--cols", type=int, default=400, help="tile columns (outputs)")
    parser.add_argument("--densities", type=float, nargs="+", default=[0.5, 0.13],
                        help="fractions of active input rows; the first is the headline")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per setting")
    parser.add_argument("--seed", type=seed, default=0, help="chip and input seed")


def _time_once(fn) -> tuple[float, float]:
    """Wall and process-CPU seconds of one call (CPU time is robust to a loaded machine)."""
    import time

    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def run(args) -> dict:
    """Time clean and noisy ``mvm`` on the same chip and inputs; return the figures."""
    import numba
    import numpy as np

    from sim import SimMacro, load_profile
    from sim.forming import form_to_sparsity

    prof = load_profile(None)
    region = (0, 0, args.rows, args.cols)
    noisy = SimMacro(seed=args.seed, profile=prof)
    clean = SimMacro(seed=args.seed, profile=prof.noise_free())
    voltage, _ = form_to_sparsity(noisy, region, 0.5)
    form_to_sparsity(clean, region, 0.5)
    rng = np.random.default_rng(args.seed)
    per_density = {}
    for density in args.densities:
        x = (rng.random((args.batch, args.rows)) < density).astype(np.uint8)
        clean.mvm(region, x)  # compile / warm caches outside the timing
        noisy.mvm(region, x)
        t_clean, t_noisy = [], []
        for _ in range(args.rounds):
            t_clean.append(_time_once(lambda: clean.mvm(region, x)))
            t_noisy.append(_time_once(lambda: noisy.mvm(region, x)))
        t_clean, t_noisy = np.array(t_clean), np.array(t_noisy)
        tc, tn = float(np.median(t_clean[:, 0])), float(np.median(t_noisy[:, 0]))
        active = float(x.sum())
        per_density[f"{density:g}"] = {
            "active_rows_mean": active / args.batch,
            "seconds_noise_off": tc,
            "seconds_noise_on": tn,
            "noise_on_over_off": float(np.median(t_noisy[:, 0] / t_clean[:, 0])),
            "noise_on_over_off_cpu": float(np.median(t_noisy[:, 1]) / np.median(t_clean[:, 1])),
            "samples_per_s_noise_off": args.batch / tc,
            "samples_per_s_noise_on": args.batch / tn,
            # one multiply-accumulate per active row and column, counted as 2 operations
            "gops_noise_off": 2 * active * args.cols / tc / 1e9,
            "gops_noise_on": 2 * active * args.cols / tn / 1e9,
            "dense_equivalent_gops_noise_off": 2 * args.batch * args.rows * args.cols / tc / 1e9,
        }
    head = per_density[f"{args.densities[0]:g}"]
    return {
        "mvm": {
            "noise_on_over_off": head["noise_on_over_off"],
            "noise_on_over_off_cpu": head["noise_on_over_off_cpu"],
            "samples_per_s": {"noise_off": head["samples_per_s_noise_off"],
                              "noise_on": head["samples_per_s_noise_on"]},
            "gops": {"noise_off": head["gops_noise_off"], "noise_on": head["gops_noise_on"]},
            "by_density": per_density,
        },
        "tile": {"rows": args.rows, "cols": args.cols, "batch": args.batch,
                 "forming_voltage_v": voltage},
        "numba_threads": numba.get_num_threads(),
    }


if __name__ == "__main__":
    import sys

    from rram_lsm.app.cli import main

    # one code path with ``rram-lsm bench sim`` (same options, same JSON record)
    sys.exit(main(["bench", "sim", *sys.argv[1:]]))
