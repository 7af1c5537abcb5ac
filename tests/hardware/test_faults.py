"""A small fault run over a real pty: corrupted and dropped bytes, latency, device reboots.

Every command must complete, every accepted result must equal the simulator's (no undetected
corruption), and each state-changing command must execute exactly once on the device.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from hardware import DeviceResetError


def _settle(m, call, executed: int):
    """Run a state-changing call; after a DeviceResetError re-read the device's count of
    executed state changes and repeat the call only if it did not run (the run's recovery)."""
    while True:
        try:
            return call()
        except DeviceResetError:
            assert m.status().state_changes == executed, "an unrecorded command ran"


def test_mixed_commands_survive_a_faulty_link(noise_free_profile):
    from hardware import open_emulated
    from sim import SimMacro

    small = replace(noise_free_profile, array=replace(noise_free_profile.array, rows=16,
                                                      cols=16))
    ref = SimMacro(seed=9, profile=small)
    rng = np.random.default_rng(0)
    # 0.6 % of bytes damaged: a 30-byte exchange fails about one time in six, so every
    # kind of command meets retries, while the ~140-byte INFO exchange (re-read after each
    # reboot) gets through in 41 tries but for odds of 1e-10; at 1.5 % it failed 88 % of
    # tries, and in 1 of 7 probe runs all 41 (the fault draws follow the run's timing,
    # so fault_seed alone does not pin them)
    with open_emulated(seed=9, profile=small, corrupt_rate=0.004, drop_rate=0.002,
                       latency_s=0.001, reset_rate=0.03, fault_seed=4, timeout_s=0.3, retries=40,
                       gap_s=0.005, inter_byte_timeout_s=0.005, backoff_s=0.0) as m:
        state_changing = 0
        for i in range(120):
            r = (int(rng.integers(0, 16)), 0, 1, 2)  # short frames cross a bad link sooner
            kind = i % 6
            if kind == 0:
                v = float(np.round(rng.uniform(3.2, 3.9), 2))
                a = _settle(m, lambda: m.form(r, v, 1e-6, 100.0), state_changing)
                b = ref.form(r, v, 1e-6, 100.0)
                np.testing.assert_array_equal(a.conductance_us, b.conductance_us)
                state_changing += 1
            elif kind == 1:
                x = rng.integers(0, 2, (3, 1)).astype(np.uint8)
                np.testing.assert_array_equal(m.mvm(r, x, differential=True),
                                              ref.mvm(r, x, differential=True))
            elif kind == 2:
                np.testing.assert_array_equal(m.read_conductance(r), ref.read_conductance(r))
            elif kind == 3:
                assert _settle(m, lambda: m.advance_time(1.0), state_changing) == \
                    ref.advance_time(1.0)
                state_changing += 1
            elif kind == 4:
                target = np.full((1, 2), 9.0)
                a = _settle(m, lambda: m.program(r, target, 0.5, 5), state_changing)
                b = ref.program(r, target, 0.5, 5)
                np.testing.assert_array_equal(a.pulses, b.pulses)
                state_changing += 1
            else:
                assert m.clock_s() == ref.clock_s()
        st = m.status()
        assert st.state_changes == state_changing  # none executed twice, none lost
        assert st.boot_count > 1  # the device did reboot, and the session survived it
        # the driver noticed the reboots (STATUS after every lost reply) and knows the count
        assert m.boot_count == st.boot_count and 1 <= m.stats.device_resets < st.boot_count
        stats = m.stats
        assert stats.retries > 0
        # each command counted once however often the bad link made the driver resend it;
        # a command refused after a reboot and repeated by the run counts twice
        assert all(stats.commands[c] >= 20 for c in ("FORM", "MVM", "READ", "ADVANCE",
                                                      "PROGRAM", "CLOCK"))
        assert stats.commands["INFO"] == 1 + stats.device_resets  # INFO re-read per reboot
        assert sum(stats.retransmissions.values()) == stats.retries
