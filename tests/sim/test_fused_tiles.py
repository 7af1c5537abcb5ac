"""The fused kernel over multi-tile layouts (issue 12): one runner for a reservoir split
over tiles of several macros gives the tiled reference loop's spikes and final membranes bit
for bit (``rram_lsm.reservoir.run_tiled_reference``: every tile digitised by its own ADC,
partial sums added in ascending row-block order), with an ideal ADC and with a finite one;
``TiledReservoir`` takes it on the simulator when read noise is off."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rram_lsm.errors import ConfigError
from rram_lsm.macro import form_to_sparsity
from rram_lsm.mapping import plan_tiles
from rram_lsm.placement import TileAllocator
from rram_lsm.reservoir import ReservoirSpec, run_tiled_reference
from sim import SimMacro, load_profile
from sim.kernels.read import CONDUCTANCE_STEP_US
from sim.profile import AdcConfig
from sim.reservoir import ReservoirRunner

from .conftest import ARRAY_V_READ, ArrayMacro

V_READ = ARRAY_V_READ


def _grid(rng, rows, cols, g_max=40.0):
    g = np.where(rng.random((rows, cols)) < 0.5, rng.normal(13.0, 2.0, (rows, cols)),
                 rng.uniform(0.05, 0.2, (rows, cols)))
    return np.rint(np.clip(g, 0.0, g_max) / CONDUCTANCE_STEP_US) * CONDUCTANCE_STEP_US


def _spec(n_in, n, g, **kw):
    w = g[:, 0::2] - g[:, 1::2]
    base = dict(n_inputs=n_in, n_neurons=n, decay=0.9, threshold=3.0, weight_scale=0.3,
                g_ref_us=float(w.std()))
    return ReservoirSpec(**{**base, **kw})


def _rasters(rng, batch, t, n_in, p):
    r = (rng.random((batch, t, n_in)) < p).astype(np.uint8)
    r[:, :, 1::2][:, :, : n_in // 2] |= r[:, :, 0:2 * (n_in // 2):2] & (
        rng.random((batch, t, n_in // 2)) < 0.8)  # neighbours together, as in event data
    return r


def _split(g, tilemap, n_macros, array, **kw):
    """One ArrayMacro per macro of the map, holding its parts of ``g`` at their regions."""
    arrays = [np.zeros(array) for _ in range(n_macros)]
    for p in tilemap.parts:
        block = g[p.row0:p.row0 + p.n_rows, 2 * p.pair0:2 * (p.pair0 + p.n_pairs)]
        arrays[p.placement.macro][p.placement.region.slices] = block
    return {k: ArrayMacro(a, **kw) for k, a in enumerate(arrays)}


def _check(g, spec, tilemap, macros, rasters, adc_bits, lsb):
    runner = ReservoirRunner(g, None, spec, V_READ, adc_bits, lsb, np.random.default_rng(0),
                             row_blocks=sorted({p.row0 for p in tilemap.parts}))
    s_ref, v_ref = run_tiled_reference(macros, tilemap, rasters, spec)
    for parallel in (False, True):
        s, v = runner.run(rasters, parallel=parallel)
        np.testing.assert_array_equal(s, s_ref)
        assert np.array_equal(v.view(np.int64), v_ref.view(np.int64))  # bits, -0.0 too
    expected = rasters.sum(axis=(1, 2)) + s_ref[:, :-1].sum(axis=(1, 2))
    np.testing.assert_array_equal(runner.last_events, expected)
    assert 0 < s_ref.mean() < 0.5
    return runner


@pytest.mark.parametrize("adc_bits, lsb", [(None, 0.5), (8, 0.5), (5, 2.0)])
@pytest.mark.parametrize("n_in, n, tile", [(96, 40, (45, 16)), (64, 24, (33, 24)),
                                           (40, 30, (70, 10))])
@pytest.mark.parametrize("kw", [{}, {"reset": "subtract"}, {"refractory_steps": 2}])
def test_fused_tiles_equal_the_tiled_reference(adc_bits, lsb, n_in, n, tile, kw):
    """Row blocks of odd sizes (so pairs straddle boundaries and are refused), several
    column blocks, several macros; finite ADCs of a coarse step so that each tile's own
    quantisation matters."""
    rng = np.random.default_rng(n_in + n + (adc_bits or 0))
    rows = n_in + n
    g = _grid(rng, rows, 2 * n)
    spec = _spec(n_in, n, g, **kw)
    alloc = TileAllocator((128, 96), max_macros=8)
    tm = plan_tiles("res", rows, n, alloc, tile_rows=tile[0], tile_pairs=tile[1])
    assert tm.n_row_blocks * tm.n_col_blocks > 1  # the last case: column blocks only
    macros = _split(g, tm, alloc.macros_used, (128, 96), adc_bits=adc_bits, lsb_ua=lsb)
    runner = _check(g, spec, tm, macros, _rasters(rng, 5, 30, n_in, 0.1), adc_bits, lsb)
    assert runner.g.dtype == np.uint16 and runner.params.n_blocks == tm.n_row_blocks
    # no pair row spans two blocks
    bounds = {p.row0 for p in tm.parts} - {0}
    allowed = np.unpackbits(runner.pairs.view(np.uint8), bitorder="little")[0:n_in:2]
    for q in np.flatnonzero(allowed):
        assert 2 * q + 1 not in bounds


def test_finite_adc_tiles_differ_from_one_big_tile():
    """The kernel really digitises per tile: with a finite ADC the multi-tile spikes are
    not one big tile's (which would saturate and round otherwise), yet equal the tiled
    reference."""
    rng = np.random.default_rng(7)
    n_in, n = 120, 20
    g = _grid(rng, n_in + n, 2 * n)
    spec = _spec(n_in, n, g, threshold=1.5)
    alloc = TileAllocator((64, 64), max_macros=8)
    tm = plan_tiles("res", n_in + n, n, alloc, tile_rows=47)
    macros = _split(g, tm, alloc.macros_used, (64, 64), adc_bits=6, lsb_ua=1.0)
    x = _rasters(rng, 6, 30, n_in, 0.15)
    _check(g, spec, tm, macros, x, 6, 1.0)
    one = ReservoirRunner(g, None, spec, V_READ, 6, 1.0, np.random.default_rng(0))
    tiled = ReservoirRunner(g, None, spec, V_READ, 6, 1.0, np.random.default_rng(0),
                            row_blocks=sorted({p.row0 for p in tm.parts}))
    assert not np.array_equal(one.run(x)[1], tiled.run(x)[1])


@pytest.mark.parametrize("layout", ["float64", "int32"])
def test_other_tile_layouts(layout):
    rng = np.random.default_rng(11)
    n_in, n = 50, 26
    g = _grid(rng, n_in + n, 2 * n)
    if layout == "float64":
        g = g + rng.uniform(0, 1e-4, g.shape)  # off the grid: contract order per block
    else:
        g[3, 5] = 80.0  # past uint16 codes
    spec = _spec(n_in, n, g)
    alloc = TileAllocator((40, 64), max_macros=8)
    tm = plan_tiles("res", n_in + n, n, alloc)
    macros = _split(g, tm, alloc.macros_used, (40, 64), adc_bits=None)
    runner = _check(g, spec, tm, macros, _rasters(rng, 4, 30, n_in, 0.12), None, 0.5)
    assert runner.g.dtype == np.dtype(layout)


def test_row_blocks_are_checked():
    rng = np.random.default_rng(0)
    g = _grid(rng, 20, 16)
    spec = _spec(12, 8, g)
    for bad in [(), (1,), (0, 5, 5), (0, 20)]:
        with pytest.raises(ValueError):
            ReservoirRunner(g, None, spec, V_READ, None, 0.5, rng, row_blocks=bad)
    with pytest.raises(ValueError):  # no read-noise model over several tiles
        ReservoirRunner(g, np.ones_like(g), spec, V_READ, None, 0.5, rng, row_blocks=(0, 9))
    one = ReservoirRunner(g, None, spec, V_READ, None, 0.5, rng, row_blocks=(0,))
    assert one.params.n_blocks == 1 and one.blocks.size == 0


def _chips(n_macros, adc_bits=None, noise=False, v_read=0.2, per_cell=False):
    prof = load_profile(None)
    prof = prof if noise else prof.noise_free()
    if per_cell:
        prof = dataclasses.replace(prof, read=dataclasses.replace(prof.read, per_cell=True))
    prof = dataclasses.replace(prof, array=dataclasses.replace(prof.array,
                                                               read_voltage_v=v_read))
    if adc_bits is None:
        prof = dataclasses.replace(prof, adc=AdcConfig(bits=None))
    return {k: SimMacro(seed=2, profile=prof, macro_index=k) for k in range(n_macros)}


@pytest.mark.parametrize("adc_bits", [None, 8])
def test_sim_macros_run_the_tiled_reservoir_fused(adc_bits):
    """Parts on several SimMacros of one chip seed, each tile formed on its own: the fused
    runner equals the tiled reference loop through the macros' own mvm."""
    n_in, n = 700, 150
    alloc = TileAllocator((512, 512), max_macros=4)
    tm = plan_tiles("res", n_in + n, n, alloc, tile_pairs=100)
    macros = _chips(alloc.macros_used, adc_bits)
    for p in tm.parts:
        form_to_sparsity(macros[p.placement.macro], p.placement.region, 0.5)
    g = tm.matrix(lambda p: macros[p.placement.macro].effective_conductance_us(
        p.placement.region))
    spec = _spec(n_in, n, g, threshold=2.0)
    runner = macros[0].tiled_reservoir_runner(macros, tm, spec)
    assert runner is not None and runner.params.n_blocks == 2
    assert macros[0].tiled_reservoir_runner(macros, tm, spec) is runner  # cached
    x = _rasters(np.random.default_rng(3), 4, 30, n_in, 0.03)
    s_ref, v_ref = run_tiled_reference(macros, tm, x, spec)
    s, v = runner.run(x)
    assert s_ref.any()
    np.testing.assert_array_equal(s, s_ref)
    assert np.array_equal(v.view(np.int64), v_ref.view(np.int64))
    # a state change on any macro of the map (drift) makes a new runner
    macros[1].advance_time(3600.0)
    again = macros[0].tiled_reservoir_runner(macros, tm, spec)
    assert again is not runner
    s_ref, v_ref = run_tiled_reference(macros, tm, x, spec)
    np.testing.assert_array_equal(again.run(x)[0], s_ref)


def test_no_fused_runner_where_it_could_not_be_exact():
    n_in, n = 600, 200
    alloc = TileAllocator((512, 512), max_macros=4)
    tm = plan_tiles("res", n_in + n, n, alloc)
    assert tm.macros == (0, 1)
    spec = ReservoirSpec(n_inputs=n_in, n_neurons=n, decay=0.9, threshold=3.0,
                         weight_scale=0.3, g_ref_us=1.0)
    noisy = _chips(alloc.macros_used, noise=True)  # column noise: reproduced, see below
    assert noisy[0].tiled_reservoir_runner(noisy, tm, spec) is not None
    per_cell = _chips(alloc.macros_used, noise=True, per_cell=True)
    assert per_cell[0].tiled_reservoir_runner(per_cell, tm, spec) is None
    one_noisy = _chips(alloc.macros_used)
    one_noisy[1] = _chips(2, noise=True)[1]
    assert one_noisy[0].tiled_reservoir_runner(one_noisy, tm, spec) is None
    mixed = _chips(alloc.macros_used)
    mixed[1] = _chips(2, adc_bits=8)[1]  # another ADC on one macro
    assert mixed[0].tiled_reservoir_runner(mixed, tm, spec) is None
    foreign = _chips(alloc.macros_used)
    foreign[1] = ArrayMacro(np.zeros((512, 512)))
    assert foreign[0].tiled_reservoir_runner(foreign, tm, spec) is None


@pytest.mark.parametrize("adc", [False, True])
def test_tiled_reservoir_takes_the_fused_path_on_sim(adc):
    from lsm import preset
    from lsm.reservoir import TiledReservoir

    cfg = preset("nmnist", n_neurons=300)
    rows = cfg.tile_shape[0]
    alloc = TileAllocator((512, 512), max_macros=4)
    tm = plan_tiles(cfg.name, rows, cfg.n_neurons, alloc)
    macros = _chips(alloc.macros_used, adc_bits=8 if adc else None)
    res = TiledReservoir.setup_tiled(macros, cfg, tm)
    assert res._choose_path("auto") == "fast"
    x = _rasters(np.random.default_rng(5), 7, cfg.n_steps, cfg.n_inputs, 0.08)
    s_fast, v_fast = res.run(x, "fast", batch_size=3, return_membrane=True)
    s_gen, v_gen = res.run(x, "generic", return_membrane=True)
    assert s_gen.any()
    np.testing.assert_array_equal(s_fast, s_gen)
    assert np.array_equal(v_fast.view(np.int64), v_gen.view(np.int64))
    np.testing.assert_array_equal(res.run(x), s_gen)  # auto


def test_tiled_reservoir_fast_path_is_refused_with_per_cell_noise():
    from lsm import preset
    from lsm.reservoir import TiledReservoir

    cfg = preset("nmnist", n_neurons=300)
    alloc = TileAllocator((512, 512), max_macros=4)
    tm = plan_tiles(cfg.name, cfg.tile_shape[0], cfg.n_neurons, alloc)
    res = TiledReservoir.setup_tiled(_chips(alloc.macros_used, noise=True, per_cell=True),
                                     cfg, tm)
    assert res._choose_path("auto") == "generic"
    with pytest.raises(ConfigError, match="no fused kernel"):
        res.run(np.zeros((1, cfg.n_steps, cfg.n_inputs), np.uint8), "fast")


@pytest.mark.parametrize("adc", [False, True])
def test_tiled_read_noise_reproduces_the_macros_streams(adc):
    """With the default column read noise the fused run draws each tile's keys from its
    macro's read stream as the tiled loop's mvm calls do and adds the noise as they do:
    two identical chips, one run each way, give the same spikes and membranes bit for bit,
    batch by batch, and leave every stream in the same state."""
    from lsm import preset
    from lsm.reservoir import TiledReservoir

    cfg = preset("nmnist", n_neurons=300)
    alloc = TileAllocator((512, 512), max_macros=4)
    tm = plan_tiles(cfg.name, cfg.tile_shape[0], cfg.n_neurons, alloc, tile_pairs=120)
    assert tm.n_row_blocks > 1 and tm.n_col_blocks > 1
    a, b = (TiledReservoir.setup_tiled(_chips(alloc.macros_used, adc_bits=8 if adc else None,
                                              noise=True), cfg, tm) for _ in range(2))
    assert a._choose_path("auto") == "fast"
    x = _rasters(np.random.default_rng(8), 7, cfg.n_steps, cfg.n_inputs, 0.08)
    for _ in range(2):  # later runs continue the streams
        s_gen, v_gen = a.run(x, "generic", batch_size=4, return_membrane=True)
        s_fast, v_fast = b.run(x, "fast", batch_size=4, return_membrane=True)
        assert s_gen.any()
        np.testing.assert_array_equal(s_fast, s_gen)
        assert np.array_equal(v_fast.view(np.int64), v_gen.view(np.int64))
    for k in tm.macros:
        assert a.macros[k]._read_rng.integers(0, 2**63) == b.macros[k]._read_rng.integers(
            0, 2**63)
    # the noise is there: a noise-free chip gives other membranes
    quiet = TiledReservoir.setup_tiled(_chips(alloc.macros_used, adc_bits=8 if adc else None),
                                       cfg, tm)
    assert not np.array_equal(quiet.run(x, return_membrane=True)[1], v_fast)


def test_bench_sizes_sweep_runs_fused_and_equal(monkeypatch):
    """``bench lsm --sizes``: each size mapped onto 512 x 512 tiles and run by the fused
    multi-tile kernel, equal to the tiled reference, with its cost per event recorded."""
    import argparse

    from rram_lsm.app.bench import bench_lsm

    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)  # the synthetic stand-in: fast
    parser = argparse.ArgumentParser()
    bench_lsm.add_arguments(parser)
    args = parser.parse_args(["--sizes", "30", "--size-inputs", "256", "2312",
                              "--size-samples", "3", "--rounds", "1"])
    rows = bench_lsm._scaling_sizes(args)
    assert [(r["n_inputs"], r["n_neurons"]) for r in rows] == [(256, 30), (2312, 30)]
    assert all(r["equal_generic"] and r["input"] == "synthetic" for r in rows)
    assert rows[1]["row_blocks"] > 1 and rows[0]["tiles"] == 1
    for r in rows:
        assert r["conductance_adds_per_sample"] == r["row_additions_per_sample"] * 60
        assert r["conductance_adds_per_s_1thread"] > 0
    assert not bench_lsm._scaling_sizes(parser.parse_args(["--sizes"]))
