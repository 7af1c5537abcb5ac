"""encode_pair and rram-lsm zeroshot on other reservoirs than the paper's (issue 17)."""
from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from rram_lsm.app.features import encode_pair, lsm_config_for, pair_configs
from rram_lsm.errors import ConfigError


@pytest.fixture
def synthetic(monkeypatch):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)


def test_no_reservoir_option_keeps_the_presets_and_their_cache_entries(synthetic):
    assert pair_configs("fsdd") == {"nmnist": None, "fsdd": None}
    first = encode_pair(None, kind="counts+input", progress=False)
    again = encode_pair(None, kind="counts+input", progress=False)
    assert again.meta["image"]["cache"] == again.meta["audio"]["cache"] == "hit"
    assert again.meta["audio"]["cache_key"] == first.meta["audio"]["cache_key"]
    assert first.meta["reservoirs"]["audio"]["n_neurons"] == 200
    assert first.meta["reservoirs"]["image"]["n_inputs"] == 256


def test_a_larger_audio_reservoir_changes_only_the_audio_side(synthetic):
    base = encode_pair(None, kind="counts+input", progress=False)
    big = encode_pair(None, kind="counts+input", progress=False, audio_neurons=300)
    assert big.meta["feature_blocks"]["audio"] == {"counts": [0, 300], "input": [300, 364]}
    assert big.meta["reservoirs"]["audio"]["n_neurons"] == 300
    np.testing.assert_array_equal(big.image_values, base.image_values)
    np.testing.assert_array_equal(big.select_kind("input").audio_values,
                                  base.select_kind("input").audio_values)
    assert big.meta["audio"]["cache_key"] != base.meta["audio"]["cache_key"]
    assert big.meta["audio"]["lsm_config"]["n_neurons"] == 300


def test_the_full_sensor_image_reservoir_is_split_over_tiles(synthetic):
    pair = encode_pair(None, kind="counts+input", progress=False, image_input="full",
                       image_neurons=100)
    assert pair.meta["reservoirs"]["image"] == {"preset": "nmnist-full-tuned",
                                                "n_inputs": 2312, "n_neurons": 100,
                                                "n_steps": 50}
    assert pair.meta["feature_blocks"]["image"] == {"counts": [0, 100],
                                                    "input": [100, 2412]}
    tiled = [t for t in pair.meta["chip"]["tiles"] if "tiled" in t]
    assert [t["name"] for t in tiled] == ["nmnist"]


def test_config_is_the_one_rram_lsm_encode_builds():
    from rram_lsm.app.commands.lsm import _lsm_config

    for dataset, inp, n in (("fsdd", None, 1000), ("nmnist", "full", 500),
                            ("nmnist", None, None)):
        args = argparse.Namespace(dataset=dataset, input=inp, neurons=n, regime=None)
        assert lsm_config_for(dataset, inp, n) == _lsm_config(args)
    with pytest.raises(ConfigError, match=">= 1"):
        lsm_config_for("fsdd", None, 0)


def test_zeroshot_cli_takes_the_reservoir_options(synthetic, capsys):
    from rram_lsm.app.cli import main

    assert main(["zeroshot", "--audio-neurons", "0", "--method", "raw", "--shots", "1"]) == 1
    assert "--audio-neurons must be >= 1" in capsys.readouterr().err
    assert main(["zeroshot", "--features", "x.npz", "--audio-neurons", "300"]) == 1
    assert "already encoded" in capsys.readouterr().err


def test_the_default_encoding_serves_the_default_recipe(synthetic):
    """The README's two lines: ``encode_pair(root)`` then ``run_protocol(data,
    "default")``; data of another kind say which kind serves the whole recipe."""
    from projections import METHODS
    from projections.protocol import _transformed

    cfg = METHODS["default"]
    data = encode_pair(None, progress=False)
    assert data.meta["feature_kind"] == cfg.encoded_kind
    x_i, x_a, f_i, f_a = _transformed(data, cfg)
    assert x_a.shape[1] != f_a.shape[1]   # heads and few-shot read two kinds of it
    partial = encode_pair(None, kind="counts+input", progress=False)
    with pytest.raises(ConfigError, match=re.escape(f"encode_pair(kind='{cfg.encoded_kind}')")):
        _transformed(partial, cfg)
