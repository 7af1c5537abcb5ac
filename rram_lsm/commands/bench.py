"""``rram-lsm bench <name>``: benchmarks whose code lives in ``bench/bench_<name>.py``.

Each benchmark module defines ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> dict`` (the results); this command prints them and writes the JSON record.
"""
from __future__ import annotations

import importlib
import json

from .common import add_json

BENCHMARKS = ("sim", "lsm", "serial", "loading")


def _handler(name):
    def handle(args) -> int:
        from ..records import write_record

        module = importlib.import_module(f"bench.bench_{name}")
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
        try:
            module = importlib.import_module(f"bench.bench_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.bench_{name}":
                raise
            continue  # that benchmark is not written yet
        bp = bench_sub.add_parser(name, help=getattr(module, "DESCRIPTION", None))
        if hasattr(module, "add_arguments"):
            module.add_arguments(bp)
        add_json(bp)
        bp.set_defaults(handler=_handler(name))
