"""``rram-lsm bench <name>``: benchmarks whose code lives in ``rram_lsm/app/bench/bench_<name>.py``.

Each benchmark module defines ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> dict`` (the results); this command prints them and writes the JSON record.
"""
from __future__ import annotations

import json

from .common import add_json

BENCHMARKS = ("sim", "lsm", "serial", "loading", "zeroshot", "encode")


def _module(name: str):
    from ..bench import (bench_encode, bench_loading, bench_lsm, bench_serial, bench_sim,
                         bench_zeroshot)

    return {"sim": bench_sim, "lsm": bench_lsm, "serial": bench_serial,
            "loading": bench_loading, "zeroshot": bench_zeroshot,
            "encode": bench_encode}[name]


def _handler(name):
    def handle(args) -> int:
        from ...records import write_record

        module = _module(name)
        results = module.run(args)
        print(json.dumps(results, indent=2, default=str))
        if args.json_path:
            config = {k: v for k, v in vars(args).items() if k not in ("handler", "json_path")}
            write_record(args.json_path, results, command=f"bench {name}", config=config,
                         seeds=config.get("seed"))
        return 0
    return handle


def register(sub) -> None:
    """Register ``bench`` and one sub-subcommand per benchmark module."""
    p = sub.add_parser("bench", help="run a benchmark and write JSON")
    bench_sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name in BENCHMARKS:
        module = _module(name)
        bp = bench_sub.add_parser(name, help=getattr(module, "DESCRIPTION", None))
        if hasattr(module, "add_arguments"):
            module.add_arguments(bp)
        add_json(bp)
        bp.set_defaults(handler=_handler(name))
