"""Options shared by subcommands, so each reads the same way everywhere."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ...errors import OutputError
from ..backends import BACKEND_HELP
from ..settings import DATA_ENV

__all__ = ["add_data_dir", "add_json", "add_backend", "add_seeds", "add_cochlea", "seed",
           "cochlea_option", "pin_cochlea_drives", "check_output_dir", "check_output_file", "check_plot_file",
           "FIGURE_FORMATS"]


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


def seed(text: str) -> int:
    """argparse type of every seed option: an integer >= 0 (numpy's generators and the
    chip's streams take no negative seed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is an integer >= 0, got {value}")
    return value


def add_backend(p: argparse.ArgumentParser) -> None:
    """``--backend``, ``--chip-seed``, ``--profile``, ``--no-noise``."""
    p.add_argument("--backend", default="sim", help=BACKEND_HELP)
    p.add_argument("--chip-seed", type=seed, default=0, help="seed of the virtual chip")
    p.add_argument("--profile", default=None,
                   help="device profile: preset name (macro40nm) or JSON file")
    p.add_argument("--no-noise", action="store_true",
                   help="switch read/programming noise off on a virtual chip")


def _cochlea_gain(text: str) -> float:
    """``--cochlea-gain``: a drive > 0, or a calibration's name."""
    from lsm.events import CALIBRATED_GAINS

    if text in CALIBRATED_GAINS:
        return CALIBRATED_GAINS[text]
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a drive in crossings/s or one of {sorted(CALIBRATED_GAINS)}, got "
            f"{text!r}")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"the cochlea's gain must be > 0, got {value}")
    return value


def add_cochlea(p: argparse.ArgumentParser, several: bool = False) -> None:
    """``--cochlea-gain``: the drive of FSDD's silicon cochlea (a sensor co-design knob);
    ``several``: the command reads the sensor at one or more drives side by side."""
    default = ("utterance speech, side by side (selection round 17)" if several
               else "utterance")
    p.add_argument(
        "--cochlea-gain", type=_cochlea_gain, nargs="+" if several else None, default=None,
        metavar="G|utterance|speech",
        help="drive" + ("s" if several else "") + " of FSDD's silicon cochlea, threshold "
             "crossings per second for unit input, or a calibration on the real "
             "N-TIDIGITS recording: utterance (875: its events per digit) or speech (1750: "
             f"its event rate while the digit sounds); default {default}; docs/data.md")


def cochlea_option(args, audio: str):
    """The CochleaConfig of ``--cochlea-gain`` for dataset ``audio`` (a dataset name or an
    ``--audio`` choice; None without the option; a list for several drives); a
    ConfigError where there is no cochlea to set (recorded or synthetic events)."""
    from ...errors import ConfigError
    from ..features import AUDIO_CHOICES, cochlea_for, resolve_audio
    from ..settings import resolve_data_dir

    gain = getattr(args, "cochlea_gain", None)
    if gain is None:
        return None
    root = resolve_data_dir(args.data_dir)
    name = resolve_audio(audio, root) if audio in AUDIO_CHOICES else audio
    if root is None or name != "fsdd":
        raise ConfigError("--cochlea-gain sets the cochlea that turns FSDD's wavs into "
                          "events: it needs real FSDD (a data directory, audio fsdd); "
                          "recorded N-TIDIGITS and synthetic events have none")
    if isinstance(gain, list):
        return [cochlea_for(g) for g in gain] if len(gain) > 1 else cochlea_for(gain[0])
    return cochlea_for(gain)


def pin_cochlea_drives(args, audio: str) -> None:
    """Write the drives a paired command reads into ``args.cochlea_gain`` when the option
    was left out and the audio is real FSDD (``rram_lsm.app.features.PAIR_DRIVES``), so
    the record's config names them and a rerun reads the same drives after the default
    changes."""
    from ..features import drives_of, resolve_audio
    from ..settings import resolve_data_dir

    if getattr(args, "cochlea_gain", None) is not None:
        return
    root = resolve_data_dir(args.data_dir)
    if root is not None:
        drives = drives_of(None, resolve_audio(audio, root))
        if drives != (None,):
            args.cochlea_gain = [d.gain_per_s for d in drives]


def add_seeds(p: argparse.ArgumentParser, default: int = 3) -> None:
    """``--seeds N`` (repetitions over chip and training seeds) and ``--seed`` (base)."""
    p.add_argument("--seeds", type=int, default=default, help="number of seeds to average over")
    p.add_argument("--seed", type=seed, default=0, help="base seed")


def check_output_dir(path, option: str = "--out") -> Path:
    """Create the output directory ``path`` (with its parents) and make sure a file can be
    written in it, before any work starts; OutputError names ``option`` otherwise."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} names a file, not a directory: give a directory "
                          "(it is created if missing)", path)
    _no_file_above(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"{option}: cannot create or write this directory "
                          f"({exc.strerror or exc})", path) from exc
    return path


def check_output_file(path, option: str = "--json") -> Path:
    """Refuse, before any work starts, an output file that cannot be written: ``path`` is a
    directory, or its directory cannot be created or written in (it is created here, as
    the writer would create it at the end anyway). OutputError names ``option``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{option} names a directory, not a file", path)
    _no_file_above(path, option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise OutputError(f"{option}: cannot create or write its directory "
                          f"({exc.strerror or exc})", path) from exc
    return path


FIGURE_FORMATS = ("png", "pdf", "svg", "svgz", "jpg", "jpeg", "tif", "tiff", "webp", "eps",
                  "ps")
"""File name suffixes ``--plot`` takes (formats matplotlib's standard backends write)."""


def check_plot_file(path) -> Path:
    """:func:`check_output_file` for ``--plot``, which also needs a figure format in its
    suffix (matplotlib would otherwise add ``.png`` to a bare name, or fail at the end)."""
    if Path(path).suffix.lower().lstrip(".") not in FIGURE_FORMATS and not Path(path).is_dir():
        raise OutputError(f"--plot needs a figure file name ending in one of "
                          f".{', .'.join(FIGURE_FORMATS)}", path)
    return check_output_file(path, "--plot")


def _no_file_above(path: Path, option: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{option}: {parent} is a file, so nothing can be "
                                  "written below it", path)
            return
