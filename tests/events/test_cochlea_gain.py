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


def _the_default_then(recorded: dict) -> bool:
    """Whether a record's recipe is round 14's default, the default of rounds 14-18
    (fields added since take their defaults; round 19 moved the default on)."""
    from projections import get_method
    from projections.train import MethodConfig

    then = get_method("default_round14").replace(name="default")
    return dataclasses.asdict(MethodConfig(**recorded)) == dataclasses.asdict(then)


def test_default_drive_is_the_one_seen_class_validation_kept():
    """Round 16 let validation choose the drive within the two calibrations; the
    default must be what its record adopted, with the default recipe it scored."""
    here = pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "zeroshot"
    rec = read_record(here / "selection_round16.json")
    assert rec["config"]["adopted_gain_per_s"] == CochleaConfig().gain_per_s
    assert rec["config"]["gains_per_s"] == [CALIBRATED_GAINS["utterance"], 1237.0,
                                           CALIBRATED_GAINS["speech"]]
    assert _the_default_then(rec["config"]["method"])


def test_pair_drives_are_the_ones_round_17_adopted():
    """Round 17 adopted the two calibrations side by side; the pairs' default must be
    what its record adopted, with the default recipe it scored."""
    from rram_lsm.app.features import PAIR_DRIVES

    here = pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "zeroshot"
    rec = read_record(here / "selection_round17.json")
    assert rec["adopted"] == "875+1750"
    assert rec["config"]["adopted_drives_per_s"] == [CALIBRATED_GAINS[d] for d in PAIR_DRIVES]
    assert _the_default_then(rec["config"]["method"])


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


def test_pairs_read_fsdd_at_both_drives_side_by_side(tmp_path, monkeypatch, capsys):
    """encode_pair's default front end on real FSDD (round 17): every kind's audio
    columns hold the one-drive encodings at 875 and at 1,750, in that order; the image
    side is the one-drive pair's; --cochlea-gain picks one drive or several."""
    from rram_lsm.app.features import SINGLE_DRIVE, cochlea_for, encode_pair

    from rram_lsm.app.session import ChipSession

    root = make_fsdd(make_nmnist(tmp_path / "data", n_train=3, n_test=1))
    kind = "counts+input"
    # the one-drive pairs in a cache of their own, so that nothing below is a hit of them
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "cache_one"))
    one = encode_pair(root, kind=kind, progress=False, audio="fsdd", cochlea=SINGLE_DRIVE)
    two = encode_pair(root, kind=kind, progress=False, audio="fsdd",
                      cochlea=cochlea_for(1750.0))
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "cache"))
    both = encode_pair(root, kind=kind, progress=False, audio="fsdd")
    assert [d["cache"] for d in both.meta["audio_drives"]] == ["miss", "miss"]
    # on a given session (the demo's), cold or warm: the same features
    for cache in ("cache_session", "cache_session"):   # a miss, then a hit
        monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / cache))
        with ChipSession("sim", chip_seed=0) as session:
            on_session = encode_pair(root, kind=kind, progress=False, audio="fsdd",
                                     session=session)
        np.testing.assert_array_equal(on_session.audio_values, both.audio_values)
        np.testing.assert_array_equal(on_session.image_values, both.image_values)
    assert [c["gain_per_s"] for c in both.meta["cochlea"]] == [875.0, 1750.0]
    assert one.meta["cochlea"]["gain_per_s"] == 875.0
    np.testing.assert_array_equal(both.image_values, one.image_values)
    for k in ("counts", "input"):
        np.testing.assert_array_equal(both.select_kind(k).audio_values, np.concatenate(
            [one.select_kind(k).audio_values, two.select_kind(k).audio_values], axis=1))
    assert both.meta["feature_blocks"]["audio"] == {"counts": [0, 400], "input": [400, 528]}
    assert [d["cache_key"] for d in both.meta["audio_drives"]] == \
        [one.meta["audio"]["cache_key"], two.meta["audio"]["cache_key"]]

    out = tmp_path / "z.json"
    base = ["zeroshot", "--data-dir", str(root), "--audio", "fsdd", "--splits", "1",
            "--seeds", "1", "--no-progress", "--epochs", "2", "--json", str(out)]
    assert main(base + ["--cochlea-gain", "utterance"]) == 0
    assert read_record(out)["data"]["cochlea"]["gain_per_s"] == 875.0
    assert main(base + ["--cochlea-gain", "utterance", "3500"]) == 0
    assert [c["gain_per_s"] for c in read_record(out)["data"]["cochlea"]] == [875.0, 3500.0]
