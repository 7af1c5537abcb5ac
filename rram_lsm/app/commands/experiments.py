"""Subcommands ``demo``, ``run``, ``rerun``, ``sweep`` and ``energy`` (the application layer).

Every handler stores its parsed options as the record's ``config`` so ``rram-lsm rerun``
can rebuild the command line from the JSON alone.
"""
from __future__ import annotations

from pathlib import Path

from .common import (add_backend, add_cochlea, add_data_dir, add_json, check_output_dir,
                     cochlea_option, pin_cochlea_drives, seed)

_DATASETS = ("nmnist", "fsdd", "ntidigits")


def _config(args) -> dict:
    """The options to store in a record: everything argparse parsed but the plumbing."""
    out = {k: v for k, v in vars(args).items() if k not in ("handler", "json_path", "command")}
    for key in ("data_dir", "out", "plot", "params", "profile"):
        value = out.get(key)
        if value and Path(value).exists():
            out[key] = str(Path(value).resolve())  # reruns from elsewhere find the same file
    return out


def _progress(p) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide progress bars")


# --- demo ---------------------------------------------------------------------------------


def _demo(args) -> int:
    from ..experiments.demo import DemoOptions, run_demo

    check_output_dir(args.out, "--out")  # minutes of work must not end in a traceback
    pin_cochlea_drives(args, "auto")
    opts = DemoOptions(
        data_dir=args.data_dir, backend=args.backend, chip_seed=args.chip_seed,
        profile=args.profile, noise=not args.no_noise, out=args.out, quick=args.quick,
        seed=args.seed, method=args.method, progress=args.progress,
        cochlea=cochlea_option(args, "auto"))
    result = run_demo(opts, config=_config(args), json_path=args.json_path)
    print(result.table_text())
    print(f"\nresults: {result.results_path}\nfigures: {', '.join(map(str, result.figures))}")
    return 0


# --- run / rerun --------------------------------------------------------------------------


def _run(args) -> int:
    from ..experiments.runfile import run_experiment

    return run_experiment(args.experiment, json_path=args.json_path)


def _rerun(args) -> int:
    from ..experiments.runfile import compare_records, rerun_record
    from ...records import read_record

    code, new_path = rerun_record(args.record, json_path=args.json_path, out=args.out)
    if code != 0:
        return code
    cmp = compare_records(read_record(args.record), read_record(new_path),
                          rtol=args.rtol, atol=args.rtol * 1e-3)
    same = not cmp["differ"] and not cmp["missing"]
    print(f"rerun: {cmp['compared']} numbers compared with {args.record}: "
          f"{'all equal' if same else 'DIFFERENT'}")
    for key, a, b in cmp["differ"][:20]:
        print(f"  {key}: {a!r} -> {b!r}")
    if cmp["missing"]:
        print(f"  numbers the rerun lacks: {cmp['missing'][:20]}")
    if cmp["added"]:
        print(f"  numbers only the rerun records (not a difference): {cmp['added'][:20]}")
    return 0 if same or not args.check else 3


# --- sweep --------------------------------------------------------------------------------


def _parse_values(items) -> dict:
    from ...errors import ConfigError

    out = {}
    for item in items or ():
        axis, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--values takes AXIS=v1,v2,...; got {item!r}")
        try:
            out[axis.strip()] = tuple(float(v) for v in values.split(","))
        except ValueError as exc:
            raise ConfigError(f"--values {item!r}: values must be numbers") from exc
    return out


def sweep_spec_from_args(args):
    """The SweepSpec that the ``sweep`` options describe."""
    from ...errors import ConfigError
    from ..experiments.sweep import DEFAULT_GRID, SweepSpec

    values = _parse_values(args.values)
    axes = [a.strip() for a in args.axes.split(",") if a.strip()] if args.axes else None
    if axes is None:
        axes = list(DEFAULT_GRID) + [a for a in values if a not in DEFAULT_GRID]
    grid = []
    for axis in axes:
        if axis not in values and axis not in DEFAULT_GRID:
            raise ConfigError(f"axis {axis!r} has no default values: give --values {axis}=...")
        grid.append((axis, values.get(axis, DEFAULT_GRID.get(axis))))
    if args.chip_seeds < 1:
        raise ConfigError(f"--chip-seeds must be >= 1, got {args.chip_seeds}")
    from ..settings import resolve_data_dir

    # Resolved here: workers of a remote cluster do not share this shell's $RRAM_LSM_DATA.
    root = resolve_data_dir(args.data_dir)
    return SweepSpec(
        dataset=args.dataset, data_dir=None if root is None else str(root), grid=tuple(grid),
        chip_seeds=tuple(range(args.seed, args.seed + args.chip_seeds)),
        profile=args.profile, noise=not args.no_noise, metric=args.metric,
        train_per_class=args.train_per_class, test_per_class=args.test_per_class,
        data_seed=args.data_seed)


def _sweep(args) -> int:
    from ..experiments.display import sweep_text
    from ..experiments.sweep import run_sweep
    from ...records import write_record

    spec = sweep_spec_from_args(args)  # a wrong --data-dir fails here, not on every worker
    scheduler = "serial" if args.serial else args.scheduler
    result = run_sweep(spec, scheduler=scheduler, workers=args.workers, progress=args.progress)
    print(sweep_text(result))
    if args.plot:
        fig = result.plot()
        fig.savefig(args.plot, dpi=130)
        print(f"plot: {args.plot}")
    if args.json_path:
        write_record(args.json_path, result.to_dict(), command="sweep", config=_config(args),
                     seeds={"chip_seeds": list(spec.chip_seeds), "data_seed": spec.data_seed})
    return 0


# --- energy -------------------------------------------------------------------------------


def _energy(args) -> int:
    from ..experiments.display import energy_text
    from ..experiments.energy import load_energy_params
    from ..experiments.pipeline import energy_reports
    from ...records import write_record

    params = load_energy_params(args.params)
    if args.dataset == "both":
        from ..features import resolve_audio

        from ..settings import resolve_data_dir

        datasets = ("nmnist", resolve_audio("auto", resolve_data_dir(args.data_dir)))
    else:
        datasets = (args.dataset,)
    audio = next((d for d in datasets if d != "nmnist"), None)
    if audio is not None:
        # the drives are written into the record's config, so a rerun reads the same ones
        pin_cochlea_drives(args, audio)
    reports, meta = energy_reports(
        datasets, data_dir=args.data_dir, backend=args.backend, chip_seed=args.chip_seed,
        profile=args.profile, noise=not args.no_noise, samples=args.samples,
        projection_dim=args.projection_dim, params=params, seed=args.seed,
        heads=args.heads, head_input_bits=args.head_input_bits,
        head_tile_rows=args.head_tile_rows, cochlea=cochlea_option(args, audio or "nmnist"),
        progress=args.progress)
    print(energy_text(reports, meta))
    if args.plot:
        from ..experiments.plots import plot_energy

        plot_energy(reports).savefig(args.plot, dpi=130)
        print(f"plot: {args.plot}")
    if args.json_path:
        results = {name: r.to_dict() for name, r in reports.items()}
        results["data"] = meta
        write_record(args.json_path, results, command="energy", config=_config(args),
                     seeds={"chip_seed": args.chip_seed, "seed": args.seed})
    return 0


def register(sub) -> None:
    """Register demo, run, rerun, sweep and energy."""
    from hardware.spawn import positive_int

    p = sub.add_parser(
        "demo", help="the whole co-design end to end: chip, LSM, contrastive heads, zero-shot",
        description="Form a virtual chip, encode vision and audio digits with the LSM, train "
                    "contrastive projections on digits 1-7, evaluate zero-shot and 5-shot on "
                    "8-9; print a table and write results.json and figures to --out.")
    add_data_dir(p)
    add_backend(p)
    p.add_argument("--out", default="out/demo", help="output directory (default out/demo)")
    p.add_argument("--quick", action="store_true",
                   help="one training seed, at most 30 epochs, 20 few-shot episodes (the data "
                        "are encoded in full)")
    p.add_argument("--seed", type=seed, default=0, help="training and split seed")
    add_cochlea(p, several=True)
    p.add_argument("--method", default="default",
                   help="projection recipe (as rram-lsm zeroshot --method); the paper's "
                        "recipe always runs beside it as a baseline")
    _progress(p)
    add_json(p)
    p.set_defaults(handler=_demo)

    p = sub.add_parser("run", help="run an experiment described by a TOML file",
                       description="Run the command an experiment file names, with its "
                                   "options (see docs/experiments.md).")
    p.add_argument("experiment", help="experiment .toml file")
    add_json(p)
    p.set_defaults(handler=_run)

    p = sub.add_parser("rerun", help="rerun the command that wrote a JSON record and compare",
                       description="Rebuild the command line from a record's command and "
                                   "config, run it, and compare every number.")
    p.add_argument("record", help="a JSON record written with --json (or a demo results.json)")
    p.add_argument("--out", default=None,
                   help="output directory for commands that take --out (default <dir>/rerun)")
    p.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance of the check")
    p.add_argument("--check", action="store_true", help="exit 3 when any number differs")
    add_json(p)
    p.set_defaults(handler=_rerun)

    from ..experiments.sweep import AXES
    axes_help = "; ".join(f"{k}: {v}" for k, v in AXES.items())
    p = sub.add_parser(
        "sweep", help="accuracy vs device non-idealities over many virtual chips (Dask)",
        description="One knob at a time around the device profile, several chip seeds per "
                    f"setting. Axes: {axes_help}; or any profile field 'section.field'.")
    p.add_argument("--dataset", choices=_DATASETS, default="nmnist",
                   help="dataset swept (default nmnist)")
    add_data_dir(p)
    p.add_argument("--profile", default=None, help="base device profile (preset or JSON)")
    p.add_argument("--no-noise", action="store_true", help="read/programming noise off")
    p.add_argument("--axes", default=None, help="comma-separated axes (default: all of them)")
    p.add_argument("--values", action="append", metavar="AXIS=V1,V2",
                   help="values of one axis (repeatable); adds the axis if --axes is not given")
    p.add_argument("--chip-seeds", type=int, default=3, help="virtual chips per setting (default 3)")
    p.add_argument("--seed", type=seed, default=0, help="first chip seed")
    p.add_argument("--data-seed", type=seed, default=0, help="seed of the data subset")
    p.add_argument("--metric", choices=("logistic", "prototype"), default="logistic",
                   help="readout scored on the features (default logistic)")
    p.add_argument("--train-per-class", type=int, default=20,
                   help="training samples per class (default 20)")
    p.add_argument("--test-per-class", type=int, default=10,
                   help="test samples per class (default 10)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="Dask scheduler of a running cluster (default: a local cluster)")
    where.add_argument("--serial", action="store_true", help="run in this process, no Dask")
    p.add_argument("--workers", type=int, default=2, help="processes of the local cluster (default 2)")
    p.add_argument("--plot", default=None, metavar="PNG", help="write the sweep figure")
    _progress(p)
    add_json(p)
    p.set_defaults(handler=_sweep)

    p = sub.add_parser(
        "energy", help="energy and latency per inference: RRAM co-design vs digital",
        description="Run samples through the LSM on a chip, count operations, and price "
                    "them with the parameter file (sources and assumptions listed).")
    p.add_argument("--dataset", choices=(*_DATASETS, "both"), default="both",
                   help="both = nmnist and the audio set (ntidigits if present, else fsdd)")
    add_data_dir(p)
    add_backend(p)
    p.add_argument("--samples", type=int, default=64, help="samples counted per dataset")
    p.add_argument("--seed", type=seed, default=0, help="seed choosing the samples")
    p.add_argument("--projection-dim", type=positive_int, default=64, help="embedding dimension")
    p.add_argument("--heads", choices=("digital", "analogue", "both"), default="both",
                   help="projection heads digital (the paper's split), on macro tiles "
                        "(the whole inference in memory) or both rows (default)")
    p.add_argument("--head-input-bits", type=int, default=6,
                   help="bits per sign of the analogue heads' bit-serial inputs")
    p.add_argument("--head-tile-rows", type=int, default=512,
                   help="rows per tile of the analogue heads (each tile converts every "
                        "plane: fewer, taller tiles mean fewer conversions)")
    p.add_argument("--params", default=None, help="energy parameter TOML (default: packaged)")
    add_cochlea(p, several=True)
    p.add_argument("--plot", default=None, metavar="PNG", help="write the energy figure")
    _progress(p)
    add_json(p)
    p.set_defaults(handler=_energy)
