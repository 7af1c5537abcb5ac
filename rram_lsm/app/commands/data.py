"""``rram-lsm data info``: what the data directory holds (or the synthetic stand-ins)."""
from __future__ import annotations

import sys

from .common import add_data_dir, add_json


def _info(args) -> int:
    from lsm.data.info import data_info, format_info

    from ...records import write_record
    from ..settings import DOWNLOAD_HELP, resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None:
        print("No data directory given (--data-dir or $RRAM_LSM_DATA): describing the "
              "SYNTHETIC stand-in datasets.\n" + DOWNLOAD_HELP + "\n", file=sys.stderr)
    info = data_info(data_dir, progress=not args.no_progress)
    print(format_info(info))
    if args.json_path:
        config = {k: v for k, v in vars(args).items() if k not in ("handler", "json_path")}
        config["data_dir"] = info["data_dir"]  # resolved: a rerun from elsewhere finds it
        write_record(args.json_path, info, command="data info", config=config, seeds=None)
    return 0


def register(sub) -> None:
    """Register ``data info``."""
    p = sub.add_parser("data", help="inspect the event datasets")
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    info = data_sub.add_parser("info", help="per dataset, split and class counts, event "
                               "statistics, real or synthetic")
    add_data_dir(info)
    add_json(info)
    info.add_argument("--no-progress", action="store_true", help="hide progress bars")
    info.set_defaults(handler=_info)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
