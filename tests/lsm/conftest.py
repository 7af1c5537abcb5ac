"""Fixtures of the LSM tests: a literal dense macro (test double) and small chips."""
from __future__ import annotations

import numpy as np
import pytest

from rram_lsm.errors import ShapeError
from rram_lsm.macro import FormResult, MacroInfo, check_region


class DenseMacro:
    """Conductances held in a matrix; mvm sums active rows in ascending order, as specified.

    Forming: every cell has a breakdown voltage ~ N(3.5, 0.2) V and a formed conductance
    ~ N(13, 2) µS (clipped to 7.6-18.8); unformed cells read 0.1 µS.
    """

    def __init__(self, rows=512, cols=512, seed=0, adc_bits=None, adc_lsb_ua=0.0,
                 read_voltage_v=0.2, capabilities=()):
        rng = np.random.default_rng(seed)
        self.seed = seed
        self._info = MacroInfo(rows=rows, cols=cols, model="dense-fake", firmware_version="0",
                               protocol_version=1, read_voltage_v=read_voltage_v,
                               adc_bits=adc_bits, adc_lsb_ua=adc_lsb_ua,
                               capabilities=tuple(capabilities))
        self.breakdown_v = rng.normal(3.5, 0.2, (rows, cols))
        self.formed_g = np.clip(rng.normal(13.0, 2.0, (rows, cols)), 7.6, 18.8)
        self.formed = np.zeros((rows, cols), bool)
        self.mvm_calls = 0
        self.form_voltages = []

    def info(self):
        return self._info

    def identity(self):
        return {"backend": "dense-fake", "seed": self.seed}

    def conductance(self):
        return np.where(self.formed, self.formed_g, 0.1)

    def form(self, region, voltage_v, pulse_width_s, compliance_ua):
        r = check_region(region, self._info.rows, self._info.cols)
        self.form_voltages.append(voltage_v)
        sl = r.slices
        self.formed[sl] |= self.breakdown_v[sl] <= voltage_v
        return FormResult(formed=self.formed[sl].copy(),
                          conductance_us=self.conductance()[sl].copy())

    def program(self, region, target_us, tolerance_us, max_pulses):
        raise NotImplementedError

    def read_conductance(self, region):
        r = check_region(region, self._info.rows, self._info.cols)
        return self.conductance()[r.slices].copy()

    def _adc(self, current):
        if self._info.adc_bits is None:
            return current
        lsb = self._info.adc_lsb_ua
        code = np.minimum(np.floor(current / lsb + 0.5), 2 ** self._info.adc_bits - 1)
        return code * lsb

    def mvm(self, region, inputs, differential=False):
        r = check_region(region, self._info.rows, self._info.cols)
        x = np.asarray(inputs)
        if x.ndim != 2 or x.shape[1] != r.rows:
            raise ShapeError(f"inputs must be (batch, {r.rows})")
        self.mvm_calls += 1
        g = self.conductance()[r.slices]
        out = np.zeros((x.shape[0], r.cols))
        for b in range(x.shape[0]):
            acc = np.zeros(r.cols)
            for i in np.flatnonzero(x[b]):
                acc += g[i]
            out[b] = self._adc(acc * self._info.read_voltage_v)
        if differential:
            return out[:, 0::2] - out[:, 1::2]
        return out

    def advance_time(self, seconds):
        return 0.0

    def clock_s(self):
        return 0.0

    def reset(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BackendLoopMacro(DenseMacro):
    """A DenseMacro that advertises run_reservoir and runs it through the reference loop."""

    def __init__(self, **kw):
        super().__init__(capabilities=("run_reservoir",), **kw)
        self.run_reservoir_calls = 0

    def run_reservoir(self, region, rasters, spec):
        from rram_lsm.reservoir import run_reference

        self.run_reservoir_calls += 1
        return run_reference(self, region, rasters, spec)[0]


@pytest.fixture
def dense_macro():
    """Factory of DenseMacro test doubles."""
    return DenseMacro


@pytest.fixture
def backend_loop_macro():
    """Factory of macros advertising run_reservoir."""
    return BackendLoopMacro


def write_nmnist_tree(root, events_of, per_split=(("Train", 3), ("Test", 1))):
    """A tiny N-MNIST in the original layout and binary format under ``root`` (``Train|Test
    / class / 00000.bin``): ``events_of(split, c, k)`` gives file ``k`` of class ``c``'s
    events as ``(x, y, p, t)`` arrays; returns ``root``."""
    from lsm.events import VISION_EVENT_DTYPE, write_nmnist

    for split, n in per_split:
        for c in range(10):
            folder = root / split / str(c)
            folder.mkdir(parents=True)
            for k in range(n):
                xs, ys, ps, ts = events_of(split, c, k)
                ev = np.zeros(len(xs), VISION_EVENT_DTYPE)
                ev["x"], ev["y"], ev["p"], ev["t"] = xs, ys, ps, ts
                write_nmnist(folder / f"{k:05d}.bin", ev)
    return root
