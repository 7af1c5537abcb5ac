"""Calibration round trip: fitting a simulated chip recovers its parameters within 5 %."""
from __future__ import annotations

import numpy as np
import pytest

from rram_lsm.errors import ConfigError, ShapeError
from sim import DeviceProfile, SimMacro, fit_device_profile, load_profile
from sim.fit import measure_forming_sweep

from .conftest import with_changes

TRUE = with_changes(name="truth",
                    forming={"breakdown_mean_v": 3.7, "breakdown_std_v": 0.3,
                             "formed_mean_us": 12.5, "formed_std_us": 2.2},
                    read={"noise_rel": 0.03},
                    stuck={"open_fraction": 0.02, "high_fraction": 0.015})
VOLTAGES = [round(3.0 + 0.1 * k, 2) for k in range(19)]


@pytest.fixture(scope="module")
def sweep_maps():
    return measure_forming_sweep(SimMacro(seed=40, profile=TRUE), VOLTAGES, n_reads=4)


def test_round_trip_within_5_percent(sweep_maps, tmp_path):
    fitted = fit_device_profile(sweep_maps, forming_voltage_v=VOLTAGES)  # base: macro40nm
    pairs = {
        "breakdown_mean_v": (fitted.forming.breakdown_mean_v, TRUE.forming.breakdown_mean_v),
        "breakdown_std_v": (fitted.forming.breakdown_std_v, TRUE.forming.breakdown_std_v),
        "formed_mean_us": (fitted.forming.formed_mean_us, TRUE.forming.formed_mean_us),
        "formed_std_us": (fitted.forming.formed_std_us, TRUE.forming.formed_std_us),
        "formed_min_us": (fitted.forming.formed_min_us, TRUE.forming.formed_min_us),
        "formed_max_us": (fitted.forming.formed_max_us, TRUE.forming.formed_max_us),
        "pristine_us": (fitted.forming.pristine_us, TRUE.forming.pristine_us),
        "read_noise_rel": (fitted.read.noise_rel, TRUE.read.noise_rel),
        "stuck_open": (fitted.stuck.open_fraction, TRUE.stuck.open_fraction),
        "stuck_high": (fitted.stuck.high_fraction, TRUE.stuck.high_fraction),
    }
    off = {k: f"{got:.4g} vs {want:.4g}" for k, (got, want) in pairs.items()
           if abs(got - want) > 0.05 * abs(want)}
    assert not off, off
    # sparsity the fitted model predicts at 3.6 V vs the true model
    from scipy import stats

    def formed_at(p, v):
        return (1 - p.stuck.open_fraction - p.stuck.high_fraction) * stats.norm.cdf(
            (v - p.forming.breakdown_mean_v) / p.forming.breakdown_std_v)
    assert formed_at(fitted, 3.6) == pytest.approx(formed_at(TRUE, 3.6), rel=0.05)
    path = fitted.to_json(tmp_path / "fitted.json")
    assert DeviceProfile.from_json(path) == fitted


def test_fit_from_a_macro_directly():
    chip = SimMacro(seed=41, profile=TRUE)
    fitted = fit_device_profile(chip, forming_voltage_v=VOLTAGES, region=(0, 0, 300, 300),
                                n_reads=3)
    assert fitted.forming.breakdown_mean_v == pytest.approx(3.7, rel=0.05)
    assert fitted.read.noise_rel == pytest.approx(0.03, rel=0.05)
    # current state only (one voltage): breakdown std from base, mean from the quantile
    again = fit_device_profile(chip, forming_voltage_v=4.8, region=(0, 0, 300, 300), n_reads=2,
                               base=with_changes(forming={"breakdown_std_v": 0.3},
                                                 stuck={"open_fraction": 0.02}))
    assert again.forming.formed_mean_us == pytest.approx(12.5, rel=0.05)


def test_single_voltage_uses_base_spread():
    chip = SimMacro(seed=42, profile=TRUE)
    res = chip.form((0, 0, 512, 512), 3.7, 1e-6, 100.0)
    reads = np.stack([res.conductance_us, chip.read_conductance((0, 0, 512, 512))])
    base = with_changes(forming={"breakdown_std_v": 0.3}, stuck={"open_fraction": 0.02})
    fitted = fit_device_profile(reads, forming_voltage_v=3.7, base=base)
    assert fitted.forming.breakdown_std_v == 0.3
    assert fitted.forming.breakdown_mean_v == pytest.approx(3.7, abs=0.02)


def test_lognormal_base_fits_lognormal():
    truth = with_changes(TRUE, forming={"formed_distribution": "lognormal",
                                        "formed_min_us": 5.0, "formed_max_us": 40.0})
    chip = SimMacro(seed=43, profile=truth)
    reads = measure_forming_sweep(chip, [4.9], n_reads=3)
    base = with_changes(forming={"formed_distribution": "lognormal"})
    fitted = fit_device_profile(reads, base=base)
    assert fitted.forming.formed_mean_us == pytest.approx(12.5, rel=0.05)
    assert fitted.forming.formed_std_us == pytest.approx(2.2, rel=0.05)


def test_fit_errors():
    with pytest.raises(ShapeError):
        fit_device_profile("not maps")
    with pytest.raises(ShapeError, match="one voltage per map"):
        fit_device_profile([np.ones((4, 4))] * 2, forming_voltage_v=[3.0])
    with pytest.raises(ConfigError, match="formed cells"):
        fit_device_profile(np.full((10, 10), 0.1))
    assert load_profile(None).name == "macro40nm"


def test_default_chip_stuck_open_fraction_is_recovered():
    # macro40nm's 0.1 % stuck-open cells are as rare as the sampling scatter of the forming
    # curve, so they must come from the cells still unformed at the top of the sweep
    chip = SimMacro(seed=0)
    voltages = [round(3.0 + 0.1 * k, 2) for k in range(17)]
    fitted = fit_device_profile(chip, forming_voltage_v=voltages, n_reads=2)
    codes = chip.stuck_map((0, 0, 512, 512))
    assert fitted.stuck.open_fraction == pytest.approx(np.mean(codes == 1), rel=0.05)
    assert fitted.stuck.high_fraction == pytest.approx(np.mean(codes == 2), rel=0.05)
    assert fitted.forming.breakdown_mean_v == pytest.approx(3.59, rel=0.01)


def test_empty_sweeps_and_no_reads_are_typed_errors():
    chip = SimMacro(seed=44)
    with pytest.raises(ConfigError, match="at least one voltage"):
        fit_device_profile(chip, forming_voltage_v=[])
    with pytest.raises(ConfigError, match="n_reads"):
        measure_forming_sweep(chip, [3.5], n_reads=0)
    with pytest.raises(ConfigError, match="n_reads"):
        fit_device_profile(chip, n_reads=0)
    with pytest.raises(ShapeError, match="n_reads >= 1"):
        fit_device_profile(np.ones((0, 4, 4)))
