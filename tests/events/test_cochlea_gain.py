"""The cochlea's drive as a sensor knob: its calibrations, the speech event rate, and
``--cochlea-gain`` from the CLI to the features' provenance."""
from __future__ import annotations

import argparse
import dataclasses
import pathlib

import numpy as np
import pytest

from lsm.events import CALIBRATED_GAINS, CochleaConfig, speech_event_rate
from rram_lsm.app.cli import main
from rram_lsm.app.commands.common import _cochlea_gain
from rram_lsm.errors import ConfigError
from rram_lsm.records import read_record

from .test_datasets import make_fsdd, make_nmnist


def test_default_drive_is_the_per_utterance_calibration():
    assert CochleaConfig().gain_per_s == CALIBRATED_GAINS["utterance"] == 875.0
    assert CALIBRATED_GAINS["speech"] == 1750.0


def test_default_drive_is_the_one_seen_class_validation_kept():
    """Round 16 let validation choose the drive within the two calibrations; the
    default must be what its record adopted, with the default recipe it scored."""
    from projections import METHODS

    here = pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "zeroshot"
    rec = read_record(here / "selection_round16.json")
    assert rec["config"]["adopted_gain_per_s"] == CochleaConfig().gain_per_s
    assert rec["config"]["gains_per_s"] == [CALIBRATED_GAINS["utterance"], 1237.0,
                                           CALIBRATED_GAINS["speech"]]
    assert rec["config"]["method"] == dataclasses.asdict(METHODS["default"])


def test_speech_event_rate_counts_only_the_loud_bins():
    # 100 events in the first 20 ms, 1 stray event 0.5 s later (below 10 % of the peak)
    t_us = np.concatenate([np.linspace(0, 19_000, 100), [500_000]]).astype(np.int64)
    assert speech_event_rate(t_us) == pytest.approx(100 / 0.02)
    # with every bin counted the stray event's bin joins: 101 events over two bins
    assert speech_event_rate(t_us, rel=1e-9) == pytest.approx(101 / 0.04)
    assert speech_event_rate(np.zeros(0, np.int64)) == 0.0
    with pytest.raises(ConfigError):
        speech_event_rate(t_us, bin_s=0)


def test_gain_option_takes_numbers_and_calibration_names():
    assert _cochlea_gain("speech") == 1750.0 and _cochlea_gain("utterance") == 875.0
    assert _cochlea_gain("3500") == 3500.0
    for bad in ("0", "-1", "inf", "loud"):
        with pytest.raises(argparse.ArgumentTypeError):
            _cochlea_gain(bad)


def test_encode_with_another_gain_records_it_and_changes_the_events(tmp_path, monkeypatch):
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "cache"))
    data = make_fsdd(tmp_path / "data")
    records = {}
    for gain in (None, "speech"):
        out = tmp_path / f"enc_{gain}.json"
        argv = ["encode", "--dataset", "fsdd", "--data-dir", str(data), "--kind", "counts",
                "--no-progress", "--json", str(out), "--out", str(tmp_path / f"{gain}.npz")]
        assert main(argv + ([] if gain is None else ["--cochlea-gain", gain])) == 0
        records[gain] = read_record(out)
    assert records["speech"]["cochlea"]["gain_per_s"] == 1750.0
    assert records[None]["cochlea"]["gain_per_s"] == 875.0
    # twice the drive: more input events, so a busier reservoir
    assert records["speech"]["firing_rate_per_step"] > records[None]["firing_rate_per_step"]
    assert records["speech"]["cache_key"] != records[None]["cache_key"]


def test_gain_without_a_cochlea_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    make_nmnist(tmp_path / "data", n_train=1, n_test=1)
    for argv in (["encode", "--dataset", "nmnist", "--data-dir", str(tmp_path / "data")],
                 ["encode", "--dataset", "fsdd"],   # synthetic events
                 ["zeroshot", "--splits", "1", "--shots", "1"]):
        assert main(argv + ["--cochlea-gain", "speech", "--no-progress"]) == 1  # ConfigError
        assert "--cochlea-gain sets the cochlea" in capsys.readouterr().err
