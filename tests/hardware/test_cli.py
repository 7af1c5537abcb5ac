"""``rram-lsm devices``, ``emulate`` and ``parity`` end to end (small sizes)."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from rram_lsm.app.cli import main
from rram_lsm.records import get_path, read_record


def test_parity_on_the_emulator_writes_json_and_plot(tmp_path, capsys):
    out, png = tmp_path / "parity.json", tmp_path / "parity.png"
    rc = main(["parity", "--backend", "emulator", "--no-noise", "--inputs", "24",
               "--neurons", "12", "--steps", "12", "--vectors", "64", "--samples", "8",
               "--raster-rate", "0.3", "--json", str(out), "--plot", str(png)])
    assert rc == 0 and png.stat().st_size > 10_000
    rec = read_record(out)
    assert get_path(rec, "tile.region") == [0, 0, 36, 24]
    assert len(get_path(rec, "column_current.per_column_mae_ua")) == 24
    assert len(get_path(rec, "spike_count.per_neuron_mae")) == 12
    # the twin holds the chip's map within the write-verify tolerance (stalled cells aside)
    assert get_path(rec, "twin_write.converged_fraction") > 0.95
    assert get_path(rec, "column_current.relative_mae") < 0.02
    assert get_path(rec, "spike_count.mean_count_chip") > 0
    assert get_path(rec, "fitted_profile.read.noise_rel") == 0.0  # noise-free chip, fitted
    assert "column current" in capsys.readouterr().out


def _start_emulate(*extra):
    proc = subprocess.Popen([sys.executable, "-m", "rram_lsm.app.cli", "emulate", "--seed", "3",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    assert ready, "emulate printed no device path"
    return proc, proc.stdout.readline().decode().strip()


def _stop(proc):
    """Stop `emulate` as `kill` or a service manager would (Ctrl-C takes the same path)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_emulate_serves_a_pty_that_devices_identifies(tmp_path, capsys):
    from hardware import HardwareError, SerialMacro
    from sim import SimMacro

    proc, path = _start_emulate("--latency-s", "0.001")
    try:
        assert path.startswith("/dev/")
        with SerialMacro(path, timeout_s=5.0) as m:  # the chip of `--seed 3`
            g = m.form((0, 0, 4, 4), 3.8, 1e-6, 100.0).conductance_us
            assert g.shape == (4, 4)
            with pytest.raises(HardwareError, match="busy"):  # held exclusively by `m`
                SerialMacro(path, timeout_s=0.2)
        ref = SimMacro(seed=3)
        assert ref.form((0, 0, 4, 4), 3.8, 1e-6, 100.0).formed.sum() == (g > 5).sum()
        out = tmp_path / "devices.json"
        assert main(["devices", "--only", path, "/dev/does-not-exist", "--json", str(out)]) == 0
        rec = read_record(out)
        status = {p["device"]: p for p in rec["ports"]}
        assert status[path]["status"] == "macro" and "emu-1.0" in status[path]["detail"]
        assert status["/dev/does-not-exist"]["status"] == "unavailable"
        assert "no such device" in status["/dev/does-not-exist"]["detail"]
        assert rec["macros"] == [path]
    finally:
        _stop(proc)
    assert proc.returncode == 0 and b"stopped; counters" in proc.stdout.read()


def test_devices_explains_permission_problems(tmp_path):
    from hardware.ports import explain_open_error

    err = PermissionError(13, "Permission denied")
    assert "dialout" in explain_open_error("/dev/ttyUSB0", err)
    assert "busy" in explain_open_error("/dev/ttyUSB0", OSError(16, "Device or resource busy"))
    if os.geteuid() != 0:  # root opens anything, so only a non-root run can see EACCES
        locked = tmp_path / "tty-locked"
        locked.write_text("")
        locked.chmod(0)
        assert main(["devices", "--only", str(locked), "--json", str(tmp_path / "d.json")]) == 0
        assert "permission" in json.dumps(read_record(tmp_path / "d.json")["ports"])


def test_close_stops_the_emulator_process(noise_free_profile):
    from hardware import open_emulated

    m = open_emulated(seed=0, profile=noise_free_profile)
    pid = m.emulator_pid
    m.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        else:
            time.sleep(0.05)
    else:
        pytest.fail("emulator process outlived close()")


@pytest.mark.parametrize("args, match", [
    (["emulate", "--gap-s", "0"], "--gap-s: must be a positive, finite number of seconds"),
    (["emulate", "--gap-s", "-1"], "--gap-s: must be a positive"),
    (["emulate", "--gap-s", "nan"], "--gap-s: must be a positive"),
    (["emulate", "--gap-s", "soon"], "--gap-s: must be a positive"),
    (["emulate", "--baud", "0"], "--baud: must be a positive integer"),
    (["emulate", "--seed", "-1"], "--seed: must be a non-negative integer"),
    (["emulate", "--corrupt-rate", "1.5"], "--corrupt-rate: must be a probability"),
    (["emulate", "--drop-rate", "-0.1"], "--drop-rate: must be a probability"),
    (["emulate", "--reset-rate", "1"], "--reset-rate: must be a probability"),
    (["emulate", "--latency-s", "-1"], "--latency-s: must be a finite number of seconds"),
    (["emulate", "--latency-s", "inf"], "--latency-s: must be a finite number"),
    (["emulate", "--fault-seed", "-1"], "--fault-seed: must be a non-negative integer"),
    (["devices", "--timeout-s", "0"], "--timeout-s: must be a positive"),
    (["devices", "--baud", "-9600"], "--baud: must be a positive integer"),
])
def test_nonsensical_emulate_and_devices_options_are_refused(args, match, capsys):
    with pytest.raises(SystemExit) as err:
        main(args)
    assert err.value.code == 2 and match in capsys.readouterr().err


def test_emulator_options_are_checked_in_the_api_too():
    from hardware import Emulator, Faults, open_emulated
    from rram_lsm.errors import ConfigError

    for kw in (dict(gap_s=0), dict(gap_s=-1.0), dict(keepalive_s=float("nan")), dict(baud=0),
               dict(max_frame_payload=32), dict(max_message_bytes=100)):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            Emulator(object(), **kw)
    with pytest.raises(ConfigError, match="gap_s"):
        open_emulated(gap_s=0.0)
    with pytest.raises(ConfigError, match="fault_seed"):
        Faults(fault_seed=-1)
    with pytest.raises(ConfigError, match="latency_s"):
        Faults(latency_s=float("inf"))


def test_bench_serial_soak_is_sized_by_an_option_and_reports_its_rate(tmp_path):
    """A scaled-down soak (the full 100,000 commands are `--soak-commands 100000`)."""
    out = tmp_path / "soak.json"
    assert main(["bench", "serial", "--soak-only", "--soak-commands", "60", "--reset-rate",
                 "0.03", "--no-progress", "--json", str(out)]) == 0
    soak = read_record(out)["soak"]
    assert soak["commands"] == 60 and soak["completed"] + soak["failed"] == 60
    assert soak["undetected_corruptions"] == 0 and soak["duplicate_state_changes"] == 0
    assert soak["lost_state_changes"] == 0 and soak["commands_per_s"] > 0
    assert soak["state_changes_executed"] == soak["state_changes_asked"]
    assert soak["reboots_noticed"] <= soak["device_reboots"]
    assert set(soak["mix"]) >= {"form", "program", "run_reservoir", "reset"}
