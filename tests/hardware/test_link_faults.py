"""Lost links and device reboots (docs/protocol.md, section 5): typed errors within the
timeout, reconnects that continue the session, and no state change executed twice.

In-process devices (``DevicePort``) check the driver's decisions write by write; the
``Cable`` relay cuts a real pseudo-terminal under a live driver while the device keeps
running; and one test kills an emulator's process outright. Every wait is bounded.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from hardware import (Command, DeviceResetError, Emulator, FirmwareMismatchError,
                      HardwareError, LinkLostError, SerialMacro)
from rram_lsm.macro import Region
from rram_lsm.reservoir import ReservoirSpec, run_reference

SPEC = ReservoirSpec(n_inputs=6, n_neurons=3, decay=0.9, threshold=0.5, weight_scale=0.3,
                     g_ref_us=2.0)
TILE = Region(0, 0, *SPEC.tile_shape)


@pytest.fixture
def small_profile(noise_free_profile):
    return replace(noise_free_profile, array=replace(noise_free_profile.array, rows=32, cols=32))


@pytest.fixture
def emu(small_profile):
    from sim import SimMacro

    return Emulator(SimMacro(seed=11, profile=small_profile))


def _open(port, **kw) -> SerialMacro:
    kw.setdefault("timeout_s", 0.05)
    kw.setdefault("backoff_s", 0.0)
    return SerialMacro(port, **kw)


# ---- reboots, write by write (0 INFO, 1 STATUS, 2 the first command, ...) --------------------
def test_reboot_before_the_reply_is_noticed_and_the_record_answers(emu, device_port_cls):
    port = device_port_cls(emu, reboot_before_reply={2})
    m = _open(port)
    res = m.form((0, 0, 4, 4), 3.7, 1e-6, 100.0)
    # the FORM ran and was recorded; after the lost reply the driver read STATUS (write 3),
    # saw boot_count 2, re-read INFO (4) and resent the FORM (5), answered from the record
    assert [Command(w[6]).name for w in port.written] == ["INFO", "STATUS", "FORM", "STATUS",
                                                         "INFO", "FORM"]
    assert port.written[2] == port.written[5]
    assert emu.counters["state_changes"] == 1 and emu.counters["replays"] == 1
    assert m.stats.device_resets == 1 and m.boot_count == 2
    np.testing.assert_array_equal(res.conductance_us,
                                  emu.macro.read_conductance((0, 0, 4, 4)))


def test_reboot_on_receipt_of_a_state_change_raises_device_reset_error(emu, device_port_cls):
    port = device_port_cls(emu, reboot_on_receipt={2})
    m = _open(port)
    with pytest.raises(DeviceResetError, match=r"boot count 1 -> 2.*FORM.*read_conductance") \
            as err:
        m.form((0, 0, 4, 4), 3.7, 1e-6, 100.0)
    assert (err.value.command, err.value.boot_count) == ("FORM", (1, 2))
    assert isinstance(err.value, HardwareError)
    assert emu.counters["state_changes"] == 0  # not repeated behind the caller's back
    assert len(port.written) == 5  # FORM, STATUS, INFO: no second FORM
    # the run re-reads what it needs and repeats the command deliberately: it runs once
    m.form((0, 0, 4, 4), 3.7, 1e-6, 100.0)
    assert emu.counters["state_changes"] == 1 and emu.counters["replays"] == 0
    assert m.stats.device_resets == 1


def test_reboot_during_reads_is_transparent_and_advance_names_the_clock(emu, device_port_cls):
    port = device_port_cls(emu, reboot_on_receipt={2, 6})
    m = _open(port)
    assert m.clock_s() == 0.0  # lost, STATUS (3), INFO (4), resent (5)
    assert m.stats.device_resets == 1
    with pytest.raises(DeviceResetError, match=r"clock_s"):
        m.advance_time(2.0)  # write 6 is lost to the second reboot
    assert m.stats.device_resets == 2 and m.boot_count == 3 and emu.macro.clock_s() == 0.0


def test_a_reservoir_run_resumes_across_reboots_with_identical_spikes(emu, device_port_cls):
    # writes: 2 FORM, 3 RUN_RESERVOIR (lost on receipt), 4 STATUS, 5 INFO, 6 resent,
    # 7 RUN_RESERVOIR (its reply lost to a reboot), 8 STATUS, 9 INFO, 10 resent
    port = device_port_cls(emu, reboot_on_receipt={3}, reboot_before_reply={7})
    m = _open(port)
    m.form(TILE, 3.8, 1e-6, 100.0)
    rasters = (np.random.default_rng(2).random((3, 6, SPEC.n_inputs)) < 0.5).astype(np.uint8)
    first = m.run_reservoir(TILE, rasters, SPEC)
    second = m.run_reservoir(TILE, rasters, SPEC)
    want, _ = run_reference(emu.macro, TILE, rasters, SPEC)
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(second, want)
    assert m.stats.device_resets == 2 and m.boot_count == 3
    assert emu.counters["state_changes"] == 1  # the FORM, once


def test_a_reboot_between_commands_is_noticed_by_status(emu, device_port_cls):
    m = _open(device_port_cls(emu))
    emu.reboot()
    st = m.status()
    assert st.boot_count == 2 == m.boot_count and m.stats.device_resets == 1
    assert m.stats.commands["INFO"] == 2  # INFO re-read after the reboot


def test_a_device_that_reboots_into_other_firmware_is_refused(emu, device_port_cls):
    m = _open(device_port_cls(emu, reboot_before_reply={2}))
    info = emu.info
    emu.info = lambda: replace(info(), firmware_version="emu-9.9")
    with pytest.raises(FirmwareMismatchError, match="emu-9.9"):
        m.read_conductance((0, 0, 1, 1))


# ---- a lost port, in process -----------------------------------------------------------------
def test_lost_port_is_typed_and_reconnect_replays_the_unfinished_form(emu, device_port_cls):
    port = device_port_cls(emu, die_after={2})  # the FORM arrives, then the adapter is gone
    m = _open(port, timeout_s=5.0)
    t0 = time.monotonic()
    with pytest.raises(LinkLostError, match="reconnect"):
        m.form((0, 0, 4, 4), 3.7, 1e-6, 100.0)
    assert time.monotonic() - t0 < 1.0  # at once, not after the 5 s timeout
    assert isinstance(LinkLostError("x"), (HardwareError, ConnectionError))
    with pytest.raises(LinkLostError, match="reconnect"):
        m.clock_s()  # nothing more goes to a dead port
    assert emu.counters["state_changes"] == 1  # the device did form
    new = device_port_cls(emu)
    st = m.reconnect(new)
    assert st.boot_count == 1 and m.stats.reconnects == 1
    res = m.form((0, 0, 4, 4), 3.7, 1e-6, 100.0)  # the same call: the same request bytes
    assert new.written[-1] == port.written[-1]
    assert emu.counters["state_changes"] == 1 and emu.counters["replays"] == 1
    np.testing.assert_array_equal(res.conductance_us,
                                  emu.macro.read_conductance((0, 0, 4, 4)))
    # another state change afterwards is a new command with a new sequence number
    m.form((4, 4, 2, 2), 3.7, 1e-6, 100.0)
    assert emu.counters["state_changes"] == 2


def test_reconnect_after_a_reboot_that_lost_the_request_raises(emu, device_port_cls):
    port = device_port_cls(emu, reboot_on_receipt={2}, die_after={2})
    m = _open(port)
    with pytest.raises(LinkLostError):
        m.program((0, 0, 2, 2), np.full((2, 2), 10.0), 0.5, 5)
    with pytest.raises(DeviceResetError, match=r"while the link was down.*PROGRAM"):
        m.reconnect(device_port_cls(emu))
    assert m.clock_s() == 0.0  # the link itself is fine again
    assert emu.counters["state_changes"] == 0


def test_reconnect_to_another_device_is_refused(emu, device_port_cls, small_profile):
    from sim import SimMacro

    m = _open(device_port_cls(emu, die_after={2}))
    with pytest.raises(LinkLostError):
        m.clock_s()
    other = Emulator(SimMacro(seed=11, profile=replace(
        small_profile, array=replace(small_profile.array, rows=16, cols=16))))
    with pytest.raises(FirmwareMismatchError, match="not as"):
        m.reconnect(device_port_cls(other))


# ---- a real pseudo-terminal cut under the driver -------------------------------------------
class _SlowFirmware:
    """The reference loop, ``delay_s`` slower (a long RUN_RESERVOIR)."""

    capabilities = ("run_reservoir",)

    def __init__(self, delay_s):
        self.delay_s = delay_s

    def __call__(self, macro, region, rasters, spec):
        time.sleep(self.delay_s)
        return run_reference(macro, region, rasters, spec)[0]


def test_cable_cut_during_run_reservoir_and_mid_chunked_reply(small_profile, cable_cls):
    from sim import SimMacro

    emu = Emulator(SimMacro(seed=5, profile=small_profile), firmware=_SlowFirmware(0.4),
                   keepalive_s=0.05, max_frame_payload=256)
    cable = cable_cls(emu)
    try:
        m = SerialMacro(cable.plug(), timeout_s=0.5, backoff_s=0.0, inter_byte_timeout_s=0.02)
        formed = m.form(TILE, 3.8, 1e-6, 100.0)
        target = np.where(formed.formed, 8.0, formed.conductance_us)
        m.program(TILE, target, 0.5, 20)
        rasters = (np.random.default_rng(0).random((2, 8, SPEC.n_inputs)) < 0.4).astype(np.uint8)

        cable.arm(after_device_bytes=18)  # one IN_PROGRESS keep-alive, then the cable goes
        t0 = time.monotonic()
        with pytest.raises(LinkLostError):
            m.run_reservoir(TILE, rasters, SPEC)
        assert time.monotonic() - t0 < m.link.timeout_s  # typed, and within the timeout
        m.reconnect(cable.plug())
        want, _ = run_reference(emu.macro, TILE, rasters, SPEC)
        np.testing.assert_array_equal(m.run_reservoir(TILE, rasters, SPEC), want)

        x = (np.random.default_rng(1).random((300, 32)) < 0.5).astype(np.uint8)
        region = Region(0, 0, 32, 32)
        cable.arm(after_device_bytes=2000)  # the reply is ~9.6 kB in 256-byte chunks
        t0 = time.monotonic()
        with pytest.raises(LinkLostError):
            m.mvm(region, x)
        assert time.monotonic() - t0 < m.link.timeout_s
        m.reconnect(cable.plug())
        np.testing.assert_array_equal(m.mvm(region, x), emu.macro.mvm(region, x))

        # the FORM request reaches the device, the cable goes before its reply comes back
        cable.arm(after_request=Command.FORM)
        with pytest.raises(LinkLostError):
            m.form((20, 20, 2, 2), 3.8, 1e-6, 100.0)
        m.reconnect(cable.plug())
        again = m.form((20, 20, 2, 2), 3.8, 1e-6, 100.0)
        np.testing.assert_array_equal(again.conductance_us,
                                      emu.macro.read_conductance((20, 20, 2, 2)))
        # on the device: FORM, PROGRAM, FORM each executed once; the repeat was a replay
        assert emu.counters["state_changes"] == 3 and emu.counters["replays"] == 1
        assert m.stats.reconnects == 3 and m.stats.device_resets == 0
        m.close()
    finally:
        cable.close()


# ---- the emulator's process killed -----------------------------------------------------------
def _kill_when(m, pid, more_bytes: int) -> threading.Thread:
    """SIGKILL the emulator once ``more_bytes`` more bytes reached the driver."""
    mark = m.stats.bytes_received + more_bytes

    def watch():
        deadline = time.monotonic() + 20
        while m.stats.bytes_received < mark and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(pid, signal.SIGKILL)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_emulator_process_mid_reply_and_mid_run_raises_within_timeout(small_profile):
    from hardware import open_emulated

    # mid chunked MVM reply: paced at 200 kbaud the ~9.6 kB reply takes ~0.5 s
    with open_emulated(seed=1, profile=small_profile, timeout_s=1.0, baud=200_000) as m:
        x = np.ones((300, 32), np.uint8)
        watcher = _kill_when(m, m.emulator_pid, 1500)
        t0 = time.monotonic()
        with pytest.raises(LinkLostError):
            m.mvm((0, 0, 32, 32), x)
        assert time.monotonic() - t0 < 1.0
        watcher.join(5)
    # mid RUN_RESERVOIR: killed after the first keep-alive (0.2 s) of a batch that takes
    # seconds (64 samples of 1,000 steps), so the kill cannot come after the reply
    with open_emulated(seed=1, profile=small_profile, timeout_s=1.0) as m:
        rasters = np.ones((64, 1000, SPEC.n_inputs), np.uint8)
        watcher = _kill_when(m, m.emulator_pid, 18)
        t0 = time.monotonic()
        with pytest.raises(LinkLostError):
            m.run_reservoir(TILE, rasters, SPEC)
        assert time.monotonic() - t0 < 1.5
        watcher.join(5)
