"""``rram-lsm encode`` and ``rram-lsm classify``: LSM features and their supervised readout."""
from __future__ import annotations

import sys

from ...errors import ConfigError
from .common import add_backend, add_cochlea, add_data_dir, add_json, add_seeds, cochlea_option

DATASETS = ("nmnist", "fsdd", "ntidigits")
# lsm.features.FEATURE_KINDS (a test keeps them in step; importing lsm here would load numba
# for every rram-lsm command)
KINDS = ("counts", "windowed", "span", "first_spike", "membrane")


def _add_lsm_options(p, many: bool = False) -> None:
    if many:
        p.add_argument("--dataset", required=True, choices=DATASETS, nargs="+",
                       help="dataset (several only with --cv)")
    else:
        p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--input", default=None, choices=("crop", "full"),
                   help="N-MNIST input: crop (the paper's 16 x 16 ON crop, 256 inputs; "
                   "default) or full (34 x 34, both polarities, 2,312 inputs; preset "
                   "nmnist-full)")
    p.add_argument("--neurons", type=int, default=None, metavar="N",
                   help="reservoir neurons (default: the preset's); a reservoir larger "
                   "than one array is split over tiles of several macros")
    p.add_argument("--kind", default="counts", choices=KINDS,
                   help="feature kind (counts = the paper's spike rate per neuron)")
    p.add_argument("--regime", default=None, choices=("tuned", "zeroshot", "supervised"),
                   help="scale constant: tuned (default, 0.3), or the paper's zeroshot / "
                   "supervised values (see docs/lsm.md)")
    p.add_argument("--no-cache", action="store_true", help="re-encode, ignore the feature cache")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _warn_synthetic(data_dir) -> None:
    from ..settings import resolve_data_dir

    if resolve_data_dir(data_dir) is None:
        print("No data directory (--data-dir or $RRAM_LSM_DATA): using SYNTHETIC data.",
              file=sys.stderr)


def _encode(args) -> int:
    from lsm import EncodeOptions

    from ..features import encode, open_data
    from ..session import ChipSession

    _warn_synthetic(args.data_dir)
    cfg = _lsm_config(args)
    progress = not args.no_progress
    # before the chip forms: a wrong data directory or input fails first
    cochlea = cochlea_option(args, args.dataset)
    ds = open_data(args.dataset, args.data_dir, progress=progress, input=args.input,
                   cochlea=cochlea)
    options = EncodeOptions(kind=args.kind, progress=progress, chunk_size=args.chunk_size,
                            n_windows=args.n_windows)
    if args.scheduler is not None:
        from ..features import encode_distributed

        feats, placement = encode_distributed(
            args.scheduler, args.dataset, args.data_dir, cfg, input=args.input,
            backend=args.backend, chip_seed=args.chip_seed, profile=args.profile,
            noise=not args.no_noise, chip_age_s=args.chip_age_s, options=options,
            parts=args.parts, cache=not args.no_cache, cochlea=cochlea)
        figure = None
        if args.plot:
            with ChipSession(args.backend, chip_seed=args.chip_seed, profile=args.profile,
                             noise=not args.no_noise) as chip:
                figure = _activity_figure(args, cfg, chip)
    else:
        with ChipSession(args.backend, chip_seed=args.chip_seed, profile=args.profile,
                         noise=not args.no_noise, max_macros=_macros_for(cfg, args)) as chip:
            feats = encode(chip, args.dataset, ds, lsm_preset=cfg,
                           chip_age_s=args.chip_age_s, cache=not args.no_cache,
                           options=options)
            placement = chip.record()
            # the figure's sample runs on the tile just encoded: a physical array is formed
            # once
            figure = _activity_figure(args, cfg, chip) if args.plot else None
    _print_features(feats)
    return _finish_encode(args, feats, placement, figure)


def _lsm_config(args):
    """The LsmConfig the options describe: the dataset's preset for ``--input``, its
    ``--regime``, ``--neurons``."""
    from lsm import preset
    from lsm.reservoir import preset_for

    dataset = args.dataset if isinstance(args.dataset, str) else args.dataset[0]
    name = preset_for(dataset, args.input)
    cfg = preset(name) if args.regime is None else preset(name, args.regime)
    if args.neurons is not None:
        cfg = cfg.replace(n_neurons=args.neurons)
    return cfg


def _macros_for(cfg, args):
    """Enough virtual macros for ``cfg``'s tiles (None: the session's default)."""
    from ..features import max_macros_for

    return max_macros_for(cfg, args.backend)


def _print_features(feats) -> None:
    m = feats.meta
    print(f"{feats!r}\n  firing rate {m['firing_rate_per_step']:.4f} spikes/neuron/step, "
          f"silent neurons {m['silent_fraction']:.1%}, path {m['path']}, "
          f"g_ref {m['g_ref_us']:.3f} µS, formed at {m['forming']['voltage_v']} V, "
          f"cache {m.get('cache', 'off')}")


def _finish_encode(args, feats, placement, figure) -> int:
    import numpy as np

    m = feats.meta
    if args.out:
        feats.save(args.out)
        print(f"features written to {args.out}")
    if args.plot:
        figure.savefig(args.plot, dpi=120)
        print(f"figure written to {args.plot}")
    if args.json_path:
        from ...records import write_record

        results = {"dataset": args.dataset, "n_samples": len(feats),
                   "n_features": int(feats.values.shape[1]),
                   "n_test": int(feats.is_test.sum()),
                   "feature_mean": float(np.mean(feats.values)),
                   **{k: m[k] for k in ("synthetic", "firing_rate_per_step", "silent_fraction",
                                        "path", "kind", "g_ref_us", "forming", "cochlea",
                                        "cache_key")
                      if k in m}, "chip": placement}
        write_record(args.json_path, results, command="encode", config=_config(args),
                     seeds={"chip_seed": args.chip_seed})
    return 0


def _activity_figure(args, cfg, chip):
    from lsm.plots import plot_activity

    from ..features import open_data

    ds = open_data(args.dataset, args.data_dir, progress=False, input=args.input,
                   cochlea=cochlea_option(args, args.dataset))
    raster = ds.rasters(None, progress=False, indices=[args.plot_sample])[0]
    spikes, membrane = chip.reservoir(args.dataset, cfg).trace(raster)
    label = ds.class_names[ds.labels[args.plot_sample]]
    return plot_activity(spikes, membrane, inputs=raster, threshold=cfg.threshold,
                         title=f"{args.dataset} sample {args.plot_sample} (class {label})")


def _classify(args) -> int:
    from lsm.readout import ReadoutConfig

    from ..experiments.classify import classify

    _warn_synthetic(args.data_dir)
    if args.cv:
        return _classify_cv(args)
    if len(args.dataset) != 1:
        raise ConfigError("several datasets need --cv K (cross-validation)")
    dataset = args.dataset[0]
    seeds = list(range(args.seed, args.seed + args.seeds))
    results = classify(dataset, args.data_dir, backend=args.backend, chip_seeds=seeds,
                       train_seeds=seeds, profile=args.profile, noise=not args.no_noise,
                       kind=args.kind, regime=args.regime,
                       readout=ReadoutConfig(epochs=args.epochs), cache=not args.no_cache,
                       progress=not args.no_progress, config=_lsm_config(args),
                       input=args.input)
    lsm, raw = results["lsm"]["test_accuracy"], results["raw_input"]["test_accuracy"]
    tag = " (SYNTHETIC data)" if results["synthetic"] else ""
    print(f"{dataset}{tag}, backend {args.backend}, {len(seeds)} chip x {len(seeds)} "
          f"training seeds")
    print(f"  LSM ({args.kind}) test accuracy  {lsm['mean']:.2%} ± {lsm['std']:.2%}  "
          f"(firing rate {results['lsm']['firing_rate_per_step']:.4f})")
    print(f"  raw binned input test accuracy {raw['mean']:.2%} ± {raw['std']:.2%}")
    if args.json_path:
        from ...records import write_record

        write_record(args.json_path, results, command="classify", config=_config(args),
                     seeds={"chip_seeds": seeds, "train_seeds": seeds})
    return 0


def _classify_cv(args) -> int:
    from ..experiments.classify import classify_cv

    runs = []
    for dataset in args.dataset:
        inputs = ([None] if dataset != "nmnist" else
                  (args.inputs or [args.input or "crop"]))
        for inp in inputs:
            r = classify_cv(dataset, args.data_dir, input=inp, sizes=args.sizes,
                            scales=args.scales or [None], folds=args.cv, seed=args.seed,
                            backend=args.backend, chip_seed=args.chip_seed,
                            profile=args.profile, noise=not args.no_noise,
                            regime=args.regime, cache=not args.no_cache,
                            progress=not args.no_progress, n_windows=args.n_windows,
                            with_input=args.with_input, ensemble=args.ensemble)
            runs.append(r)
            print(cv_text(r))
    if args.json_path:
        from ...records import write_record

        write_record(args.json_path, {"runs": runs}, command="classify --cv",
                     config=_config(args), seeds={"fold_seed": args.seed,
                                                  "chip_seed": args.chip_seed})
    if args.plot:
        from ..experiments.classify import plot_cv

        plot_cv(runs).savefig(args.plot, dpi=120)
        print(f"figure written to {args.plot}")
    return 0


def cv_text(r: dict) -> str:
    """The accuracy table of one cross-validated run, as printed."""
    tag = " (SYNTHETIC data)" if r["synthetic"] else ""
    lines = [f"{r['dataset']} input {r['input']} ({r['n_inputs']} inputs){tag}: "
             f"{r['folds']}-fold CV over {r['n_samples']} samples, ridge readout"]
    for c, v in r["candidates"].items():
        lo, hi = v["ci95"]
        lines.append(f"  {c:<24} {v['accuracy']:7.2%}  [{lo:.2%}, {hi:.2%}]")
    for fam, v in r["families"].items():
        lo, hi = v["ci95"]
        lines.append(f"  chosen {fam:<17} {v['accuracy']:7.2%}  [{lo:.2%}, {hi:.2%}]  "
                     f"picks {sorted(set(v['picks']))}")
    for key, label in (("reservoir_minus_raw", "reservoir - raw input"),
                       ("reservoir_plus_input_minus_raw", "reservoir+input - raw input")):
        if key in r:
            d = r[key]
            lines.append(f"  {label:<22} {d['difference']:+.2%}  "
                         f"[{d['ci95'][0]:+.2%}, {d['ci95'][1]:+.2%}] (paired)")
    return "\n".join(lines)


def _config(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("handler", "json_path")}


def register(sub) -> None:
    """Register ``encode`` and ``classify``."""
    p = sub.add_parser("encode", help="encode a dataset with the LSM (cached features)")
    _add_lsm_options(p)
    add_data_dir(p)
    add_backend(p)
    add_json(p)
    p.add_argument("--chip-age-s", type=float, default=0.0,
                   help="seconds the chip ages (drift) after forming, before encoding")
    add_cochlea(p)
    p.add_argument("--n-windows", type=int, default=5, metavar="K",
                   help="time windows of the windowed and span kinds")
    p.add_argument("--out", default=None, metavar="NPZ", help="also save the features here")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="raster and membrane traces of one sample")
    p.add_argument("--plot-sample", type=int, default=0, help="sample index for --plot")
    p.add_argument("--chunk-size", type=int, default=2048, metavar="N",
                   help="samples whose rasters are made and run at once (bounded memory; "
                   "the features do not depend on it)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="spread the encode over the Dask cluster at ADDRESS "
                   "(tcp://host:8786): features identical to a serial run")
    p.add_argument("--parts", type=int, default=None, metavar="K",
                   help="with --scheduler: contiguous parts to split the dataset into "
                   "(default: one per worker)")
    p.set_defaults(handler=_encode)

    p = sub.add_parser("classify", help="supervised readout on LSM features vs raw input")
    _add_lsm_options(p, many=True)
    add_data_dir(p)
    add_backend(p)
    add_seeds(p, default=3)
    add_json(p)
    p.add_argument("--epochs", type=int, default=60,
                   help="readout training epochs (best validation epoch is kept)")
    p.add_argument("--cv", type=int, default=0, metavar="K",
                   help="K-fold stratified cross-validation (seeded by --seed) over all "
                   "samples, ridge readouts, reservoir sizes --sizes against the raw input "
                   "on the same folds, with 95 %% intervals (0: the official split)")
    p.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000, 2000],
                   metavar="N", help="reservoir sizes of --cv")
    p.add_argument("--scales", type=float, nargs="+", default=None, metavar="S",
                   help="scale constants of --cv, chosen between by inner validation "
                   "(default: the regime's)")
    p.add_argument("--inputs", nargs="+", choices=("crop", "full"), default=None,
                   help="N-MNIST inputs of --cv (default: --input, else crop)")
    p.add_argument("--n-windows", type=int, default=5,
                   help="time windows of the windowed features of --cv")
    p.add_argument("--with-input", action="store_true",
                   help="with --cv: also score each reservoir's windowed rates beside the "
                   "input's (what the reservoir adds to its input; not a reservoir result)")
    p.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="with --cv: also score an ensemble of K reservoirs of each size and "
                   "scale, formed side by side on their own tiles, features concatenated")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="with --cv: accuracy against reservoir size")
    p.set_defaults(handler=_classify)
