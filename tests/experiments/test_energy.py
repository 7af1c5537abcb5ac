"""Energy model: operation counts against a hand-worked example, energies against the formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rram_lsm.errors import ConfigError, ShapeError
from rram_lsm.app.experiments.energy import count_operations, estimate_energy, load_energy_params


def _hand_example():
    # batch 2, T 3, 4 inputs, 2 neurons; sample 1 is silent.
    x = np.zeros((2, 3, 4), np.uint8)
    s = np.zeros((2, 3, 2), np.uint8)
    x[0, 0, [0, 3]] = 1
    x[0, 2, 0] = 1
    s[0, 0, 0] = 1
    s[0, 2, :] = 1
    return x, s


def test_counts_match_the_hand_worked_example():
    x, s = _hand_example()
    c = count_operations(x, s, projection_dim=3)
    # sample 0: rows active per step = 2 (inputs), 1 (spike of t0 fed back), 1 (input);
    # the two spikes of the last step feed nothing. Sample 1: nothing. Means over 2 samples.
    assert c.input_events == 1.5
    assert c.recurrent_rows == 0.5
    assert c.spikes == 1.5
    assert c.active_steps == 1.5
    assert c.row_activations == 2.0
    assert c.rram_cell_reads == 8.0           # 2 rows x 4 columns (2 neurons x G+/G-)
    assert c.adc_conversions == 6.0           # 1.5 active steps x 4 columns
    assert c.neuron_updates == 6              # 3 steps x 2 neurons
    assert c.projection_macs == 6             # 2 features x 3 dims
    assert c.digital_macs == 36               # 3 steps x (4 + 2) x 2


def test_energy_and_latency_follow_the_formulas():
    x, s = _hand_example()
    c = count_operations(x, s, projection_dim=3)
    p = load_energy_params().replace(
        read_voltage_v=0.5, mean_cell_conductance_us=4.0, read_pulse_s=1e-8,
        row_driver_energy_j=2e-13, adc_bits=4, walden_fom_j_per_step=1e-14,
        scale_45_to_40nm=0.5, mac_int8_j=2e-13, weight_read_int8_j=1e-12,
        neuron_update_j=1e-12, n_adcs=3, conversion_s=1e-8, clock_s=5e-9, mac_units=5,
        neuron_lanes=1)
    r = estimate_energy(c, p)
    assert r.rram_energy_j["cell_reads"] == pytest.approx(8 * 0.25 * 4e-6 * 1e-8)
    assert r.rram_energy_j["row_drivers"] == pytest.approx(2 * 2e-13)
    assert r.rram_energy_j["adc"] == pytest.approx(6 * 16 * 1e-14)
    assert r.rram_energy_j["neurons"] == pytest.approx(6 * 1e-12 * 0.5)
    assert r.rram_energy_j["projection"] == pytest.approx(6 * 1.2e-12 * 0.5)
    assert r.digital_energy_j["macs"] == pytest.approx(36 * 2e-13 * 0.5)
    assert r.digital_energy_j["weight_reads"] == pytest.approx(36 * 1e-12 * 0.5)
    assert r.rram_latency_s["adc"] == pytest.approx(1.5 * math.ceil(4 / 3) * 1e-8)
    assert r.rram_latency_s["neurons"] == pytest.approx(3 * 2 * 5e-9)
    assert r.digital_latency_s["macs"] == pytest.approx(3 * math.ceil(12 / 5) * 5e-9)
    assert r.energy_ratio == pytest.approx(r.digital_total_j / r.rram_total_j)
    d = r.to_dict()
    assert d["rram"]["energy_j"] == pytest.approx(r.rram_total_j)
    assert any(a.startswith("adc_bits = 4 [set by the caller]") for a in d["assumptions"])


def test_packaged_parameters_carry_a_source_for_every_value():
    p = load_energy_params()
    names = {n for n, _, _ in p.sources}
    assert "mac_int8_j" in names and "walden_fom_j_per_step" in names
    assert all(status in {"literature", "related work", "assumed", "measured"}
               for _, status, _ in p.sources)
    assert p.adc_conversion_j == pytest.approx(p.walden_fom_j_per_step * 2 ** p.adc_bits)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.integers(1, 5),
       st.integers(0, 2**32 - 1))
def test_sparse_activity_never_costs_the_rram_more_cell_reads_than_dense(b, t, n_in, n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((b, t, n_in)) < 0.5).astype(np.uint8)
    s = (rng.random((b, t, n)) < 0.5).astype(np.uint8)
    c = count_operations(x, s)
    # Dense reading of every row at every step is the upper bound (2 columns per neuron).
    assert 0 <= c.rram_cell_reads <= t * (n_in + n) * 2 * n
    assert c.rram_cell_reads <= 2 * c.digital_macs
    assert 0 <= c.active_steps <= t


def test_bad_input_gets_typed_errors(tmp_path):
    x, s = _hand_example()
    with pytest.raises(ShapeError):
        count_operations(x[:, :2], s)
    with pytest.raises(ShapeError):
        count_operations(x * 2, s)
    with pytest.raises(ConfigError):
        load_energy_params().replace(not_a_parameter=1.0)
    bad = tmp_path / "p.toml"
    bad.write_text("[adc]\nbits = 6\n")
    with pytest.raises(ConfigError, match="bits_source"):
        load_energy_params(bad)
