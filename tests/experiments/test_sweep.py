"""Sweep engine: Dask on a 2-worker LocalCluster gives exactly the serial results."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rram_lsm.app.cli import main
from rram_lsm.errors import ConfigError
from rram_lsm.app.experiments.sweep import SweepSpec, _profile_for, run_sweep

SMALL = SweepSpec(grid=(("read_noise_rel", (0.0, 0.2)), ("chip_age_s", (1.0, 3.15e8))),
                  chip_seeds=(0, 1), train_per_class=4, test_per_class=3, metric="prototype")


@pytest.fixture(scope="module")
def serial_result():
    return run_sweep(SMALL, scheduler="serial", progress=False)


def test_dask_local_cluster_equals_serial(serial_result):
    import logging

    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        dask_result = run_sweep(SMALL, scheduler=cluster.scheduler_address, progress=False)
    assert [r["accuracy"] for r in dask_result.rows] == [r["accuracy"] for r in serial_result.rows]
    assert dask_result.rows == serial_result.rows
    assert len(serial_result.rows) == 2 * 2 * 2


def test_summary_is_mean_and_spread_over_chips(serial_result):
    s = serial_result.summary()
    got = [r["accuracy"] for r in serial_result.rows
           if r["axis"] == "chip_age_s" and r["value"] == 1.0]
    assert s["chip_age_s"]["mean"][0] == pytest.approx(np.mean(got))
    assert s["chip_age_s"]["std"][0] == pytest.approx(np.std(got, ddof=1))
    assert s["chip_age_s"]["n"] == [2, 2]
    for row in serial_result.rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["n_test"] == 3 * row["n_classes"]
    fig = serial_result.plot()
    assert len(fig.axes) == 2
    assert "read_noise_rel" in serial_result._repr_html_()


def test_axes_change_only_their_own_knob():
    from sim import load_profile

    base = load_profile(None)
    tasks = {t.axis: t for t in SweepSpec(
        grid=(("read_noise_rel", (0.3,)), ("adc_bits", (0,)), ("stuck_fraction", (0.09,)),
              ("forming.formed_std_us", (3.0,))), chip_seeds=(0,)).tasks()}
    assert _profile_for(tasks["read_noise_rel"]).read.noise_rel == 0.3
    assert _profile_for(tasks["adc_bits"]).adc.bits is None
    stuck = _profile_for(tasks["stuck_fraction"]).stuck
    assert stuck.open_fraction + stuck.high_fraction == pytest.approx(0.09)
    ratio = base.stuck.open_fraction / (base.stuck.open_fraction + base.stuck.high_fraction)
    assert stuck.open_fraction == pytest.approx(0.09 * ratio)
    prof = _profile_for(tasks["forming.formed_std_us"])
    assert prof.forming.formed_std_us == 3.0 and prof.read == base.read


def test_unknown_axis_and_bad_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown sweep axis"):
        SweepSpec(grid=(("read_nosie", (0.1,)),))
    with pytest.raises(ConfigError, match="no field"):
        SweepSpec(grid=(("read.noise", (0.1,)),))
    assert main(["sweep", "--serial", "--values", "read_noise_rel=a,b"]) == 1


def test_sweep_cli_writes_json_and_plot(tmp_path):
    out = tmp_path / "sweep.json"
    png = tmp_path / "sweep.png"
    code = main(["sweep", "--serial", "--axes", "adc_bits", "--values", "adc_bits=0,3",
                 "--chip-seeds", "1", "--train-per-class", "3", "--test-per-class", "2",
                 "--metric", "prototype", "--no-progress", "--json", str(out),
                 "--plot", str(png)])
    assert code == 0
    rec = json.loads(out.read_text())
    assert rec["command"] == "sweep"
    assert rec["summary"]["adc_bits"]["values"] == [0.0, 3.0]
    assert rec["synthetic"] is True and rec["n_tasks"] == 2
    assert png.stat().st_size > 10_000


def test_setting_labels_are_human_readable():
    from rram_lsm.app.experiments.sweep import nice_value

    assert [nice_value("chip_age_s", v) for v in (1.0, 3600.0, 86400.0, 31557600.0,
                                                  315576000.0)] == ["1 s", "1 h", "1 d", "1 y",
                                                                    "10 y"]
    assert nice_value("adc_bits", 0.0) == "ideal" and nice_value("adc_bits", 6.0) == "6"
    assert nice_value("read_noise_rel", 0.05) == "0.05"


def test_head_age_axis_reads_the_readout_from_the_chip_as_it_ages():
    spec = SweepSpec(grid=(("head_age_s", (1.0, 3.15e8)),), chip_seeds=(0,),
                     train_per_class=6, test_per_class=4)
    rows = run_sweep(spec, scheduler="serial", progress=False).rows
    fresh, old = rows
    assert fresh["axis"] == "head_age_s" and old["value"] == 3.15e8
    # the same chip, readout and features: only the readout's age differs
    assert fresh["digital_accuracy"] == old["digital_accuracy"]
    assert fresh["readout"]["tiles"] >= 1 and fresh["readout"]["weight_rms_error"] > 0
    assert abs(fresh["accuracy"] - fresh["digital_accuracy"]) <= 0.15
    assert 0.0 <= old["accuracy"] <= 1.0
