import numpy as np
import pytest

from projections import METHODS
from projections.baselines import (SpikingConfig, SpikingEncoder, compare_training_cost,
                                   training_cost)
from rram_lsm.errors import ConfigError


def test_spiking_flops_formula():
    enc = SpikingEncoder(10, SpikingConfig(hidden=4, dim=3))
    # per step: 2*10*4 input + 2*4*4 recurrent + 5*4 LIF; readout 2*4*3 once
    assert enc.flops_per_sample(7) == 7 * (80 + 32 + 20) + 24


def test_training_cost_ratios():
    class Ours:
        train_flops, wall_s = 1000, 2.0

    class Base:
        flops, wall_s, epochs = 50_000, 30.0, 5

    out = training_cost(Ours, Base, ours_epochs=100)
    assert out["ratio_flops_total"] == pytest.approx(50.0)
    assert out["ratio_flops_per_epoch"] == pytest.approx((50_000 / 5) / (1000 / 100))
    assert out["ratio_wall_s_total"] == pytest.approx(15.0)


def test_compare_training_cost_on_tiny_rasters(synthetic):
    rng = np.random.default_rng(0)
    ri = (rng.random((len(synthetic.image_labels), 6, 5)) < 0.3).astype(np.uint8)
    ra = (rng.random((len(synthetic.audio_labels), 8, 4)) < 0.3).astype(np.uint8)
    out = compare_training_cost(synthetic, ri, ra, METHODS["paper"].replace(epochs=3),
                                spiking=SpikingConfig(hidden=8, dim=4, epochs=1))
    n = out["n_train_pairs"]
    per_pair = (6 * (2 * 5 * 8 + 2 * 8 * 8 + 40) + 2 * 8 * 4) + \
               (8 * (2 * 4 * 8 + 2 * 8 * 8 + 40) + 2 * 8 * 4)
    assert out["spiking_rnn"]["flops"] == 3 * n * per_pair + 3 * n * 2 * 64 * 4
    assert out["ours"]["epochs"] == 3 and out["spiking_rnn"]["epochs"] == 1
    for who in ("ours", "spiking_rnn"):
        assert 0.0 <= out[who]["unseen_audio_to_image_top1"] <= 1.0
    with pytest.raises(ConfigError):
        compare_training_cost(synthetic, ri[:5], ra, "paper")
