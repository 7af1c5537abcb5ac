"""Chip sessions and tile placement: disjoint tiles, formed once, recorded in every result."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsm import EncodeOptions, preset
from rram_lsm.errors import ConfigError, PlacementError
from rram_lsm.placement import TileAllocator
from rram_lsm.app.features import encode, encode_pair, open_data
from rram_lsm.app.session import ChipSession


@pytest.fixture
def synthetic(monkeypatch):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)


def _cells(placements, shape):
    """Per macro, how many tiles cover each cell."""
    out = {}
    for p in placements:
        grid = out.setdefault(p.macro, np.zeros(shape, np.int32))
        grid[p.region.slices] += 1
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=1,
                max_size=12), st.integers(1, 3))
def test_first_fit_never_overlaps_and_never_leaves_the_array(shapes, max_macros):
    alloc = TileAllocator((512, 512), max_macros)
    for k, shape in enumerate(shapes):
        try:
            alloc.place(f"t{k}", shape)
        except PlacementError as exc:
            assert "no free" in str(exc)
    for grid in _cells(alloc.placements, (512, 512)).values():
        assert grid.max() <= 1
    for p in alloc.placements:
        r = p.region
        assert 0 <= p.macro < max_macros and r.row0 >= 0 and r.col0 >= 0
        assert r.row0 + r.rows <= 512 and r.col0 + r.cols <= 512


def test_explicit_regions_are_checked():
    alloc = TileAllocator((512, 512), 2)
    alloc.place("image", (456, 400))
    with pytest.raises(PlacementError, match="overlaps image"):
        alloc.place("audio", (264, 400), macro=0, region=(200, 0, 264, 400))
    with pytest.raises(PlacementError, match="leaves"):
        alloc.place("audio", (264, 400), macro=1, region=(300, 0, 264, 400))
    with pytest.raises(PlacementError, match="does not exist"):
        alloc.place("audio", (264, 400), macro=2, region=(0, 0, 264, 400))
    with pytest.raises(PlacementError, match="larger than one"):
        alloc.place("huge", (600, 10))
    with pytest.raises(ConfigError, match="already placed"):
        alloc.place("image", (10, 10))
    # the image tile leaves 512 x 112 columns free on macro 0: a narrow tile goes there
    assert alloc.place("narrow", (512, 100)).region.col0 == 400
    assert alloc.place("audio", (264, 400)).macro == 1
    assert alloc.to_dict()["macros_used"] == 2


def test_session_forms_each_tile_once_on_disjoint_cells():
    with ChipSession("sim", chip_seed=0) as chip:
        image = chip.reservoir("nmnist", preset("nmnist"))
        audio = chip.reservoir("fsdd", preset("fsdd"))
        assert chip.reservoir("nmnist", preset("nmnist")) is image  # formed once
        with pytest.raises(ConfigError, match="another config"):
            chip.reservoir("nmnist", preset("nmnist", n_neurons=100))
        record = chip.record()
    assert image.macro is not audio.macro
    assert [t["macro"] for t in record["tiles"]] == [0, 1]
    assert record["tiles"][1]["region"] == [0, 0, 264, 400]
    assert set(record["macros"]) == {"0", "1"}
    assert record["macros"]["1"]["macro_index"] == 1
    assert record["tiles"][0]["forming"]["voltage_v"] == image.forming.voltage_v


def test_a_single_port_chip_refuses_a_second_tile_that_does_not_fit():
    with ChipSession("sim", chip_seed=0, max_macros=1) as chip:
        chip.reservoir("nmnist", preset("nmnist"))
        with pytest.raises(PlacementError, match="no free 264 x 400"):
            chip.reservoir("fsdd", preset("fsdd"))


def test_encode_pair_records_blocks_and_placement(synthetic):
    both = encode_pair(None, kind="counts+input", progress=False)
    assert both.meta["feature_blocks"] == {
        "image": {"counts": [0, 200], "input": [200, 456]},
        "audio": {"counts": [0, 200], "input": [200, 264]}}
    tiles = both.meta["chip"]["tiles"]
    assert [(t["name"], t["macro"]) for t in tiles] == [("nmnist", 0), ("fsdd", 1)]
    fsdd = open_data("fsdd", None, progress=False)
    with ChipSession("sim", chip_seed=0) as chip:
        inputs = encode(chip, "fsdd", fsdd, options=EncodeOptions(kind="input", progress=False))
        # the floorplan puts fsdd on the same tile alone as in the pair
        alone = encode(chip, "fsdd", fsdd, options=EncodeOptions(progress=False))
    np.testing.assert_array_equal(both.select_kind("input").audio_values, inputs.values)
    np.testing.assert_array_equal(both.select_kind("counts").audio_values, alone.values)


def test_demo_on_the_emulator_places_disjoint_tiles_and_forms_each_once(tmp_path,
                                                                         monkeypatch):
    """The physical-chip dry run: every command goes over a pseudo-terminal; the FORM
    commands on each macro's wire are exactly one forming sweep of its tile."""
    import json

    from rram_lsm.app.cli import main

    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--backend", "emulator", "--quick", "--no-progress",
                 "--out", str(out)]) == 0
    placement = json.loads((out / "results.json").read_text())["placement"]
    tiles = {t["name"]: t for t in placement["tiles"]}
    assert set(tiles) == {"nmnist", "fsdd"}
    assert tiles["nmnist"]["macro"] != tiles["fsdd"]["macro"]
    for t in tiles.values():
        wire = placement["macros"][str(t["macro"])]["wire_commands"]
        assert wire["FORM"] == t["forming"]["pulses"] >= 1
        assert placement["macros"][str(t["macro"])]["backend"] == "emulator"


def test_a_reservoir_larger_than_an_array_is_tiled_over_macros(synthetic):
    """Full-resolution N-MNIST (34 x 34, both polarities: 2,312 inputs) into 300 neurons:
    2,612 x 600 cells, more than one 512 x 512 array. The session splits it over tiles of
    several macros, forms each once, and the features equal the reference loop over the
    assembled matrix."""
    import dataclasses

    from lsm.events import VisionRasterConfig
    from lsm.reservoir import TiledReservoir
    from sim import load_profile
    from sim.profile import AdcConfig

    ideal = dataclasses.replace(load_profile(None).noise_free(), adc=AdcConfig(bits=None))
    cfg = preset("nmnist", n_inputs=2312, n_neurons=300)
    ds = open_data("nmnist", None, progress=False)
    rasters = ds.rasters(VisionRasterConfig(crop_px=(34, 34), polarity="both"),
                         progress=False, indices=np.arange(12))
    with ChipSession("sim", chip_seed=0, profile=ideal) as chip:
        res = chip.reservoir("nmnist", cfg)
        assert isinstance(res, TiledReservoir)
        tm = res.tilemap
        assert tm.n_row_blocks == 6 and tm.n_col_blocks == 2 and len(tm.macros) > 1
        spikes = res.run(rasters)
        w_in, w_rec = res.weights()
        record = chip.record()
    assert spikes.mean() > 0.001
    tiles = [t for t in record["tiles"] if "tiled" in t]
    assert len(tiles) == 1 and len(tiles[0]["tiled"]["parts"]) == 12
    # the same network in float64 software (noise off, ideal ADC): the chip's partial sums
    # of currents agree with the sums of weights to rounding, so the spikes do too
    v = np.zeros((12, 300))
    s = np.zeros((12, 300))
    soft = np.zeros_like(spikes)
    for t in range(cfg.n_steps):
        v = cfg.decay * v * (1 - s) + rasters[:, t] @ w_in + s @ w_rec
        s = (v > cfg.threshold).astype(float)
        soft[:, t] = s
    assert np.mean(soft == spikes) > 0.999
