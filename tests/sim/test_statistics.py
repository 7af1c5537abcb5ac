"""Statistics of the device model on >= 100,000 cells against the configured laws."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim import SimMacro, form_to_sparsity, macro40nm

from .conftest import with_changes

FULL = (0, 0, 512, 512)  # 262,144 cells


def _truncnorm_moments(f):
    a = (f.formed_min_us - f.formed_mean_us) / f.formed_std_us
    b = (f.formed_max_us - f.formed_mean_us) / f.formed_std_us
    m, v = stats.truncnorm.stats(a, b, loc=f.formed_mean_us, scale=f.formed_std_us, moments="mv")
    return float(m), float(np.sqrt(v))


def test_forming_fraction_follows_breakdown_law():
    prof = with_changes(stuck={"open_fraction": 0.0, "high_fraction": 0.0})
    chip = SimMacro(seed=1, profile=prof)
    f = prof.forming
    for v in (3.3, 3.6, 3.9):
        formed = chip.form(FULL, v, 1e-6, 100.0).formed
        expected = stats.norm.cdf((v - f.breakdown_mean_v) / f.breakdown_std_v)
        # binomial std on 262k cells is < 0.001
        assert formed.mean() == pytest.approx(expected, abs=0.004)


def test_formed_conductance_moments_and_range():
    prof = with_changes(stuck={"open_fraction": 0.0, "high_fraction": 0.0}).noise_free()
    chip = SimMacro(seed=2, profile=prof)
    res = chip.form(FULL, 4.9, 1e-6, 100.0)
    g = res.conductance_us[res.formed]
    assert g.size > 200_000
    mean, std = _truncnorm_moments(prof.forming)
    assert g.mean() == pytest.approx(mean, abs=0.02)
    assert g.std() == pytest.approx(std, rel=0.01)
    half = SimMacro.conductance_step_us / 2  # reads are rounded to the conductance grid
    assert g.min() >= prof.forming.formed_min_us - half
    assert g.max() <= prof.forming.formed_max_us + half
    pristine = res.conductance_us[~res.formed]
    assert np.all(pristine < 1.0)


def test_lognormal_formed_law():
    prof = with_changes(forming={"formed_distribution": "lognormal", "formed_min_us": 1.0,
                                 "formed_max_us": 100.0},
                        stuck={"open_fraction": 0.0, "high_fraction": 0.0}).noise_free()
    res = SimMacro(seed=3, profile=prof).form(FULL, 4.9, 1e-6, 100.0)
    g = res.conductance_us[res.formed]
    assert g.mean() == pytest.approx(13.0, rel=0.01)
    assert g.std() == pytest.approx(2.0, rel=0.02)
    assert stats.skew(g) > 0.3  # lognormal, not symmetric


def test_pristine_law():
    chip = SimMacro(seed=4, profile=macro40nm.noise_free())
    g = chip.effective_conductance_us(FULL)[chip.stuck_map(FULL) != 2]
    f = macro40nm.forming
    assert np.median(g) == pytest.approx(f.pristine_us, rel=0.01)
    assert np.log(g).std() == pytest.approx(f.pristine_spread_rel, rel=0.01)


def test_sweep_result_is_independent_of_step_pattern():
    a = SimMacro(seed=5, profile=macro40nm.noise_free())
    b = SimMacro(seed=5, profile=macro40nm.noise_free())
    for v in np.arange(3.0, 3.651, 0.05):
        a.form(FULL, float(v), 1e-6, 100.0)
    b.form(FULL, 3.65, 1e-6, 100.0)
    np.testing.assert_array_equal(a.effective_conductance_us(FULL), b.effective_conductance_us(FULL))
    # cells formed once are unaffected by later pulses
    before = a.effective_conductance_us(FULL)
    a.form(FULL, 3.2, 1e-6, 100.0)
    np.testing.assert_array_equal(before, a.effective_conductance_us(FULL))


def test_region_order_does_not_change_cells():
    a = SimMacro(seed=6, profile=macro40nm.noise_free())
    b = SimMacro(seed=6, profile=macro40nm.noise_free())
    a.form((0, 0, 100, 100), 3.7, 1e-6, 100.0)
    a.form((200, 300, 50, 50), 3.7, 1e-6, 100.0)
    b.form((200, 300, 50, 50), 3.7, 1e-6, 100.0)
    b.form((0, 0, 100, 100), 3.7, 1e-6, 100.0)
    np.testing.assert_array_equal(a.effective_conductance_us(FULL), b.effective_conductance_us(FULL))


def test_low_compliance_forms_nothing():
    chip = SimMacro(seed=7)
    low = macro40nm.forming.min_compliance_ua / 2
    res = chip.form(FULL, 4.5, 1e-6, low)
    assert np.mean(res.formed) == pytest.approx(macro40nm.stuck.high_fraction, abs=3e-4)


def test_stuck_fractions_and_values():
    prof = with_changes(stuck={"open_fraction": 0.02, "high_fraction": 0.01})
    chip = SimMacro(seed=8, profile=prof.noise_free())
    codes = chip.stuck_map(FULL)
    assert np.mean(codes == 1) == pytest.approx(0.02, abs=0.0015)
    assert np.mean(codes == 2) == pytest.approx(0.01, abs=0.001)
    res = chip.form(FULL, 4.9, 1e-6, 100.0)
    g = res.conductance_us
    assert np.all(g[codes == 2] == prof.program.g_max_us)
    assert np.all(g[codes == 1] < 1.0) and not res.formed[codes == 1].any()
    assert res.formed[codes == 2].all()


def test_given_stuck_maps_override():
    rng = np.random.default_rng(0)
    open_map = rng.random((512, 512)) < 0.05
    high_map = np.zeros((512, 512), bool)
    high_map[0, :] = True
    high_map &= ~open_map
    chip = SimMacro(seed=9, profile=macro40nm.noise_free(), stuck_open=open_map,
                    stuck_high=high_map)
    codes = chip.stuck_map(FULL)
    np.testing.assert_array_equal(codes == 1, open_map)
    np.testing.assert_array_equal(codes == 2, high_map)
    g = chip.effective_conductance_us(FULL)
    assert np.all(g[0][~open_map[0]] == macro40nm.program.g_max_us)


def test_drift_follows_power_law():
    chip = SimMacro(seed=10, profile=macro40nm.noise_free())
    chip.form(FULL, 3.6, 1e-6, 100.0)
    formed = chip.form(FULL, 3.6, 1e-6, 100.0).formed & (chip.stuck_map(FULL) == 0)
    g0 = chip.effective_conductance_us(FULL)
    assert chip.advance_time(0.5) == 0.5  # before t0 nothing drifts
    np.testing.assert_array_equal(chip.effective_conductance_us(FULL), g0)
    year = 365.25 * 86400
    chip.advance_time(year - 0.5)
    g = chip.effective_conductance_us(FULL)
    nu = chip._cells.nu
    # both reads are rounded to the conductance grid: at most one step apart in all
    step = SimMacro.conductance_step_us
    np.testing.assert_allclose(g[formed], g0[formed] * year ** -nu[formed], rtol=0, atol=step)
    np.testing.assert_array_equal(g[~formed], g0[~formed])  # pristine and stuck do not drift
    d = macro40nm.drift
    ratio = np.log(g[formed] / g0[formed]) / -np.log(year)
    assert ratio.mean() == pytest.approx(d.nu_mean, rel=0.02)
    assert ratio.std() == pytest.approx(d.nu_std, rel=0.03)


def test_read_noise_is_relative_and_fresh():
    chip = SimMacro(seed=11)
    form_to_sparsity(chip, FULL, 0.5)
    g = chip.effective_conductance_us(FULL)
    r1, r2 = chip.read_conductance(FULL), chip.read_conductance(FULL)
    rel = (r1 - g) / g
    assert rel.mean() == pytest.approx(0.0, abs=3e-4)
    assert rel.std() == pytest.approx(macro40nm.read.noise_rel, rel=0.01)
    assert abs(np.corrcoef(((r2 - g) / g).ravel(), rel.ravel())[0, 1]) < 0.01
