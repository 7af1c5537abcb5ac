"""Presets: device profiles as data, each value with its source.

``macro40nm`` is the 40 nm 256 Kb in-memory-computing macro of Lin et al. (Nature
Computational Science 2025) and the same group's related work on that technology
(/work/shared/paper-facts.md). The sources give the forming procedure and the formed
conductance distribution; geometry, ADC, read noise, drift and stuck-cell rates are open and
assumed here (fit them to a real chip with ``sim.fit_device_profile``).
"""
from __future__ import annotations

import os
from pathlib import Path

from rram_lsm.errors import ConfigError

from .profile import DeviceProfile

__all__ = ["macro40nm", "MACRO40NM_SOURCES", "PRESETS", "load_profile"]

macro40nm = DeviceProfile(name="macro40nm")
"""The 40 nm macro: every field at its documented default."""

MEASURED = "measured (related work, same 40 nm technology)"
ASSUMED = "assumed (the sources leave it open)"

MACRO40NM_SOURCES: dict[str, str] = {
    "array.rows": "assumed: 512 x 512 = 256 Kb, the macro's stated capacity",
    "array.cols": "assumed: 512 x 512 = 256 Kb, the macro's stated capacity",
    "array.read_voltage_v": f"{ASSUMED}: typical 40 nm RRAM read voltage, non-disturbing",
    "forming.breakdown_mean_v": (
        "related work: breakdown voltages quasi-normal, sweep from 3 V in 0.05 V steps to a "
        "target sparsity; mean assumed so the sweep passes 50 % formed at 3.60 V"),
    "forming.breakdown_std_v": f"{ASSUMED}: 0.25 V puts <1 % of cells formed at 3.0 V",
    "forming.min_compliance_ua": f"{ASSUMED}: compliance used is not given",
    "forming.formed_distribution": "related work: measured histogram is near-normal, bounded",
    "forming.formed_mean_us": f"{MEASURED}: mean 12.3-14.2 µS",
    "forming.formed_std_us": f"{MEASURED}: std 1.7-2.5 µS",
    "forming.formed_min_us": f"{MEASURED}: range 7.6-18.8 µS",
    "forming.formed_max_us": f"{MEASURED}: range 7.6-18.8 µS",
    "forming.pristine_us": "related work: pristine cells about 10 MΩ",
    "forming.pristine_spread_rel": ASSUMED,
    "read.noise_rel": f"{ASSUMED}: 2 %, typical of 40 nm RRAM read fluctuation",
    "read.per_cell": "simulator switch (validation mode), not a device property",
    "program.voltage_v": ASSUMED,
    "program.pulse_width_s": ASSUMED,
    "program.step_fraction": ASSUMED,
    "program.noise_us": ASSUMED,
    "program.g_min_us": ASSUMED,
    "program.g_max_us": ASSUMED,
    "program.stall_fraction": ASSUMED,
    "drift.nu_mean": f"{ASSUMED}: ~16 % loss after one year",
    "drift.nu_std": ASSUMED,
    "drift.t0_s": ASSUMED,
    "stuck.open_fraction": ASSUMED,
    "stuck.high_fraction": ASSUMED,
    "adc.bits": f"{ASSUMED}: 8-bit column ADC (related work quantises inputs to 6 bits)",
    "adc.full_scale_ua": (
        f"{ASSUMED}: 200 µA holds ~60 active rows of 13 µS at 0.2 V (156 µA) unclipped"),
    "limits.max_form_voltage_v": "interface default (rram_lsm.macro.SafetyLimits)",
    "limits.max_program_voltage_v": "interface default (rram_lsm.macro.SafetyLimits)",
    "limits.max_compliance_ua": "interface default (rram_lsm.macro.SafetyLimits)",
    "limits.min_pulse_width_s": "interface default (rram_lsm.macro.SafetyLimits)",
    "limits.max_pulse_width_s": "interface default (rram_lsm.macro.SafetyLimits)",
}
"""Where each ``macro40nm`` value comes from, keyed ``section.field``."""

PRESETS: dict[str, DeviceProfile] = {"macro40nm": macro40nm}
"""Profiles loadable by name through ``sim.load_profile``."""


def load_profile(profile=None) -> DeviceProfile:
    """Resolve a profile: None or ``"macro40nm"`` -> preset; a JSON path; a DeviceProfile."""
    if isinstance(profile, DeviceProfile):
        return profile
    if profile is None:
        profile = "macro40nm"
    if isinstance(profile, (str, os.PathLike)):
        if str(profile) in PRESETS:
            return PRESETS[str(profile)]
        path = Path(profile)
        if path.suffix == ".json" or path.exists():
            return DeviceProfile.from_json(path)
        raise ConfigError(f"unknown profile {str(profile)!r}: give a preset name "
                          f"({', '.join(PRESETS)}) or a JSON file written by DeviceProfile.to_json")
    raise ConfigError(f"a profile is None, a preset name, a JSON path or a DeviceProfile, "
                      f"got {type(profile).__name__}")
