"""One conformance suite for every macro backend: the simulator, and the serial driver talking
to the emulator over a real pseudo-terminal (or a real chip with --device-port).

Each test uses its own region so the module-scoped backends can be shared.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rram_lsm.errors import ConfigError, MacroError, RegionError, SafetyLimitError, ShapeError
from rram_lsm.macro import RUN_RESERVOIR, FormResult, Macro, MacroInfo, ProgramResult
from rram_lsm.reservoir import ReservoirSpec, run_reference

SEED = 5


@pytest.fixture(scope="module", params=["sim", "serial-emulator"])
def macro(request, noise_free_profile):
    if request.param == "sim":
        from sim import SimMacro

        m = SimMacro(seed=SEED, profile=noise_free_profile)
    else:
        from hardware import open_emulated

        m = open_emulated(seed=SEED, profile=noise_free_profile)
    yield m
    m.close()


def _adc(info: MacroInfo, current_ua: np.ndarray) -> np.ndarray:
    if info.adc_bits is None:
        return current_ua
    code = np.minimum(np.floor(current_ua / info.adc_lsb_ua + 0.5), 2 ** info.adc_bits - 1)
    return code * info.adc_lsb_ua


def _formed(macro, region, voltage=3.8):
    return macro.form(region, voltage, 1e-6, 100.0)


def test_is_a_macro_with_sane_info(macro):
    assert isinstance(macro, Macro)
    info = macro.info()
    assert info.rows > 0 and info.cols > 0 and info.protocol_version == 1
    assert (info.adc_bits is None) == (info.adc_lsb_ua == 0.0)
    assert info.limits.max_form_voltage_v > 3.0


def test_form_is_monotone_and_typed(macro):
    region = (0, 0, 16, 16)
    low = macro.form(region, 3.3, 1e-6, 100.0)
    high = macro.form(region, 3.9, 1e-6, 100.0)
    for res in (low, high):
        assert isinstance(res, FormResult) and res.formed.shape == (16, 16)
        assert res.formed.dtype == bool and res.conductance_us.dtype == np.float64
    assert np.all(high.formed >= low.formed) and high.formed.sum() > low.formed.sum()
    g = high.conductance_us
    assert np.all(g[high.formed & (g < 30)] > 5.0) and np.all(g[~high.formed] < 1.0)


@pytest.mark.parametrize("kwargs", [
    dict(voltage_v=99.0), dict(compliance_ua=1e6), dict(compliance_ua=0.0),
    dict(pulse_width_s=10.0), dict(voltage_v=math.nan),
])
def test_form_refuses_beyond_safety_limits(macro, kwargs):
    args = dict(voltage_v=3.5, pulse_width_s=1e-6, compliance_ua=100.0) | kwargs
    with pytest.raises(SafetyLimitError):
        macro.form((16, 0, 4, 4), **args)


@pytest.mark.parametrize("region", [(-1, 0, 2, 2), (0, 0, 0, 3), (510, 0, 4, 4),
                                    (0, 510, 2, 4), "nonsense"])
def test_every_operation_refuses_bad_regions(macro, region):
    for call in (lambda: macro.read_conductance(region),
                 lambda: macro.mvm(region, np.zeros((1, 2))),
                 lambda: macro.form(region, 3.5, 1e-6, 100.0),
                 lambda: macro.program(region, np.zeros((2, 2)), 0.5, 3)):
        with pytest.raises(RegionError):
            call()


def test_read_and_mvm_follow_the_interface_formulas(macro):
    info = macro.info()
    region = (20, 0, 12, 10)
    _formed(macro, region)
    g = macro.read_conductance(region)
    assert g.shape == (12, 10) and g.dtype == np.float64
    np.testing.assert_array_equal(g, macro.read_conductance(region))  # noise off
    x = np.random.default_rng(0).integers(0, 2, (9, 12)).astype(np.uint8)
    expected = np.zeros((9, 10))
    for b in range(9):  # float64, active rows ascending, from 0.0, then x V_read
        acc = np.zeros(10)
        for i in np.flatnonzero(x[b]):
            acc = acc + g[i]
        expected[b] = _adc(info, acc * info.read_voltage_v)
    out = macro.mvm(region, x)
    assert out.shape == (9, 10) and out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)
    diff = macro.mvm(region, x, differential=True)
    np.testing.assert_array_equal(diff, out[:, 0::2] - out[:, 1::2])
    np.testing.assert_array_equal(macro.mvm(region, x.astype(bool)), out)


@pytest.mark.parametrize("inputs", [np.zeros((3, 5)), np.zeros(12), np.full((2, 12), 2),
                                    np.full((1, 12), 0.5), np.array([["a"] * 12])])
def test_mvm_refuses_bad_inputs(macro, inputs):
    with pytest.raises(ShapeError):
        macro.mvm((20, 0, 12, 10), inputs)


def test_differential_mvm_needs_even_columns(macro):
    with pytest.raises(RegionError):
        macro.mvm((20, 0, 12, 9), np.zeros((1, 12)), differential=True)


def test_program_converges_and_refuses_bad_arguments(macro):
    region = (40, 0, 8, 8)
    res = _formed(macro, region, 4.2)
    target = np.where(res.formed, 9.0, res.conductance_us)
    out = macro.program(region, target, 0.3, 60)
    assert isinstance(out, ProgramResult) and out.pulses.dtype == np.int32
    ok = res.formed & out.converged
    assert ok.mean() > 0.8 * res.formed.mean()
    assert np.all(np.abs(out.conductance_us[ok] - 9.0) <= 0.3)
    with pytest.raises(ShapeError):
        macro.program(region, np.zeros((3, 3)), 0.3, 5)
    with pytest.raises(ConfigError):
        macro.program(region, target, -1.0, 5)
    with pytest.raises(ConfigError):
        macro.program(region, target, 0.3, -2)
    with pytest.raises(ValueError):
        macro.program(region, np.full((8, 8), 1e6), 0.3, 5)  # beyond the device's window


def test_clock_drift_and_reset(macro):
    region = (60, 0, 8, 8)
    res = _formed(macro, region, 4.2)
    before = macro.read_conductance(region)
    t0 = macro.clock_s()
    assert macro.advance_time(0.0) == t0
    assert macro.advance_time(1e4) == pytest.approx(t0 + 1e4)
    assert macro.clock_s() == pytest.approx(t0 + 1e4)
    after = macro.read_conductance(region)
    assert np.all(after[res.formed] <= before[res.formed]) and np.any(after < before)
    with pytest.raises(ConfigError):
        macro.advance_time(-1.0)
    macro.reset()
    np.testing.assert_array_equal(macro.read_conductance(region), after)


def test_run_reservoir_equals_the_reference_loop(macro):
    """The backend's own loop (the simulator's fused kernel, the emulator's firmware) gives
    the spikes of ``rram_lsm.reservoir.run_reference`` through the same backend's mvm."""
    if RUN_RESERVOIR not in macro.info().capabilities:
        pytest.skip(f"{type(macro).__name__} does not advertise run_reservoir")
    spec = ReservoirSpec(n_inputs=24, n_neurons=12, decay=0.9, threshold=0.5,
                         weight_scale=0.3, g_ref_us=2.0)
    region = (100, 0, 36, 24)
    _formed(macro, region, 3.6)
    rasters = (np.random.default_rng(3).random((6, 15, 24)) < 0.3).astype(np.uint8)
    device = macro.run_reservoir(region, rasters, spec)
    host, _ = run_reference(macro, region, rasters, spec)
    assert device.dtype == np.uint8 and device.shape == (6, 15, 12)
    assert device.sum() > 0
    np.testing.assert_array_equal(device, host)
    with pytest.raises(ShapeError):
        macro.run_reservoir((100, 0, 30, 24), rasters, spec)
    with pytest.raises(ShapeError):
        macro.run_reservoir(region, rasters[:, :, :20], spec)


def test_identity_is_json(macro):
    import json

    ident = macro.identity()
    assert isinstance(ident, dict) and ident["backend"] in ("sim", "emulator")
    assert json.loads(json.dumps(ident)) == ident
    assert ident == macro.identity()  # stable across calls


def test_context_manager_and_close(noise_free_profile):
    from hardware import open_emulated
    from sim import SimMacro

    for make in (lambda: SimMacro(seed=1, profile=noise_free_profile),
                 lambda: open_emulated(seed=1, profile=noise_free_profile)):
        with make() as m:
            m.clock_s()
        m.close()  # idempotent
        with pytest.raises(MacroError):
            m.read_conductance((0, 0, 1, 1))
