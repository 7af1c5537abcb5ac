"""The ``rram-lsm`` command line. Subcommands live in ``rram_lsm.app.commands.*``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from ..errors import RramLsmError

__all__ = ["main", "build_parser"]

# Each module registers its own subcommands; heavy imports happen inside the handlers so
# that `rram-lsm --help` stays fast.
_COMMAND_MODULES = ("data", "chip", "lsm", "hardware", "zeroshot", "experiments", "bench",
                    "nir")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="rram-lsm",
        description="RRAM liquid state machine: simulate, drive and evaluate the co-design.",
    )
    parser.add_argument("--version", action="version", version=f"rram-lsm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"rram_lsm.app.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    _name_the_data_dir(args)
    try:
        from .commands.common import check_output_file, check_plot_file

        if getattr(args, "json_path", None):
            check_output_file(args.json_path, "--json")  # before the work, not after it
        if getattr(args, "plot", None):
            check_plot_file(args.plot)
        return int(args.handler(args) or 0)
    except RramLsmError as exc:
        print(f"rram-lsm: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rram-lsm: interrupted", file=sys.stderr)
        return 130


def _name_the_data_dir(args) -> None:
    """A command whose data directory came from ``$RRAM_LSM_DATA`` gets it as its
    ``--data-dir``, so that its record names the data it read and reruns without the
    environment. A named directory that does not exist is left to the command, whose
    error then names the variable."""
    from .settings import DATA_ENV

    chosen = os.environ.get(DATA_ENV)
    if getattr(args, "data_dir", "") is None and chosen and \
            os.path.isdir(os.path.expanduser(chosen)):
        args.data_dir = chosen


if __name__ == "__main__":
    sys.exit(main())
