"""Checks on a real macro (run with --device-port PORT); read-only apart from refused requests."""
from __future__ import annotations

import numpy as np
import pytest

from rram_lsm.errors import SafetyLimitError


@pytest.mark.device
def test_real_chip_answers_the_interface(device_port):
    from hardware import SerialMacro

    with SerialMacro(device_port) as m:
        info = m.info()
        region = (info.rows - 4, info.cols - 4, 4, 4)
        g = m.read_conductance(region)
        assert g.shape == (4, 4) and np.all(np.isfinite(g))
        out = m.mvm(region, np.eye(4, dtype=np.uint8))
        assert out.shape == (4, 4) and np.all(out >= 0)
        with pytest.raises(SafetyLimitError):
            m.form(region, info.limits.max_form_voltage_v + 1.0, 1e-6, 100.0)
