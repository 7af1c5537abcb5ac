"""Benchmark of the LSM fast path against dense torch and snntorch on the same rasters.

``rram-lsm bench lsm --json F`` or ``python -m rram_lsm.app.bench.bench_lsm --json F``. One virtual chip
(read noise off, ideal ADC, so that the reservoir is exactly the weight matrix
``w = scale * (G+ - G-) / g_ref`` the torch models use), the N-MNIST preset (256 -> 200,
T = 50), the real N-MNIST training rasters when a data directory is set (``--data-dir``,
else ``$RRAM_LSM_DATA``), else synthetic ones. Which it was is printed first
(``bench lsm: REAL ...`` or a loud ``SYNTHETIC`` warning: synthetic rasters carry about a
third of the real events, which flatters every figure) and recorded in the JSON
(``input``: ``"real"`` / ``"synthetic"``, ``synthetic_rasters``, ``data_dir``).

* Equality: float64 dense torch and float64 snntorch must give the fast path's spike
  counts, and the generic path (the reference loop) its spikes and final membranes bit
  for bit on the whole batch (``counts_equal``); float32 agreement is reported beside it.
* Throughput at batch 256 and latency at batch 1 (streaming), all three timed in
  interleaved rounds; each speedup is the median over rounds of the per-round ratio, so
  load from other processes hits both sides of a ratio alike. torch runs float32 with 2
  threads (as specified; ``speedup_vs_dense_torch_1thread`` repeats dense torch on one
  thread, which is faster when other processes load the machine); the fast path uses
  numba's threads (2).
* Scaling: time per sample with 100, 200, 400, 800 neurons (``--neurons``; the array is
  enlarged to hold any size as one tile, e.g. ``--neurons 200 500 1000 2000``), and with
  the input events thinned or thickened: it follows input events + spikes x fan-out, not
  T x N^2. These are single-thread CPU times (process time, best of rounds) of the fast
  path and of dense torch, which other processes' load does not distort the way it does
  wall time.
* Sizes (``--sizes``, default 200 500 1000 2000 neurons, at ``--size-inputs`` 256 and
  2,312 inputs: the crop and the whole sensor of N-MNIST, both polarities): every size
  mapped by ``rram_lsm.mapping.plan_tiles`` onto 512 x 512 tiles of several simulated
  macros and run by the fused multi-tile kernel (``TiledReservoir``'s fast path), checked
  against the tiled reference loop on a few samples (``equal_generic``). Per size the
  events (row additions), the conductance additions they cost (rows x 2 n columns), the
  single-thread CPU time per sample and the additions per second: the cost follows events
  x fan-out. ``scaling_sizes`` in the JSON.
"""
from __future__ import annotations

import argparse
import time

DESCRIPTION = "LSM fast path vs dense torch vs snntorch: equality, throughput, latency, scaling"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Benchmark options."""
    from ..commands.common import seed

    parser.add_argument("--data-dir", default=None,
                        help="data directory (default $RRAM_LSM_DATA, else synthetic rasters)")
    parser.add_argument("--batch", type=int, default=256, help="throughput batch size")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--latency-samples", type=int, default=16,
                        help="samples streamed one by one per latency round")
    parser.add_argument("--neurons", type=int, nargs="+", default=[100, 200, 400, 800],
                        help="reservoir sizes of the scaling sweep")
    parser.add_argument("--event-scales", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0],
                        help="input-event multipliers of the event sweep")
    parser.add_argument("--sizes", type=int, nargs="*", default=[200, 500, 1000, 2000],
                        help="reservoir sizes of the multi-tile sweep (none: skip it)")
    parser.add_argument("--size-inputs", type=int, nargs="+", default=[256, 2312],
                        choices=[256, 2312],
                        help="input sizes of the multi-tile sweep (crop, full sensor)")
    parser.add_argument("--size-samples", type=int, default=32,
                        help="samples per size of the multi-tile sweep")
    parser.add_argument("--seed", type=seed, default=0, help="chip seed")


def _rasters(data_dir, n: int):
    """``n`` N-MNIST training rasters (repeated if the set is smaller), whether they are
    synthetic, and the data directory used (None: synthetic)."""
    import numpy as np

    from lsm.data import open_dataset
    from rram_lsm.app.settings import resolve_data_dir

    root = resolve_data_dir(data_dir)
    ds = open_dataset("nmnist", root, split="train", progress=False)
    r = ds.rasters(None, progress=False)
    reps = -(-n // len(r))
    return (np.ascontiguousarray(np.tile(r, (reps, 1, 1))[:n]), bool(ds.synthetic),
            None if ds.synthetic else str(root))


def _header(synthetic: bool, data_dir, rasters) -> str:
    per = rasters.sum() / len(rasters)
    if synthetic:
        return ("bench lsm: SYNTHETIC rasters -- no data directory (--data-dir or "
                f"$RRAM_LSM_DATA); {per:,.0f} input events a sample, NOT real N-MNIST: every "
                "figure below is flattered and must not be quoted as a real-data result")
    return (f"bench lsm: REAL N-MNIST training rasters from {data_dir} ({len(rasters)} samples,"
            f" {per:,.0f} input events a sample)")


def _chip(seed: int, n_inputs: int, n_neurons: int, adc: bool):
    import dataclasses

    from sim import SimMacro, load_profile
    from sim.profile import AdcConfig

    prof = load_profile(None).noise_free()
    rows, cols = n_inputs + n_neurons, 2 * n_neurons
    prof = dataclasses.replace(
        prof, array=dataclasses.replace(prof.array, rows=max(rows, prof.array.rows),
                                        cols=max(cols, prof.array.cols)))
    if not adc:
        prof = dataclasses.replace(prof, adc=AdcConfig(bits=None))
    return SimMacro(seed=seed, profile=prof)


class _Torch:
    """The same reservoir as dense torch (two matmuls per step) and as snntorch."""

    def __init__(self, w_in, w_rec, decay, threshold):
        import torch

        self.w = {dt: (torch.from_numpy(w_in).to(dt), torch.from_numpy(w_rec).to(dt))
                  for dt in (torch.float32, torch.float64)}
        self.decay, self.threshold = decay, threshold

    def dense(self, rasters, dtype):
        import torch

        w_in, w_rec = self.w[dtype]
        x = torch.from_numpy(rasters).to(dtype).transpose(0, 1).contiguous()  # (T, B, in)
        n_steps, batch = x.shape[:2]
        v = torch.zeros(batch, w_in.shape[1], dtype=dtype)
        s = torch.zeros_like(v)
        count = torch.zeros_like(v)
        with torch.no_grad():
            for t in range(n_steps):
                v = self.decay * v * (1 - s) + x[t] @ w_in + s @ w_rec
                s = (v > self.threshold).to(dtype)
                count += s
        return count.numpy()

    def snn(self, rasters, dtype):
        import snntorch as snn
        import torch

        w_in, w_rec = self.w[dtype]
        fc_in = torch.nn.Linear(*w_in.shape, bias=False).to(dtype)
        fc_rec = torch.nn.Linear(*w_rec.shape, bias=False).to(dtype)
        fc_in.weight.data = w_in.T.contiguous()
        fc_rec.weight.data = w_rec.T.contiguous()
        lif = snn.Leaky(beta=self.decay, threshold=self.threshold, reset_mechanism="zero")
        x = torch.from_numpy(rasters).to(dtype).transpose(0, 1).contiguous()
        n_steps, batch = x.shape[:2]
        with torch.no_grad():
            mem = lif.init_leaky()
            s = torch.zeros(batch, w_in.shape[1], dtype=dtype)
            count = torch.zeros_like(s)
            for t in range(n_steps):
                s, mem = lif(fc_in(x[t]) + fc_rec(s), mem)
                s = s.to(dtype)
                count += s
        return count.numpy()


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _per_sample_stream(fn, rasters) -> float:
    """Median seconds per sample when samples arrive one at a time."""
    import numpy as np

    times = []
    for i in range(len(rasters)):
        one = rasters[i:i + 1]
        times.append(_timed(lambda: fn(one)))
    return float(np.median(times))


def _reservoir(chip, cfg):
    from lsm import Reservoir

    res = Reservoir.setup(chip, cfg)
    runner = chip.reservoir_runner(res.region, res.spec)  # the simulator's streaming handle
    w_in, w_rec = res.weights()
    return res, runner, w_in, w_rec


def run(args) -> dict:
    """Equality, throughput, latency and scaling figures of the fast path."""
    import numpy as np
    import torch

    from lsm import preset

    torch.set_num_threads(2)
    cfg = preset("nmnist")
    rasters, synthetic, data_dir = _rasters(args.data_dir, args.batch)
    print(_header(synthetic, data_dir, rasters), flush=True)
    chip = _chip(args.seed, cfg.n_inputs, cfg.n_neurons, adc=False)
    res, runner, w_in, w_rec = _reservoir(chip, cfg)
    ref = _Torch(w_in, w_rec, cfg.decay, cfg.threshold)

    spikes, v_fast = runner.run(rasters)
    counts = spikes.sum(axis=1)
    check = {}
    for name in ("dense", "snn"):
        fn = getattr(ref, name)
        check[name + "64"] = bool(np.array_equal(fn(rasters, torch.float64), counts))
        check[name + "32"] = float(np.mean(fn(rasters, torch.float32) == counts))
    s_gen, v_gen = res.run(rasters, "generic", return_membrane=True)
    generic_equal = bool(np.array_equal(s_gen, spikes))
    generic_v_equal = bool(np.array_equal(v_gen.view(np.int64), v_fast.view(np.int64)))

    fast_b = lambda r: runner.run(r)  # noqa: E731
    dense_b = lambda r: ref.dense(r, torch.float32)  # noqa: E731
    snn_b = lambda r: ref.snn(r, torch.float32)  # noqa: E731
    for fn in (fast_b, dense_b, snn_b):
        fn(rasters[:2])  # warm-up: compilation, allocator, thread pools
    rounds = {"fast": [], "dense": [], "snn": [], "dense_1thread": []}
    lat = {"fast": [], "dense": [], "snn": []}
    stream = rasters[:args.latency_samples]
    for _ in range(args.rounds):
        for name, fn in (("fast", fast_b), ("dense", dense_b), ("snn", snn_b)):
            rounds[name].append(_timed(lambda: fn(rasters)))
            lat[name].append(_per_sample_stream(fn, stream))
        # torch's two workers spin and lose badly when the machine is loaded; one thread
        # shows how much of a ratio that explains.
        torch.set_num_threads(1)
        rounds["dense_1thread"].append(_timed(lambda: dense_b(rasters)))
        torch.set_num_threads(2)
    t = {k: np.asarray(v) for k, v in rounds.items()}
    lt = {k: np.asarray(v) for k, v in lat.items()}
    runner.run(rasters)
    events = int(runner.last_events.sum())
    best_fast = float(t["fast"].min())

    results = {
        "input": "synthetic" if synthetic else "real",
        "synthetic_rasters": synthetic,
        "data_dir": data_dir,
        "batch": args.batch,
        "counts_equal": (check["dense64"] and check["snn64"] and generic_equal
                         and generic_v_equal),
        "counts_equal_detail": {"dense_torch_float64": check["dense64"],
                                "snntorch_float64": check["snn64"],
                                "generic_path": generic_equal,
                                "generic_path_membranes_bitwise": generic_v_equal,
                                "dense_torch_float32_fraction": check["dense32"],
                                "snntorch_float32_fraction": check["snn32"]},
        "speedup_vs_dense_torch": float(np.median(t["dense"] / t["fast"])),
        "speedup_vs_snntorch": float(np.median(t["snn"] / t["fast"])),
        "speedup_vs_dense_torch_1thread": float(np.median(t["dense_1thread"] / t["fast"])),
        "latency_speedup_vs_dense_torch": float(np.median(lt["dense"] / lt["fast"])),
        "latency_speedup_vs_snntorch": float(np.median(lt["snn"] / lt["fast"])),
        "samples_per_s": {k: float(args.batch / v.min()) for k, v in t.items()},
        "latency_us": {k: float(v.min() * 1e6) for k, v in lt.items()},
        "synaptic_events_per_s": events / best_fast,
        "conductance_adds_per_s": events * 2 * cfg.n_neurons / best_fast,
        "input_events_per_sample": float(rasters.sum() / len(rasters)),
        "spikes_per_sample": float(counts.sum() / len(rasters)),
        "row_additions_per_sample": events / len(rasters),
        "firing_rate_per_step": float(spikes.mean()),
        # uint16 / int32: exact integer sums of the simulator's conductance grid; float64:
        # the fallback for tiles off the grid
        "fast_tile_layout": str(runner.g.dtype),
        # pair rows (two neighbouring inputs' code sum, one row addition for two events)
        "fast_pair_rows": int(runner.g.shape[0] - cfg.n_inputs - cfg.n_neurons),
        "latency_row_additions_per_sample": float(
            _events(runner, stream) / len(stream)),
    }
    results["scaling_neurons"] = _scaling_neurons(args, rasters)
    results["scaling_events"] = _scaling_events(args, rasters, runner)
    results["fast_with_adc_samples_per_s"] = _with_adc(args, cfg, rasters)
    results["scaling_sizes"] = _scaling_sizes(args)
    return results


def _events(runner, rasters) -> int:
    runner.run(rasters)
    return int(runner.last_events.sum())


def _best_cpu(fn, rounds: int) -> float:
    """Least process CPU time of ``rounds`` calls (run single-threaded)."""
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def _scaling_neurons(args, rasters) -> list[dict]:
    import torch

    from lsm import preset

    out = []
    sub = rasters[:64]
    torch.set_num_threads(1)
    for n in args.neurons:
        cfg = preset("nmnist", n_neurons=n)
        chip = _chip(args.seed, cfg.n_inputs, n, adc=False)
        _, runner, w_in, w_rec = _reservoir(chip, cfg)
        ref = _Torch(w_in, w_rec, cfg.decay, cfg.threshold)
        runner.run(sub[:2])
        t_fast = _best_cpu(lambda: runner.run(sub, parallel=False), max(3, args.rounds))
        t_dense = _best_cpu(lambda: ref.dense(sub, torch.float32), max(3, args.rounds))
        spikes, _ = runner.run(sub)
        out.append({"n_neurons": n,
                    "fast_cpu_us_per_sample": t_fast / len(sub) * 1e6,
                    "dense_torch_cpu_us_per_sample": t_dense / len(sub) * 1e6,
                    "row_additions_per_sample": float(runner.last_events.mean()),
                    "conductance_adds_per_sample": float(runner.last_events.mean()) * 2 * n,
                    "spikes_per_sample": float(spikes.sum() / len(sub)),
                    "firing_rate_per_step": float(spikes.mean())})
    torch.set_num_threads(2)
    return out


def _scaling_events(args, rasters, runner) -> list[dict]:
    """Thin (keep a fraction) or thicken (add random events) the same rasters."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    sub = rasters[:64]
    density = sub.mean()
    out = []
    for scale in args.event_scales:
        if scale <= 1:
            r = (sub & (rng.random(sub.shape) < scale)).astype(np.uint8)
        else:
            extra = rng.random(sub.shape) < density * (scale - 1)
            r = (sub | extra).astype(np.uint8)
        t = _best_cpu(lambda: runner.run(r, parallel=False), max(3, args.rounds))
        spikes, _ = runner.run(r)
        out.append({"event_scale": scale,
                    "input_events_per_sample": float(r.sum() / len(r)),
                    "spikes_per_sample": float(spikes.sum() / len(r)),
                    "row_additions_per_sample": float(runner.last_events.mean()),
                    "fast_cpu_us_per_sample": t / len(r) * 1e6,
                    "cpu_ns_per_row_addition": t / runner.last_events.sum() * 1e9})
    return out


def _with_adc(args, cfg, rasters) -> float:
    """Throughput on the default chip (8-bit ADC), for reference."""
    chip = _chip(args.seed, cfg.n_inputs, cfg.n_neurons, adc=True)
    _, runner, _, _ = _reservoir(chip, cfg)
    runner.run(rasters[:2])
    return len(rasters) / min(_timed(lambda: runner.run(rasters)) for _ in range(args.rounds))


def _scaling_sizes(args) -> list[dict]:
    """The multi-tile sweep (module docstring): every (inputs, neurons) on 512 x 512 tiles."""
    import dataclasses

    import numpy as np

    from lsm import preset
    from lsm.data import open_dataset
    from lsm.reservoir import TiledReservoir
    from rram_lsm.app.settings import resolve_data_dir
    from rram_lsm.mapping import plan_tiles
    from rram_lsm.placement import TileAllocator
    from sim import SimMacro, load_profile
    from sim.profile import AdcConfig

    if not args.sizes:
        return []
    prof = load_profile(None).noise_free()
    prof = dataclasses.replace(prof, adc=AdcConfig(bits=None))
    root = resolve_data_dir(args.data_dir)
    out = []
    for n_inputs in args.size_inputs:
        name = "nmnist" if n_inputs == 256 else "nmnist-full"
        ds = open_dataset("nmnist", root, split="train", progress=False,
                          input="crop" if n_inputs == 256 else "full")
        n = min(args.size_samples, len(ds))
        rasters = np.ascontiguousarray(ds.rasters(None, progress=False, indices=np.arange(n)),
                                     np.uint8)
        for n_neurons in args.sizes:
            cfg = preset(name, n_neurons=n_neurons)
            alloc = TileAllocator((prof.array.rows, prof.array.cols), max_macros=256)
            tm = plan_tiles(cfg.name, cfg.tile_shape[0], n_neurons, alloc)
            macros = {k: SimMacro(seed=args.seed, profile=prof, macro_index=k)
                      for k in range(alloc.macros_used)}
            res = TiledReservoir.setup_tiled(macros, cfg, tm)
            runner = res._tiled_runner()
            check = rasters[:2]
            equal = bool(np.array_equal(runner.run(check)[0], res.run(check, "generic")))
            runner.run(rasters[:2], parallel=False)
            t = _best_cpu(lambda: runner.run(rasters, parallel=False), max(3, args.rounds))
            spikes, _ = runner.run(rasters, parallel=False)
            rows = float(runner.last_events.mean())
            adds = rows * 2 * n_neurons
            out.append({"n_inputs": n_inputs, "n_neurons": n_neurons,
                        "input": "synthetic" if ds.synthetic else "real",
                        "tiles": len(tm.parts), "macros": len(tm.macros),
                        "row_blocks": tm.n_row_blocks, "col_blocks": tm.n_col_blocks,
                        "equal_generic": equal,
                        "input_events_per_sample": float(rasters.sum() / n),
                        "spikes_per_sample": float(spikes.sum() / n),
                        "row_additions_per_sample": rows,
                        "conductance_adds_per_sample": adds,
                        "dense_macs_per_sample": float(cfg.n_steps * cfg.tile_shape[0]
                                                       * n_neurons),
                        "fast_cpu_us_per_sample": t / n * 1e6,
                        "conductance_adds_per_s_1thread": adds * n / t,
                        "cpu_ns_per_row_addition": t / runner.last_events.sum() * 1e9})
            print(f"  sizes: {n_inputs} -> {n_neurons}: {len(tm.parts)} tiles, "
                  f"{rows:,.0f} rows, {t / n * 1e6:,.1f} µs/sample, "
                  f"{adds * n / t / 1e9:.1f} G adds/s (1 thread), equal {equal}", flush=True)
    return out


if __name__ == "__main__":
    import sys

    from rram_lsm.app.cli import main

    # one code path with ``rram-lsm bench lsm`` (same options, same JSON record)
    sys.exit(main(["bench", "lsm", *sys.argv[1:]]))
