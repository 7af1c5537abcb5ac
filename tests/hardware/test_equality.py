"""The emulator is the simulator: same seed and profile, noise off -> identical numbers, and the
reservoir gives identical spikes from three implementations: the emulator's firmware behind
RUN_RESERVOIR, the normative loop ``rram_lsm.reservoir.run_reference`` on the host, and the
simulator's fused kernel ``SimMacro.run_reservoir``."""
from __future__ import annotations

import numpy as np
import pytest

from rram_lsm.macro import RUN_RESERVOIR
from rram_lsm.reservoir import ReservoirSpec, run_reference

SEED = 21


@pytest.fixture(scope="module")
def pair(noise_free_profile):
    from hardware import open_emulated
    from sim import SimMacro

    serial = open_emulated(seed=SEED, profile=noise_free_profile)
    sim = SimMacro(seed=SEED, profile=noise_free_profile)
    yield serial, sim
    serial.close()


def test_identity_names_the_emulated_chip(pair, noise_free_profile):
    from hardware import FIRMWARE_VERSION

    serial, sim = pair
    ident = serial.identity()
    assert ident.pop("code", None) == sim.identity().get("code")
    assert ident == {"backend": "emulator", "seed": SEED, "macro_index": 0,
                     "profile": noise_free_profile.to_dict(), "firmware": FIRMWARE_VERSION}


def test_macro_index_reaches_the_child(noise_free_profile):
    import inspect

    from hardware import open_emulated
    from sim import SimMacro

    if "macro_index" not in inspect.signature(SimMacro).parameters:
        pytest.skip("sim.SimMacro does not take macro_index yet")
    region = (0, 0, 16, 16)
    with open_emulated(seed=SEED, profile=noise_free_profile, macro_index=1) as serial:
        assert serial.identity()["macro_index"] == 1
        got = serial.form(region, 3.6, 1e-6, 100.0)
    want = SimMacro(SEED, noise_free_profile, macro_index=1).form(region, 3.6, 1e-6, 100.0)
    other = SimMacro(SEED, noise_free_profile).form(region, 3.6, 1e-6, 100.0)
    np.testing.assert_array_equal(got.conductance_us, want.conductance_us)
    assert not np.array_equal(got.conductance_us, other.conductance_us)


def test_open_emulated_refuses_a_bad_macro_index():
    from hardware import open_emulated
    from rram_lsm.errors import ConfigError

    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="macro_index"):
            open_emulated(seed=0, macro_index=bad)


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


@pytest.mark.parametrize("reset, refractory", [("zero", 0), ("subtract", 2)])
def test_reservoir_implementations_give_identical_spikes(pair, reset, refractory):
    """Emulator firmware == run_reference over the wire == run_reference on the simulator
    == the simulator's fused kernel (the last once SimMacro advertises RUN_RESERVOIR)."""
    serial, sim = pair
    spec = ReservoirSpec(n_inputs=40, n_neurons=24, decay=0.9, threshold=0.5,
                         weight_scale=0.3, g_ref_us=2.0, reset=reset,
                         refractory_steps=refractory)
    region = (100, 0 if reset == "zero" else 64, *spec.tile_shape)
    for macro in pair:  # the same forming and write-verify on both chips
        res = macro.form(region, 3.6, 1e-6, 100.0)
        target = np.where(res.formed, np.random.default_rng(5).uniform(4.0, 20.0, res.formed.shape),
                          res.conductance_us)
        macro.program(region, target, 0.3, 40)
    rasters = (np.random.default_rng(8).random((7, 20, 40)) < 0.15).astype(np.uint8)
    assert RUN_RESERVOIR in serial.info().capabilities
    device = serial.run_reservoir(region, rasters, spec)
    wire_steps, _ = run_reference(serial, region, rasters, spec)
    host, _ = run_reference(sim, region, rasters, spec)
    assert device.dtype == np.uint8 and device.shape == (7, 20, 24)
    assert 0 < device.mean() < 0.5  # neither silent nor saturated
    np.testing.assert_array_equal(device, wire_steps)
    np.testing.assert_array_equal(device, host)
    if RUN_RESERVOIR not in sim.info().capabilities or not hasattr(sim, "run_reservoir"):
        pytest.skip("sim.SimMacro does not advertise run_reservoir yet (fused kernel pending); "
                    "firmware, wire loop and host loop agreed")
    np.testing.assert_array_equal(device, sim.run_reservoir(region, rasters, spec))
