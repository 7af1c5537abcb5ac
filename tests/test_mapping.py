"""Networks over many tiles: the mapper covers the matrix once and never overlaps; a tiled
reservoir equals one big tile bit for bit with an ideal ADC (exact partial sums) and differs
exactly by each tile's own quantisation with a finite ADC."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rram_lsm.errors import PlacementError
from rram_lsm.macro import MacroInfo, Region
from rram_lsm.mapping import plan_tiles, tiled_mvm
from rram_lsm.placement import TileAllocator
from rram_lsm.reservoir import ReservoirSpec, run_reference, run_tiled_reference

STEP_US = 2.0 ** -10


class GridMacro:
    """A macro of given conductances (multiples of 2^-10 µS, so column sums are exact)."""

    def __init__(self, g_us, read_voltage_v=0.25, adc_bits=None, adc_lsb_ua=0.0):
        self.g = np.asarray(g_us, np.float64)
        self._info = MacroInfo(rows=self.g.shape[0], cols=self.g.shape[1], model="grid",
                               firmware_version="0", protocol_version=1,
                               read_voltage_v=read_voltage_v, adc_bits=adc_bits,
                               adc_lsb_ua=adc_lsb_ua)

    def info(self):
        return self._info

    def mvm(self, region, inputs, differential=False):
        r = Region.of(region)
        current = (np.asarray(inputs, np.float64) @ self.g[r.slices]) * self._info.read_voltage_v
        if self._info.adc_bits is not None:
            lsb, top = self._info.adc_lsb_ua, 2 ** self._info.adc_bits - 1
            current = np.minimum(np.floor(current / lsb + 0.5), top) * lsb
        return current[:, 0::2] - current[:, 1::2] if differential else current


def _grid(rows, cols, seed):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(0.1, 20.0, (rows, cols)) / STEP_US) * STEP_US


def _split(g, tilemap, n_macros, array=(512, 512), **kw):
    """One GridMacro per macro of the map, holding its parts of ``g`` at their regions."""
    arrays = [np.zeros(array) for _ in range(n_macros)]
    for p in tilemap.parts:
        block = g[p.row0:p.row0 + p.n_rows, 2 * p.pair0:2 * (p.pair0 + p.n_pairs)]
        arrays[p.placement.macro][p.placement.region.slices] = block
    return {k: GridMacro(a, **kw) for k, a in enumerate(arrays)}


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(1, 1500), n_neurons=st.integers(1, 700),
       tile_rows=st.integers(64, 512), tile_pairs=st.integers(32, 256))
def test_the_parts_cover_the_matrix_once_without_overlap(n_rows, n_neurons, tile_rows,
                                                         tile_pairs):
    alloc = TileAllocator((512, 512), max_macros=64)
    tm = plan_tiles("net", n_rows, n_neurons, alloc, tile_rows=tile_rows,
                    tile_pairs=tile_pairs)
    cover = np.zeros((n_rows, 2 * n_neurons), np.int32)
    for p in tm.parts:
        assert p.n_rows <= tile_rows and p.n_pairs <= tile_pairs
        assert p.placement.region.shape == (p.n_rows, 2 * p.n_pairs)
        cover[p.row0:p.row0 + p.n_rows, 2 * p.pair0:2 * (p.pair0 + p.n_pairs)] += 1
    assert cover.min() == cover.max() == 1
    grids = {}
    for p in alloc.placements:  # and no two tiles share a cell of any macro
        r = p.region
        grid = grids.setdefault(p.macro, np.zeros((512, 512), np.int32))
        grid[r.slices] += 1
        assert r.row0 + r.rows <= 512 and r.col0 + r.cols <= 512
    assert all(g.max() <= 1 for g in grids.values())
    assert tm.to_dict()["blocks"] == [tm.n_row_blocks, tm.n_col_blocks]


def test_a_full_chip_says_so():
    alloc = TileAllocator((512, 512), max_macros=2)
    with pytest.raises(PlacementError, match="no free"):
        plan_tiles("big", 2512, 1000, alloc)


def _spec(n_inputs, n, g_ref):
    return ReservoirSpec(n_inputs=n_inputs, n_neurons=n, decay=0.9, threshold=5.0,
                         weight_scale=0.3, g_ref_us=g_ref)


def _rasters(n, t, n_in, p, seed):
    return (np.random.default_rng(seed).random((n, t, n_in)) < p).astype(np.uint8)


@pytest.mark.parametrize("n_inputs, n, tile", [(2312, 300, (512, 128)), (256, 200, (128, 64)),
                                               (64, 500, (512, 256))])
def test_ideal_adc_tiled_equals_one_big_tile_bit_for_bit(n_inputs, n, tile):
    rows = n_inputs + n
    g = _grid(rows, 2 * n, seed=n)
    spec = _spec(n_inputs, n, g_ref=float(np.std(g[:, 0::2] - g[:, 1::2])))
    alloc = TileAllocator((512, 512), max_macros=64)
    tm = plan_tiles("res", rows, n, alloc, tile_rows=tile[0], tile_pairs=tile[1])
    assert tm.n_row_blocks * tm.n_col_blocks > 1
    big = GridMacro(g)
    tiled = _split(g, tm, alloc.macros_used)
    x = _rasters(6, 20, n_inputs, min(0.5, 50 / n_inputs), seed=1)
    s_big, v_big = run_reference(big, (0, 0, rows, 2 * n), x, spec)
    s_tiled, v_tiled = run_tiled_reference(tiled, tm, x, spec)
    assert 0 < s_big.mean() < 0.5
    np.testing.assert_array_equal(s_tiled, s_big)
    np.testing.assert_array_equal(v_tiled, v_big)


def test_a_read_voltage_off_the_binary_grid_rounds_the_extra_additions_only():
    n_inputs, n = 600, 100
    rows = n_inputs + n
    g = _grid(rows, 2 * n, seed=3)
    alloc = TileAllocator((512, 512), max_macros=8)
    tm = plan_tiles("res", rows, n, alloc)
    x = (np.random.default_rng(2).random((16, rows)) < 0.2).astype(np.uint8)
    big = GridMacro(g, read_voltage_v=0.2).mvm((0, 0, rows, 2 * n), x, differential=True)
    tiled = tiled_mvm(_split(g, tm, alloc.macros_used, read_voltage_v=0.2), tm, x)
    # each of the few extra float64 operations rounds by at most half an ulp of the
    # largest column current involved
    largest = float((x @ g).max() * 0.2)
    assert not np.array_equal(tiled, big)
    np.testing.assert_allclose(tiled, big, rtol=0, atol=8 * np.spacing(largest))


def test_a_finite_adc_quantises_each_tile_on_its_own():
    n_inputs, n = 900, 64
    rows = n_inputs + n
    g = _grid(rows, 2 * n, seed=5)
    adc = dict(adc_bits=8, adc_lsb_ua=1.0)
    alloc = TileAllocator((512, 512), max_macros=8)
    tm = plan_tiles("res", rows, n, alloc)
    assert tm.n_row_blocks == 2
    x = (np.random.default_rng(4).random((32, rows)) < 0.1).astype(np.uint8)
    tiled = tiled_mvm(_split(g, tm, alloc.macros_used, **adc), tm, x)

    def q(current):
        return np.minimum(np.floor(current / 1.0 + 0.5), 255) * 1.0

    by_hand = 0.0
    for p in tm.parts:  # what per-tile digitisation says: each block's currents quantised
        c = (x[:, p.row0:p.row0 + p.n_rows] @ g[p.row0:p.row0 + p.n_rows]) * 0.25
        by_hand = by_hand + (q(c[:, 0::2]) - q(c[:, 1::2]))
    np.testing.assert_array_equal(tiled, by_hand)
    big = GridMacro(g, **adc).mvm((0, 0, rows, 2 * n), x, differential=True)
    assert not np.array_equal(tiled, big)  # one big tile would saturate and round otherwise


def test_tiles_on_virtual_macros_follow_the_contract():
    """Parts placed on several SimMacros of one chip seed (noise off, ideal ADC, 0.25 V):
    the tiled reservoir equals one big tile holding the same conductances."""
    from sim import SimMacro, load_profile
    from sim.profile import AdcConfig
    from rram_lsm.macro import form_to_sparsity

    prof = load_profile(None).noise_free()
    prof = dataclasses.replace(prof, adc=AdcConfig(bits=None),
                               array=dataclasses.replace(prof.array, read_voltage_v=0.25))
    n_inputs, n = 700, 150
    rows = n_inputs + n
    alloc = TileAllocator((512, 512), max_macros=4)
    tm = plan_tiles("res", rows, n, alloc)
    macros = {k: SimMacro(seed=1, profile=prof, macro_index=k) for k in range(alloc.macros_used)}
    for p in tm.parts:  # forming is per tile
        form_to_sparsity(macros[p.placement.macro], p.placement.region, 0.5)
    g = tm.matrix(lambda p: macros[p.placement.macro].effective_conductance_us(
        p.placement.region))
    spec = _spec(n_inputs, n, g_ref=float(np.std(g[:, 0::2] - g[:, 1::2])))
    x = _rasters(4, 30, n_inputs, 0.03, seed=9)
    s_big, v_big = run_reference(GridMacro(g), (0, 0, rows, 2 * n), x, spec)
    s_tiled, v_tiled = run_tiled_reference(macros, tm, x, spec)
    assert s_big.any()
    np.testing.assert_array_equal(s_tiled, s_big)
    np.testing.assert_array_equal(v_tiled, v_big)
