"""Serial link: wire efficiency, bytes and round trips per encoded sample, and a fault run.

Everything runs against the emulator over a real pseudo-terminal (``hardware.open_emulated``).
Byte counts are exact (counted by the driver); times are pty times on this machine, with the
time the same bytes would take on a 921,600-baud UART given alongside.
"""
from __future__ import annotations

import argparse
import time

DESCRIPTION = "serial driver + pty emulator: wire efficiency, bytes/sample, fault run"
UART_BAUD = 921_600


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rram-lsm bench serial``."""
    p.add_argument("--batch", type=int, default=256, help="MVM batch for wire efficiency")
    p.add_argument("--samples", type=int, default=16, help="N-MNIST samples to encode")
    p.add_argument("--data-dir", default=None,
                   help="data directory with N-MNIST (default $RRAM_LSM_DATA, else synthetic)")
    p.add_argument("--fault-commands", type=int, default=10_000,
                   help="mixed commands in the fault run")
    p.add_argument("--corrupt-rate", type=float, default=0.01)
    p.add_argument("--drop-rate", type=float, default=0.005)
    p.add_argument("--seed", type=int, default=0, help="chip, input and fault seed")


def _uart_s(n_bytes: int) -> float:
    return n_bytes * 10.0 / UART_BAUD  # 8N1: 10 bit times per byte


class _Meter:
    """Driver byte/round-trip counters over a block of calls."""

    def __init__(self, macro):
        self.m = macro

    def __enter__(self):
        s = self.m.stats
        self.start = (s.bytes_sent, s.bytes_received, s.attempts,
                      s.payload_sent + s.payload_received, time.perf_counter())
        return self

    def __exit__(self, *exc):
        s = self.m.stats
        sent, recv, trips, payload, t0 = self.start
        self.sent, self.received = s.bytes_sent - sent, s.bytes_received - recv
        self.payload = s.payload_sent + s.payload_received - payload
        self.round_trips = s.attempts - trips
        self.seconds = time.perf_counter() - t0

    @property
    def wire(self) -> int:
        """Bytes both ways."""
        return self.sent + self.received


def _nmnist_rasters(data_dir, n: int):
    """The first ``n`` N-MNIST test rasters (real if a data directory is set, else synthetic)."""
    import numpy as np

    from lsm.data import open_dataset
    from rram_lsm.app.settings import resolve_data_dir

    root = resolve_data_dir(data_dir)
    ds = open_dataset("nmnist", root, split="test", synthetic_per_class=(1, 4))
    picks = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(int)
    if ds.synthetic:
        return ds.rasters(progress=False)[picks], True
    return _subset_rasters(ds, picks), False


def _subset_rasters(ds, picks):
    import numpy as np

    from lsm.events.frames import vision_raster

    cfg = ds.raster_config
    out = np.zeros((len(picks), cfg.n_steps, cfg.n_inputs), np.uint8)
    for k, i in enumerate(picks):
        events, _ = ds[int(i)]
        out[k] = vision_raster(events, cfg, np.zeros(len(events), np.int64), 1)[0]
    return out


def _encoding(args) -> dict:
    import numpy as np

    from hardware import open_emulated
    from lsm import Reservoir, preset
    from rram_lsm.reservoir import run_reference
    from sim import load_profile

    cfg = preset("nmnist")
    rasters, synthetic = _nmnist_rasters(args.data_dir, args.samples)
    rng = np.random.default_rng(args.seed)
    out: dict = {"dataset": "nmnist (synthetic)" if synthetic else "nmnist",
                 "samples": int(len(rasters)), "uart_baud": UART_BAUD}
    with open_emulated(seed=args.seed, profile=load_profile(None).noise_free(),
                       timeout_s=5.0) as chip:
        res = Reservoir.setup(chip, cfg)
        r, spec = res.region, res.spec
        x = (rng.random((args.batch, r.rows)) < 0.1).astype(np.uint8)
        with _Meter(chip) as mv:
            chip.mvm(r, x, differential=True)
        out["mvm_batch"] = {
            "batch": args.batch, "tile": [r.rows, r.cols], "wire_bytes": mv.wire,
            "request_bytes": mv.sent, "reply_bytes": mv.received,
            "bytes_per_sample": mv.wire / args.batch,
            "naive_bytes_per_sample": r.rows + 8 * r.cols // 2,
            "pty_s": mv.seconds, "uart_s": _uart_s(mv.wire)}
        out["wire_efficiency"] = mv.payload / mv.wire
        modes = {}
        for name, run in (("per_step_mvm", lambda b: run_reference(chip, r, b, spec)[0]),
                          ("run_reservoir", lambda b: chip.run_reservoir(r, b, spec))):
            spikes = []
            with _Meter(chip) as one:  # batch 1: one sample at a time
                for i in range(len(rasters)):
                    spikes.append(run(rasters[i:i + 1]))
            with _Meter(chip) as batched:
                spikes_batched = run(rasters)
            modes[name] = {
                "bytes_per_sample": one.wire / len(rasters),
                "round_trips_per_sample": one.round_trips / len(rasters),
                "uart_s_per_sample": _uart_s(one.wire) / len(rasters),
                "pty_s_per_sample": one.seconds / len(rasters),
                "batched": {"batch": int(len(rasters)),
                            "bytes_per_sample": batched.wire / len(rasters),
                            "round_trips_per_sample": batched.round_trips / len(rasters)},
                "_spikes": np.concatenate(spikes), "_batched": spikes_batched}
        a, b = modes["per_step_mvm"], modes["run_reservoir"]
        out["features_identical"] = bool(
            np.array_equal(a.pop("_spikes"), b.pop("_spikes"))
            and np.array_equal(a.pop("_batched"), b.pop("_batched")))
        out["per_sample"] = modes
        out["round_trips_per_sample"] = {k: v["round_trips_per_sample"] for k, v in modes.items()}
        out["bytes_per_sample"] = {k: v["bytes_per_sample"] for k, v in modes.items()}
        out["run_reservoir_byte_saving"] = a["bytes_per_sample"] / b["bytes_per_sample"]
    return out


def _fault_run(args) -> dict:
    from dataclasses import replace

    import numpy as np
    from tqdm.auto import tqdm

    from hardware import HardwareError, open_emulated
    from sim import SimMacro, load_profile

    base = load_profile(None).noise_free()
    prof = replace(base, array=replace(base.array, rows=32, cols=32))
    ref = SimMacro(seed=args.seed, profile=prof)
    rng = np.random.default_rng(args.seed + 1)
    kinds = ("form", "program", "read", "mvm", "advance", "clock", "reset", "status")
    n = int(args.fault_commands)
    counts = dict.fromkeys(kinds, 0)
    completed = mismatched = failed = issued_changes = 0
    t0 = time.perf_counter()
    with open_emulated(seed=args.seed, profile=prof, corrupt_rate=args.corrupt_rate,
                       drop_rate=args.drop_rate, fault_seed=args.seed, timeout_s=0.3,
                       retries=60, gap_s=0.005, inter_byte_timeout_s=0.005,
                       backoff_s=0.0) as m:
        for _ in tqdm(range(n), desc="fault run", unit="cmd", mininterval=2.0):
            kind = kinds[int(rng.integers(len(kinds)))]
            # 1 x 2 regions keep frames short: at 1.5 % damaged bytes, a 2 x 2 PROGRAM
            # exchange (137 bytes) crosses intact 13 % of the time, a 1 x 2 one 23 %
            r = (int(rng.integers(0, 32)), int(rng.integers(0, 16)) * 2, 1, 2)
            counts[kind] += 1
            try:
                if kind == "form":
                    v = float(np.round(rng.uniform(3.0, 4.2), 2))
                    got, want = m.form(r, v, 1e-6, 100.0), ref.form(r, v, 1e-6, 100.0)
                    same = (np.array_equal(got.formed, want.formed)
                            and np.array_equal(got.conductance_us, want.conductance_us))
                elif kind == "program":
                    t = rng.uniform(5.0, 15.0, (1, 2))
                    got, want = m.program(r, t, 0.5, 8), ref.program(r, t, 0.5, 8)
                    same = all(np.array_equal(getattr(got, f), getattr(want, f))
                               for f in ("conductance_us", "pulses", "converged"))
                elif kind == "read":
                    same = np.array_equal(m.read_conductance(r), ref.read_conductance(r))
                elif kind == "mvm":
                    x = rng.integers(0, 2, (2, 1)).astype(np.uint8)
                    diff = bool(rng.integers(2))
                    same = np.array_equal(m.mvm(r, x, diff), ref.mvm(r, x, diff))
                elif kind == "advance":
                    same = m.advance_time(0.5) == ref.advance_time(0.5)
                elif kind == "clock":
                    same = m.clock_s() == ref.clock_s()
                elif kind == "reset":
                    m.reset()
                    ref.reset()
                    same = True
                else:
                    same = m.status().clock_s == ref.clock_s()
            except HardwareError:
                failed += 1
                continue
            issued_changes += kind in ("form", "program", "advance", "reset")
            completed += 1
            mismatched += not same
        st = m.status()
        stats = m.stats
    return {
        "commands": n, "completed": completed, "failed": failed,
        "undetected_corruptions": mismatched,
        "duplicate_state_changes": max(0, st.state_changes - issued_changes),
        "lost_state_changes": max(0, issued_changes - st.state_changes),
        "state_changes_issued": issued_changes, "state_changes_executed": st.state_changes,
        "mix": counts, "corrupt_rate": args.corrupt_rate, "drop_rate": args.drop_rate,
        "attempts": stats.attempts, "retries": stats.retries, "timeouts": stats.timeouts,
        "rejected_frames": stats.corrupt, "device_frames_bad": st.frames_bad,
        "wire_bytes": stats.bytes_sent + stats.bytes_received,
        "seconds": time.perf_counter() - t0,
    }


def run(args) -> dict:
    """Run the encoding measurements and the fault run; return the results."""
    out = _encoding(args)
    out["faults"] = _fault_run(args)
    return out


if __name__ == "__main__":
    import sys

    from rram_lsm.app.cli import main

    # one code path with ``rram-lsm bench serial`` (same options, same JSON record)
    sys.exit(main(["bench", "serial", *sys.argv[1:]]))
