"""Options shared by subcommands, so each reads the same way everywhere."""
from __future__ import annotations

import argparse

from ..backends import BACKEND_HELP
from ..settings import DATA_ENV

__all__ = ["add_data_dir", "add_json", "add_backend", "add_seeds"]


def add_data_dir(p: argparse.ArgumentParser) -> None:
    """``--data-dir`` (falls back to $RRAM_LSM_DATA, then synthetic data)."""
    p.add_argument(
        "--data-dir", default=None,
        help=f"data directory (default: ${DATA_ENV}; without either, synthetic data)",
    )


def add_json(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--json FILE``: write the machine-readable result there."""
    p.add_argument("--json", dest="json_path", default=None, required=required,
                   metavar="FILE", help="write results (with config, seeds, versions) as JSON")


def add_backend(p: argparse.ArgumentParser) -> None:
    """``--backend``, ``--chip-seed``, ``--profile``, ``--no-noise``."""
    p.add_argument("--backend", default="sim", help=BACKEND_HELP)
    p.add_argument("--chip-seed", type=int, default=0, help="seed of the virtual chip")
    p.add_argument("--profile", default=None,
                   help="device profile: preset name (macro40nm) or JSON file")
    p.add_argument("--no-noise", action="store_true",
                   help="switch read/programming noise off on a virtual chip")


def add_seeds(p: argparse.ArgumentParser, default: int = 3) -> None:
    """``--seeds N`` (repetitions over chip and training seeds) and ``--seed`` (base)."""
    p.add_argument("--seeds", type=int, default=default, help="number of seeds to average over")
    p.add_argument("--seed", type=int, default=0, help="base seed")
