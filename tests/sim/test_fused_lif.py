"""The fused LIF kernel (sim.kernels.lif) against the contract's reference loop: pair rows,
odd sizes (byte paths), tile layouts, parallel scheduling, the row scans, the V_read fold."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rram_lsm.reservoir import ReservoirSpec, run_reference
from sim import SimMacro, load_profile
from sim.kernels import lif
from sim.kernels.read import CONDUCTANCE_STEP_US
from sim.reservoir import ReservoirRunner

from .conftest import ARRAY_V_READ, ArrayMacro

V_READ = ARRAY_V_READ


def _grid_tile(rng, rows, cols, g_max=40.0):
    """Conductances on the simulator's grid: half formed (~13 µS), half pristine."""
    g = np.where(rng.random((rows, cols)) < 0.5, rng.normal(13.0, 2.0, (rows, cols)),
                 rng.uniform(0.05, 0.2, (rows, cols)))
    g = np.clip(g, 0.0, g_max)
    return np.rint(g / CONDUCTANCE_STEP_US) * CONDUCTANCE_STEP_US


def _spec(n_in, n, g, **kw):
    w = g[:, 0::2] - g[:, 1::2]
    base = dict(n_inputs=n_in, n_neurons=n, decay=0.9, threshold=5.0, weight_scale=0.3,
                g_ref_us=float(w.std()))
    return ReservoirSpec(**{**base, **kw})


def _rasters(rng, batch, t, n_in, p, paired=False):
    r = (rng.random((batch, t, n_in)) < p).astype(np.uint8)
    if paired:  # neighbours 2q, 2q + 1 mostly active together, as in event data
        r[:, :, 1::2][:, :, : n_in // 2] |= r[:, :, 0:2 * (n_in // 2):2] & (
            rng.random((batch, t, n_in // 2)) < 0.8)
    return r


def _check(macro, spec, rasters):
    """Fused == reference, spikes and final membranes bit for bit; returns the runner."""
    info = macro.info()
    region = (0, 0, *spec.tile_shape)
    runner = ReservoirRunner(macro.g[:spec.tile_shape[0], :spec.tile_shape[1]], None, spec,
                             info.read_voltage_v, info.adc_bits, info.adc_lsb_ua,
                             np.random.default_rng(0))
    s_ref, v_ref = run_reference(macro, region, rasters, spec)
    s, v = runner.run(rasters)
    np.testing.assert_array_equal(s, s_ref)
    assert np.array_equal(v.view(np.int64), v_ref.view(np.int64))  # bits, -0.0 included
    # synaptic events: active inputs plus the spikes that feed a next step
    expected = rasters.sum(axis=(1, 2)) + s_ref[:, :-1].sum(axis=(1, 2))
    np.testing.assert_array_equal(runner.last_events, expected)
    return runner


@pytest.mark.parametrize("adc_bits", [None, 8])
@pytest.mark.parametrize("kw", [{}, {"reset": "subtract"}, {"refractory_steps": 2}])
def test_pair_rows_are_used_and_exact(adc_bits, kw):
    rng = np.random.default_rng(1)
    g = _grid_tile(rng, 64 + 24, 48)
    spec = _spec(64, 24, g, threshold=3.0, **kw)
    r = _rasters(rng, 6, 30, 64, 0.12, paired=True)
    runner = _check(ArrayMacro(g, adc_bits), spec, r)
    assert runner.g.dtype == np.uint16 and runner.g.shape == (64 + 24 + 32, 48)
    assert int(sum(bin(int(w)).count("1") for w in runner.pairs)) == 32  # every pair allowed
    both = (r[:, :, 0::2] & r[:, :, 1::2]).sum()
    assert both > 0.3 * r.sum() / 2  # pairs were there to be used
    # the pair rows are the code sums of their two input rows
    np.testing.assert_array_equal(runner.g[88:].astype(np.int64),
                                  runner.g[0:64:2].astype(np.int64) + runner.g[1:64:2])


def test_pairs_that_would_overflow_uint16_are_not_used():
    rng = np.random.default_rng(2)
    g = _grid_tile(rng, 32 + 16, 32, g_max=60.0)
    g[4, 3] = g[5, 3] = 50.0  # inputs 4 and 5: their sum (100 µS) is past uint16 codes
    spec = _spec(32, 16, g, threshold=3.0)
    r = _rasters(rng, 4, 40, 32, 0.3, paired=True)
    r[:, :, 4:6] = 1
    runner = _check(ArrayMacro(g, None), spec, r)
    assert runner.g.dtype == np.uint16
    allowed = np.unpackbits(runner.pairs.view(np.uint8), bitorder="little")[0:32:2]
    assert allowed[2] == 0 and allowed.sum() == 15
    assert not runner.g[48 + 2].any()  # the unusable pair's row is never read (zeros)


@pytest.mark.parametrize("n_in, n", [(13, 11), (72, 70), (8, 8), (1, 1)])
@pytest.mark.parametrize("layout", ["uint16", "float64"])
@pytest.mark.parametrize("adc_bits", [None, 6])
def test_any_sizes_and_layouts_equal_the_reference(n_in, n, layout, adc_bits):
    """Sizes that are not whole uint64 words take the byte-by-byte scans; float64 tiles
    (off the grid) keep the contract's addition order and use no pair rows."""
    rng = np.random.default_rng(n_in * 100 + n)
    g = _grid_tile(rng, n_in + n, 2 * n)
    if layout == "float64":
        g = g + rng.uniform(0, 1e-4, g.shape)  # off the grid
    spec = _spec(n_in, n, g, threshold=2.0)
    r = _rasters(rng, 5, 25, n_in, 0.2, paired=True)
    runner = _check(ArrayMacro(g, adc_bits, lsb_ua=0.05), spec, r)
    assert runner.g.dtype == np.dtype(layout)
    if layout == "float64":
        assert runner.pairs.size == 0


def test_int32_layout_with_pairs():
    rng = np.random.default_rng(3)
    g = _grid_tile(rng, 16 + 8, 16)
    g[2, 1] = 80.0  # past uint16 codes: int32 codes
    spec = _spec(16, 8, g, threshold=3.0, reset="subtract")
    runner = _check(ArrayMacro(g, 8), spec, _rasters(rng, 4, 30, 16, 0.3, paired=True))
    assert runner.g.dtype == np.int32 and runner.pairs.size == 1


@pytest.mark.parametrize("batch", [1, 3, 5, 37])
def test_parallel_and_serial_agree_for_any_batch(batch):
    chip = SimMacro(seed=3, profile=load_profile(None).noise_free())
    from lsm import Reservoir, preset

    res = Reservoir.setup(chip, preset("nmnist"))
    runner = chip.reservoir_runner(res.region, res.spec)
    r = _rasters(np.random.default_rng(batch), batch, 50, 256, 0.08, paired=True)
    s1, v1 = runner.run(r, parallel=False)
    e1 = runner.last_events.copy()
    s2, v2 = runner.run(r, parallel=True)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(e1, runner.last_events)
    s_ref, v_ref = run_reference(chip, res.region, r, res.spec)
    np.testing.assert_array_equal(s1, s_ref)
    np.testing.assert_array_equal(v1, v_ref)


def test_noise_runs_use_no_pair_rows():
    chip = SimMacro(seed=1, profile=load_profile(None))
    from lsm import Reservoir, preset

    res = Reservoir.setup(chip, preset("nmnist"))
    runner = chip.reservoir_runner(res.region, res.spec)
    assert runner.noise and runner.pairs.size == 0 and runner.g.shape == (456, 400)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("width", [256, 200, 64, 24, 13])
def test_input_rows_are_the_nonzero_bytes_in_order(width, binary):
    """Row scans read 64 flags per uint64 (any non-zero byte counts, not just 1; binary
    rasters take the one-multiply gather)."""
    rng = np.random.default_rng(width)
    values = 1 if binary else rng.integers(1, 256, (40, width))
    raster = (rng.random((40, width)) < 0.15) * values
    raster = raster.astype(np.uint8)
    raster[3] = 0
    raster[4] = 1 if binary else 255
    assert lif._is_binary(raster) == binary
    rows = np.empty(40 * width, np.int64)
    starts = np.empty(41, np.int64)
    assert lif._input_rows(raster, np.zeros(0, np.uint64), 10_000, rows, starts) == 0
    for t in range(40):
        np.testing.assert_array_equal(rows[starts[t]:starts[t + 1]], np.flatnonzero(raster[t]))


def test_v_read_fold_is_exact_only_when_the_product_is():
    assert lif.sv_is_exact(CONDUCTANCE_STEP_US, 0.2)
    assert lif.sv_is_exact(1.0, 5e-324)  # float64 tiles: acc * 1.0 is acc
    assert not lif.sv_is_exact(CONDUCTANCE_STEP_US, 1e-310)  # the product would be subnormal
    assert not lif.sv_is_exact(0.001, 0.2)  # not a power of two
    assert not lif.sv_is_exact(2.0, 0.2)  # int32 sums times 2 could overflow in spirit
    # the fold itself, over the whole int32 range, for a few read voltages
    rng = np.random.default_rng(0)
    acc = np.concatenate([rng.integers(-2**31, 2**31, 100_000), [0, 1, -1, 2**31 - 1]])
    for v_read in (0.2, 0.1, 0.15, 1.0 / 3.0, math.pi):
        a = acc.astype(np.float64)
        np.testing.assert_array_equal(a * (CONDUCTANCE_STEP_US * v_read),
                                      (a * CONDUCTANCE_STEP_US) * v_read)


def test_a_tile_whose_fold_is_not_exact_falls_back_to_float64():
    rng = np.random.default_rng(4)
    g = _grid_tile(rng, 8 + 4, 8)
    spec = _spec(8, 4, g)
    runner = ReservoirRunner(g, None, spec, 1e-310, None, 0.0, np.random.default_rng(0))
    assert runner.g.dtype == np.float64 and runner.params.step_us == 1.0
