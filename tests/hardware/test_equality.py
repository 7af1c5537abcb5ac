"""The emulator is the simulator: same seed and profile, noise off -> identical numbers, and the
reservoir gives identical spikes through RUN_RESERVOIR, per-step MVM over the wire and the
simulator's fast path."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def pair(noise_free_profile):
    from hardware import open_emulated
    from sim import SimMacro

    serial = open_emulated(seed=21, profile=noise_free_profile)
    sim = SimMacro(seed=21, profile=noise_free_profile)
    yield serial, sim
    serial.close()


def test_conductances_and_mvms_equal_the_simulator(pair, rng):
    serial, sim = pair
    assert serial.info().model == sim.info().model
    region = (0, 0, 64, 48)
    for v in np.arange(3.0, 3.9, 0.1):  # the same forming sweep on both
        a, b = serial.form(region, float(v), 1e-6, 100.0), sim.form(region, float(v), 1e-6, 100.0)
        np.testing.assert_array_equal(a.formed, b.formed)
        np.testing.assert_array_equal(a.conductance_us, b.conductance_us)
    x = (rng.random((33, 64)) < 0.2).astype(np.uint8)
    np.testing.assert_array_equal(serial.mvm(region, x), sim.mvm(region, x))
    np.testing.assert_array_equal(serial.mvm(region, x, differential=True),
                                  sim.mvm(region, x, differential=True))
    target = np.where(a.formed, 11.0, a.conductance_us)
    pa, pb = serial.program(region, target, 0.2, 40), sim.program(region, target, 0.2, 40)
    for field in ("conductance_us", "pulses", "converged"):
        np.testing.assert_array_equal(getattr(pa, field), getattr(pb, field))
    assert serial.advance_time(3600.0) == sim.advance_time(3600.0)
    np.testing.assert_array_equal(serial.read_conductance(region), sim.read_conductance(region))


def test_reservoir_paths_give_identical_spikes(pair):
    """RUN_RESERVOIR on the device == per-step MVM over the wire == the simulator's fast path."""
    from lsm import Reservoir, preset, run_on_macro

    serial, sim = pair
    cfg = preset("nmnist", n_inputs=40, n_neurons=24, n_steps=20)
    region = (100, 0, *cfg.tile_shape)
    res_serial = Reservoir.setup(serial, cfg, region=region)
    res_sim = Reservoir.setup(sim, cfg, region=region)
    assert res_serial.spec == res_sim.spec
    rasters = (np.random.default_rng(8).random((7, 20, 40)) < 0.15).astype(np.uint8)
    device = serial.run_reservoir(res_serial.region, rasters, res_serial.spec)
    wire_steps = run_on_macro(serial, res_serial.region, rasters, res_serial.spec)
    fast = res_sim.run(rasters, path="fast")
    assert device.sum() > 0
    np.testing.assert_array_equal(device, wire_steps)
    np.testing.assert_array_equal(device, fast)
    np.testing.assert_array_equal(res_serial.run(rasters, path="generic"), fast)
