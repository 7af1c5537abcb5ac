"""MVM: the accumulation-order contract, ADC, differential pairs, read-noise statistics."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from rram_lsm.macro import RESERVOIR_MEMBRANE, RUN_RESERVOIR
from rram_lsm.errors import RegionError, ShapeError
from sim import SimMacro, form_to_sparsity, macro40nm

from .conftest import with_changes

IDEAL = {"bits": None}


def _reference(g, x, v_read):
    """The contract: float64, active rows ascending, from 0.0, then x V_read."""
    out = np.zeros((x.shape[0], g.shape[1]))
    for b in range(x.shape[0]):
        acc = np.zeros(g.shape[1])
        for i in range(g.shape[0]):
            if x[b, i]:
                acc = acc + g[i]
        out[b] = acc * v_read
    return out


def _adc(i_ua, bits, lsb):
    return np.clip(np.floor(i_ua / lsb + 0.5), 0, 2 ** bits - 1) * lsb


@pytest.fixture(scope="module")
def clean_chip():
    chip = SimMacro(seed=20, profile=with_changes(adc=IDEAL).noise_free())
    form_to_sparsity(chip, (0, 0, 456, 400), 0.5)
    return chip


def test_noise_free_mvm_equals_ascending_sum_exactly(clean_chip, tile):
    x = (np.random.default_rng(0).random((64, 456)) < 0.3).astype(np.uint8)
    g = clean_chip.effective_conductance_us(tile)
    out = clean_chip.mvm(tile, x)
    np.testing.assert_array_equal(out, _reference(g, x, clean_chip.info().read_voltage_v))


@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 30), st.integers(1, 30),
       st.floats(0.0, 1.0))
def test_noise_free_mvm_exact_on_random_tiles(clean_chip, seed, batch, rows, cols, density):
    rng = np.random.default_rng(seed)
    r0, c0 = int(rng.integers(0, 512 - rows)), int(rng.integers(0, 512 - cols))
    region = (r0, c0, rows, cols)
    x = rng.random((batch, rows)) < density  # bool inputs are accepted too
    out = clean_chip.mvm(region, x)
    ref = _reference(clean_chip.effective_conductance_us(region), x, 0.2)
    np.testing.assert_array_equal(out, ref)


@given(st.integers(0, 2**32 - 1))
def test_effective_conductance_is_on_the_grid_and_sums_in_any_order(clean_chip, seed):
    step = SimMacro.conductance_step_us
    g = clean_chip.effective_conductance_us((0, 0, 456, 400))
    codes = np.rint(g / step)
    np.testing.assert_array_equal(codes * step, g)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(456)[: int(rng.integers(1, 457))]
    forward = np.zeros(400)
    for i in np.sort(rows):
        forward = forward + g[i]
    backward = np.zeros(400)
    for i in rows:  # shuffled order
        backward = backward + g[i]
    np.testing.assert_array_equal(forward, backward)
    np.testing.assert_array_equal(forward, codes[rows].astype(np.int64).sum(axis=0) * step)


def test_full_tile_at_max_conductance_fits_int32():
    """Every cell stuck high (G_max): the largest possible column sum of grid codes."""
    prof = macro40nm.noise_free()
    chip = SimMacro(seed=3, profile=prof, stuck_high=np.ones((512, 512), bool))
    g = chip.effective_conductance_us((0, 0, 512, 512))
    assert np.all(g == prof.program.g_max_us)
    codes = np.rint(g / SimMacro.conductance_step_us).astype(np.int64)
    assert codes.max() <= np.iinfo(np.uint16).max  # lsm's fast path stores uint16 codes
    assert codes.sum(axis=0).max() < 2**31
    as_int32 = codes.astype(np.int32).sum(axis=0, dtype=np.int32)
    np.testing.assert_array_equal(as_int32 * SimMacro.conductance_step_us, g.sum(axis=0))


def test_adc_formula_and_saturation(tile):
    prof = with_changes(adc={"bits": 6, "full_scale_ua": 64.0}).noise_free()
    chip = SimMacro(seed=21, profile=prof)
    form_to_sparsity(chip, tile, 0.5)
    x = (np.random.default_rng(1).random((32, 456)) < 0.1).astype(np.uint8)
    x[0] = 1  # every row active: far beyond full scale
    analog = _reference(chip.effective_conductance_us(tile), x, 0.2)
    out = chip.mvm(tile, x)
    lsb = chip.info().adc_lsb_ua
    assert lsb == 1.0
    np.testing.assert_array_equal(out, _adc(analog, 6, lsb))
    assert np.all(out[0] == 63.0)
    assert np.all(out <= 63.0) and np.all(out >= 0.0)
    assert np.all(np.abs(out[1:] - analog[1:])[analog[1:] < 63] <= lsb / 2)


def test_differential_equals_manual_subtraction(tile):
    chip = SimMacro(seed=22)  # noisy: compare against the same noise draws
    twin = SimMacro(seed=22)
    form_to_sparsity(chip, tile, 0.5)
    form_to_sparsity(twin, tile, 0.5)
    x = (np.random.default_rng(2).random((16, 456)) < 0.2).astype(np.uint8)
    d = chip.mvm(tile, x, differential=True)
    full = twin.mvm(tile, x)
    assert d.shape == (16, 200)
    np.testing.assert_array_equal(d, full[:, 0::2] - full[:, 1::2])


def test_noisy_mvm_matches_configured_column_noise(tile):
    prof = with_changes(adc=IDEAL, read={"noise_rel": 0.05})
    chip = SimMacro(seed=23, profile=prof)
    form_to_sparsity(chip, tile, 0.5)
    g = chip.effective_conductance_us(tile)
    x = np.zeros((400, 456), np.uint8)
    x[:, ::7] = 1  # the same 66 active rows for every sample
    samples = chip.mvm(tile, x)
    clean = _reference(g, x[:1], 0.2)[0]
    sigma = 0.2 * 0.05 * np.sqrt((g[::7] ** 2).sum(axis=0))
    z = (samples - clean) / sigma
    assert z.size == 160_000
    assert z.mean() == pytest.approx(0.0, abs=0.01)
    assert z.std() == pytest.approx(1.0, abs=0.01)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3


def test_analytic_and_per_cell_noise_agree_in_distribution():
    base = with_changes(adc=IDEAL, read={"noise_rel": 0.05})
    exact = with_changes(base, read={"per_cell": True})
    region = (0, 0, 456, 40)
    x = np.zeros((500, 456), np.uint8)
    x[:, 3::5] = 1
    results = []
    for prof in (base, exact):
        chip = SimMacro(seed=24, profile=prof)
        form_to_sparsity(chip, region, 0.5)
        clean = _reference(chip.effective_conductance_us(region), x[:1], 0.2)[0]
        results.append((chip.mvm(region, x) - clean).ravel())
    analytic, per_cell = results
    assert stats.ks_2samp(analytic, per_cell).pvalue > 1e-3
    assert analytic.std() == pytest.approx(per_cell.std(), rel=0.03)
    assert analytic.mean() == pytest.approx(0.0, abs=0.02 * analytic.std())


def test_read_noise_is_fresh_per_call(tile):
    chip = SimMacro(seed=25)
    form_to_sparsity(chip, tile, 0.5)
    x = (np.random.default_rng(3).random((4, 456)) < 0.1).astype(np.uint8)
    assert not np.array_equal(chip.mvm(tile, x), chip.mvm(tile, x))


def test_empty_batch():
    chip = SimMacro(seed=26)
    assert chip.mvm((0, 0, 8, 8), np.zeros((0, 8), np.uint8)).shape == (0, 8)


@pytest.mark.parametrize("inputs, match", [
    (np.zeros(8), "shape"),
    (np.zeros((2, 7)), "shape"),
    (np.full((2, 8), 2, np.uint8), "0 or 1"),
    (np.full((2, 8), 0.5), "0 or 1"),
    (np.full((2, 8), "1"), "dtype"),
])
def test_bad_inputs_raise_shape_error(inputs, match):
    with pytest.raises(ShapeError, match=match):
        SimMacro(seed=0).mvm((0, 0, 8, 8), inputs)


def test_differential_needs_even_columns():
    with pytest.raises(RegionError, match="even"):
        SimMacro(seed=0).mvm((0, 0, 8, 7), np.zeros((1, 8)), differential=True)


def test_info_matches_profile():
    info = SimMacro(seed=0).info()
    assert (info.rows, info.cols) == (512, 512)
    assert info.adc_bits == macro40nm.adc.bits
    assert info.adc_lsb_ua == macro40nm.adc.lsb_ua
    assert info.read_voltage_v == macro40nm.array.read_voltage_v
    assert info.capabilities == (RUN_RESERVOIR, RESERVOIR_MEMBRANE)
