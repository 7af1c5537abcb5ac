"""Input presets: N-MNIST full resolution beside the paper's crop, larger reservoirs, and the
``--input`` / ``--neurons`` options, on small files in the real N-MNIST format."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lsm import preset
from lsm.data import open_dataset
from lsm.data.datasets import INPUTS, raster_preset
from lsm.reservoir import PRESETS, preset_for, preset_input
from rram_lsm.app.cli import main
from rram_lsm.errors import ConfigError

from .conftest import write_nmnist_tree


@pytest.fixture
def nmnist_dir(tmp_path):
    """A tiny N-MNIST in the original layout and binary format: per class 3 train and 1
    test file; file k of class c has one ON event at (c, 0), one OFF event at (33, 33) and
    one ON event in the centre at (17, 17)."""
    write_nmnist_tree(tmp_path / "data" / "nmnist", lambda split, c, k: (
        [c, 33, 17], [0, 33, 17], [True, False, True], [1000, 2000, 49_000 + k]))
    return tmp_path / "data"


def test_presets_name_their_inputs_and_sizes():
    full = preset("nmnist-full")
    assert (full.n_inputs, full.n_neurons) == (2312, 1000)
    assert full.tile_shape == (3312, 2000)
    assert preset("nmnist").n_inputs == raster_preset("nmnist", "crop").n_inputs == 256
    assert raster_preset("nmnist", "full").n_inputs == 2 * 34 * 34
    assert preset("fsdd-large").n_neurons == 1000 and preset("fsdd-large").n_inputs == 64
    for name in PRESETS:
        dataset = name.split("-")[0]
        # every preset's input is a front end of its dataset with the preset's width
        assert raster_preset(dataset, preset_input(name)).n_inputs == preset(name).n_inputs
    assert preset_for("nmnist", "full") == "nmnist-full"
    assert preset_for("nmnist", None) == preset_for("nmnist", "crop") == "nmnist"
    assert preset_for("fsdd") == "fsdd"
    with pytest.raises(ConfigError, match="no input 'full'"):
        preset_for("fsdd", "full")
    with pytest.raises(ConfigError, match="no input 'half'"):
        raster_preset("nmnist", "half")
    with pytest.raises(ConfigError, match="unknown LSM preset"):
        preset("nmnist-huge")
    assert set(INPUTS) == {"nmnist", "fsdd", "ntidigits"}


def test_full_input_keeps_every_pixel_and_both_polarities(nmnist_dir):
    full = open_dataset("nmnist", nmnist_dir, progress=False, input="full")
    crop = open_dataset("nmnist", nmnist_dir, progress=False)
    assert full.fingerprint() != crop.fingerprint()  # the front end enters cache keys
    rf = full.rasters(progress=False)
    rc = crop.rasters(progress=False)
    assert rf.shape == (40, 50, 2312) and rc.shape == (40, 50, 256)
    on = 34 * 34  # OFF inputs first, then ON
    for i, label in enumerate(full.labels):
        active = set(np.flatnonzero(rf[i].any(axis=0)))
        assert active == {on + label, 33 * 34 + 33, on + 17 * 34 + 17}
        # the crop keeps only the centre ON event: (17, 17) -> (8, 8) of 16 x 16
        assert set(np.flatnonzero(rc[i].any(axis=0))) == {8 * 16 + 8}
    with pytest.raises(ConfigError, match="no input"):
        open_dataset("nmnist", nmnist_dir, input="both")


def test_encode_cli_full_input_on_many_tiles(nmnist_dir, tmp_path):
    out = tmp_path / "enc.json"
    assert main(["encode", "--dataset", "nmnist", "--data-dir", str(nmnist_dir), "--input",
                 "full", "--neurons", "20", "--no-progress", "--no-cache", "--json",
                 str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["n_features"] == 20 and record["synthetic"] is False
    assert record["config"]["input"] == "full"
    # 2,332 rows do not fit one 512-row array: the reservoir is split over 5 tiles
    tiled = [t for t in record["chip"]["tiles"] if "tiled" in t]
    assert len(tiled) == 1 and tiled[0]["tiled"]["blocks"] == [5, 1]
    assert tiled[0]["tiled"]["shape"] == [2332, 40]
