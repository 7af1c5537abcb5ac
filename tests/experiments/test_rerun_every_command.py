"""Every command that writes ``--json`` reruns from its record (issue 15).

The commands are enumerated from the parser, so a new command that takes ``--json`` fails
here until it has an entry in QUICK (its quickest options on synthetic data). Each runs,
then ``rram-lsm rerun`` rebuilds its command line from the record and runs it again; the
rebuilt options must parse to the same namespace as the original command line.
"""
from __future__ import annotations

import argparse

import pytest

from rram_lsm.app.cli import build_parser, main
from rram_lsm.app.experiments.runfile import argv_from_record
from rram_lsm.records import read_record

# Options that make each command quick; "{tmp}" is the test's directory and "{data}" a tiny
# data directory in the real formats (two N-MNIST files, two FSDD wavs) written by the test.
# A tuple is (a command run first to make an input, the command's options).
QUICK = {
    "data info": ["--data-dir", "{data}", "--no-progress"],
    "chip inspect": ["--seed", "3", "--region", "0,0,16,8", "--sparsity", "0.4"],
    "chip fit": ["--region", "0,0,16,16", "--reads", "2", "--v-step", "0.4",
                 "--out", "{tmp}/profile.json"],
    "encode": ["--dataset", "fsdd", "--no-progress", "--out", "{tmp}/feats.npz"],
    "classify": ["--dataset", "nmnist", "--seeds", "1", "--epochs", "2", "--no-progress"],
    "devices": ["--only", "/dev/does-not-exist", "--no-probe"],
    "parity": ["--no-noise", "--inputs", "24", "--neurons", "12", "--steps", "12",
               "--vectors", "16", "--samples", "4"],
    "zeroshot": ["--method", "raw", "--feature-kind", "input", "--splits", "1", "--seeds",
                 "1", "--shots", "1", "--episodes", "2", "--no-progress"],
    "demo": ["--quick", "--no-progress", "--out", "{tmp}/demo"],
    "run": None,    # runs an experiment file: its record is the inner command's (test_runfile)
    "rerun": None,  # writes the rerun command's record: the rerun of every other one here
    "sweep": ["--serial", "--axes", "read_noise_rel", "--values", "read_noise_rel=0",
              "--chip-seeds", "1", "--train-per-class", "2", "--test-per-class", "1",
              "--metric", "prototype", "--no-progress"],
    "energy": ["--dataset", "nmnist", "--samples", "2", "--projection-dim", "8",
               "--no-progress"],
    "bench sim": ["--batch", "4", "--rows", "16", "--cols", "8", "--rounds", "1",
                  "--densities", "0.5"],
    "bench lsm": ["--batch", "4", "--rounds", "1", "--latency-samples", "1", "--neurons",
                  "16", "--event-scales", "1"],
    "bench serial": ["--batch", "4", "--samples", "1", "--fault-commands", "10"],
    "bench loading": ["--data-dir", "{data}", "--repeats", "1", "--skip-fsdd"],
    "bench encode": ["--data-dir", "{data}", "--n-files", "14", "--neurons", "16",
                     "--input", "crop", "--chunk-size", "4"],
    "bench zeroshot": ["--protocols", "1", "--seeds", "1", "--shots", "1", "--episodes", "1",
                       "--epochs", "1", "--per-run-runs", "1", "--workers", "1"],
    "nir export": ["--dataset", "nmnist", "--out", "{tmp}/graph.nir"],
    "nir run": (["nir", "export", "--dataset", "nmnist", "--out", "{tmp}/graph.nir"],
                ["{tmp}/graph.nir", "--dataset", "nmnist", "--samples", "1",
                 "--no-neurobench"]),
}
# 8-20 s each for the run and its rerun (2 cores): still run, labelled
SLOW = {"demo", "bench lsm", "bench serial", "bench zeroshot"}
# Records whose config does not hold every option, so the rerun loses some (not fixed here:
# hardware.py stores {"baud", "probe", "ports"} for devices, dropping --only and storing
# --no-probe under a name that is no option). Remove an entry once its command is fixed.
KNOWN_LOSSY = {"devices": "config drops --only and --no-probe"}
_IGNORED = {"json_path", "out", "handler"}


def json_commands(parser=None, words=()):
    """Every leaf command (its words) whose parser has ``--json``."""
    parser = parser or build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        for name, child in subs[0].choices.items():
            yield from json_commands(child, (*words, name))
    elif any(a.dest == "json_path" for a in parser._actions):
        yield " ".join(words)


COMMANDS = sorted(json_commands())


def test_every_json_command_has_quick_options():
    missing = sorted(set(COMMANDS) - set(QUICK))
    assert not missing, (f"commands writing --json without quick options here: {missing}; "
                         "add them to QUICK so their reruns are tested")
    assert not set(QUICK) - set(COMMANDS), "QUICK names commands that no longer exist"


@pytest.mark.parametrize("command", [
    pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
    for c in COMMANDS if QUICK.get(c) is not None])
def test_command_reruns_from_its_json(command, tmp_path, capsys):
    spec = QUICK[command]
    setup, options = spec if isinstance(spec, tuple) else (None, spec)
    data = _tiny_data_dir(tmp_path / "data") if "{data}" in options else None

    def fill(words):
        return [w.format(tmp=tmp_path, data=data) for w in words]

    if setup:
        assert main(fill(setup)) == 0
    argv = command.split() + fill(options)
    first = tmp_path / "first.json"
    assert main(argv + ["--json", str(first)]) == 0
    record = read_record(first)
    again = tmp_path / "again.json"
    assert main(["rerun", str(first), "--json", str(again)]) == 0, \
        capsys.readouterr().err[-2000:]
    assert read_record(again)["command"] == record["command"]
    # the rebuilt command line means what the original one meant
    parser = build_parser()
    original = vars(parser.parse_args(argv))
    rebuilt = vars(parser.parse_args(argv_from_record(record)))
    differ = {k: (original[k], rebuilt.get(k)) for k in original
              if k not in _IGNORED and original[k] != rebuilt.get(k)}
    if command in KNOWN_LOSSY:
        if differ:
            pytest.xfail(f"{command}: {KNOWN_LOSSY[command]} ({differ})")
        pytest.fail(f"{command} reruns faithfully now: remove it from KNOWN_LOSSY")
    assert not differ, differ


def _tiny_data_dir(root):
    import wave

    import numpy as np

    from lsm.data.synthetic import synthetic_vision_sample
    from lsm.events import write_nmnist

    for split, k in (("Train", 0), ("Test", 1)):
        folder = root / "nmnist_small" / split / "3"
        folder.mkdir(parents=True)
        write_nmnist(folder / "00000.bin", synthetic_vision_sample(3, k))
    rec = root / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    t = np.arange(2400) / 8000
    for take in (0, 5):
        with wave.open(str(rec / f"3_ann_{take}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(np.round(12000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
                          .tobytes())
    return root


def test_chip_inspect_rerun_from_the_issue(tmp_path):
    """``chip inspect --seed 3 --json a.json && rerun a.json`` failed with "argument
    --region: ... got '0'": the saved region went back as four separate words."""
    a = tmp_path / "a.json"
    assert main(["chip", "inspect", "--seed", "3", "--region", "0,0,12,8", "--json",
                 str(a)]) == 0
    assert read_record(a)["config"]["region"] == [0, 0, 12, 8]
    assert "--region" in (argv := argv_from_record(read_record(a)))
    assert argv[argv.index("--region") + 1] == "0,0,12,8"
    assert main(["rerun", str(a), "--check"]) == 0


def test_rerun_keeps_an_output_file_a_file(tmp_path):
    """A command whose --out is a file (chip fit's profile) reruns into rerun/<name>; a
    record without --out (encode) reruns without one instead of writing to 'rerun'."""
    fit = tmp_path / "fit.json"
    assert main(["chip", "fit", "--region", "0,0,8,8", "--reads", "1", "--v-step", "0.8",
                 "--out", str(tmp_path / "p.json"), "--json", str(fit)]) == 0
    assert main(["rerun", str(fit)]) == 0
    assert (tmp_path / "rerun" / "p.json").is_file()
    rec = {"command": "encode", "config": {"dataset": "nmnist", "out": None}}
    assert "--out" not in argv_from_record(rec)
