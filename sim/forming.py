"""Forming procedures that work on any macro through the interface."""
from __future__ import annotations

import numpy as np

from rram_lsm.errors import ConfigError, SafetyLimitError
from rram_lsm.macro import FormResult, Macro

__all__ = ["form_to_sparsity"]


def form_to_sparsity(macro: Macro, region, target_sparsity: float = 0.5, *,
                     v_start: float = 3.0, v_step: float = 0.05, pulse_width_s: float = 1e-6,
                     compliance_ua: float = 100.0) -> tuple[float, FormResult]:
    """Sweep the forming voltage upward from ``v_start`` in ``v_step`` steps until the
    unformed fraction of ``region`` is <= ``target_sparsity`` (as the real chip is formed).

    Returns the last voltage applied and its FormResult. Raises SafetyLimitError if the
    target is not reached below the macro's maximum forming voltage.
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise ConfigError(f"target_sparsity must be in [0, 1), got {target_sparsity}")
    if v_step <= 0:
        raise ConfigError(f"v_step must be positive, got {v_step}")
    v_max = macro.info().limits.max_form_voltage_v
    k = 0
    while True:
        # integer steps, rounded: no float creep in the voltages a log or a chip sees
        voltage = round(v_start + k * v_step, 6)
        if voltage > v_max:
            raise SafetyLimitError(
                f"sparsity {target_sparsity} not reached at the maximum forming voltage "
                f"{v_max:g} V; lower the target or check the chip")
        result = macro.form(region, voltage, pulse_width_s, compliance_ua)
        if 1.0 - float(np.mean(result.formed)) <= target_sparsity:
            return voltage, result
        k += 1
