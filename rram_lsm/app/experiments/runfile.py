"""Experiments as files: run a TOML config, rerun a JSON record.

Both go through the command line itself, so a file can name any subcommand and there is one
place (argparse) that knows each command's options:

* An experiment file names its command and gives that command's options::

      experiment = "zeroshot"          # any subcommand: demo, sweep, energy, classify, ...
      description = "paper recipe"     # optional, ignored
      method = "paper"                 # option names as on the command line ("data-dir"
      splits = 10                      # and "data_dir" both work); unknown keys are errors
      shots = 5

* A record written by :func:`rram_lsm.records.write_record` stores ``command`` (the
  subcommand words) and ``config`` (the parsed options); :func:`argv_from_record` turns it
  back into a command line.
"""
from __future__ import annotations

import argparse
import math
import sys
import tomllib
from pathlib import Path

from ...errors import ConfigError, OutputError

__all__ = [
    "load_experiment",
    "argv_for",
    "argv_from_record",
    "run_experiment",
    "rerun_record",
    "compare_records",
]

_RESERVED = ("experiment", "description")
_SKIP_DESTS = {"help", "handler", "version"}


def _subparser(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    """Walk ``words`` down the subcommand tree; ConfigError names what exists."""
    p = parser
    for word in words:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        choices = subs[0].choices if subs else {}
        if word not in choices:
            raise ConfigError(f"unknown command {' '.join(words)!r}: {word!r} is not one of "
                              f"{sorted(choices)}")
        p = choices[word]
    return p


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in p._actions
            if a.dest not in _SKIP_DESTS and a.dest is not argparse.SUPPRESS
            and not isinstance(a, argparse._SubParsersAction)}


def _command_words(command: str) -> list[str]:
    words = str(command).split()
    if words and words[0] == "rram-lsm":
        words = words[1:]
    if not words:
        raise ConfigError("no command given")
    return words


def _emit(action: argparse.Action, value) -> list[str]:
    """Command-line words that make argparse set ``action.dest`` to ``value``."""
    if value is None:
        return []
    opt = action.option_strings[-1] if action.option_strings else None
    if isinstance(action, argparse._StoreTrueAction):
        return [opt] if value else []
    if isinstance(action, argparse._StoreFalseAction):
        return [] if value else [opt]
    if isinstance(action, (argparse._StoreConstAction, argparse._AppendConstAction)):
        return [opt] if value == action.const else []
    if isinstance(action, argparse._CountAction):
        return [opt] * int(value)
    if isinstance(action, argparse._AppendAction):
        values = value if isinstance(value, (list, tuple)) else [value]
        return [w for v in values for w in ([opt, *_one(action, v)])]
    words = _one(action, value)
    return words if opt is None else [opt, *words]


def _one(action: argparse.Action, value) -> list[str]:
    """The words of one occurrence of ``action``. An option that takes a single word but
    whose ``type`` turned it into a list (``--region 0,0,8,8`` -> ``[0, 0, 8, 8]``) gets
    its items back joined by commas, checked by parsing the word again with that type."""
    if action.nargs not in (None, "?") or not isinstance(value, (list, tuple)):
        return _words(value)
    word = ",".join(_words(value))
    name = action.option_strings[-1] if action.option_strings else action.dest
    if callable(action.type):
        try:
            again = action.type(word)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise ConfigError(f"cannot rebuild {name} from the saved value {value!r}: "
                              f"{exc}") from exc
        if _plain(again) != _plain(value):
            raise ConfigError(f"cannot rebuild {name} from the saved value {value!r}: "
                              f"{word!r} parses as {again!r}")
    return [word]


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _words(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [w for v in value for w in _words(v)]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot pass the non-finite value {value!r} on a command line")
        return [repr(value)]
    if isinstance(value, bool):
        return [str(value).lower()]
    return [str(value)]


def argv_for(command: str, config: dict, *, strict: bool = True,
             overrides: dict | None = None) -> list[str]:
    """The argv (without the program name) that runs ``command`` with options ``config``.

    ``strict``: unknown keys raise ConfigError (experiment files); otherwise they are
    skipped (records may carry derived values). ``overrides`` replace config values.
    """
    from ..cli import build_parser

    words = _command_words(command)
    sub = _subparser(build_parser(), words)
    options = _options(sub)
    # keys as on the command line (``json``, ``cochlea-gain``) or as argparse dests
    # (``json_path``): experiment files may use either
    alias = {o[2:].replace("-", "_"): dest for dest, a in options.items()
             if a.nargs != 0   # a flag's dest may mean its opposite (--no-progress)
             for o in a.option_strings if o.startswith("--")}
    merged = {}
    for k, v in config.items():
        key = str(k).replace("-", "_")
        key = alias.get(key, key) if key not in options else key
        if key in merged:
            raise ConfigError(f"option {k!r} is given twice (as {key!r} too)")
        merged[key] = v
    for k, v in (overrides or {}).items():
        if k in options:
            merged[k] = v
    unknown = sorted(set(merged) - set(options))
    if unknown and strict:
        raise ConfigError(f"unknown option(s) {unknown} for 'rram-lsm {' '.join(words)}'; "
                          f"known: {sorted(options)}")
    argv = list(words)
    positional = []
    for dest, action in options.items():
        if dest not in merged:
            continue
        if action.option_strings:
            argv += _emit(action, merged[dest])
        else:
            positional += _emit(action, merged[dest])
    # Positionals after "--" so a value starting with "-" is never read as an option.
    return argv + (["--", *positional] if positional else [])


def load_experiment(path: str | Path) -> tuple[str, dict]:
    """Read an experiment file: ``(command, options)``; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    command = raw.get("experiment")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{path}: needs experiment = \"<command>\" (demo, sweep, energy, "
                          "zeroshot, classify, ...)")
    options = {k: v for k, v in raw.items() if k not in _RESERVED}
    nested = [k for k, v in options.items() if isinstance(v, dict)]
    if nested:
        raise ConfigError(f"{path}: options are plain keys, not tables: {nested}")
    return command, options


def recorded_drives(record: dict) -> list[float] | None:
    """The cochlea drives a paired record on real FSDD read, for records whose config does
    not name them (written before the pair's default became two drives): from its
    ``data.cochlea``, else the one drive (875) every earlier pair read; an energy record
    of real FSDD without ``data.fsdd.cochlea_gain_per_s`` counted one pass at 875. None
    where the config names them or there is no FSDD cochlea."""
    config = record.get("config") or {}
    if record.get("command") == "energy" and config.get("cochlea_gain") is None:
        # energy counted one pass at the one drive before it counted the pairs' drives
        fsdd = ((record.get("data") or {}).get("fsdd") or {})
        if fsdd.get("synthetic") is False and "cochlea_gain_per_s" not in fsdd:
            from ..features import SINGLE_DRIVE

            return [SINGLE_DRIVE.gain_per_s]
        return None
    if record.get("command") not in ("zeroshot", "demo") or \
            config.get("cochlea_gain") is not None or config.get("features"):
        return None
    data = record.get("data") or {}
    audio = data.get("audio") or {}
    if audio.get("dataset") != "fsdd" or audio.get("synthetic") is not False:
        return None
    cochlea = data.get("cochlea")
    if isinstance(cochlea, list):
        return [float(c["gain_per_s"]) for c in cochlea]
    if isinstance(cochlea, dict):
        return [float(cochlea["gain_per_s"])]
    from ..features import SINGLE_DRIVE

    return [SINGLE_DRIVE.gain_per_s]


def recorded_method(record: dict) -> str | None:
    """The name of the recipe a zero-shot record ran, where its config's ``method`` now
    names another (a record of ``default`` written before the default moved on): the
    named recipe with the recorded ``method_config``'s fields
    (:func:`projections.recipes.find_recipe`). None where the name still fits, the record
    holds no recipe, or no named recipe has its fields (the rerun then runs the name)."""
    return _recipe_overrides(record).get("method")


def _recipe_overrides(record: dict) -> dict:
    """The options a zero-shot record's rerun needs to run the recipe it ran: the name
    that now holds its fields (``method``), or, for a few-shot recipe no name holds that
    was recorded before round 19's speaker centring existed, ``--fewshot-speakers
    none``; nothing where the recorded name still fits or the record holds no recipe."""
    config = record.get("config") or {}
    fields, name = config.get("method_config"), config.get("method")
    if record.get("command") != "zeroshot" or not isinstance(fields, dict) \
            or not isinstance(name, str):
        return {}
    from projections.recipes import find_recipe

    found = find_recipe(fields, prefer=name)
    if found is not None:
        return {} if found.name == name else {"method": found.name}
    if config.get("shots") and "fewshot_speaker_centring" not in fields \
            and config.get("fewshot_speakers") is None:
        return {"fewshot_speakers": "none"}
    return {}


def argv_from_record(record: dict, *, overrides: dict | None = None) -> list[str]:
    """The argv that reproduces a JSON record (its ``command`` and ``config``; a paired
    record that predates the pinned cochlea drives gets the drives it read,
    :func:`recorded_drives`)."""
    if "command" not in record or "config" not in record:
        raise ConfigError("not a result record: it needs 'command' and 'config' keys "
                          "(written by rram_lsm.records.write_record)")
    drives = recorded_drives(record)
    if drives is not None:
        overrides = {"cochlea_gain": drives, **(overrides or {})}
    overrides = {**_recipe_overrides(record), **(overrides or {})}
    return argv_for(record["command"], record["config"] or {}, strict=False,
                    overrides=overrides)


def run_experiment(path: str | Path, *, json_path: str | None = None) -> int:
    """Run the experiment file at ``path``; return the command's exit code."""
    from ..cli import main

    command, options = load_experiment(path)
    argv = argv_for(command, options, strict=True,
                    overrides={"json_path": json_path} if json_path else None)
    print("rram-lsm " + " ".join(argv), file=sys.stderr)
    return main(argv)


def rerun_record(path: str | Path, *, json_path: str | None = None,
                 out: str | None = None) -> tuple[int, str]:
    """Rerun the command of the record at ``path``; return ``(exit code, new JSON path)``.

    The new record goes to ``json_path`` (default ``<name>.rerun.json`` beside the old one).
    A command whose record names an ``--out`` writes it to ``out``; by default an output
    directory goes to ``<dir>/rerun`` and an output file (a name with a suffix, such as
    ``chip fit``'s profile JSON) to ``<dir>/rerun/<name>``. A record without ``--out``
    reruns without one.
    """
    from ..cli import main
    from ...records import read_record

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"record {path} does not exist")
    record = read_record(path)
    new_json = json_path or str(path.with_name(path.stem + ".rerun.json"))
    overrides = {"json_path": new_json}
    saved_out = (record.get("config") or {}).get("out")
    if out is not None:
        overrides["out"] = out
    elif saved_out:
        rerun_dir = path.parent / "rerun"
        if Path(str(saved_out)).suffix:
            try:
                rerun_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create the rerun's output directory "
                                  f"({exc.strerror or exc}); give --out", rerun_dir) from exc
            overrides["out"] = str(rerun_dir / Path(str(saved_out)).name)
        else:
            overrides["out"] = str(rerun_dir)
    argv = argv_from_record(record, overrides=overrides)
    print("rram-lsm " + " ".join(argv), file=sys.stderr)
    return main(argv), new_json


_VOLATILE = {"environment", "config", "command", "seeds", "timing", "wall_s", "figures",
             "out_dir", "created_utc"}


def _numbers(node, prefix="") -> dict:
    out = {}
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _VOLATILE or k.endswith(("_s_wall", "wall_time_s", "seconds")):
                continue
            out.update(_numbers(v, f"{prefix}{k}."))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.update(_numbers(v, f"{prefix}{i}."))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        out[prefix.rstrip(".")] = float(node)
    return out


def compare_records(a: dict, b: dict, *, rtol: float = 1e-9, atol: float = 1e-12) -> dict:
    """Compare the numbers of two records (provenance and wall times left out).

    Returns ``{"compared": n, "differ": [(key, a, b), ...], "missing": [keys of ``a``
    that ``b`` lacks], "added": [keys only ``b`` has]}``: a rerun (``b``) that lost a
    number differs; one that records more (provenance a later version adds, such as the
    cochlea's config) does not.
    """
    na, nb = _numbers(a), _numbers(b)
    differ = [(k, na[k], nb[k]) for k in sorted(set(na) & set(nb))
              if not math.isclose(na[k], nb[k], rel_tol=rtol, abs_tol=atol)]
    return {"compared": len(set(na) & set(nb)), "differ": differ,
            "missing": sorted(set(na) - set(nb)), "added": sorted(set(nb) - set(na))}
