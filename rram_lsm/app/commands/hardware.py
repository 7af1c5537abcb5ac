"""Subcommands ``devices``, ``emulate`` and ``parity``: the serial macro and its emulator."""
from __future__ import annotations

import json

from .common import add_backend, add_json, seed


def _devices(args) -> int:
    from hardware.discovery import scan_ports

    from ...records import write_record

    reports = scan_ports(probe=not args.no_probe, baudrate=args.baud,
                         timeout_s=args.timeout_s, extra=tuple(args.ports),
                         system=not args.only)
    if not reports:
        print("no serial ports found (a macro on USB shows up as /dev/ttyUSB* or /dev/ttyACM*)")
    for r in reports:
        print(f"{r.device:<24} {r.status:<11} {r.detail or r.description}")
    if args.json_path:
        write_record(args.json_path, {"ports": reports,
                                      "macros": [r.device for r in reports if r.status == "macro"]},
                     command="devices", config={"baud": args.baud, "probe": not args.no_probe,
                                                "ports": args.ports})
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _emulate(args) -> int:
    import os
    import signal
    import tty

    from hardware.emulator import Emulator
    from hardware.spawn import build_macro, faults_from_args
    from sim import load_profile

    macro = build_macro("sim:SimMacro", args.seed, load_profile(args.profile))
    emu = Emulator(macro, faults_from_args(args), baud=args.baud, gap_s=args.gap_s)
    master, slave = os.openpty()
    tty.setraw(slave)  # held open so the emulator survives clients coming and going
    path = os.ttyname(slave)
    info = emu.info()
    print(path, flush=True)
    print(f"emulating {info.model} {info.rows}x{info.cols} (chip seed {args.seed}, profile "
          f"{macro.profile.name}); use --backend serial:{path}; Ctrl-C stops", flush=True)
    # `kill` (and service managers) stop it as Ctrl-C does: counters printed, pty closed;
    # a shell's background job cannot get Ctrl-C at all, since SIGINT is ignored there
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        emu.serve(master)
    except KeyboardInterrupt:
        print(f"stopped; counters {json.dumps(emu.counters)}")
    finally:
        os.close(master)
        os.close(slave)
    return 0


def _parity(args) -> int:
    from ..parity import ParityConfig, plot_parity, run_parity

    from ..backends import open_backend
    from ...records import write_record

    cfg = ParityConfig(lsm_preset=args.lsm_preset, n_inputs=args.inputs,
                       n_neurons=args.neurons, n_steps=args.steps, n_vectors=args.vectors,
                       n_samples=args.samples, raster_rate=args.raster_rate, seed=args.seed)
    with open_backend(args.backend, seed=args.chip_seed, profile=args.profile,
                      noise=not args.no_noise) as chip:
        result = run_parity(chip, cfg)
    s = result.summary
    cc, sc, tw = s["column_current"], s["spike_count"], s["twin_write"]
    print(f"chip {s['chip']['model']} (firmware {s['chip']['firmware']}), tile "
          f"{s['tile']['region']}, formed at {s['tile']['forming_voltage_v']} V")
    print(f"twin write-verify: {tw['converged_fraction']:.4f} converged, rms "
          f"{tw['rms_error_us']:.4g} µS")
    print(f"column current: mean |ΔI| {cc['mae_ua']:.4g} µA ({cc['relative_mae']:.3%} of mean "
          f"|I|), worst column {cc['max_column_mae_ua']:.4g} µA")
    print(f"spike counts: mean |Δ| per neuron {sc['mae_per_neuron']:.4g} (chip "
          f"{sc['mean_count_chip']:.3g}, twin {sc['mean_count_twin']:.3g} spikes/sample)")
    if args.plot:
        plot_parity(result).savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    if args.json_path:
        config = {k: v for k, v in vars(args).items() if k not in ("handler", "json_path")}
        write_record(args.json_path, s, command="parity", config=config,
                     seeds={"chip_seed": args.chip_seed, "inputs_seed": args.seed})
    return 0


def register(sub) -> None:
    """Register ``devices``, ``emulate`` and ``parity``."""
    from hardware.spawn import (add_fault_arguments, non_negative_int, positive_int,
                                positive_seconds)

    p = sub.add_parser("devices", help="list serial ports and find macros on them")
    p.add_argument("ports", nargs="*", help="extra ports or URLs to probe (socket://...)")
    p.add_argument("--baud", type=positive_int, default=921600,
                   help="baud rate for the handshake")
    p.add_argument("--timeout-s", type=positive_seconds, default=0.5,
                   help="handshake timeout per port")
    p.add_argument("--no-probe", action="store_true", help="list only; send nothing")
    p.add_argument("--only", action="store_true",
                   help="look only at the ports named on the command line")
    add_json(p)
    p.set_defaults(handler=_devices)

    p = sub.add_parser("emulate", help="serve a virtual macro on a pseudo-terminal")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="chip seed (as --chip-seed elsewhere)")
    p.add_argument("--profile", default=None, help="device profile: preset name or JSON file")
    p.add_argument("--baud", type=positive_int, default=None,
                   help="pace replies like a UART of this rate (default: unpaced)")
    p.add_argument("--gap-s", type=positive_seconds, default=0.05,
                   help="silence (s, > 0) after which a partial frame counts as lost")
    add_fault_arguments(p)
    p.set_defaults(handler=_emulate)

    p = sub.add_parser("parity", help="chip vs simulator fitted to the chip's conductances")
    add_backend(p)
    add_json(p)
    p.add_argument("--plot", default=None, metavar="PNG", help="write the parity figure")
    p.add_argument("--lsm-preset", default="nmnist", help="reservoir preset (nmnist, ntidigits)")
    p.add_argument("--inputs", type=positive_int, default=None,
                   help="override the preset's inputs")
    p.add_argument("--neurons", type=positive_int, default=None,
                   help="override the preset's neurons")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="override the preset's steps")
    p.add_argument("--vectors", type=positive_int, default=256, help="random MVM input vectors")
    p.add_argument("--samples", type=positive_int, default=32, help="random input rasters")
    p.add_argument("--raster-rate", type=float, default=0.05,
                   help="input spike probability per input and step in the rasters")
    p.add_argument("--seed", type=seed, default=0, help="seed of the inputs and the twin")
    p.set_defaults(handler=_parity)
