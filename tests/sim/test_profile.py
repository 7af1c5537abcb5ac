"""Device profiles: JSON round trip, validation, presets with sources."""
from __future__ import annotations

import dataclasses
import json

import pytest

from rram_lsm.errors import ConfigError
from sim import DeviceProfile, load_profile, macro40nm
from sim.presets import MACRO40NM_SOURCES
from sim.profile import SCHEMA_VERSION


def test_json_round_trip(tmp_path):
    prof = dataclasses.replace(
        macro40nm, name="x", adc=dataclasses.replace(macro40nm.adc, bits=None),
        read=dataclasses.replace(macro40nm.read, noise_rel=0.05, per_cell=True))
    path = prof.to_json(tmp_path / "p.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert DeviceProfile.from_json(path) == prof
    assert load_profile(str(path)) == prof


def test_partial_json_fills_defaults(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"name": "p", "read": {"noise_rel": 0.1}}))
    prof = load_profile(path)
    assert prof.read.noise_rel == 0.1
    assert prof.forming == macro40nm.forming


@pytest.mark.parametrize("data, match", [
    ({"bogus": 1}, "unknown profile keys"),
    ({"read": {"noise": 0.1}}, "unknown keys"),
    ({"schema_version": 99}, "schema_version"),
    ({"read": {"noise_rel": -1}}, "noise_rel"),
    ({"forming": {"formed_distribution": "uniform"}}, "formed_distribution"),
    ({"forming": {"formed_min_us": 20.0}}, "formed_min_us"),
    ({"array": {"rows": "oops"}}, "array.rows must be a number"),   # was a TypeError
    ({"read": {"noise_rel": [0.1]}}, "read.noise_rel must be a number"),
])
def test_bad_profiles_raise_config_error(tmp_path, data, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=match):
        load_profile(path)


def test_load_profile_resolution():
    assert load_profile(None) is macro40nm
    assert load_profile("macro40nm") is macro40nm
    assert load_profile(macro40nm) is macro40nm
    with pytest.raises(ConfigError, match="unknown profile"):
        load_profile("no-such-preset")
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile("missing.json")
    with pytest.raises(ConfigError):
        load_profile(3.5)


def test_noise_free_zeroes_only_noise():
    nf = macro40nm.noise_free()
    assert nf.read.noise_rel == 0.0 and nf.program.noise_us == 0.0
    assert nf.forming == macro40nm.forming and nf.stuck == macro40nm.stuck
    assert nf.program.stall_fraction == macro40nm.program.stall_fraction


def test_every_preset_value_has_a_source():
    names = {f"{section}.{f.name}"
             for section in ("array", "forming", "read", "program", "drift", "stuck", "adc",
                             "limits")
             for f in dataclasses.fields(getattr(macro40nm, section))}
    assert names == set(MACRO40NM_SOURCES)
    assert all(MACRO40NM_SOURCES.values())


def test_repr_and_html_are_compact():
    text = repr(macro40nm)
    assert "macro40nm" in text and "13" in text and len(text) < 400
    assert "forming.formed_mean_us" in macro40nm._repr_html_()


def test_adc_lsb():
    assert macro40nm.adc.lsb_ua == pytest.approx(200.0 / 256)
    assert dataclasses.replace(macro40nm.adc, bits=None).lsb_ua == 0.0


def test_docs_list_every_parameter():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "device-model.md").read_text()
    missing = [name for name in MACRO40NM_SOURCES if f"`{name}`" not in text]
    assert not missing, f"docs/device-model.md lacks {missing}"
