"""``rram-lsm encode`` and ``rram-lsm classify``: LSM features and their supervised readout."""
from __future__ import annotations

import sys

from .common import add_backend, add_data_dir, add_json, add_seeds

DATASETS = ("nmnist", "fsdd", "ntidigits")
KINDS = ("counts", "windowed", "first_spike", "membrane")


def _add_lsm_options(p) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS)
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
    import numpy as np

    from lsm import EncodeOptions, preset

    from ..features import encode, open_data
    from ..session import ChipSession

    _warn_synthetic(args.data_dir)
    cfg = preset(args.dataset) if args.regime is None else preset(args.dataset, args.regime)
    progress = not args.no_progress
    ds = open_data(args.dataset, args.data_dir, progress=progress)  # before the chip forms
    with ChipSession(args.backend, chip_seed=args.chip_seed, profile=args.profile,
                     noise=not args.no_noise) as chip:
        feats = encode(chip, args.dataset, ds,
                       lsm_preset=cfg, chip_age_s=args.chip_age_s, cache=not args.no_cache,
                       options=EncodeOptions(kind=args.kind, progress=progress))
        placement = chip.record()
        # the figure's sample runs on the tile just encoded: a physical array is formed once
        figure = _activity_figure(args, cfg, chip) if args.plot else None
    m = feats.meta
    print(f"{feats!r}\n  firing rate {m['firing_rate_per_step']:.4f} spikes/neuron/step, "
          f"silent neurons {m['silent_fraction']:.1%}, path {m['path']}, "
          f"g_ref {m['g_ref_us']:.3f} µS, formed at {m['forming']['voltage_v']} V, "
          f"cache {m.get('cache', 'off')}")
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
                                        "path", "kind", "g_ref_us", "forming", "cache_key")
                      if k in m}, "chip": placement}
        write_record(args.json_path, results, command="encode", config=_config(args),
                     seeds={"chip_seed": args.chip_seed})
    return 0


def _activity_figure(args, cfg, chip):
    from lsm.plots import plot_activity

    from ..features import open_data

    ds = open_data(args.dataset, args.data_dir, progress=False)
    raster = ds.rasters(None, progress=False)[args.plot_sample]
    spikes, membrane = chip.reservoir(args.dataset, cfg).trace(raster)
    label = ds.class_names[ds.labels[args.plot_sample]]
    return plot_activity(spikes, membrane, inputs=raster, threshold=cfg.threshold,
                         title=f"{args.dataset} sample {args.plot_sample} (class {label})")


def _classify(args) -> int:
    from lsm.readout import ReadoutConfig

    from ..experiments.classify import classify

    _warn_synthetic(args.data_dir)
    seeds = list(range(args.seed, args.seed + args.seeds))
    results = classify(args.dataset, args.data_dir, backend=args.backend, chip_seeds=seeds,
                       train_seeds=seeds, profile=args.profile, noise=not args.no_noise,
                       kind=args.kind, regime=args.regime,
                       readout=ReadoutConfig(epochs=args.epochs), cache=not args.no_cache,
                       progress=not args.no_progress)
    lsm, raw = results["lsm"]["test_accuracy"], results["raw_input"]["test_accuracy"]
    tag = " (SYNTHETIC data)" if results["synthetic"] else ""
    print(f"{args.dataset}{tag}, backend {args.backend}, {len(seeds)} chip x {len(seeds)} "
          f"training seeds")
    print(f"  LSM ({args.kind}) test accuracy  {lsm['mean']:.2%} ± {lsm['std']:.2%}  "
          f"(firing rate {results['lsm']['firing_rate_per_step']:.4f})")
    print(f"  raw binned input test accuracy {raw['mean']:.2%} ± {raw['std']:.2%}")
    if args.json_path:
        from ...records import write_record

        write_record(args.json_path, results, command="classify", config=_config(args),
                     seeds={"chip_seeds": seeds, "train_seeds": seeds})
    return 0


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
    p.add_argument("--out", default=None, metavar="NPZ", help="also save the features here")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="raster and membrane traces of one sample")
    p.add_argument("--plot-sample", type=int, default=0, help="sample index for --plot")
    p.set_defaults(handler=_encode)

    p = sub.add_parser("classify", help="supervised readout on LSM features vs raw input")
    _add_lsm_options(p)
    add_data_dir(p)
    add_backend(p)
    add_seeds(p, default=3)
    add_json(p)
    p.add_argument("--epochs", type=int, default=60,
                   help="readout training epochs (best validation epoch is kept)")
    p.set_defaults(handler=_classify)
