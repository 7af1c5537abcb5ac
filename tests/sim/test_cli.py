"""``rram-lsm chip inspect`` / ``chip fit`` and the plots."""
from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from rram_lsm.cli import main
from rram_lsm.records import get_path
from sim import DeviceProfile, SimMacro, macro40nm
from sim.plots import plot_conductance_histogram, plot_conductance_map, plot_drift


def test_chip_inspect_json_keys(tmp_path, capsys):
    out = tmp_path / "inspect.json"
    png = tmp_path / "inspect.png"
    assert main(["chip", "inspect", "--seed", "3", "--json", str(out), "--plot", str(png)]) == 0
    rec = json.loads(out.read_text())
    assert 0.45 <= get_path(rec, "sparsity") <= 0.5
    assert get_path(rec, "conductance_us.mean") == pytest.approx(13.0, abs=0.1)
    assert get_path(rec, "conductance_us.std") == pytest.approx(2.0, abs=0.1)
    assert get_path(rec, "stuck_fraction") == pytest.approx(
        macro40nm.stuck.open_fraction + macro40nm.stuck.high_fraction, abs=5e-4)
    assert get_path(rec, "forming_voltage_v") == 3.6
    assert rec["command"] == "chip inspect" and rec["config"]["seed"] == 3
    assert png.stat().st_size > 10_000
    assert "sparsity" in capsys.readouterr().out


def test_chip_fit_writes_profile(tmp_path):
    out, prof = tmp_path / "fit.json", tmp_path / "profile.json"
    assert main(["chip", "fit", "--backend", "sim", "--chip-seed", "1", "--region",
                 "0,0,200,200", "--reads", "2", "--json", str(out), "--out", str(prof)]) == 0
    fitted = DeviceProfile.from_json(prof)
    assert fitted.forming.formed_mean_us == pytest.approx(13.0, rel=0.05)
    assert json.loads(out.read_text())["profile"]["forming"] == json.loads(prof.read_text())["forming"]


def test_chip_inspect_bad_profile_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"nope": 1}')
    assert main(["chip", "inspect", "--profile", str(bad)]) == 1
    assert "unknown profile keys" in capsys.readouterr().err


def test_plots_return_figures():
    chip = SimMacro(seed=0)
    res = chip.form((0, 0, 64, 64), 3.6, 1e-6, 100.0)
    for fig in (plot_conductance_histogram(res.conductance_us),
                plot_conductance_map(res.conductance_us), plot_drift(times_s=np.logspace(0, 8))):
        assert isinstance(fig, matplotlib.figure.Figure)
        assert fig.axes
