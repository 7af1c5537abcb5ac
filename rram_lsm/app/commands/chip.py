"""``rram-lsm chip``: inspect a virtual chip, fit a device profile to a chip."""
from __future__ import annotations

import argparse

from .common import add_backend, add_json, seed

DEFAULT_REGION = "0,0,456,400"


def _region(text: str) -> tuple[int, int, int, int]:
    try:
        parts = tuple(int(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"a region is row0,col0,rows,cols; got {text!r}")
    return parts  # type: ignore[return-value]


def _inspect(args) -> int:
    import numpy as np

    from sim import SimMacro, form_to_sparsity, load_profile

    prof = load_profile(args.profile)
    with SimMacro(seed=args.seed, profile=prof) as chip:
        voltage, res = form_to_sparsity(chip, args.region, args.sparsity)
        stuck = chip.stuck_map(args.region)
        healthy_formed = res.formed & (stuck == 0)
        g = res.conductance_us[healthy_formed]
        results = {
            "sparsity": 1.0 - float(np.mean(res.formed)),
            "conductance_us": {"mean": float(g.mean()), "std": float(g.std()),
                               "min": float(g.min()), "max": float(g.max()),
                               "n_formed": int(g.size)},
            "stuck_fraction": float(np.mean(stuck != 0)),
            "stuck": {"open_fraction": float(np.mean(stuck == 1)),
                      "high_fraction": float(np.mean(stuck == 2))},
            "forming_voltage_v": voltage,
            "region": list(args.region),
            "chip_seed": args.seed,
            "profile": prof.name,
        }
        conductance = res.conductance_us
    print(f"chip seed {args.seed}, profile {prof.name}, region {args.region}")
    print(f"formed at {voltage:.2f} V: sparsity {results['sparsity']:.4f}, "
          f"G = {results['conductance_us']['mean']:.3f} ± {results['conductance_us']['std']:.3f}"
          f" µS over {g.size} formed cells, stuck {results['stuck_fraction']:.4%}")
    if args.map:
        results["placement"] = _placement(args.map, args.neurons, prof)
    if args.plot:
        _inspect_figure(conductance, prof, args.plot)
        print(f"figure written to {args.plot}")
    if args.json_path:
        from ...records import write_record

        write_record(args.json_path, results, command="chip inspect", config=_config(args),
                     seeds=args.seed)
    return 0


def _placement(name: str, neurons: int | None, prof) -> dict:
    """Where the reservoir preset ``name`` goes on a chip of ``prof``'s arrays (as a run's
    ChipSession plans it), printed as a table; JSON-ready."""
    from lsm import preset

    from ...mapping import plan_tiles
    from ...placement import TileAllocator
    from ..session import VIRTUAL_MACROS

    cfg = preset(name) if neurons is None else preset(name, n_neurons=int(neurons))
    rows, cols = cfg.tile_shape
    alloc = TileAllocator((prof.array.rows, prof.array.cols), VIRTUAL_MACROS)
    tm = plan_tiles(cfg.name, rows, cfg.n_neurons, alloc)
    print(f"{cfg.name}: {cfg.n_inputs} inputs + {cfg.n_neurons} neurons = {rows} rows x "
          f"{cols} columns on {len(tm.parts)} tile(s) of {len(tm.macros)} macro(s) "
          f"({tm.n_row_blocks} row x {tm.n_col_blocks} column blocks; partial sums added "
          "digitally, row blocks ascending)")
    print(f"  {'tile':24s} {'macro':>5s} {'region (row0,col0,rows,cols)':>30s} "
          f"{'matrix rows':>12s} {'neurons':>10s}")
    for p in tm.parts:
        r = p.placement.region
        print(f"  {p.placement.name:24s} {p.placement.macro:5d} "
              f"{f'{r.row0},{r.col0},{r.rows},{r.cols}':>30s} "
              f"{f'{p.row0}-{p.row0 + p.n_rows - 1}':>12s} "
              f"{f'{p.pair0}-{p.pair0 + p.n_pairs - 1}':>10s}")
    return tm.to_dict()


def _inspect_figure(conductance, prof, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.plots import plot_conductance_histogram, plot_conductance_map, plot_drift

    # the fit's stuck-high threshold: formed cells lie below it, stuck-high ones above
    stuck_high_us = (prof.forming.formed_max_us + prof.program.g_max_us) / 2
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    plot_conductance_histogram(conductance, prof, max_us=stuck_high_us, ax=axes[0])
    plot_conductance_map(conductance, title=f"tile {conductance.shape[0]} x "
                         f"{conductance.shape[1]} after forming",
                         vmax_us=prof.forming.formed_max_us, ax=axes[1])
    plot_drift(prof, ax=axes[2])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fit(args) -> int:
    import numpy as np

    from rram_lsm.app.backends import open_backend
    from sim import fit_device_profile, load_profile

    from rram_lsm.errors import ConfigError

    if not args.v_step > 0:
        raise ConfigError(f"--v-step must be positive, got {args.v_step}")
    voltages = np.round(np.arange(args.v_start, args.v_stop + args.v_step / 2, args.v_step), 6)
    base = load_profile(args.profile)
    with open_backend(args.backend, seed=args.chip_seed, profile=base,
                      noise=not args.no_noise) as macro:
        region = args.region
        if region is None:
            info = macro.info()
            region = (0, 0, info.rows, info.cols)
        fitted = fit_device_profile(macro, forming_voltage_v=list(voltages), base=base,
                                    region=region, n_reads=args.reads,
                                    name=f"fitted:{args.backend}", progress=True)
    fitted.to_json(args.out)
    print(repr(fitted))
    print(f"profile written to {args.out}")
    if args.json_path:
        from ...records import write_record

        results = {"profile": fitted.to_dict(), "out": str(args.out),
                   "forming_voltages_v": voltages.tolist()}
        write_record(args.json_path, results, command="chip fit", config=_config(args),
                     seeds=args.chip_seed)
    return 0


def _config(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("handler", "json_path")}


def register(sub) -> None:
    """Register ``chip inspect`` and ``chip fit``."""
    p = sub.add_parser("chip", help="inspect a virtual chip or fit a device profile")
    chip_sub = p.add_subparsers(dest="chip_command", metavar="ACTION")

    ins = chip_sub.add_parser("inspect", help="form a fresh virtual chip's reservoir tile "
                                              "and report its statistics")
    ins.add_argument("--seed", type=seed, default=0, help="chip seed")
    ins.add_argument("--profile", default=None, help="preset name (macro40nm) or JSON file")
    ins.add_argument("--region", type=_region, default=_region(DEFAULT_REGION),
                     help=f"tile row0,col0,rows,cols (default {DEFAULT_REGION})")
    ins.add_argument("--sparsity", type=float, default=0.5,
                     help="forming sweep stops when the unformed fraction is at most this")
    ins.add_argument("--map", default=None, metavar="PRESET",
                     help="also show where a reservoir preset (nmnist, nmnist-full, "
                          "fsdd-large, ...) is placed: tiles, macros, regions")
    ins.add_argument("--neurons", type=int, default=None,
                     help="with --map: reservoir neurons instead of the preset's")
    ins.add_argument("--plot", default=None, metavar="PNG",
                     help="write histogram + heat map + drift figure")
    add_json(ins)
    ins.set_defaults(handler=_inspect)

    fit = chip_sub.add_parser("fit", help="forming sweep + repeated reads on a chip, then "
                                          "fit a device profile (irreversibly forms the region)")
    add_backend(fit)
    fit.add_argument("--region", type=_region, default=None,
                     help="calibration tile row0,col0,rows,cols (default: the whole array)")
    fit.add_argument("--v-start", type=float, default=3.0, help="first forming voltage (V)")
    fit.add_argument("--v-stop", type=float, default=4.6, help="last forming voltage (V)")
    fit.add_argument("--v-step", type=float, default=0.1, help="forming voltage step (V)")
    fit.add_argument("--reads", type=int, default=4, help="reads per forming voltage")
    fit.add_argument("--out", required=True, help="where to write the fitted profile JSON")
    add_json(fit)
    fit.set_defaults(handler=_fit)
