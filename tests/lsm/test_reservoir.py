"""The LIF reservoir: hand-computed trajectories, generic == fast, noise statistics, errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsm import LsmConfig, Reservoir, preset
from rram_lsm.errors import ConfigError, MacroError, ShapeError
from rram_lsm.reservoir import run_reference
from sim.reservoir import ReservoirRunner
from sim import SimMacro, load_profile
from sim.profile import AdcConfig

X = np.array([1, 1, 1, 0, 1], np.uint8)[:, None]  # one input, five steps


def _two_cell_macro(dense_macro):
    """Input row: G+ 12, G- 2 µS; recurrent row: G+ 2, G- 7 µS -> with g_ref 5 µS and
    scale 1: w_in = 2, w_rec = -1 (ideal ADC, V_read 0.2 V)."""
    m = dense_macro(rows=2, cols=2)
    m.formed[:] = True
    m.formed_g[:] = [[12.0, 2.0], [2.0, 7.0]]
    return m


def _tiny(**kw):
    base = dict(name="tiny", n_inputs=1, n_neurons=1, n_steps=5, decay=0.5, threshold=2.5,
                weight_scale=1.0, g_ref_us=5.0)
    return LsmConfig(**{**base, **kw})


@pytest.mark.parametrize("kw, spikes, membrane", [
    # v = 0.5 v (1 - s) + 2 x - s_prev; spike when v > 2.5
    ({}, [0, 1, 0, 0, 0], [2.0, 3.0, 1.0, 0.5, 2.25]),
    # v = 0.5 v + 2 x - s_prev - 2.5 s_prev
    ({"reset": "subtract"}, [0, 1, 0, 0, 0], [2.0, 3.0, 0.0, 0.0, 2.0]),
    ({"threshold": 0.9}, [1, 1, 1, 0, 1], [2.0, 1.0, 1.0, -1.0, 1.5]),
    # one refractory step silences t = 1 and t = 3
    ({"threshold": 0.9, "refractory_steps": 1}, [1, 0, 1, 0, 1], [2.0, 1.0, 2.5, -1.0, 1.5]),
])
def test_lif_matches_hand_computed_trajectory(dense_macro, kw, spikes, membrane):
    m = _two_cell_macro(dense_macro)
    res = Reservoir.attach(m, _tiny(**kw))
    s, v = res.trace(X)
    np.testing.assert_array_equal(s[:, 0], spikes)
    np.testing.assert_allclose(v[:, 0], membrane, atol=1e-12)
    g = m.conductance()
    fast = ReservoirRunner(g, None, res.spec, 0.2, None, 0.0, np.random.default_rng(0))
    s_fast, v_fast = fast.run(X[None])
    np.testing.assert_array_equal(s_fast[0, :, 0], spikes)
    assert v_fast[0, 0] == v[-1, 0]
    np.testing.assert_array_equal(run_reference(m, (0, 0, 2, 2), X[None], res.spec)[0][0], s)


def test_forming_sweep_from_3v_in_50mv_steps(dense_macro):
    m = dense_macro(seed=2)
    res = Reservoir.setup(m, preset("nmnist"), sparsity=0.5)
    volts = np.array(m.form_voltages)
    np.testing.assert_allclose(volts, 3.0 + 0.05 * np.arange(len(volts)), atol=1e-9)
    assert res.forming.unformed_fraction <= 0.5
    assert res.forming.voltage_v == pytest.approx(volts[-1])
    # one step earlier the target was not yet reached
    formed_before = (m.breakdown_v[res.region.slices] <= volts[-2]).mean()
    assert 1 - formed_before > 0.5
    # g_ref is the std of G+ - G- over the tile: weights have std == weight_scale
    w_in, w_rec = res.weights()
    w = np.concatenate([w_in, w_rec])
    assert w.std() == pytest.approx(res.config.weight_scale, rel=1e-9)


def _chip(seed=0, adc_bits=8, noise=False):
    prof = load_profile(None)
    if adc_bits is None:
        prof = dataclasses.replace(prof, adc=AdcConfig(bits=None))
    return SimMacro(seed=seed, profile=prof if noise else prof.noise_free())


def _rasters(n, t, n_in, p, seed):
    return (np.random.default_rng(seed).random((n, t, n_in)) < p).astype(np.uint8)


@pytest.mark.parametrize("adc_bits", [8, None])
@pytest.mark.parametrize("extra", [{}, {"reset": "subtract"}, {"refractory_steps": 2}])
def test_fast_equals_generic_exactly_without_noise(adc_bits, extra):
    chip = _chip(seed=1, adc_bits=adc_bits)
    res = Reservoir.setup(chip, preset("nmnist", **extra))
    r = _rasters(12, 50, 256, 0.08, seed=3)
    s_gen, v_gen = res.run(r, "generic", return_membrane=True)
    s_fast, v_fast = res.run(r, "fast", return_membrane=True)
    assert 0.005 < s_gen.mean() < 0.5  # neither silent nor saturated
    np.testing.assert_array_equal(s_fast, s_gen)
    np.testing.assert_array_equal(v_fast, v_gen)


def _high_conductance_chip(adc_bits):
    """A chip whose G_max (100 µS) is past uint16 codes, with stuck-high cells in the tile."""
    prof = _chip(adc_bits=adc_bits).profile
    prof = dataclasses.replace(prof, program=dataclasses.replace(prof.program, g_max_us=100.0))
    high = np.zeros((512, 512), bool)
    high[[3, 300], [5, 17]] = True
    return SimMacro(seed=2, profile=prof, stuck_high=high)


def _fake_chip(dense_macro, adc_bits):
    return dense_macro(seed=4, **({"adc_bits": 8, "adc_lsb_ua": 0.5} if adc_bits else {}))


@pytest.mark.parametrize("adc_bits", [8, None])
@pytest.mark.parametrize("layout", ["uint16", "int32", "float64"])
def test_fast_path_tile_layouts_equal_generic(dense_macro, adc_bits, layout):
    """Simulator tiles become uint16 grid codes, int32 codes past 64 µS; a tile off the grid
    (a fake macro's random conductances) keeps the float64 kernel; all equal generic."""
    m = {"uint16": lambda: _chip(seed=1, adc_bits=adc_bits),
         "int32": lambda: _high_conductance_chip(adc_bits),
         "float64": lambda: _fake_chip(dense_macro, adc_bits)}[layout]()
    res = Reservoir.setup(m, preset("nmnist"))
    info = m.info()
    g = m.read_conductance(res.region)  # noise-free on every chip here
    fast = ReservoirRunner(g, None, res.spec, info.read_voltage_v, info.adc_bits, info.adc_lsb_ua,
                      np.random.default_rng(0))
    assert fast.g.dtype == np.dtype(layout)
    assert fast.params.step_us == (1.0 if layout == "float64" else SimMacro.conductance_step_us)
    r = _rasters(4, 50, 256, 0.08, seed=5)
    s_gen, v_gen = res.run(r, "generic", return_membrane=True)
    s_fast, v_fast = fast.run(r)
    assert s_gen.any()
    np.testing.assert_array_equal(s_fast, s_gen)
    np.testing.assert_array_equal(v_fast, v_gen)


_SMALL_CHIP = {}


def _small_reservoir():
    if "res" not in _SMALL_CHIP:
        cfg = LsmConfig(name="small", n_inputs=24, n_neurons=16, n_steps=15)
        _SMALL_CHIP["res"] = Reservoir.setup(_chip(seed=5), cfg)
    return _SMALL_CHIP["res"]


@settings(max_examples=25)
@given(decay=st.floats(0.5, 1.0), threshold=st.floats(0.5, 8.0),
       scale=st.floats(0.1, 1.5), reset=st.sampled_from(["zero", "subtract"]),
       refractory=st.integers(0, 3), density=st.floats(0.0, 0.6),
       seed=st.integers(0, 2**16))
def test_fast_equals_generic_for_any_lif_parameters(decay, threshold, scale, reset,
                                                    refractory, density, seed):
    base = _small_reservoir()
    cfg = base.config.replace(decay=decay, threshold=threshold, weight_scale=scale,
                              reset=reset, refractory_steps=refractory)
    res = Reservoir(base.macro, cfg, base.region, base.forming)
    r = _rasters(4, cfg.n_steps, cfg.n_inputs, density, seed)
    np.testing.assert_array_equal(res.run(r, "fast"), res.run(r, "generic"))


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_read_noise_has_the_profiles_mean_and_spread(path):
    """T = 1 and an unreachable threshold: the membrane is one noisy differential read,
    N(clean drive, (factor * V * rel)^2 * sum over active rows of G+^2 + G-^2)."""
    chip = _chip(seed=7, adc_bits=None, noise=True)
    cfg = preset("nmnist", n_steps=1, threshold=1e9)
    res = Reservoir.setup(chip, cfg)
    raster = _rasters(1, 1, 256, 0.1, seed=1)
    r = np.repeat(raster, 4000, axis=0)
    _, v = res.run(r, path, return_membrane=True, batch_size=4000)
    g = chip.effective_conductance_us(res.region)
    active = np.flatnonzero(raster[0, 0])
    v_read = chip.info().read_voltage_v
    factor = res.spec.weight_scale / (v_read * res.spec.g_ref_us)
    clean = (g[active, 0::2].sum(0) * v_read - g[active, 1::2].sum(0) * v_read) * factor
    sq = (g[active] ** 2).sum(0)
    sigma = factor * v_read * chip.profile.read.noise_rel * np.sqrt(sq[0::2] + sq[1::2])
    se = sigma / np.sqrt(len(r))
    assert np.all(np.abs(v.mean(0) - clean) < 5 * se)
    np.testing.assert_allclose(v.std(0), sigma, rtol=0.08)
    np.testing.assert_allclose(np.median(v.std(0) / sigma), 1.0, atol=0.02)


def test_fast_noise_comes_from_the_chips_stream_of_the_tile():
    """Same chip seed -> same noisy spikes; a tile's second run draws fresh noise; what
    another tile (or another macro of the chip) did never changes a tile's draws."""
    r = _rasters(6, 50, 256, 0.08, seed=0)

    def first_run(touch_other: bool, macro_index: int = 0):
        chip = SimMacro(seed=2, profile=load_profile(None), macro_index=macro_index)
        res = Reservoir.setup(chip, preset("nmnist"))
        if touch_other:
            other = Reservoir.setup(chip, preset("nmnist", n_neurons=20),
                                    region=(0, 400, 276, 40))
            other.run(r[:, :, :256], "fast")
            chip.read_conductance(other.region)
        return res, res.run(r, "fast")

    res, a = first_run(False)
    _, b = first_run(True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, res.run(r, "fast"))  # the tile's stream moved on
    _, c = first_run(False, macro_index=1)  # another macro: other cells, other noise
    assert not np.array_equal(a, c)


def test_noise_on_gives_the_same_firing_statistics_on_both_paths():
    chip = _chip(seed=4, noise=True)
    res = Reservoir.setup(chip, preset("nmnist"))
    r = _rasters(64, 50, 256, 0.08, seed=9)
    rate_fast = res.run(r, "fast").mean(axis=(0, 1))
    rate_gen = res.run(r, "generic").mean(axis=(0, 1))
    # per-neuron rates over 64 x 50 steps agree to sampling error
    assert abs(rate_fast.mean() - rate_gen.mean()) < 0.1 * rate_gen.mean()
    assert np.corrcoef(rate_fast, rate_gen)[0, 1] > 0.95


def test_generic_path_uses_run_reservoir_when_advertised(backend_loop_macro):
    m = backend_loop_macro(seed=3)
    res = Reservoir.setup(m, preset("nmnist"))
    r = _rasters(3, 50, 256, 0.08, seed=2)
    s = res.run(r, "auto")
    assert m.run_reservoir_calls == 1
    np.testing.assert_array_equal(s, run_reference(m, res.region, r, res.spec)[0])
    with pytest.raises(ConfigError, match="membrane"):
        res.run(r, "fast", return_membrane=True)  # this backend returns spikes only
    _, v = res.run(r, "auto", return_membrane=True)  # ... so auto takes the reference loop
    assert m.run_reservoir_calls == 1 and v.shape == (3, 200)


def test_reference_loop_makes_one_mvm_per_step(dense_macro):
    m = dense_macro(seed=1)
    res = Reservoir.setup(m, preset("nmnist"))
    calls = m.mvm_calls
    s, _ = run_reference(m, res.region, _rasters(5, 50, 256, 0.08, seed=1), res.spec)
    assert m.mvm_calls - calls == 50
    assert s.shape == (5, 50, 200) and s.dtype == np.uint8


def test_bad_input_raises_typed_errors(dense_macro):
    m = dense_macro(seed=1)
    res = Reservoir.setup(m, preset("nmnist"))
    with pytest.raises(ShapeError, match="batch"):
        res.run(np.zeros((50, 256), np.uint8))
    with pytest.raises(ShapeError, match="T = 50"):
        res.run(np.zeros((1, 40, 256), np.uint8))
    with pytest.raises(ShapeError, match="binary"):
        res.run(np.full((1, 50, 256), 2, np.uint8))
    with pytest.raises(ConfigError, match="run_reservoir"):
        res.run(np.zeros((1, 50, 256), np.uint8), "fast")
    with pytest.raises(ShapeError, match="tile"):
        run_reference(m, (0, 0, 10, 10), np.zeros((1, 5, 256), np.uint8), res.spec)
    with pytest.raises(ConfigError, match="unknown LSM preset"):
        preset("mnist")
    with pytest.raises(ConfigError, match="unknown LsmConfig keys"):
        preset("nmnist", treshold=3)
    with pytest.raises(ConfigError, match="decay"):
        LsmConfig(decay=1.5)
    hard = dense_macro(seed=0)
    hard.breakdown_v[:] = 6.0  # above the 5 V forming limit
    with pytest.raises(MacroError, match="limit"):
        Reservoir.setup(hard, preset("nmnist"))
