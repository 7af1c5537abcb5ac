"""``rram-lsm chip inspect`` / ``chip fit`` and the plots."""
from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from rram_lsm.app.cli import main
from rram_lsm.records import get_path
from sim import DeviceProfile, macro40nm
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


@pytest.mark.parametrize("args, match", [
    (["--v-start", "5.5"], "at least one voltage"),
    (["--v-step", "0"], "--v-step"),
    (["--reads", "0"], "n_reads"),
    (["--v-stop", "5.2"], "exceeds the limit"),
])
def test_chip_fit_bad_sweeps_are_errors(tmp_path, capsys, args, match):
    argv = ["chip", "fit", "--region", "0,0,8,8", "--out", str(tmp_path / "p.json"), *args]
    assert main(argv) == 1
    assert match in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_histogram_leaves_out_stuck_high_and_draws_the_model_pdf():
    from sim.plots import formed_pdf

    g = np.concatenate([np.full(30, 0.1), np.linspace(9.0, 17.0, 60), np.full(10, 40.0)])
    fig = plot_conductance_histogram(g, max_us=29.4)
    ax = fig.axes[0]
    heights = [patch.get_height() * patch.get_width() for patch in ax.patches]
    assert sum(heights) == pytest.approx(1.0)  # density over the 60 formed cells only
    assert max(patch.get_x() + patch.get_width() for patch in ax.patches) == 17.0
    legend = ax.get_legend().get_texts()[0].get_text()
    assert "n=60" in legend and "unformed 30.0%" in legend and "10.00%" in legend
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, formed_pdf(x, macro40nm))


def test_map_caps_the_colour_scale_and_drift_plot_follows_the_law():
    g = np.full((4, 4), 13.0)
    g[0, 0] = 40.0
    image = plot_conductance_map(g, vmax_us=18.8).axes[0].images[0]
    assert image.get_clim() == (0.0, 18.8)
    ax = plot_drift(times_s=np.logspace(0, 8), quantiles=(0.5,)).axes[0]
    t, curve = ax.lines[0].get_data()
    d = macro40nm.drift
    expected = macro40nm.forming.formed_mean_us * np.where(t > d.t0_s, t ** -d.nu_mean, 1.0)
    np.testing.assert_allclose(curve, expected)
    assert isinstance(ax.figure, matplotlib.figure.Figure)


def test_bench_sim_reports_the_noise_ratio(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "sim", "--batch", "8", "--rows", "16", "--cols", "8", "--rounds",
                 "2", "--densities", "0.5", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert get_path(rec, "mvm.noise_on_over_off") > 0
    assert get_path(rec, "tile") == {"rows": 16, "cols": 8, "batch": 8,
                                     "forming_voltage_v": rec["tile"]["forming_voltage_v"]}
    assert 3.0 <= rec["tile"]["forming_voltage_v"] <= 4.0


def test_chip_inspect_shows_a_large_reservoirs_placement(tmp_path, capsys):
    out = tmp_path / "inspect.json"
    assert main(["chip", "inspect", "--region", "0,0,16,8", "--map", "nmnist-full",
                 "--neurons", "1000", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "28 tile(s)" in text and "nmnist-full-tuned[6,3]" in text
    parts = json.loads(out.read_text())["placement"]["parts"]
    assert len(parts) == 28
    # every tile inside its array, no two tiles of one macro overlapping
    seen = {}
    for p in parts:
        r0, c0, rows, cols = p["region"]
        assert r0 >= 0 and c0 >= 0 and r0 + rows <= 512 and c0 + cols <= 512
        seen.setdefault(p["macro"], []).append((r0, c0, rows, cols))
    for tiles in seen.values():
        for i, a in enumerate(tiles):
            for b in tiles[i + 1:]:
                assert not (a[0] < b[0] + b[2] and b[0] < a[0] + a[2]
                            and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])
