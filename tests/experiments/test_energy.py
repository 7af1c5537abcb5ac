"""Energy model: operation counts against a hand-worked example, energies against the formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rram_lsm.errors import ConfigError, ShapeError
from rram_lsm.app.experiments.energy import (count_operations, estimate_energy,
                                             load_energy_params, sum_passes)


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


def test_tiled_reservoir_counts_conversions_per_tile_and_partial_sums():
    x, s = _hand_example()
    # rows: inputs 0..3, then the two fed-back neurons 4..5; two row tiles, one column block
    tiles = [(0, 2, 0, 2), (2, 4, 0, 2)]
    c = count_operations(x, s, projection_dim=3, tiles=tiles)
    # sample 0: tile A (inputs 0,1) active at t0 (input 0) and t2 (input 0): 2 steps;
    # tile B (inputs 2,3 + neurons) active at t0 (input 3) and t1 (fed-back spike): 2 steps.
    # Conversions: (2 + 2) steps x 4 columns, over 2 samples; adds: both tiles read at t0
    # only, so 1 step x 2 pairs.
    assert c.adc_conversions == pytest.approx((2 + 2) * 4 / 2)
    assert c.partial_sum_adds == pytest.approx(1 * 2 / 2)
    assert count_operations(x, s, tiles=[(0, 6, 0, 2)]).adc_conversions == \
        count_operations(x, s).adc_conversions
    with pytest.raises(ShapeError, match="past"):
        count_operations(x, s, tiles=[(0, 2, 0, 2), (2, 9, 0, 2)])
    e = estimate_energy(c, load_energy_params())
    p = load_energy_params()
    assert e.rram_energy_j["partial_sums"] == pytest.approx(
        c.partial_sum_adds * p.add_int_j * p.scale_45_to_40nm)


def test_analogue_heads_are_priced_as_planes_tiles_and_conversions():
    x, s = _hand_example()
    c = count_operations(x, s, projection_dim=8, projection_in=300, head="analogue",
                         head_input_bits=6, head_tile_rows=128)
    assert c.head_planes == 12 and c.head_row_tiles == 3
    assert c.head_conversions == 12 * 3 * 2 * 8
    assert c.head_row_activations == pytest.approx(6 * 300 * 0.5)
    p = load_energy_params()
    e = estimate_energy(c, p)
    assert "projection" not in e.rram_energy_j
    assert e.rram_energy_j["projection_adc"] == pytest.approx(
        c.head_conversions * p.adc_conversion_j)
    digital = estimate_energy(count_operations(x, s, projection_dim=8, projection_in=300), p)
    # the digital baseline does not depend on where the co-design keeps its heads
    assert e.digital_total_j == pytest.approx(digital.digital_total_j)
    assert e.rram_energy_j["adc"] == digital.rram_energy_j["adc"]
    with pytest.raises(ConfigError):
        count_operations(x, s, head="optical")


def test_a_tiled_reservoir_is_priced_tile_by_tile():
    from lsm import preset
    from lsm.reservoir import TiledReservoir
    from rram_lsm.app.experiments.energy import measure_energy
    from rram_lsm.mapping import plan_tiles
    from rram_lsm.placement import TileAllocator
    from sim import SimMacro

    cfg = preset("nmnist", n_inputs=24, n_neurons=10, n_steps=12)
    alloc = TileAllocator((512, 512), 2)
    tilemap = plan_tiles("r", cfg.tile_shape[0], cfg.n_neurons, alloc, tile_rows=12,
                         tile_pairs=5)
    rng = np.random.default_rng(0)
    x = (rng.random((6, 12, 24)) < 0.2).astype(np.uint8)
    macros = {k: SimMacro(seed=1, macro_index=k) for k in tilemap.macros}
    try:
        res = TiledReservoir.setup_tiled(macros, cfg, tilemap)
        spikes = res.run(x)
        report = measure_energy(res, x, projection_dim=4, spikes=spikes)
    finally:
        for m in macros.values():
            m.close()
    tiles = [(p.row0, p.n_rows, p.pair0, p.n_pairs) for p in tilemap.parts]
    expected = count_operations(x, spikes, projection_dim=4, projection_in=10, tiles=tiles)
    assert len(tiles) == 3 * 2
    assert report.counts.adc_conversions == expected.adc_conversions
    assert report.counts.partial_sum_adds == expected.partial_sum_adds > 0
    # a row tile converts only on its own active steps: never more than one big tile x 3
    single = count_operations(x, spikes, projection_dim=4, projection_in=10)
    assert single.adc_conversions < report.counts.adc_conversions <= 3 * single.adc_conversions


def test_an_inference_of_two_passes_counts_both_and_one_head_reading_both():
    """FSDD's cochlea at two drives: the reservoir runs once per drive; its operations
    and steps add, the head runs once on both passes' features."""
    x, s = _hand_example()
    one = count_operations(x, s, projection_dim=3)
    assert sum_passes([one]) == one                      # one pass: the same counts
    louder = np.maximum(x, np.roll(x, 1, axis=2))        # more input events
    other = count_operations(louder, s, projection_dim=3)
    both = sum_passes([one, other])
    assert both.passes == 2 and both.steps == 6 and both.projection_in == 4
    assert both.input_events == one.input_events + other.input_events
    assert both.rram_cell_reads == one.rram_cell_reads + other.rram_cell_reads
    assert both.neuron_updates == 2 * one.neuron_updates
    assert both.digital_macs == 2 * one.digital_macs
    assert both.projection_macs == 2 * one.projection_macs   # one head, twice the inputs
    p = load_energy_params()
    e1, e2, e = (estimate_energy(c, p) for c in (one, other, both))
    assert e.rram_energy_j["adc"] == pytest.approx(e1.rram_energy_j["adc"]
                                                   + e2.rram_energy_j["adc"])
    # a head on twice the inputs costs both halves' MACs: every energy adds up
    assert e.rram_total_j == pytest.approx(e1.rram_total_j + e2.rram_total_j)
    assert e.digital_total_j == pytest.approx(e1.digital_total_j + e2.digital_total_j)
    with pytest.raises(ConfigError, match="n_neurons"):
        sum_passes([one, count_operations(x, np.zeros((2, 3, 5), np.uint8))])
    with pytest.raises(ConfigError, match="at least one"):
        sum_passes([])


def test_energy_of_real_fsdd_counts_the_pairs_two_drives(tmp_path, monkeypatch):
    from rram_lsm.app.cli import main
    from rram_lsm.app.experiments.runfile import argv_from_record, recorded_drives
    from rram_lsm.records import read_record

    from ..events.test_datasets import make_fsdd, make_nmnist

    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "cache"))
    root = make_fsdd(make_nmnist(tmp_path / "data", n_train=2, n_test=1))
    base = ["energy", "--dataset", "fsdd", "--data-dir", str(root), "--samples", "4",
            "--heads", "digital", "--no-progress"]
    records = {}
    for name, extra in (("default", []), ("one", ["--cochlea-gain", "utterance"])):
        assert main(base + extra + ["--json", str(tmp_path / f"{name}.json")]) == 0
        records[name] = read_record(tmp_path / f"{name}.json")
    two, one = records["default"], records["one"]
    assert two["data"]["fsdd"]["cochlea_gain_per_s"] == [875.0, 1750.0]
    assert two["config"]["cochlea_gain"] == [875.0, 1750.0]   # pinned for reruns
    assert one["data"]["fsdd"]["cochlea_gain_per_s"] == [875.0]
    c2, c1 = two["fsdd"]["counts"], one["fsdd"]["counts"]
    assert (c2["passes"], c1["passes"]) == (2, 1)
    assert c2["steps"] == 2 * c1["steps"] and c2["projection_in"] == 2 * c1["projection_in"]
    assert c2["input_events"] > 2 * c1["input_events"]        # the second drive is louder
    assert two["fsdd"]["rram"]["energy_j"] > one["fsdd"]["rram"]["energy_j"]
    # a record written before energy counted the drives reruns at the one drive it read
    old = {**one, "config": {k: v for k, v in one["config"].items() if k != "cochlea_gain"},
           "data": {"fsdd": {"synthetic": False, "samples": 4}}}
    assert recorded_drives(old) == [875.0]
    argv = argv_from_record(old)
    assert argv[argv.index("--cochlea-gain") + 1] == "875.0"
    assert recorded_drives(two) is None

    # N-MNIST has one front end: no drives to pin, and none to set
    image = ["energy", "--dataset", "nmnist", "--data-dir", str(root), "--samples", "2",
             "--heads", "digital", "--no-progress", "--json", str(tmp_path / "n.json")]
    assert main(image) == 0
    n = read_record(tmp_path / "n.json")
    assert n["config"]["cochlea_gain"] is None and n["nmnist"]["counts"]["passes"] == 1
    assert main(image + ["--cochlea-gain", "speech"]) == 1     # a ConfigError, said plainly
