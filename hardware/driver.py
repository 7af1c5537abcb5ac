"""``SerialMacro``: the macro interface over a serial link (docs/protocol.md).

The framing, sequence numbers, retries and wire log are :class:`hardware.link.Link`'s; this
module turns the :class:`rram_lsm.macro.Macro` calls into command payloads (``codec``),
checks every argument before anything is sent, and decodes the replies.
"""
from __future__ import annotations

import copy
import numbers
import time

import numpy as np

from rram_lsm.errors import ConfigError, RegionError, ShapeError
from rram_lsm.macro import (RUN_RESERVOIR, FormResult, MacroInfo, ProgramResult, Region,
                            check_form_request, check_region)
from rram_lsm.reservoir import ReservoirSpec, check_rasters, check_tile

from . import codec
from .errors import (ChunkError, CorruptFrameError, DeviceBusyError, DeviceError,
                     DeviceResetError, FirmwareMismatchError, HardwareError, LinkTimeoutError,
                     ProtocolError)
from .link import Link, LinkStats, _command_name
from .protocol import PROTOCOL_VERSION, STATE_CHANGING, Command, Status

__all__ = ["SerialMacro", "LinkStats", "check_binary", "check_program_args",
           "check_reservoir_spec", "real_arg"]


def check_binary(inputs, rows: int, what: str = "inputs", ndim: int = 2) -> np.ndarray:
    """Validate a 0/1 array of shape ``(..., rows)``; return it as uint8 (ShapeError if not)."""
    arr = np.asarray(inputs)
    if arr.ndim != ndim or arr.shape[-1] != rows:
        want = "(batch, rows)" if ndim == 2 else "(batch, steps, n_inputs)"
        raise ShapeError(f"{what} must have shape {want} with {rows} in the last axis, "
                         f"got {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise ShapeError(f"{what} must be numeric 0/1, got dtype {arr.dtype}")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise ShapeError(f"{what} must be binary (0/1 spikes)")
    return arr.astype(np.uint8)


def real_arg(value, name: str) -> float:
    """``value`` as a float; ConfigError (not a numpy TypeError) if it is not a real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _u16_arg(value, name: str, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or not low <= value <= 0xFFFF:
        raise ConfigError(f"{name} must be an integer in [{low}, 65535] (a u16 on the wire), "
                          f"got {value!r}")
    return int(value)


def check_reservoir_spec(spec: ReservoirSpec) -> None:
    """Refuse a spec the RUN_RESERVOIR request cannot carry (ConfigError), before sending.

    A :class:`~rram_lsm.reservoir.ReservoirSpec` validates its values itself; this checks
    only what the wire adds: counts fit a u16, the reset rule has a code in the codec.
    """
    if not isinstance(spec, ReservoirSpec):
        raise ConfigError(
            f"spec must be a rram_lsm.reservoir.ReservoirSpec, got {type(spec).__name__}")
    _u16_arg(spec.n_inputs, "spec.n_inputs", 1)
    _u16_arg(spec.n_neurons, "spec.n_neurons", 1)
    _u16_arg(spec.refractory_steps, "spec.refractory_steps", 0)
    if spec.reset not in codec.RESET_MODES:
        raise ConfigError(f"spec.reset {spec.reset!r} has no code on the wire; this protocol "
                          f"carries {codec.RESET_MODES}")


def check_program_args(region: Region, target_us, tolerance_us: float,
                       max_pulses: int) -> np.ndarray:
    """Validate PROGRAM arguments as the simulator does; return the target as float64.

    The target's range is the device's to judge (it alone knows its conductance window).
    """
    target = np.asarray(target_us)
    if target.shape != region.shape:
        raise ShapeError(f"target_us has shape {target.shape}; the region needs {region.shape}")
    if not np.issubdtype(target.dtype, np.number) or np.iscomplexobj(target):
        raise ShapeError(f"target_us must be real numbers (µS), got dtype {target.dtype}")
    tolerance_us = real_arg(tolerance_us, "tolerance_us")
    if not (np.isfinite(tolerance_us) and tolerance_us > 0):
        raise ConfigError(f"tolerance_us must be a positive number, got {tolerance_us!r}")
    if isinstance(max_pulses, bool) or not isinstance(max_pulses, (int, np.integer)) \
            or not 0 <= max_pulses <= 0xFFFFFFFF:
        raise ConfigError(f"max_pulses must be a non-negative 32-bit integer, got {max_pulses!r}")
    return np.ascontiguousarray(target, dtype=np.float64)


class SerialMacro:
    """An RRAM macro on a serial link; implements :class:`rram_lsm.macro.Macro`.

    ``port`` is a URL/path for ``serial.serial_for_url`` or an open ``SerialBase``; it and
    the link options (``baudrate``, ``timeout_s``, ``retries``, ``wire_log``,
    ``inter_byte_timeout_s``, ``backoff_s``, ``max_backoff_s``, ``max_wait_s``,
    ``first_seq``) are :class:`~hardware.link.Link`'s, which ``link`` holds. The handshake
    (INFO, then STATUS for the device's ``boot_count``) runs on construction. ``identity`` is
    what :meth:`identity` returns (derived from the port and the handshake when None).

    Reboots (docs/protocol.md, section 5): after every wait that ended without a reply the
    driver reads STATUS before retransmitting. If ``boot_count`` went up it re-reads INFO
    (a device that comes back different is refused), counts ``stats.device_resets``, and
    retransmits only what is safe: a read, or a state-changing command that the device's
    exactly-once record holds; any other state-changing command raises
    :class:`~hardware.errors.DeviceResetError` instead of being repeated blindly. A lost
    port raises :class:`~hardware.errors.LinkLostError`; :meth:`reconnect` opens it again.
    """

    def __init__(self, port, baudrate: int = 921600, timeout_s: float = 1.0, retries: int = 5,
                 wire_log=None, *, inter_byte_timeout_s: float = 0.05, backoff_s: float = 0.01,
                 max_backoff_s: float = 0.2, max_wait_s: float = 600.0,
                 first_seq: int | None = None, identity: dict | None = None):
        if identity is not None and not isinstance(identity, dict):
            raise ConfigError(f"identity must be a dict or None, got {type(identity).__name__}")
        self.link = Link(port, baudrate, timeout_s, retries, wire_log,
                         inter_byte_timeout_s=inter_byte_timeout_s, backoff_s=backoff_s,
                         max_backoff_s=max_backoff_s, max_wait_s=max_wait_s,
                         first_seq=first_seq)
        """The framed, retrying channel under this macro."""
        self._closed = False
        self._on_close = None
        self.boot_count: int | None = None
        """The device's ``boot_count`` as last read (STATUS at the handshake and after)."""
        try:
            self._info, self.wire_limits = self._handshake()
            self.link.set_limits(self.wire_limits.max_frame_payload,
                                 self.wire_limits.max_message_bytes)
            self.boot_count = self._read_status().boot_count
        except BaseException:
            self.close()
            raise
        self.link.on_lost_reply = self._after_lost_reply
        if identity is None:
            identity = {"backend": "serial",
                        "url": self.link.url or getattr(port, "port", None) or repr(port),
                        "model": self._info.model,
                        "firmware_version": self._info.firmware_version}
        self._identity = copy.deepcopy(identity)

    # ---- context manager and lifetime -------------------------------------------------
    def __enter__(self) -> "SerialMacro":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self._info
        return (f"SerialMacro({self.port_name!r}, {i.model} {i.rows}x{i.cols}, "
                f"firmware {i.firmware_version}, capabilities={list(i.capabilities)})")

    @property
    def stats(self) -> LinkStats:
        """The link's counters (bytes, round trips, retries, commands sent by name...)."""
        return self.link.stats

    @property
    def port_name(self) -> str:
        """The port's device path (or the URL given)."""
        return self.link.port_name

    def set_wire_log(self, target) -> None:
        """Switch the wire log: None (off), a file path (appended) or a text stream."""
        self.link.set_wire_log(target)

    def close(self) -> None:
        """Close the port (if this object opened it) and stop an attached emulator."""
        if self._closed:
            return
        self._closed = True
        try:
            self.link.close()
        finally:
            if self._on_close is not None:
                self._on_close()

    def identity(self) -> dict:
        """What identifies this chip for cache keys (a fresh copy; plain JSON values).

        By default ``backend``, ``url``, ``model`` and ``firmware_version``; an emulated chip
        (``open_emulated``) says ``backend: emulator`` with its seed, macro index, profile
        and firmware instead.
        """
        return copy.deepcopy(self._identity)

    def _exchange(self, cmd: Command, payload: bytes = b"") -> bytes:
        return self.link.exchange(cmd, payload)

    def _read_status(self) -> codec.DeviceStatus:
        payload = self._exchange(Command.STATUS)
        try:
            return codec.decode_status(payload)
        except ProtocolError as exc:
            raise FirmwareMismatchError(
                f"{self.port_name} sent a STATUS reply this driver cannot parse ({exc}); "
                "the firmware is incompatible") from exc

    def _device_rebooted(self, st: codec.DeviceStatus) -> int:
        """``boot_count`` went up: count it, re-read INFO (refuse a changed device) and
        return the previous boot count."""
        before, self.boot_count = self.boot_count, st.boot_count
        self.link.stats.device_resets += 1
        info, wire = self._handshake()
        if (info, wire) != (self._info, self.wire_limits):
            raise FirmwareMismatchError(
                f"{self.port_name} rebooted (boot count {before} -> {st.boot_count}) and came "
                f"back as {info.model} {info.rows}x{info.cols}, firmware "
                f"{info.firmware_version} with other limits or geometry than the "
                f"{self._info.model} {self._info.firmware_version} this session opened; "
                "open a new SerialMacro")
        return before

    def _unrecorded(self, st: codec.DeviceStatus, seq: int, cmd: int, before: int,
                    when: str) -> DeviceResetError:
        name = _command_name(cmd)
        self.link.forget_unfinished()
        check = {Command.ADVANCE: "Read the clock (clock_s)",
                 Command.RESET: "RESET is harmless to repeat; check STATUS"}.get(
            cmd, "Read the region back (read_conductance)")
        return DeviceResetError(
            f"{self.port_name} rebooted (boot count {before} -> {st.boot_count}) {when} "
            f"{name} seq {seq} was outstanding, and its exactly-once record (last state "
            f"change: seq {st.last_state_seq}) does not hold it: it never arrived or was cut "
            f"short part-way, so the driver does not repeat it. {check} and repeat {name} "
            "if it is still needed.",
            command=name, seq=seq, boot_count=(before, st.boot_count))

    def _after_lost_reply(self, seq: int, cmd: int) -> None:
        """The link's hook after a wait without reply: notice a reboot before retransmitting.

        If STATUS itself goes unanswered, a read is simply retransmitted (repeating it is
        harmless; a reboot is noticed at the next STATUS), a state-changing command fails
        with STATUS's error and is remembered as unfinished.
        """
        if cmd in (Command.INFO, Command.STATUS):
            return  # retransmitting these is the check
        try:
            st = self._read_status()
        except (LinkTimeoutError, CorruptFrameError, ChunkError, DeviceBusyError) as exc:
            if cmd in STATE_CHANGING:
                raise type(exc)(f"{_command_name(cmd)} seq {seq} got no reply, and STATUS "
                                f"(read to check for a reboot) failed too: {exc}") from exc
            return
        if st.boot_count == self.boot_count:
            return
        before = self._device_rebooted(st)
        if cmd in STATE_CHANGING and st.last_state_seq != seq:
            raise self._unrecorded(st, seq, cmd, before, "while")

    def reconnect(self, port=None) -> codec.DeviceStatus:
        """Open the port again after a :class:`~hardware.errors.LinkLostError` (``port``:
        where the device is now, a URL/path or an open ``SerialBase``; None: the same URL).

        Re-runs the handshake and refuses a different device (``FirmwareMismatchError``).
        Sequence numbers continue, so repeating the call that failed repeats its exact
        request and the device's exactly-once record answers it if it ran. If the device
        rebooted meanwhile and a state-changing command was outstanding that its record does
        not hold, raises :class:`~hardware.errors.DeviceResetError` (the link is usable).
        A command the device is still executing is waited for (STATUS polled, within
        ``max_wait_s``). Returns the device's STATUS.
        """
        if self._closed:
            raise HardwareError(f"{self.port_name}: this SerialMacro is closed; open a new one")
        self.link.reopen(port)
        info, wire = self._handshake()
        if (info, wire) != (self._info, self.wire_limits):
            raise FirmwareMismatchError(
                f"{self.port_name} answers as {info.model} {info.rows}x{info.cols}, firmware "
                f"{info.firmware_version}, not as the {self._info.model} "
                f"{self._info.firmware_version} this session opened; open a new SerialMacro")
        st = self._read_status()
        deadline = time.monotonic() + self.link.max_wait_s
        while st.busy and st.boot_count == self.boot_count:
            # still executing a command sent before the link went: let it finish (a repeat
            # of it would be answered IN_PROGRESS anyway, any other command BUSY)
            if time.monotonic() > deadline:
                raise DeviceBusyError(f"{self.port_name} stayed busy for "
                                      f"{self.link.max_wait_s:g} s after the reconnect")
            time.sleep(max(self.link.backoff_s, 0.02))
            st = self._read_status()
        if st.boot_count != self.boot_count:
            before, self.boot_count = self.boot_count, st.boot_count
            self.link.stats.device_resets += 1
            pending = self.link.unfinished
            if pending is not None and st.last_state_seq != pending[0]:
                raise self._unrecorded(st, pending[0], pending[1], before,
                                       "while the link was down and")
        return st

    def _handshake(self):
        try:
            payload = self._exchange(Command.INFO)
        except LinkTimeoutError as exc:
            raise LinkTimeoutError(
                f"{self.port_name} did not answer the INFO handshake ({exc}); is a macro "
                "attached, powered, and running protocol firmware at this baud rate?",
                received_bytes=exc.received_bytes) from exc
        try:
            info, wire = codec.decode_info(payload)
        except ProtocolError as exc:
            raise FirmwareMismatchError(
                f"{self.port_name} sent an INFO reply this driver cannot parse ({exc}); "
                "the firmware is incompatible") from exc
        if info.protocol_version != PROTOCOL_VERSION:
            raise FirmwareMismatchError(
                f"firmware {info.firmware_version} speaks protocol {info.protocol_version}, "
                f"this driver speaks {PROTOCOL_VERSION}; update the firmware or the driver")
        if wire.max_frame_payload < 64 or wire.max_message_bytes < 1024:
            raise FirmwareMismatchError(
                f"device limits too small to operate: frame payload {wire.max_frame_payload}, "
                f"message {wire.max_message_bytes} bytes")
        return info, wire

    # ---- the Macro interface --------------------------------------------------------------
    def info(self) -> MacroInfo:
        """The INFO handshake result (geometry, versions, ADC, limits, capabilities)."""
        return self._info

    def _region(self, region) -> Region:
        return check_region(region, self._info.rows, self._info.cols)

    def form(self, region, voltage_v: float, pulse_width_s: float,
             compliance_ua: float) -> FormResult:
        """Electroform ``region`` (checked against the device's limits before sending)."""
        r = self._region(region)
        voltage_v, pulse_width_s, compliance_ua = (
            real_arg(voltage_v, "voltage_v"), real_arg(pulse_width_s, "pulse_width_s"),
            real_arg(compliance_ua, "compliance_ua"))
        check_form_request(self._info.limits, voltage_v, pulse_width_s, compliance_ua)
        payload = self._exchange(Command.FORM, codec.encode_form_request(
            r, voltage_v, pulse_width_s, compliance_ua))
        return codec.decode_form_reply(payload, r)

    def program(self, region, target_us, tolerance_us: float, max_pulses: int) -> ProgramResult:
        """Write-verify ``region`` toward ``target_us`` (exactly once, even across retries)."""
        r = self._region(region)
        target = check_program_args(r, target_us, tolerance_us, max_pulses)
        payload = self._exchange(Command.PROGRAM, codec.encode_program_request(
            r, target, tolerance_us, int(max_pulses)))
        return codec.decode_program_reply(payload, r)

    def read_conductance(self, region) -> np.ndarray:
        """Read the region's conductances (µS)."""
        r = self._region(region)
        payload = self._exchange(Command.READ, codec.pack_region(r))
        return codec.decode_f64(payload, r.rows * r.cols, "READ reply").reshape(r.shape)

    def _split(self, batch: int, bytes_per_sample: int) -> int:
        """Samples per message so requests and replies stay within the device's bound."""
        budget = self.wire_limits.max_message_bytes - 256
        return max(1, min(batch, budget // max(1, bytes_per_sample)))

    def mvm(self, region, inputs, differential: bool = False) -> np.ndarray:
        """Batched binary MVM (µA after the ADC); inputs travel bit-packed."""
        r = self._region(region)
        x = check_binary(inputs, r.rows)
        if differential and r.cols % 2:
            raise RegionError(f"differential mvm needs an even number of columns, got {r.cols}")
        step = self._split(x.shape[0], max((r.rows + 7) // 8, 8 * r.cols))
        parts = [self._mvm_once(r, x[i:i + step], differential)
                 for i in range(0, x.shape[0], step)] or [self._mvm_once(r, x, differential)]
        return np.concatenate(parts, axis=0)

    def _mvm_once(self, r: Region, x: np.ndarray, differential: bool) -> np.ndarray:
        payload = self._exchange(Command.MVM, codec.encode_mvm_request(r, x, differential))
        encoding, vals = codec.decode_mvm_reply(payload)
        out_cols = r.cols // 2 if differential else r.cols
        if encoding == codec.ENC_F64:
            if vals.shape != (x.shape[0], out_cols):
                raise ProtocolError(f"MVM reply has shape {vals.shape}, expected "
                                    f"{(x.shape[0], out_cols)}")
            return vals.astype(np.float64)
        if vals.shape != (x.shape[0], r.cols):
            raise ProtocolError(f"MVM reply carries {vals.shape} codes, expected "
                                f"{(x.shape[0], r.cols)}")
        currents = vals.astype(np.float64) * self._info.adc_lsb_ua
        # subtract after digitising each side, exactly as the interface defines it
        return currents[:, 0::2] - currents[:, 1::2] if differential else currents

    def advance_time(self, seconds: float) -> float:
        """Move the device clock forward (exactly once); return the new clock (s)."""
        seconds = real_arg(seconds, "seconds")
        if not (np.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"advance_time needs a finite, non-negative duration, got "
                              f"{seconds!r}")
        payload = self._exchange(Command.ADVANCE, codec.encode_f64(seconds))
        return float(codec.decode_f64(payload, 1, "ADVANCE reply")[0])

    def clock_s(self) -> float:
        """The device clock (s)."""
        return float(codec.decode_f64(self._exchange(Command.CLOCK), 1, "CLOCK reply")[0])

    def reset(self) -> None:
        """Return the device to its power-up state (cells keep their conductance)."""
        codec.Reader(self._exchange(Command.RESET), "RESET reply").done()

    def status(self) -> codec.DeviceStatus:
        """Device counters: boot count, clock, frames, executed state changes.

        A ``boot_count`` above the last one seen is noted as a reboot (INFO re-read,
        ``stats.device_resets``), as after a lost reply.
        """
        st = self._read_status()
        if st.boot_count != self.boot_count:
            self._device_rebooted(st)
        return st

    def run_reservoir(self, region, rasters, spec: ReservoirSpec) -> np.ndarray:
        """Run the LIF loop on the device (needs the run_reservoir capability).

        ``rasters`` uint8 ``(batch, T, n_inputs)`` -> uint8 spikes ``(batch, T, n_neurons)``;
        the sample crosses the link once instead of once per step.
        """
        if RUN_RESERVOIR not in self._info.capabilities:
            raise DeviceError(
                f"{self.port_name} does not advertise {RUN_RESERVOIR}; run the per-step loop "
                "(rram_lsm.reservoir.run_reference) instead", status=Status.UNSUPPORTED)
        check_reservoir_spec(spec)
        r = check_tile(region, spec, self._info.rows, self._info.cols)
        x = check_rasters(rasters, spec.n_inputs)
        per_sample = x.shape[1] * ((max(spec.n_inputs, spec.n_neurons) + 7) // 8)
        step = self._split(x.shape[0], per_sample)
        parts = []
        for i in range(0, max(1, x.shape[0]), step):
            payload = self._exchange(Command.RUN_RESERVOIR,
                                     codec.encode_reservoir_request(r, spec, x[i:i + step]))
            spikes = codec.decode_spikes(payload)
            expected = (x[i:i + step].shape[0], x.shape[1], spec.n_neurons)
            if spikes.shape != expected:
                raise ProtocolError(f"RUN_RESERVOIR reply has shape {spikes.shape}, "
                                    f"expected {expected}")
            parts.append(spikes)
        return np.concatenate(parts, axis=0)

