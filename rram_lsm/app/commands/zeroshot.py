"""``rram-lsm zeroshot``: contrastive projections, honest zero-shot and few-shot evaluation."""
from __future__ import annotations

import argparse
import itertools

from .common import (add_backend, add_cochlea, add_data_dir, add_json, add_seeds,
                     cochlea_option, pin_cochlea_drives, seed)

# the CLI's choices, kept in step with projections.train.FEATURE_KINDS by a test (importing
# projections here would load torch for every rram-lsm command)
BASE_FEATURE_KINDS = ("counts", "windowed", "span", "input", "input_span")
FEATURE_KINDS = tuple("+".join(c) for n in range(1, len(BASE_FEATURE_KINDS) + 1)
                      for c in itertools.combinations(BASE_FEATURE_KINDS, n))


def _whole(text: str, minimum: int, what: str) -> int:
    """``text`` as a whole number >= ``minimum``, or an argparse error naming ``what``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _patience(text: str):
    """``--patience``: a number of epochs >= 1, or ``none``."""
    if text.lower() == "none":
        return "none"
    return _whole(text, 1, "a number of epochs >= 1 or none")


def _fraction(text: str, closed: bool, what: str) -> float:
    """``text`` as a number in [0, 1] (``closed``) or [0, 1), or an argparse error naming
    ``what``."""
    interval = "[0, 1]" if closed else "[0, 1)"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"{what} must be in {interval}, got {value}")
    return value


def _shrinkage(text: str) -> float:
    """``--fewshot-whiten``: a shrinkage in [0, 1]."""
    return _fraction(text, True, "shrinkage")


def _speaker_shrinkage(text: str):
    """``--fewshot-speakers``: ``none`` or a shrinkage in (0, 1]."""
    if text.lower() == "none":
        return "none"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1] or 'none', got "
                                         f"{text!r}")
    return value


def _floor(text: str) -> float:
    """``--scale-floor``: a fraction in [0, 1)."""
    return _fraction(text, False, "the scale floor")


def _steps(text: str) -> int:
    """``--fewshot-em``: a count of steps, 0 or more."""
    return _whole(text, 0, "a whole number of steps >= 0")


def _splits(value: str):
    if value == "all":
        return "all"
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--splits takes a number or 'all', got {value!r}")
    if n < 1:
        raise argparse.ArgumentTypeError("--splits must be >= 1")
    return n


def register(sub) -> None:
    """Register ``zeroshot`` on ``sub``."""
    p = sub.add_parser(
        "zeroshot",
        help="train contrastive projections on seen digits; evaluate zero-/few-shot on unseen",
        description=(
            "Train one projection head per modality on LSM features of seen digits (model "
            "selection on validation pairs only) and evaluate cross-modal retrieval on the "
            "seen-class test files and on unseen digits never seen in training; with "
            "--shots, also few-shot on the unseen digits. Reports mean, std and 95 % CI over "
            "splits x seeds next to chance."),
    )
    add_data_dir(p)
    add_backend(p)
    add_seeds(p, default=3)
    add_json(p)
    p.add_argument("--method", default="default",
                   help="recipe: default (our best, chosen on seen-class validation), paper, "
                        "protonet, raw (no training; few-shot only), or a selection candidate "
                        "by name, e.g. default_round8 (projections.recipes.candidates())")
    p.add_argument("--epochs", type=int, default=None,
                   help="override the recipe's maximum training epochs")
    p.add_argument("--patience", type=_patience, default=None, metavar="N|none",
                   help="override the recipe's early stop: N epochs without a better "
                        "validation score (the default's is 10), or none to train every "
                        "epoch")
    p.add_argument("--seen", type=int, nargs="+", default=None, help="seen classes (1-7)")
    p.add_argument("--unseen", type=int, nargs="+", default=None, help="unseen classes (8 9)")
    p.add_argument("--splits", type=_splits, default=None,
                   help="N seeded random 7/2 splits of digits 1-9, or 'all' (36)")
    p.add_argument("--split-seed", type=seed, default=0, help="seed drawing the random splits")
    p.add_argument("--shots", type=int, nargs="+", default=None,
                   help="few-shot support sizes per unseen class, e.g. --shots 1 5")
    p.add_argument("--episodes", type=int, default=50, help="few-shot episodes per run")
    p.add_argument("--audio", default="auto", choices=("auto", "fsdd", "ntidigits"),
                   help="audio dataset (auto: ntidigits if its hdf5 is present, else fsdd)")
    add_cochlea(p, several=True)
    # metavar: the 31 kinds would fill every usage line (and so every usage error) twice
    p.add_argument("--feature-kind", default=None, choices=FEATURE_KINDS, metavar="KIND",
                   help="run the whole recipe (heads and few-shot) on these LSM features: "
                        "counts, windowed, span, input, input_span or several joined by + "
                        "(projections.train.FEATURE_KINDS); input = the reservoir's input rates "
                        "with the reservoir bypassed (an ablation)")
    p.add_argument("--fewshot-kind", default=None, choices=FEATURE_KINDS, metavar="KIND",
                   help="features of the few-shot metric alone (after --feature-kind; kinds "
                        "as there); span / input_span count in windows of each sample's "
                        "active span")
    p.add_argument("--fewshot-transform", default=None, choices=("none", "sqrt"),
                   help="element-wise transform of those features (sqrt: signed square root)")
    p.add_argument("--fewshot-whiten", default=None, type=_shrinkage, metavar="S",
                   help="whitening shrinkage in [0, 1] of the few-shot metric (the default "
                        "recipe's 0.9)")
    p.add_argument("--fewshot-em", default=None, type=_steps, metavar="STEPS",
                   help="EM steps of the tied-covariance mixture over each few-shot episode "
                        "(the default recipe's 10; 0: off, the queries take the prototypes' "
                        "classes)")
    p.add_argument("--fewshot-speakers", default=None, type=_speaker_shrinkage,
                   metavar="S|none",
                   help="speaker-centred audio for few-shot (fewshot_speaker_centring in "
                        "the JSON): a linear discriminant fitted on the seen classes' "
                        "training utterances names the speaker of every unseen utterance, "
                        "and each speaker's mean over the unseen utterances is subtracted "
                        "from theirs. S in (0, 1] is the discriminant's covariance "
                        "shrinkage, not an amount of centring (the default recipe's 0.2); "
                        "none: off")
    p.add_argument("--scale-floor", default=None, type=_floor, metavar="F",
                   help="standardisation divides no feature by less than F x the median "
                        "feature std of the training samples (heads and few-shot; 0: the "
                        "absolute 1e-6 of recipes before round 14)")
    p.add_argument("--image-input", default=None, choices=("crop", "full"),
                   help="N-MNIST front end of the image reservoir: crop (the paper's 16 x 16 "
                        "ON crop, 256 inputs; default) or full (34 x 34, both polarities, "
                        "2,312 inputs, preset nmnist-full), as rram-lsm encode --input")
    p.add_argument("--image-neurons", type=int, default=None, metavar="N",
                   help="image reservoir neurons (default: the preset's); a reservoir "
                        "larger than one array is split over tiles of several macros")
    p.add_argument("--audio-neurons", type=int, default=None, metavar="N",
                   help="audio reservoir neurons on the same 64 cochlea channels (default: "
                        "the preset's 200; 1,000 is preset fsdd-large)")
    p.add_argument("--features", default=None, metavar="NPZ",
                   help="use saved features (projections.data.save_npz layout) instead of "
                        "encoding with the LSM")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="write figures (embedding map, similarity, confusion, learning "
                        "curves, accuracy per split) for the first split and seed")
    p.add_argument("--select", action="store_true",
                   help="instead of evaluating, score every candidate recipe on seen-class "
                        "validation data only (official train files of --seen, default 1-7) "
                        "and report which would be the default; --splits N pseudo splits of "
                        "the seen classes (default 6), all: every one (21 for 1-7, as the "
                        "selection rounds since 11)")
    p.add_argument("--cost-epochs", type=int, default=0, metavar="N",
                   help="also train the snntorch spiking-RNN contrastive baseline for N "
                        "epochs on the first split's pairs and compare training cost "
                        "(needs the event data, not --features)")
    p.add_argument("--engine", default="auto", choices=("auto", "batched", "per-run"),
                   help="train the runs as stacks (batched; auto: batched where it is bit "
                        "for bit the per-run result, which is every recipe in "
                        "projections.METHODS) or one after another (per-run, the reference)")
    p.add_argument("--workers", type=int, default=1,
                   help="threads training stacks of runs in parallel (batched engine); "
                        "results do not depend on it")
    p.add_argument("--heads", default="digital", choices=("digital", "analogue"),
                   help="analogue: also program the trained heads onto macro tiles (sim) "
                        "and evaluate them fresh and aged against the digital heads "
                        "(docs/analog-heads.md; runs the per-run engine)")
    p.add_argument("--hw-aware", action="store_true",
                   help="with --heads analogue: also train heads hardware-aware (device "
                        "noise, ADC, input quantisation and drift in the forward pass)")
    p.add_argument("--no-plain", action="store_true",
                   help="with --heads analogue --hw-aware: skip the plainly trained heads")
    p.add_argument("--chip-seeds", type=seed, nargs="+", default=[0, 1, 2],
                   help="with --heads analogue: chip seeds the heads are programmed on")
    p.add_argument("--ages", type=float, nargs="+", default=None,
                   help="with --heads analogue: read-out ages after programming (s); "
                        "default 1 s, 1 h, 1 d, 1 month, 1 y, 10 y")
    p.add_argument("--input-bits", type=int, default=6,
                   help="with --heads analogue: bits per sign of the bit-serial inputs")
    p.add_argument("--tile-rows", type=int, default=512,
                   help="with --heads analogue: rows per head tile")
    p.add_argument("--hwa-age", type=float, default=86400.0,
                   help="with --hw-aware: drift age (s) in the training forward pass")
    p.add_argument("--hwa-epochs", type=int, default=20,
                   help="with --hw-aware: epochs of hardware-aware fine-tuning from the "
                        "digital heads (0: train from scratch for the method's epochs)")
    p.add_argument("--drift-compensation", action="store_true",
                   help="with --heads analogue: rescale outputs by a global drift factor "
                        "read from a reference column")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(handler=_run_pinned)


def _run_pinned(args) -> int:
    from ..threads import torch_threads

    from threadpoolctl import threadpool_limits

    # the heads are tiny: one thread (torch and numpy's BLAS) beats a pool on 2 cores, and
    # process workers inherit the limits
    with torch_threads(1), threadpool_limits(1, user_api="blas"):
        return _run(args)


def _run(args) -> int:
    from pathlib import Path

    from projections import get_method, load_npz, make_splits, run_protocol

    from ..features import encode_pair
    from rram_lsm.errors import ConfigError

    method = get_method(args.method)
    if args.epochs is not None:
        method = method.replace(epochs=args.epochs)
    if args.patience is not None:
        method = method.replace(patience=None if args.patience == "none" else args.patience)
    if args.scale_floor is not None:
        if args.select:
            raise ConfigError("--scale-floor overrides one recipe; --select compares the "
                              "candidates as they are: drop one of them")
        method = method.replace(scale_floor=args.scale_floor)
    if args.feature_kind is not None:
        if args.select:
            raise ConfigError("--feature-kind overrides one recipe; --select compares the "
                              "candidates on their own kinds: drop one of them")
        method = method.replace(features=args.feature_kind, fewshot_features=None)
    fewshot = {"fewshot_features": args.fewshot_kind,
               "fewshot_transform": args.fewshot_transform,
               "fewshot_whiten": args.fewshot_whiten,
               "fewshot_em_steps": args.fewshot_em}
    fewshot = {k: v for k, v in fewshot.items() if v is not None}
    if args.fewshot_speakers is not None:
        fewshot["fewshot_speaker_centring"] = (None if args.fewshot_speakers == "none"
                                               else args.fewshot_speakers)
    if fewshot:
        if not args.shots:
            raise ConfigError("--fewshot-kind/-transform/-whiten/-em/-speakers change the "
                              "few-shot metric: add --shots K")
        if args.select:
            raise ConfigError("--fewshot-kind/-transform/-whiten/-em/-speakers override one "
                              "recipe; --select compares the candidates as they are: drop one")
        method = method.replace(**fewshot)
    if args.shots and any(k < 1 for k in args.shots):
        raise ConfigError(f"--shots must be >= 1, got {args.shots}")
    if not method.trained and not args.shots:
        raise ConfigError(f"method {method.name!r} has no zero-shot ability; add --shots K")
    if not args.select:
        # bad class lists fail before minutes of encoding, not after
        make_splits(args.splits, args.split_seed, args.seen, args.unseen)
    progress = not args.no_progress

    for flag in ("image_neurons", "audio_neurons"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got "
                              f"{getattr(args, flag)}")
    reservoirs = {k: getattr(args, k) for k in ("image_input", "image_neurons",
                                                "audio_neurons")}
    if args.features and (any(v is not None for v in reservoirs.values())
                          or args.cochlea_gain is not None):
        raise ConfigError("--features are already encoded: drop --image-input, "
                          "--image-neurons, --audio-neurons and --cochlea-gain")
    if not args.features:
        pin_cochlea_drives(args, args.audio)
    cochlea = cochlea_option(args, args.audio)

    def encode(kind):
        return encode_pair(args.data_dir, backend=args.backend, chip_seed=args.chip_seed,
                           profile=args.profile, noise=not args.no_noise, audio=args.audio,
                           kind=kind, progress=progress, cochlea=cochlea, **reservoirs)

    seeds = list(range(args.seed, args.seed + args.seeds))
    if args.select:
        return _select(args, load_npz(args.features) if args.features else encode, seeds,
                       progress)
    if args.hw_aware and args.heads != "analogue":
        raise ConfigError("--hw-aware trains analogue heads: add --heads analogue")
    if args.heads == "analogue" and args.splits is not None:
        raise ConfigError("--heads analogue evaluates one split (--seen/--unseen, default "
                          "the paper's): drop --splits")
    # saved features are taken as the method's feature kind: the file does not record it
    data = load_npz(args.features) if args.features else encode(method.encoded_kind)
    if args.heads == "analogue":
        return _analogue(args, data, method, seeds, progress)
    result = run_protocol(data, method, splits=args.splits, split_seed=args.split_seed,
                          seen=args.seen, unseen=args.unseen, seeds=seeds,
                          shots=tuple(args.shots or ()), episodes=args.episodes,
                          progress=progress, engine=args.engine, workers=args.workers)
    record = result.to_dict()
    record["data"] = _provenance(data)
    _print_table(result, record)
    if args.shots:
        print(_speaker_line(method, record["data"]["n_audio_speakers"]))
    if args.cost_epochs > 0:
        record["training_cost"] = _cost(args, data, method, result, progress)
    if args.plots:
        from projections.plots import save_figures

        paths = save_figures(result, data, Path(args.plots))
        record["figures"] = [str(p) for p in paths]
        print(f"figures in {args.plots}: {', '.join(p.name for p in paths)}")
    _write(args, record, method, seeds)
    return 0


def _write(args, record, method, seeds) -> None:
    """The run's record with every option and the resolved recipe, where ``--json`` says."""
    if args.json_path:
        from rram_lsm.records import write_record

        config = {k: v for k, v in vars(args).items() if k != "handler"}
        config["method_config"] = method
        write_record(args.json_path, record, command="zeroshot", config=config, seeds=seeds)
        print(f"wrote {args.json_path}")


def _analogue(args, data, method, seeds, progress) -> int:
    """``--heads analogue``: digital vs plain vs hardware-aware heads on the macro."""
    from pathlib import Path

    from projections import PAPER_SPLIT
    from rram_lsm.errors import ConfigError

    from ..experiments.analog_heads import AGES_S, AGE_LABELS, plot_accuracy_vs_age, \
        run_analog_study

    if args.input_bits < 1 or args.tile_rows < 1:
        raise ConfigError("--input-bits and --tile-rows must be >= 1")
    seen = tuple(args.seen or PAPER_SPLIT[0])
    unseen = tuple(args.unseen or [c for c in range(1, 10) if c not in seen])
    record = run_analog_study(
        data, method, seen=seen, unseen=unseen, seeds=seeds, chip_seeds=args.chip_seeds,
        ages_s=tuple(args.ages or AGES_S), shots=tuple(args.shots or (5,)),
        episodes=args.episodes, profile=args.profile, hw_aware=args.hw_aware,
        plain=not args.no_plain, input_bits=args.input_bits, tile_rows=args.tile_rows,
        drift_compensation=args.drift_compensation, hwa_age_s=args.hwa_age,
        hwa_epochs=args.hwa_epochs or None,
        backend=args.backend, progress=progress)
    record["data"] = _provenance(data)
    s = record["summary"]
    metrics = [k for k in s["digital"]]
    print(f"{'heads':10s} {'age':>6s} " + " ".join(f"{m:>20s}" for m in metrics))
    print(f"{'digital':10s} {'-':>6s} " + " ".join(
        f"{s['digital'][m]['mean']:13.3f}±{s['digital'][m]['std']:.3f}" for m in metrics))
    for kind in ("plain", "hw_aware"):
        for a in record["ages_s"]:
            key = f"{kind}@{a:g}"
            if key in s:
                print(f"{kind:10s} {AGE_LABELS.get(a, f'{a:g}s'):>6s} " + " ".join(
                    f"{s[key][m]['mean']:13.3f}±{s[key][m]['std']:.3f}" for m in metrics))
    if args.plots:
        paths = plot_accuracy_vs_age(record, Path(args.plots) / "accuracy_vs_age.png")
        record["figures"] = [str(p) for p in paths]
        print(f"figures in {args.plots}: {', '.join(p.name for p in paths)}")
    _write(args, record, method, seeds)
    return 0


def _select(args, source, seeds, progress) -> int:
    """``source``: saved features (every candidate runs on them) or an encoder by kind."""
    from projections import PAPER_SPLIT, select_method
    from projections.recipes import candidates
    from rram_lsm.errors import ConfigError
    from rram_lsm.records import write_record

    cands = candidates()
    if callable(source):
        data = {k: source(k) for k in sorted({c.encoded_kind for c in cands})}
    else:
        # a file that records no kind is taken as counts; one that does serves the
        # kinds its blocks hold
        def serves(feature_kind: str) -> bool:
            if source.meta.get("feature_kind") is None:
                return feature_kind == "counts"
            try:
                source.select_kind(feature_kind)
            except ConfigError:
                return False
            return True

        servable = [c for c in cands if serves(c.encoded_kind)]
        if not servable:
            raise ConfigError("no selection candidate runs on the features in this file")
        if len(servable) < len(cands):
            print(f"{len(cands) - len(servable)} candidate(s) need features this file does "
                  f"not hold; scoring the other {len(servable)}")
        cands, data = servable, source
    best, scores = select_method(data, cands, seen=tuple(args.seen or PAPER_SPLIT[0]),
                                 n_splits=6 if args.splits is None else args.splits,
                                 seeds=seeds, shots=max(args.shots or [5]),
                                 split_seed=args.split_seed, progress=progress)
    print(f"{'candidate':26s} {'zero-shot':>9s} {'few-shot':>9s} {'score':>7s}")
    for name, s in sorted(scores.items(), key=lambda kv: -kv[1]["score"]):
        zs = "-" if s["zeroshot_top1"] is None else f"{s['zeroshot_top1']:.3f}"
        print(f"{name:26s} {zs:>9s} {s['fewshot_top1']:9.3f} {s['score']:7.3f}")
    print(f"best on seen-class validation: {best}")
    if args.json_path:
        config = {k: v for k, v in vars(args).items() if k != "handler"}
        config["candidates"] = cands
        write_record(args.json_path, {"selection": scores, "best": best},
                     command="zeroshot", config=config, seeds=seeds)
        print(f"wrote {args.json_path}")
    return 0


def _cost(args, data, method, result, progress) -> dict:
    from projections.baselines import SpikingConfig, compare_training_cost
    from rram_lsm.errors import ConfigError

    from ..features import open_data, resolve_audio
    from ..settings import resolve_data_dir

    if args.features:
        raise ConfigError("--cost-epochs trains on the event rasters: drop --features")
    root = resolve_data_dir(args.data_dir)
    rasters = [open_data(name, root, progress=progress).rasters(progress=progress)
               for name in ("nmnist", resolve_audio(args.audio, root))]
    seen, unseen = result.splits[0]
    cost = compare_training_cost(data, *rasters, method, seen=seen, unseen=unseen,
                                 spiking=SpikingConfig(epochs=args.cost_epochs),
                                 seed=result.seeds[0], progress=progress)
    print(f"training cost, spiking RNN / ours: FLOPs {cost['ratio_flops_total']:.1f}x "
          f"total ({cost['ratio_flops_per_epoch']:.1f}x per epoch), wall "
          f"{cost['ratio_wall_s_total']:.1f}x total ({cost['ratio_wall_s_per_epoch']:.1f}x "
          f"per epoch)")
    return cost


def _provenance(data) -> dict:
    out = {"n_image": int(len(data.image_labels)), "n_audio": int(len(data.audio_labels))}
    for m in ("image", "audio"):
        meta = data.meta.get(m, {})
        out[m] = {k: meta.get(k) for k in ("dataset", "synthetic", "fingerprint", "backend",
                                           "chip_seed", "profile", "cache_key") if k in meta}
    for k in ("source", "feature_kind", "reservoirs", "cochlea"):
        if k in data.meta:
            out[k] = data.meta[k]
    # how many speakers the data name (speaker centring needs two): None if unnamed
    out["n_audio_speakers"] = (None if data.audio_speakers is None
                               else len(set(data.audio_speakers.tolist())))
    if "audio_drives" in data.meta:   # each drive's pass of the audio side
        out["audio_drives"] = [{k: m.get(k) for k in ("cache_key", "fingerprint")}
                               for m in data.meta["audio_drives"]]
    return out


def _speaker_line(method, n_speakers: int | None) -> str:
    """Whether few-shot centred the audio per speaker, and why not where it did not
    (``n_speakers``: how many the data name, :func:`_provenance`)."""
    shrinkage = method.fewshot_speaker_centring
    if shrinkage is None:
        return "few-shot speaker centring: off (the recipe's; --fewshot-speakers S sets it)"
    n = n_speakers or 0
    if n < 2:
        return ("few-shot speaker centring: off: the data name no speakers to tell apart "
                "(synthetic audio, a .npz without audio_speakers, or a speaker-independent "
                "split)")
    return (f"few-shot speaker centring: on (discriminant shrinkage {shrinkage:g}, "
            f"{n} speakers named; --fewshot-speakers none turns it off)")


def _print_table(result, record) -> None:
    print(f"method {record['method']}: {record['n_splits']} split(s) x "
          f"{record['n_seeds']} seed(s)")
    print(f"{'metric':44s} {'mean':>6s} {'std':>6s}  {'95% CI':>13s} {'chance':>6s}")
    for key, s, ch in result.headline():
        parts = key.split(".")
        if parts[0] == "fewshot":
            key = f"fewshot {parts[1]}-shot {'.'.join(parts[2:])}"
        lo, hi = s["ci95"]
        ci = "" if lo is None or hi is None or lo != lo else f"{lo:.3f}-{hi:.3f}"
        print(f"{key:44s} {s['mean']:6.3f} {s['std']:6.3f}  {ci:>13s} "
              f"{'' if ch is None else f'{ch:6.3f}'}")
