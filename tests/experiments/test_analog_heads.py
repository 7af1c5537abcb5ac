"""Projection heads programmed onto macro tiles: mapping, ageing, the study and its CLI."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from projections.analog import AnalogDeviceConfig
from projections.heads import DualEncoder
from rram_lsm.app.cli import main
from rram_lsm.app.experiments.analog_heads import (device_config, map_heads,
                                                   program_linear, run_analog_study)
from rram_lsm.app.session import ChipSession
from rram_lsm.errors import ConfigError
from sim import DeviceProfile, SimMacro, load_profile


def _ideal_profile() -> DeviceProfile:
    """No noise, no defects, no drift, ideal ADC, one write-verify pulse hits its target
    (to the cell's conductance grid)."""
    p = load_profile(None).noise_free()
    return replace(p, program=replace(p.program, step_fraction=1.0, stall_fraction=0.0),
                   stuck=replace(p.stuck, open_fraction=0.0, high_fraction=0.0),
                   drift=replace(p.drift, nu_mean=0.0, nu_std=0.0),
                   adc=replace(p.adc, bits=None))


def _model(seed=0, image_dim=150, audio_dim=40):
    g = torch.Generator().manual_seed(seed)
    model = DualEncoder(image_dim, audio_dim, 16, "fc_gelu", generator=g)
    xi = torch.randn(30, image_dim, generator=g) * 3 + 1
    xa = torch.randn(30, audio_dim, generator=g) * 2
    model.image.set_standardisation(xi)
    model.audio.set_standardisation(xa)
    return model.eval(), xi, xa


def _ranges(model, xi, xa):
    with torch.no_grad():
        return {"image": [float(((xi - model.image.mean) / model.image.std).abs().max())],
                "audio": [float(((xa - model.audio.mean) / model.audio.std).abs().max())]}


def test_ideal_device_gives_the_digital_heads():
    model, xi, xa = _model()
    profile = _ideal_profile()
    device = device_config(profile, noise=False, input_bits=None, tile_rows=64)
    with ChipSession("sim", chip_seed=0, profile=profile) as session:
        tol = SimMacro.conductance_step_us
        mapped = map_heads(session, model, device, _ranges(model, xi, xa), tolerance_us=tol)
        assert mapped.tile_count() == 3 + 1  # image: 150 rows over 3 tiles; audio: 1
        with torch.no_grad():
            for m, x in (("image", xi), ("audio", xa)):
                digital = getattr(model, m)(x).numpy()
                # the one error left is write-verify's tolerance, set to the sim's
                # conductance grid (2^-10 µS per cell, two per pair): bound its effect
                grid_w = 2 * tol / mapped.heads[m][1][0].k_us
                xs = ((x - getattr(model, m).mean) / getattr(model, m).std).abs()
                bound = float(grid_w * xs.sum(1).max()) / float(
                    torch.linalg.norm(getattr(model, m).fc1(x), dim=1).min())
                err = np.abs(mapped.embed(x.numpy(), m) - digital).max()
                assert err <= bound, (m, err, bound)
                assert bound < 2e-3
        # the tiles sit apart on the chip and the record says where
        names = [n for lay in mapped.programming.values() for n in lay["placement"]]
        assert len(set(names)) == 4
        assert all(lay["weight_rms_error"] < 1e-3 * lay["weight_rms"]
                   for lay in mapped.programming.values())


def test_quantised_inputs_and_finite_adc_on_the_sim_match_the_torch_model():
    """The sim's per-tile ADC and the bit-serial planes do what projections.analog says."""
    from projections.analog import analog_linear

    model, xi, _ = _model(image_dim=100)
    profile = replace(_ideal_profile(), adc=replace(load_profile(None).adc, bits=8))
    device = device_config(profile, noise=False, input_bits=4, tile_rows=50)
    lin = model.image.fc1
    xs = ((xi - model.image.mean) / model.image.std).double()
    with ChipSession("sim", chip_seed=1, profile=profile) as session:
        mapped = program_linear(session.macro, session.allocator, "fc", lin.weight.detach()
                                .double().numpy().T, None, device, 2.0,
                                tolerance_us=SimMacro.conductance_step_us)
        on_chip = mapped.apply(xs.numpy())
    with torch.no_grad():
        model_out = analog_linear(xs, lin.weight.double(), None, device, 2.0).numpy()
        exact = (xs @ lin.weight.double().T).numpy()
    # equal but where a column current sits on an ADC code boundary and the cells' grid
    # error tips it over: then by one code of one plane
    diff = np.abs(on_chip - model_out)
    one_code = device.adc_lsb_ua * 2.0 / (device.read_voltage_v * mapped.k_us)  # top plane
    assert np.mean(diff < 1e-9) > 0.95 and diff.max() <= 2 * one_code
    assert not np.allclose(on_chip, exact, atol=1e-3)  # the quantisation is really there


def test_heads_age_on_the_chip_and_compensation_recovers_the_scale():
    model, xi, xa = _model(seed=2)
    p = load_profile(None)
    profile = replace(_ideal_profile(), drift=p.drift)  # drift only
    device = device_config(profile, noise=False, input_bits=None, drift_compensation=True)
    plain = replace(device, drift_compensation=False)
    x = xi.numpy()
    with ChipSession("sim", chip_seed=0, profile=profile) as session:
        mapped = map_heads(session, model, device, _ranges(model, xi, xa))
        fresh_scale = mapped.drift_scale()
        lay = mapped.heads["image"][1][0]
        xs = (x - model.image.mean.numpy()) / model.image.std.numpy()
        fresh = lay.apply(xs) - lay.bias
        session.age(3.15e8)
        aged = lay.apply(xs) - lay.bias
        scale = mapped.drift_scale()
    assert fresh_scale == pytest.approx(1.0)
    expected = 3.15e8 ** -p.drift.nu_mean
    ratio = float(np.median(aged / fresh))
    assert ratio == pytest.approx(expected, rel=0.05)
    assert scale == pytest.approx(expected, rel=0.05)
    # compensation divides the analogue part by the reference column's factor: the
    # global shrink goes, the per-cell spread of the exponent stays
    rms = lambda a: float(np.sqrt(np.mean(a ** 2)))  # noqa: E731
    assert rms(aged / scale - fresh) < 0.5 * rms(aged - fresh)
    assert rms(aged / scale - fresh) > 1e-3 * rms(fresh)
    assert not plain.drift_compensation


def _paired(per_class=16, dim=24, seed=0):
    """Both modalities a fixed linear map of a per-class latent code, plus noise."""
    from projections import PairedFeatures

    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(10, 4))
    labels = np.repeat(np.arange(10), per_class)
    is_test = np.tile(np.arange(per_class) >= per_class * 3 // 4, 10)
    out = []
    for _ in ("image", "audio"):
        v = codes[labels] @ rng.normal(size=(4, dim))
        v = (v + 0.3 * v.std() * rng.normal(size=v.shape)).astype(np.float32)
        out += [v, labels, is_test]
    return PairedFeatures(*out, meta={"synthetic": True})


def test_study_is_reproducible_and_reports_every_kind_and_age():
    from projections import get_method

    data = _paired()
    method = get_method("default").replace(epochs=3)
    kw = dict(seen=(1, 2, 3, 4, 5, 6, 7), unseen=(8, 9), seeds=[0], chip_seeds=[0],
              ages_s=(1.0, 3.15e8), shots=(1,), episodes=3, hwa_epochs=2)
    a = run_analog_study(data, method, **kw)
    b = run_analog_study(data, method, **kw)
    assert json.dumps(a["runs"]) == json.dumps(b["runs"])
    keys = set(a["summary"])
    assert {"digital", "plain@1", "plain@3.15e+08", "hw_aware@1",
            "hw_aware@3.15e+08"} <= keys
    for row in a["runs"]:
        assert 0.0 <= row["seen_a2i_top1"] <= 1.0 and "fewshot1_a2i_top1" in row
    assert a["programming"][0]["tiles"] >= 2
    with pytest.raises(ConfigError, match="real time"):
        run_analog_study(data, method, backend="serial:loop://", **kw)


def test_cli_writes_the_study_and_rejects_bad_combinations(tmp_path, capsys):
    from projections.data import save_npz

    out, features = tmp_path / "heads.json", tmp_path / "features.npz"
    save_npz(_paired(), features)
    rc = main(["zeroshot", "--features", str(features), "--heads", "analogue", "--hw-aware",
               "--epochs", "2", "--hwa-epochs", "2",
               "--chip-seeds", "0", "--ages", "1", "86400", "--shots", "1",
               "--episodes", "2", "--json", str(out), "--plots", str(tmp_path),
               "--no-progress"])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert rec["command"] == "zeroshot" and rec["config"]["heads"] == "analogue"
    assert "hw_aware@86400" in rec["summary"] and rec["data"]["n_image"] == 160
    assert (tmp_path / "accuracy_vs_age.png").stat().st_size > 1000
    text = capsys.readouterr().out
    assert "hw_aware" in text and "digital" in text
    capsys.readouterr()
    assert main(["zeroshot", "--hw-aware", "--no-progress"]) == 1
    assert "--heads analogue" in capsys.readouterr().err
    assert main(["zeroshot", "--heads", "analogue", "--splits", "3", "--no-progress"]) == 1
    assert "--splits" in capsys.readouterr().err


def test_config_validation():
    with pytest.raises(ConfigError):
        AnalogDeviceConfig(input_quantile=0.1)


def test_heads_on_the_emulator_read_the_same_as_on_the_sim():
    """Programming and reads go through the Macro interface: the emulated device (the same
    virtual chip behind the serial protocol, in another process) gives the sim's numbers."""
    model, xi, xa = _model(seed=3, image_dim=60, audio_dim=20)
    device = device_config(None, input_bits=4)
    out = {}
    for backend in ("sim", "emulator"):
        with ChipSession(backend, chip_seed=5) as session:
            mapped = map_heads(session, model, device, _ranges(model, xi, xa))
            out[backend] = (mapped.embed(xa.numpy(), "audio"), mapped.programming)
    assert np.array_equal(out["sim"][0], out["emulator"][0])
    assert out["sim"][1] == out["emulator"][1]
