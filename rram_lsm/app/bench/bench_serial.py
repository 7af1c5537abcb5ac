"""Serial link: wire efficiency, bytes and round trips per encoded sample, and a fault run.

Everything runs against the emulator over a real pseudo-terminal (``hardware.open_emulated``).
Byte counts are exact (counted by the driver); times are pty times on this machine, with the
time the same bytes would take on a 921,600-baud UART given alongside.
"""
from __future__ import annotations

import argparse
import time

DESCRIPTION = "serial driver + pty emulator: wire efficiency, bytes/sample, lossy-link soak"
UART_BAUD = 921_600


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rram-lsm bench serial``."""
    from hardware.spawn import non_negative_int, probability

    p.add_argument("--batch", type=int, default=256, help="MVM batch for wire efficiency")
    p.add_argument("--samples", type=int, default=16, help="N-MNIST samples to encode")
    p.add_argument("--data-dir", default=None,
                   help="data directory with N-MNIST (default $RRAM_LSM_DATA, else synthetic)")
    p.add_argument("--soak-commands", "--fault-commands", dest="soak_commands",
                   type=non_negative_int, default=10_000,
                   help="mixed commands in the lossy-link soak (0: no soak; the issue's full "
                        "size is 100000)")
    p.add_argument("--soak-only", action="store_true",
                   help="run only the soak, not the encoding measurements")
    p.add_argument("--corrupt-rate", type=probability, default=0.01,
                   help="probability a byte is altered, each direction")
    p.add_argument("--drop-rate", type=probability, default=0.005,
                   help="probability a byte is lost, each direction")
    p.add_argument("--reset-rate", type=probability, default=0.002,
                   help="probability per command that the device reboots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="chip, input and fault seed")


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


class _Soak:
    """One soak: mixed commands on an emulated 32 x 32 chip over a lossy pty, each result
    compared with a local simulator of the same chip (kept in step with the device)."""

    KINDS = ("form", "program", "read", "mvm", "advance", "clock", "reset", "status",
             "run_reservoir")
    STATE_CHANGING = ("form", "program", "advance", "reset")

    def __init__(self, m, ref, rng):
        from rram_lsm.macro import Region
        from rram_lsm.reservoir import ReservoirSpec

        self.m, self.ref, self.rng = m, ref, rng
        self.spec = ReservoirSpec(3, 2, 0.9, 0.5, 1.0, 10.0)
        self.tile = Region(27, 28, 5, 4)
        self.executed = m.status().state_changes  # state changes the device should have run
        self.out = dict(completed=0, failed=0, undetected_corruptions=0, reset_errors=0,
                        repeated_after_reset=0, unrecorded_runs=0,
                        mix=dict.fromkeys(self.KINDS, 0))

    def _op(self, kind: str):
        """(device call, reference call, equality) for one random command of ``kind``."""
        import numpy as np

        from rram_lsm.reservoir import run_reference

        m, ref, rng = self.m, self.ref, self.rng
        # 1 x 2 regions keep frames short: at 1.5 % damaged bytes, a 2 x 2 PROGRAM
        # exchange (137 bytes) crosses intact 13 % of the time, a 1 x 2 one 23 %
        r = (int(rng.integers(0, 32)), int(rng.integers(0, 16)) * 2, 1, 2)
        eq = np.array_equal
        if kind == "form":
            v = float(np.round(rng.uniform(3.0, 4.2), 2))
            return (lambda: m.form(r, v, 1e-6, 100.0), lambda: ref.form(r, v, 1e-6, 100.0),
                    lambda a, b: eq(a.formed, b.formed) and eq(a.conductance_us,
                                                                b.conductance_us))
        if kind == "program":
            t = rng.uniform(5.0, 15.0, (1, 2))
            return (lambda: m.program(r, t, 0.5, 8), lambda: ref.program(r, t, 0.5, 8),
                    lambda a, b: all(eq(getattr(a, f), getattr(b, f))
                                     for f in ("conductance_us", "pulses", "converged")))
        if kind == "read":
            return lambda: m.read_conductance(r), lambda: ref.read_conductance(r), eq
        if kind == "mvm":
            x = rng.integers(0, 2, (2, 1)).astype(np.uint8)
            diff = bool(rng.integers(2))
            return lambda: m.mvm(r, x, diff), lambda: ref.mvm(r, x, diff), eq
        if kind == "advance":
            return lambda: m.advance_time(0.5), lambda: ref.advance_time(0.5), eq
        if kind == "clock":
            return m.clock_s, ref.clock_s, eq
        if kind == "reset":
            return m.reset, ref.reset, lambda a, b: True
        if kind == "status":
            return (lambda: m.status().clock_s, ref.clock_s, eq)
        x = rng.integers(0, 2, (1, 4, 3)).astype(np.uint8)
        return (lambda: m.run_reservoir(self.tile, x, self.spec),
                lambda: run_reference(ref, self.tile, x, self.spec)[0], eq)

    def step(self) -> None:
        from hardware import DeviceResetError, HardwareError

        kind = self.KINDS[int(self.rng.integers(len(self.KINDS)))]
        self.out["mix"][kind] += 1
        dev, ref_call, same = self._op(kind)
        changes = kind in self.STATE_CHANGING
        while True:
            try:
                got = dev()
                break
            except DeviceResetError:
                # outcome unknown to the driver: re-read the device's count of executed state
                # changes, as a run re-reads its tile, and repeat only if it did not run
                self.out["reset_errors"] += 1
                if self._ran():
                    self.out["unrecorded_runs"] += 1
                    ref_call()
                    self.executed += 1
                    return
                self.out["repeated_after_reset"] += 1
            except HardwareError:
                self.out["failed"] += 1
                if changes and self._ran():
                    ref_call()  # it did run: keep the reference chip in step
                    self.executed += 1
                return
        want = ref_call()
        self.out["completed"] += 1
        self.out["undetected_corruptions"] += not same(got, want)
        self.executed += changes

    def _ran(self) -> bool:
        """Did the outstanding state change run on the device? (STATUS, retried.)"""
        from hardware import HardwareError

        for _ in range(20):
            try:
                return self.m.status().state_changes != self.executed
            except HardwareError:
                continue
        raise RuntimeError("STATUS never got through: the soak cannot tell what ran")


def soak(n: int, corrupt_rate: float = 0.01, drop_rate: float = 0.005,
         reset_rate: float = 0.002, seed: int = 0, progress: bool = True) -> dict:
    """``n`` mixed commands over a lossy link with device reboots; the counts that matter
    are ``undetected_corruptions`` (results that differ from the simulator's) and
    ``duplicate_state_changes`` (state changes the device ran beyond those the run asked
    for), both 0 when the protocol holds."""
    from dataclasses import replace

    import numpy as np
    from tqdm.auto import tqdm

    from hardware import open_emulated
    from sim import SimMacro, load_profile

    base = load_profile(None).noise_free()
    prof = replace(base, array=replace(base.array, rows=32, cols=32))
    t0 = time.perf_counter()
    with open_emulated(seed=seed, profile=prof, corrupt_rate=corrupt_rate,
                       drop_rate=drop_rate, reset_rate=reset_rate, fault_seed=seed,
                       timeout_s=0.3, retries=60, gap_s=0.005, inter_byte_timeout_s=0.005,
                       backoff_s=0.0) as m:
        run = _Soak(m, SimMacro(seed=seed, profile=prof), np.random.default_rng(seed + 1))
        t_start = time.perf_counter()
        for _ in tqdm(range(int(n)), desc="soak", unit="cmd", mininterval=2.0,
                      disable=not progress):
            run.step()
        seconds = time.perf_counter() - t_start
        st = run.m.status()
        stats = m.stats
    out = run.out
    return {
        "commands": int(n), **{k: out[k] for k in ("completed", "failed")},
        "commands_per_s": n / seconds if seconds > 0 else None,
        "undetected_corruptions": out["undetected_corruptions"],
        "duplicate_state_changes": max(0, st.state_changes - run.executed),
        "lost_state_changes": max(0, run.executed - st.state_changes),
        "state_changes_asked": run.executed, "state_changes_executed": st.state_changes,
        "device_reboots": st.boot_count - 1, "reboots_noticed": stats.device_resets,
        "reset_errors": out["reset_errors"],
        "repeated_after_reset": out["repeated_after_reset"],
        "unrecorded_runs": out["unrecorded_runs"],
        "mix": out["mix"], "corrupt_rate": corrupt_rate, "drop_rate": drop_rate,
        "reset_rate": reset_rate,
        "attempts": stats.attempts, "retries": stats.retries, "timeouts": stats.timeouts,
        "rejected_frames": stats.corrupt, "device_frames_bad": st.frames_bad,
        "wire_bytes": stats.bytes_sent + stats.bytes_received,
        "seconds": seconds, "seconds_with_startup": time.perf_counter() - t0,
    }


def run(args) -> dict:
    """Run the encoding measurements and the soak; return the results."""
    out = {} if args.soak_only else _encoding(args)
    if args.soak_commands:
        out["soak"] = soak(args.soak_commands, args.corrupt_rate, args.drop_rate,
                           args.reset_rate, args.seed, progress=not args.no_progress)
    return out


if __name__ == "__main__":
    import sys

    from rram_lsm.app.cli import main

    # one code path with ``rram-lsm bench serial`` (same options, same JSON record)
    sys.exit(main(["bench", "serial", *sys.argv[1:]]))
