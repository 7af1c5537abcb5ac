"""``rram-lsm nir export`` and ``rram-lsm nir run``: networks in and out through NIR."""
from __future__ import annotations

import json

from .common import add_backend, add_data_dir, add_json

DATASETS = ("nmnist", "fsdd", "ntidigits")


def _profile(args):
    """The profile asked for, with the ADC made ideal under ``--ideal-adc`` (NIR carries no
    ADC: only then can an importer reproduce the chip's spikes exactly)."""
    if not args.ideal_adc:
        return args.profile
    import dataclasses

    from sim import load_profile
    from sim.profile import AdcConfig

    return dataclasses.replace(load_profile(args.profile), adc=AdcConfig(bits=None))


def _export(args) -> int:
    from ..exchange import export_reservoir
    from ..session import ChipSession

    with ChipSession(args.backend, chip_seed=args.chip_seed, profile=_profile(args),
                     noise=not args.no_noise) as chip:
        record = export_reservoir(chip, args.dataset, args.out, dt=args.dt,
                                  recurrence=args.recurrence,
                                  reference_samples=args.reference_samples,
                                  data_dir=args.data_dir)
        record["chip"] = chip.record()
    print(f"wrote {record['path']}: {record['n_inputs']} inputs -> {record['n_neurons']} LIF "
          f"neurons, decay {record['decay']:g}, threshold {record['threshold']:g}, "
          f"dt {record['dt_s']:g} s" + (f"; reference spikes in {record['reference']}"
                                        if "reference" in record else ""))
    if record["note"]:
        print(f"note: {record['note']}")
    _write(args, record, "nir export")
    return 0


def _run(args) -> int:
    from ..exchange import run_graph

    results = run_graph(args.graph, args.dataset, backend=args.backend,
                        chip_seed=args.chip_seed, profile=_profile(args),
                        data_dir=args.data_dir, samples=args.samples, dt=args.dt,
                        neurobench=not args.no_neurobench)
    for key in ("noise_free", "noisy"):
        r = results[key]
        print(f"{key:10s}: programming RMS weight error {r['programming']['weight_rms_error']:.4g} "
              f"(weights RMS {r['programming']['weight_rms']:.4g}); spike agreement with "
              f"snnTorch {r['spike_agreement_with_source']:.4f}; equals snnTorch on the "
              f"weights the chip holds: {r['equals_snntorch_on_held_weights']}")
    if "neurobench" in results:
        print("NeuroBench:", json.dumps(results["neurobench"]))
    _write(args, results, "nir run")
    return 0


def _write(args, results: dict, command: str) -> None:
    if args.json_path:
        from ...records import write_record

        config = {k: v for k, v in vars(args).items() if k not in ("handler", "json_path")}
        write_record(args.json_path, results, command=command, config=config,
                     seeds={"chip_seed": args.chip_seed})
        print(f"wrote {args.json_path}")


def register(sub) -> None:
    """Register ``nir export`` and ``nir run``."""
    p = sub.add_parser("nir", help="export reservoirs to NIR, run NIR networks on a macro")
    nir_sub = p.add_subparsers(dest="nir_command", metavar="ACTION")
    e = nir_sub.add_parser("export", help="write a reservoir as a NIR graph")
    e.add_argument("--dataset", required=True, choices=DATASETS)
    e.add_argument("--out", required=True, help="NIR file to write (.nir)")
    e.add_argument("--dt", type=float, default=1e-4,
                   help="time step (s) of the NIR parameters (snnTorch assumes 1e-4)")
    e.add_argument("--recurrence", choices=("split", "direct"), default="split",
                   help="split: recurrent weights through an identity node (imports exactly "
                   "in snnTorch 1.0); direct: the plain LIF <-> Linear cycle")
    e.add_argument("--reference-samples", type=int, default=0,
                   help="also write this many rasters and the chip's spikes beside the graph")
    add_data_dir(e)
    add_backend(e)
    e.add_argument("--ideal-adc", action="store_true",
                   help="virtual chip with an ideal ADC (NIR has none: exact export)")
    add_json(e)
    e.set_defaults(handler=_export)
    r = nir_sub.add_parser("run", help="run a NIR graph on a macro and compare with snnTorch")
    r.add_argument("graph", help="NIR file")
    r.add_argument("--dataset", required=True, choices=DATASETS)
    r.add_argument("--samples", type=int, default=100, help="rasters to run")
    r.add_argument("--dt", type=float, default=1e-4, help="time step (s) to discretise with")
    r.add_argument("--no-neurobench", action="store_true", help="skip the NeuroBench metrics")
    add_data_dir(r)
    add_backend(r)
    r.add_argument("--ideal-adc", action="store_true",
                   help="virtual chip with an ideal ADC, for the exact comparison")
    add_json(r)
    r.set_defaults(handler=_run)
