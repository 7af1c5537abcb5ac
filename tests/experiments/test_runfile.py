"""Experiments as files: TOML configs are validated, records rerun to the same numbers."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from rram_lsm.app.cli import build_parser, main
from rram_lsm.errors import ConfigError
from rram_lsm.app.experiments.runfile import (argv_for, argv_from_record, compare_records,
                                          load_experiment)
from rram_lsm.records import read_record


def _write(path, text):
    path.write_text(text)
    return path


def test_unknown_key_in_an_experiment_file_is_a_config_error(tmp_path):
    exp = _write(tmp_path / "e.toml", 'experiment = "energy"\nsampels = 4\n')
    command, options = load_experiment(exp)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['sampels'\]"):
        argv_for(command, options)
    assert main(["run", str(exp)]) == 1


@pytest.mark.parametrize("text, match", [
    ('samples = 4\n', "needs experiment"),
    ('experiment = "energi"\n', "unknown command"),
    ('experiment = "energy"\n[extra]\nx = 1\n', "not tables"),
    ('experiment = "energy"\nsamples = \n', "not valid TOML"),
])
def test_malformed_experiment_files(tmp_path, text, match):
    exp = _write(tmp_path / "e.toml", text)
    with pytest.raises(ConfigError, match=match):
        argv_for(*load_experiment(exp))


def test_argv_round_trips_through_argparse():
    config = {"dataset": "fsdd", "chip_seeds": 2, "values": ["adc_bits=0,3", "chip_age_s=1,2"],
              "serial": True, "progress": False, "no_noise": False, "data_dir": None,
              "train_per_class": 3, "metric": "prototype"}
    argv = argv_for("sweep", config)
    args = build_parser().parse_args(argv)
    for key, value in config.items():
        assert getattr(args, key) == value, key


def test_run_then_rerun_reproduces_the_numbers(tmp_path, capsys):
    first = tmp_path / "energy.json"
    exp = _write(tmp_path / "e.toml",
                 'experiment = "energy"\ndescription = "tiny"\ndataset = "nmnist"\n'
                 f'samples = 4\njson = "{first}"\n')
    # option names as on the command line: ``json`` is --json (argparse's json_path)
    assert argv_for(*load_experiment(exp))[-2:] == ["--json", str(first)]
    with pytest.raises(ConfigError, match="given twice"):
        argv_for("energy", {"json": "a.json", "json_path": "b.json"})
    exp.write_text('experiment = "energy"\ndataset = "nmnist"\nsamples = 4\n'
                   'projection_dim = 32\nprogress = false\n')
    assert main(["run", str(exp), "--json", str(first)]) == 0
    rec = read_record(first)
    assert rec["command"] == "energy" and rec["config"]["samples"] == 4
    assert rec["nmnist"]["counts"]["projection_dim"] == 32
    # the chip's own ADC and conductance replace the parameter file's values
    assert any(a.startswith("adc_bits = 8 [measured]") for a in rec["nmnist"]["assumptions"])
    assert rec["nmnist"]["energy_ratio"] > 1.0
    second = tmp_path / "again.json"
    assert main(["rerun", str(first), "--json", str(second), "--check"]) == 0
    assert "all equal" in capsys.readouterr().out
    cmp = compare_records(rec, read_record(second))
    assert cmp["compared"] > 20 and not cmp["differ"] and not cmp["missing"]


def test_rerun_of_a_sweep_record_gives_the_same_accuracies(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["sweep", "--serial", "--axes", "read_noise_rel", "--values",
                 "read_noise_rel=0,0.3", "--chip-seeds", "1", "--train-per-class", "3",
                 "--test-per-class", "2", "--metric", "prototype", "--no-progress",
                 "--json", str(first)]) == 0
    assert main(["rerun", str(first), "--json", str(second), "--check"]) == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert [t["accuracy"] for t in a["tasks"]] == [t["accuracy"] for t in b["tasks"]]


def test_compare_records_reports_differences():
    a = {"x": {"mean": 0.5, "list": [1, 2]}, "environment": {"t": 1}}
    b = {"x": {"mean": 0.6, "list": [1, 2]}, "environment": {"t": 2}, "y": 1}
    cmp = compare_records(a, b)
    assert cmp["differ"] == [("x.mean", 0.5, 0.6)]
    assert cmp["missing"] == [] and cmp["added"] == ["y"] and cmp["compared"] == 3
    assert compare_records(b, a)["missing"] == ["y"]   # a rerun that lost a number


def test_records_without_command_are_rejected():
    with pytest.raises(ConfigError, match="not a result record"):
        argv_from_record({"results": 1})


def test_store_actions_of_every_kind_are_emitted():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    q = sub.add_parser("x")
    q.add_argument("pos")
    q.add_argument("--flag", action="store_true")
    q.add_argument("--off", dest="on", action="store_false")
    q.add_argument("--n", type=int, nargs="+")
    q.add_argument("-v", action="count", default=0)
    from rram_lsm.app.experiments import runfile

    opts = runfile._options(runfile._subparser(p, ["x"]))
    config = {"pos": "-odd", "flag": True, "on": False, "n": [1, 2], "v": 2}
    argv = ["x"]
    tail = []
    for dest, action in opts.items():
        (argv if action.option_strings else tail).extend(runfile._emit(action, config[dest]))
    args = p.parse_args(argv + ["--", *tail])
    assert (args.pos, args.flag, args.on, args.n, args.v) == ("-odd", True, False, [1, 2], 2)


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "rram_lsm" / "app" / "experiments"
                   / "examples").glob("*.toml"))
assert EXAMPLES, "the example experiment files are missing"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_experiment_files_parse_as_command_lines(path):
    command, options = load_experiment(path)
    args = build_parser().parse_args(argv_for(command, options))
    assert args.handler is not None
    for key, value in options.items():
        if key != "description":
            assert getattr(args, key.replace("-", "_"), None) is not None, key


def test_an_option_whose_type_makes_a_list_goes_back_as_one_word():
    """``chip inspect --region 0,0,8,8`` is saved as [0, 0, 8, 8]; it used to come back as
    four words (issue 15: "argument --region: ... got '0'")."""
    argv = argv_for("chip inspect", {"region": [0, 0, 8, 8], "seed": 3})
    assert argv[argv.index("--region") + 1] == "0,0,8,8"
    assert build_parser().parse_args(argv).region == (0, 0, 8, 8)
    with pytest.raises(ConfigError, match="cannot rebuild --region"):
        argv_for("chip inspect", {"region": [0, 0, 8]})



def test_flags_are_not_aliased_to_their_opposite():
    # --no-progress stores False in `progress`: `no_progress = true` must not become
    # progress = true (and so no flag at all)
    with pytest.raises(ConfigError, match="no_progress"):
        argv_for("energy", {"no_progress": True, "samples": 4})
    assert "--no-progress" in argv_for("energy", {"progress": False, "samples": 4})


def test_reruns_of_paired_records_read_the_drives_they_read():
    from rram_lsm.app.experiments.runfile import recorded_drives

    real = {"audio": {"dataset": "fsdd", "synthetic": False}}
    old = {"command": "zeroshot", "config": {"splits": "all"}, "data": real}
    assert recorded_drives(old) == [875.0]             # before the cochlea was recorded
    argv = argv_from_record(old)
    assert argv[argv.index("--cochlea-gain") + 1] == "875.0"
    two = {**old, "data": {**real, "cochlea": [{"gain_per_s": 875.0},
                                               {"gain_per_s": 1750.0}]}}
    assert recorded_drives(two) == [875.0, 1750.0]
    assert recorded_drives({**old, "config": {"cochlea_gain": [1750.0]}}) is None
    synthetic = {"audio": {"dataset": "fsdd", "synthetic": True}}
    assert recorded_drives({**old, "data": synthetic}) is None
    assert recorded_drives({**old, "command": "energy"}) is None


def test_reruns_of_zeroshot_records_run_the_recipe_they_ran():
    import dataclasses

    from projections import METHODS
    from projections.recipes import find_recipe, get_method
    from rram_lsm.app.experiments.runfile import recorded_method

    before = dataclasses.asdict(get_method("default_round17"))
    before.pop("fewshot_speaker_centring")     # a record older than the field
    old = {"command": "zeroshot", "config": {"method": "default", "method_config":
                                             {**before, "name": "default"}}}
    # round 17 ran round 14's recipe: the earliest round that chose it names it
    assert recorded_method(old) == "default_round14"
    argv = argv_from_record(old)
    assert argv[argv.index("--method") + 1] == "default_round14"
    assert "--fewshot-speakers" not in argv
    # a record of today's default, of a recipe under its own name, or of fields no named
    # recipe has, reruns under the name it gives
    now = {"command": "zeroshot", "config": {"method": "default", "method_config":
                                             dataclasses.asdict(METHODS["default"])}}
    assert recorded_method(now) is None
    named = {"command": "zeroshot", "config": {"method": "default_round17",
                                               "method_config": before}}
    assert recorded_method(named) is None
    odd = {**before, "epochs": 7}
    assert find_recipe(odd) is None
    assert recorded_method({"command": "zeroshot", "config": {
        "method": "default", "method_config": odd}}) is None
    assert find_recipe({**before, "no_such_field": 1}) is None
    assert recorded_method({"command": "demo", "config": old["config"]}) is None
    # such a record, of few-shot from before speaker centring, reruns without it
    unnamed = {"command": "zeroshot", "config": {"method": "default", "shots": [5],
                                                 "method_config": odd}}
    argv = argv_from_record(unnamed)
    assert argv[argv.index("--fewshot-speakers") + 1] == "none"
    assert "--fewshot-speakers" not in argv_from_record(
        {**unnamed, "config": {**unnamed["config"], "shots": None}})


def test_a_record_names_the_data_dir_the_environment_gave(tmp_path, monkeypatch):
    """``RRAM_LSM_DATA=D rram-lsm ...`` records ``data_dir`` D, so that its rerun reads D
    without the environment; a variable naming no directory is left to the command."""
    import argparse

    from rram_lsm.app.cli import _name_the_data_dir

    monkeypatch.setenv("RRAM_LSM_DATA", str(tmp_path))
    args = argparse.Namespace(data_dir=None)
    _name_the_data_dir(args)
    assert args.data_dir == str(tmp_path)
    given = argparse.Namespace(data_dir="elsewhere")
    _name_the_data_dir(given)
    assert given.data_dir == "elsewhere"          # --data-dir wins
    monkeypatch.setenv("RRAM_LSM_DATA", str(tmp_path / "missing"))
    args = argparse.Namespace(data_dir=None)
    _name_the_data_dir(args)
    assert args.data_dir is None
    other = argparse.Namespace(samples=3)         # a command without --data-dir
    _name_the_data_dir(other)
    assert not hasattr(other, "data_dir")
