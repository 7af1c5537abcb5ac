"""An emulator in its own process behind a pseudo-terminal, and the driver that talks to it.

``open_emulated`` opens ``os.openpty``, starts ``python -m hardware.spawn`` on the master
side (an :class:`~hardware.emulator.Emulator` with its reference firmware around
``sim.SimMacro``) and returns a ``SerialMacro`` on the slave path whose ``close()`` also
stops the process. A separate process, not a thread, so the device's work never shares the
caller's GIL and a real tty sits between the two, as with a USB-serial chip.

The simulator is imported only by :func:`build_macro` (by name, in the child process): the
parent learns the chip's resolved profile from the child's ``READY`` line.
"""
from __future__ import annotations

import argparse
import json
import math
import numbers
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rram_lsm.errors import ConfigError

from .emulator import FIRMWARE_VERSION, Emulator, Faults, check_emulator_options
from .errors import HardwareError

__all__ = ["open_emulated", "build_macro", "add_fault_arguments", "faults_from_args",
           "positive_seconds", "non_negative_seconds", "probability", "positive_int",
           "non_negative_int"]


def _profile_arg(profile, tmpdir: Path) -> str:
    """Profiles travel to the child as a name or a JSON path (DeviceProfile.to_json)."""
    if profile is None:
        return ""
    if isinstance(profile, (str, os.PathLike)):
        return str(profile)
    to_json = getattr(profile, "to_json", None)
    if to_json is None:
        raise ConfigError(f"profile must be None, a preset name, a JSON path or a "
                          f"DeviceProfile, got {type(profile).__name__}")
    return str(to_json(tmpdir / "profile.json"))


def _check_macro_index(macro_index) -> int:
    if isinstance(macro_index, bool) or not isinstance(macro_index, numbers.Integral) \
            or macro_index < 0:
        raise ConfigError(f"macro_index must be a non-negative integer, got {macro_index!r}")
    return int(macro_index)


def open_emulated(seed: int = 0, profile=None, *, macro_index: int = 0, timeout_s: float = 1.0,
                  retries: int = 5, wire_log=None, startup_timeout_s: float = 180.0,
                  gap_s: float = 0.05, inter_byte_timeout_s: float = 0.05,
                  backoff_s: float = 0.01, factory: str = "sim:SimMacro",
                  baud: int | None = None, **faults):
    """Start an emulator (``seed``, ``profile``) in its own process behind ``os.openpty``.

    Returns a ``SerialMacro`` on the pseudo-terminal; its ``close()`` also stops the
    process. ``macro_index`` picks macro k of the chip ``seed`` (0: the single-macro chip).
    ``faults`` are :class:`Faults` fields (corrupt_rate, drop_rate, latency_s, reset_rate,
    fault_seed). ``factory`` names the macro class ``module:callable`` the child builds
    (see :func:`build_macro`). ``gap_s`` and ``baud`` are the emulator's (see
    :class:`~hardware.emulator.Emulator`; ``baud`` paces its replies like a UART, None:
    unpaced). The macro's ``identity()`` is ``{"backend": "emulator",
    "seed", "macro_index", "profile": <the resolved profile's to_dict()>, "firmware":
    FIRMWARE_VERSION}``, plus ``"code"`` (the simulator's code digest, from the child's
    ``SimMacro.identity()``) and ``"factory"`` when it is not the default.
    """
    import tty

    from .driver import SerialMacro

    macro_index = _check_macro_index(macro_index)
    fault_cfg = Faults(**faults)  # validate here, not in the child
    check_emulator_options(gap_s=gap_s, baud=baud)
    tmpdir = Path(tempfile.mkdtemp(prefix="rram-lsm-emu-"))
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    err_path = tmpdir / "stderr.txt"
    cmd = [sys.executable, "-m", "hardware.spawn", "--fd", str(master),
           "--hold-fd", str(slave), "--seed", str(seed), "--profile",
           _profile_arg(profile, tmpdir), "--macro-index", str(macro_index),
           "--gap-s", str(gap_s), "--factory", factory,
           *(["--baud", str(int(baud))] if baud is not None else []),
           "--parent-pid", str(os.getpid()),
           "--corrupt-rate", str(fault_cfg.corrupt_rate), "--drop-rate",
           str(fault_cfg.drop_rate), "--latency-s", str(fault_cfg.latency_s),
           "--reset-rate", str(fault_cfg.reset_rate), "--fault-seed", str(fault_cfg.fault_seed)]
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, pass_fds=(master, slave), stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL)
    os.close(master)
    os.close(slave)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
        for p in tmpdir.iterdir():
            p.unlink()
        tmpdir.rmdir()

    try:
        chip = _wait_ready(proc, startup_timeout_s, err_path)
        identity = {"backend": "emulator",
                    "seed": int(seed) if isinstance(seed, numbers.Integral) else seed,
                    "macro_index": macro_index,
                    "profile": chip.get("profile"), "firmware": FIRMWARE_VERSION}
        if "code" in chip:
            identity["code"] = chip["code"]
        if factory != "sim:SimMacro":
            identity["factory"] = factory
        macro = SerialMacro(path, timeout_s=timeout_s, retries=retries, wire_log=wire_log,
                            inter_byte_timeout_s=inter_byte_timeout_s, backoff_s=backoff_s,
                            identity=identity)
    except BaseException:
        stop()
        raise
    macro._on_close = stop
    macro.emulator_pid = proc.pid
    return macro


def _wait_ready(proc, timeout_s: float, err_path: Path) -> dict:
    """Wait for the child's ``READY <json>`` line; return its JSON (what the chip is)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(b"READY"):
                rest = line[len(b"READY"):].strip()
                try:
                    return json.loads(rest) if rest else {}
                except ValueError as exc:
                    raise HardwareError(f"the emulator's READY line is not JSON: "
                                        f"{rest[:200]!r}") from exc
        if proc.poll() is not None:
            raise HardwareError(
                f"the emulator process exited with code {proc.returncode}: "
                f"{err_path.read_text(errors='replace')[-2000:]}")
    raise HardwareError(f"the emulator did not start within {timeout_s:g} s")


def build_macro(factory: str, seed: int, profile, macro_index: int = 0):
    """The emulated chip: ``module:callable`` called with ``(seed=, profile=)``.

    ``profile`` None or "" is the factory's default; ``macro_index`` is passed (as
    ``macro_index=``) only when non-zero, so a factory without multi-macro chips still
    builds macro 0. This is the one place ``hardware`` reaches the simulator.
    """
    import importlib

    module, _, name = factory.partition(":")
    try:
        ctor = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import the emulator's macro {factory!r}: {exc}") from exc
    macro_index = _check_macro_index(macro_index)
    if not macro_index:
        return ctor(seed=seed, profile=profile or None)
    try:
        return ctor(seed=seed, profile=profile or None, macro_index=macro_index)
    except TypeError as exc:
        if "macro_index" not in str(exc):
            raise
        raise ConfigError(f"the emulator's macro {factory!r} does not take macro_index "
                          f"(asked for macro {macro_index}): {exc}") from exc


def _chip_description(macro) -> dict:
    """What the READY line tells the parent: the resolved profile and, where the macro's
    ``identity()`` names one, the digest of its code (an edit to the physics is another chip)."""
    identity = macro.identity() if callable(getattr(macro, "identity", None)) else {}
    profile = identity.get("profile")
    if profile is None:
        to_dict = getattr(getattr(macro, "profile", None), "to_dict", None)
        profile = to_dict() if to_dict is not None else None
    out = {"profile": profile}
    if identity.get("code") is not None:
        out["code"] = identity["code"]
    return out


def _number(text: str, kind, what: str, ok) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    return _number(text, float, "a positive, finite number of seconds",
                   lambda v: 0 < v < math.inf)


def non_negative_seconds(text: str) -> float:
    """argparse type: a finite number of seconds >= 0."""
    return _number(text, float, "a finite number of seconds >= 0", lambda v: 0 <= v < math.inf)


def probability(text: str) -> float:
    """argparse type: a probability in [0, 1)."""
    return _number(text, float, "a probability in [0, 1)", lambda v: 0 <= v < 1)


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    return _number(text, int, "a positive integer", lambda v: v > 0)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, "a non-negative integer", lambda v: v >= 0)


def add_fault_arguments(p: argparse.ArgumentParser) -> None:
    """The fault-injection options shared by ``rram-lsm emulate`` and the child process."""
    p.add_argument("--corrupt-rate", type=probability, default=0.0,
                   help="probability a byte is altered")
    p.add_argument("--drop-rate", type=probability, default=0.0,
                   help="probability a byte is lost")
    p.add_argument("--latency-s", type=non_negative_seconds, default=0.0,
                   help="delay before every reply (s)")
    p.add_argument("--reset-rate", type=probability, default=0.0,
                   help="probability per command of a spontaneous device reboot")
    p.add_argument("--fault-seed", type=non_negative_int, default=0,
                   help="seed of the fault streams")


def faults_from_args(args) -> Faults:
    """Faults from parsed ``add_fault_arguments`` options."""
    return Faults(args.corrupt_rate, args.drop_rate, args.latency_s, args.reset_rate,
                  args.fault_seed)


def _child_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hardware.spawn")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--hold-fd", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="")
    p.add_argument("--macro-index", type=int, default=0)
    p.add_argument("--gap-s", type=positive_seconds, default=0.05)
    p.add_argument("--baud", type=positive_int, default=None)
    p.add_argument("--factory", default="sim:SimMacro")
    p.add_argument("--parent-pid", type=int, default=None)
    add_fault_arguments(p)
    args = p.parse_args(argv)
    emu = Emulator(build_macro(args.factory, args.seed, args.profile, args.macro_index),
                   faults_from_args(args), gap_s=args.gap_s, baud=args.baud)
    emu.macro.info()
    sys.stdout.write("READY " + json.dumps(_chip_description(emu.macro)) + "\n")
    sys.stdout.flush()

    def orphaned() -> bool:
        return args.parent_pid is not None and os.getppid() != args.parent_pid
    try:
        emu.serve(args.fd, stop=orphaned)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
