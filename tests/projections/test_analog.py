"""The analogue forward of a projection head and hardware-aware training."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from projections import get_method
from projections.analog import (AnalogDeviceConfig, analog_head_forward, analog_linear,
                                input_planes, noise_generator, train_heads_analog)
from projections.heads import ProjectionHead
from rram_lsm.errors import ConfigError


def _layer(n_in=40, n_out=12, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g, dtype=torch.float64)
    w = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    b = torch.randn(n_out, generator=g, dtype=torch.float64)
    return x, w, b


@pytest.mark.parametrize("tile_rows", [7, 128])
def test_ideal_device_is_the_digital_linear(tile_rows):
    x, w, b = _layer()
    y = analog_linear(x, w, b, AnalogDeviceConfig(tile_rows=tile_rows))
    assert torch.allclose(y, F.linear(x, w, b), atol=1e-10)


def test_bit_serial_planes_rebuild_the_clipped_input():
    x, _, _ = _layer()
    x_max, bits = 1.5, 8
    planes = input_planes(x, bits, x_max)
    assert len(planes) == 2 * bits
    for plane, _ in planes:
        assert set(torch.unique(plane).tolist()) <= {0.0, 1.0}
    rebuilt = sum(weight * plane for plane, weight in planes)
    step = x_max / (2 ** bits - 1)
    assert torch.max(torch.abs(rebuilt - x.clamp(-x_max, x_max))) <= step / 2 + 1e-12
    # and the analogue forward with quantised inputs is the linear of the rebuilt input
    _, w, b = _layer()
    y = analog_linear(x, w, b, AnalogDeviceConfig(input_bits=bits), x_max)
    assert torch.allclose(y, F.linear(rebuilt, w, b), atol=1e-9)


def test_finite_adc_quantises_each_tile_and_passes_gradients_straight_through():
    x, w, b = _layer()
    cfg = AnalogDeviceConfig(adc_bits=6, adc_full_scale_ua=400.0, tile_rows=16)
    w = w.clone().requires_grad_(True)
    y = analog_linear(x.abs(), w, None, cfg)
    ideal = F.linear(x.abs(), w)
    err = (y - ideal).abs().max().item()
    # per-tile differential columns, each rounded to half an LSB: bound the error
    k = (cfg.g_max_us - cfg.g_min_us) / w.detach().abs().max().item()
    bound = 3 * 2 * (cfg.adc_lsb_ua / 2) / (cfg.read_voltage_v * k)
    assert 0 < err <= bound
    y.sum().backward()
    g_analog = w.grad.clone()
    w.grad = None
    ideal.sum().backward()
    assert torch.allclose(g_analog, w.grad, rtol=1e-6, atol=1e-9)


def test_noise_needs_a_generator_and_streams_are_reproducible():
    x, w, b = _layer()
    cfg = AnalogDeviceConfig(prog_noise_us=0.5, read_noise_rel=0.02)
    with pytest.raises(ConfigError, match="Generator"):
        analog_linear(x, w, b, cfg)
    a = analog_linear(x, w, b, cfg, gen=noise_generator(3, "hwa_train"))
    again = analog_linear(x, w, b, cfg, gen=noise_generator(3, "hwa_train"))
    other_stream = analog_linear(x, w, b, cfg, gen=noise_generator(3, "other"))
    other_chip = analog_linear(x, w, b, cfg, gen=noise_generator(4, "hwa_train"))
    assert torch.equal(a, again)
    assert not torch.equal(a, other_stream) and not torch.equal(a, other_chip)
    assert not torch.allclose(a, F.linear(x, w, b), atol=1e-3)


def test_drift_shrinks_outputs_by_the_power_law_and_compensation_undoes_it():
    x, w, b = _layer()
    age, nu = 3.15e8, 0.02
    drift = AnalogDeviceConfig(drift_nu_mean=nu, age_s=age)
    gen = noise_generator(0, "drift")
    y = analog_linear(x, w, None, drift, gen=gen)
    assert torch.allclose(y, F.linear(x, w) * age ** -nu, atol=1e-9)
    comp = analog_linear(x, w, None, drift.at_age(age).__class__(
        drift_nu_mean=nu, age_s=age, drift_compensation=True), gen=gen)
    assert torch.allclose(comp, F.linear(x, w), atol=1e-9)
    # before the reference time nothing drifts
    assert torch.allclose(analog_linear(x, w, b, drift.at_age(0.5), gen=gen),
                          F.linear(x, w, b), atol=1e-10)


def test_config_rejects_impossible_devices():
    with pytest.raises(ConfigError):
        AnalogDeviceConfig(g_min_us=5.0, g_max_us=1.0)
    with pytest.raises(ConfigError):
        AnalogDeviceConfig(adc_bits=0)
    with pytest.raises(ConfigError):
        AnalogDeviceConfig(tile_rows=0)


def test_head_forward_ideal_equals_the_digital_head():
    g = torch.Generator().manual_seed(1)
    head = ProjectionHead(30, 8, "fc_gelu", generator=g)
    x = torch.randn(10, 30, generator=g)
    head.set_standardisation(x)
    with torch.no_grad():
        assert torch.allclose(analog_head_forward(head, x, AnalogDeviceConfig(), [1.0]),
                              head(x), atol=1e-5)


def _train(synthetic, device, seed=0, stream=0):
    from projections.protocol import _method, _prepare

    cfg = _method(get_method("default")).replace(epochs=4)
    plan = _prepare(synthetic, (1, 2, 3, 4, 5, 6, 7), (8, 9), cfg, seed, 0.2)
    d, sp = plan.data, plan.sp
    train = sp.pairs("train", d.image_labels, d.audio_labels)
    val = sp.pairs("val", d.image_labels, d.audio_labels)
    return train_heads_analog(cfg, device, plan.x_i, plan.x_a, train, val, d.image_labels,
                              d.audio_labels, seed=seed,
                              noise=noise_generator(stream, "hwa_train"))


NOISY = AnalogDeviceConfig(prog_noise_us=0.4, read_noise_rel=0.02, adc_bits=8,
                           input_bits=6, drift_nu_mean=0.01, drift_nu_std=0.005,
                           age_s=86400.0)


def test_hardware_aware_training_is_reproducible_from_its_seeds(kinded):
    a, b = _train(kinded, NOISY), _train(kinded, NOISY)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert a.curves == b.curves
    assert a.model.input_ranges == b.model.input_ranges
    c = _train(kinded, NOISY, stream=1)
    assert c.curves["train_loss"] != a.curves["train_loss"]
    assert math.isfinite(a.curves["train_loss"][-1]) and a.best_epoch >= 1


def test_training_rejects_pairs_of_different_classes(synthetic):
    cfg = get_method("default")
    labels = synthetic.image_labels
    i0 = int(np.flatnonzero(labels == 1)[0])
    j0 = int(np.flatnonzero(synthetic.audio_labels == 2)[0])
    with pytest.raises(ConfigError, match="same class"):
        train_heads_analog(cfg, AnalogDeviceConfig(), synthetic.image_values,
                           synthetic.audio_values, ([i0, i0], [j0, j0]), ([i0], [j0]),
                           labels, synthetic.audio_labels)
