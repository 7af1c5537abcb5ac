"""Shared helpers of the simulator tests."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rram_lsm.macro import MacroInfo, Region
from sim import macro40nm


def with_changes(profile=macro40nm, **sections):
    """Profile with ``section={field: value}`` changes applied (``name="x"`` as is)."""
    updates = {k: dataclasses.replace(getattr(profile, k), **v) if isinstance(v, dict) else v
               for k, v in sections.items()}
    return dataclasses.replace(profile, **updates)


@pytest.fixture
def tile():
    """The reservoir tile of the LSM: 456 x 400 at the origin."""
    return (0, 0, 456, 400)


ARRAY_V_READ = 0.2
"""Read voltage of :class:`ArrayMacro` (V)."""


class ArrayMacro:
    """A macro over a fixed conductance array, reading as the contract says: per column the
    active rows summed ascending from 0.0 in float64, x V_read, ADC per column. The reference a fused kernel is checked against."""

    def __init__(self, g_us, adc_bits=None, lsb_ua=0.5):
        self.g = np.asarray(g_us, np.float64)
        self.adc_bits, self.lsb = adc_bits, lsb_ua

    def info(self):
        rows, cols = self.g.shape
        return MacroInfo(rows=rows, cols=cols, model="array", firmware_version="test",
                         protocol_version=1, read_voltage_v=ARRAY_V_READ, adc_bits=self.adc_bits,
                         adc_lsb_ua=self.lsb if self.adc_bits else 0.0)

    def mvm(self, region, x, differential=False):
        g = self.g[Region.of(region).slices]
        out = np.empty((x.shape[0], g.shape[1]))
        for b in range(x.shape[0]):
            acc = np.zeros(g.shape[1])
            for r in np.flatnonzero(x[b]):
                acc = acc + g[r]
            i = acc * ARRAY_V_READ
            if self.adc_bits:
                top = 2 ** self.adc_bits - 1
                i = np.clip(np.floor(i / self.lsb + 0.5), 0, top) * self.lsb
            out[b] = i
        return out[:, 0::2] - out[:, 1::2] if differential else out
