"""``SerialMacro``: the macro interface over a serial link (docs/protocol.md).

Opens ports with ``serial.serial_for_url`` (device paths, ``socket://``, ``loop://``...) or
takes an already open ``serial.SerialBase``. Every wait is bounded, every failure is typed,
and retries reuse the sequence number so the device's reply cache makes FORM, PROGRAM,
ADVANCE and RESET happen exactly once.
"""
from __future__ import annotations

import numbers
import os
import time
from dataclasses import dataclass

import numpy as np

from rram_lsm.errors import ConfigError, RegionError, ShapeError
from rram_lsm.macro import (RUN_RESERVOIR, FormResult, MacroInfo, ProgramResult, Region,
                            ReservoirSpec, check_form_request, check_region)

from . import codec
from .errors import (ChunkError, CorruptFrameError, DeviceArgumentError, DeviceBusyError,
                     DeviceError, DeviceRegionError, DeviceSafetyLimitError, DeviceShapeError,
                     FirmwareMismatchError, HardwareError, LinkTimeoutError, ProtocolError)
from .protocol import (DEFAULT_MAX_FRAME_PAYLOAD, NO_SEQ, PROTOCOL_VERSION, Command, FrameDecoder,
                       MessageAssembler, Status, encode_message)

__all__ = ["SerialMacro", "LinkStats", "check_binary", "check_program_args",
           "check_reservoir_spec", "real_arg"]

_RETRY_STATUSES = {Status.BAD_CRC, Status.BAD_FRAME, Status.CHUNK_ERROR}
_ERROR_TYPES = {
    Status.REGION_ERROR: DeviceRegionError,
    Status.SHAPE_ERROR: DeviceShapeError,
    Status.SAFETY_LIMIT: DeviceSafetyLimitError,
    Status.BAD_ARGUMENT: DeviceArgumentError,
}
_POLL_S = 0.005


@dataclass
class LinkStats:
    """Counters of one driver session (mutable; read them, don't set them)."""

    commands: int = 0
    """Commands completed (a reply accepted)."""
    attempts: int = 0
    """Request transmissions (round trips), retries included."""
    retries: int = 0
    """Transmissions beyond the first of a command."""
    timeouts: int = 0
    """Waits that ended without a reply."""
    corrupt: int = 0
    """Replies rejected for CRC/framing/chunking, plus device NAKs of our frames."""
    busy: int = 0
    """BUSY answers."""
    bytes_sent: int = 0
    """Bytes written to the port."""
    bytes_received: int = 0
    """Bytes read from the port."""
    payload_sent: int = 0
    """Message payload bytes in the transmitted requests (framing excluded)."""
    payload_received: int = 0
    """Payload bytes of the accepted reply frames (framing, junk and stale frames excluded)."""


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
    """Refuse a spec the RUN_RESERVOIR request cannot carry (ConfigError), before sending."""
    if not isinstance(spec, ReservoirSpec):
        raise ConfigError(
            f"spec must be a rram_lsm.macro.ReservoirSpec, got {type(spec).__name__}")
    _u16_arg(spec.n_inputs, "spec.n_inputs", 1)
    _u16_arg(spec.n_neurons, "spec.n_neurons", 1)
    _u16_arg(spec.refractory_steps, "spec.refractory_steps", 0)
    for name in ("decay", "threshold", "weight_scale", "g_ref_us"):
        if not np.isfinite(real_arg(getattr(spec, name), f"spec.{name}")):
            raise ConfigError(f"spec.{name} must be finite, got {getattr(spec, name)!r}")
    if spec.g_ref_us <= 0:
        raise ConfigError(f"spec.g_ref_us must be positive, got {spec.g_ref_us!r}")
    if spec.reset not in codec.RESET_MODES:
        raise ConfigError(f"spec.reset must be one of {codec.RESET_MODES}, got {spec.reset!r}")


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

    ``port`` is a URL/path for ``serial.serial_for_url`` or an open ``SerialBase``.
    ``timeout_s`` bounds each wait for a reply (restarted by the device's IN_PROGRESS
    keep-alives, never beyond ``max_wait_s``); ``retries`` bounds re-transmissions, with
    exponential backoff from ``backoff_s`` capped at ``max_backoff_s``; a partial frame
    followed by ``inter_byte_timeout_s`` of silence counts as lost. ``wire_log`` (None, a
    path or a text stream; see :meth:`set_wire_log`) records every byte in hex with
    timestamps. ``first_seq`` fixes the first sequence number (random per session
    otherwise, so a new session never collides with the device's cached reply).
    """

    def __init__(self, port, baudrate: int = 921600, timeout_s: float = 1.0, retries: int = 5,
                 wire_log=None, *, inter_byte_timeout_s: float = 0.05, backoff_s: float = 0.01,
                 max_backoff_s: float = 0.2, max_wait_s: float = 600.0,
                 first_seq: int | None = None):
        if not (timeout_s > 0 and inter_byte_timeout_s > 0 and max_wait_s > 0
                and baudrate > 0 and retries >= 0 and backoff_s >= 0):
            raise ConfigError("baudrate, timeout_s, inter_byte_timeout_s and max_wait_s must be "
                              "positive, retries and backoff_s non-negative; got "
                              f"{baudrate=}, {timeout_s=}, {inter_byte_timeout_s=}, "
                              f"{max_wait_s=}, {retries=}, {backoff_s=}")
        self.timeout_s = float(timeout_s)
        self.baudrate = int(baudrate)
        self.retries = int(retries)
        self.inter_byte_timeout_s = float(inter_byte_timeout_s)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_wait_s = float(max_wait_s)
        self.stats = LinkStats()
        self._seq = (int.from_bytes(os.urandom(2), "little") if first_seq is None
                     else int(first_seq)) & 0xFFFF
        self._max_payload = DEFAULT_MAX_FRAME_PAYLOAD
        self._decoder = FrameDecoder(self._max_payload)
        self._assembler = MessageAssembler()
        self._log = None
        self._log_owned = False
        self._t0 = time.monotonic()
        self._closed = False
        self._on_close = None
        if isinstance(port, (str, os.PathLike)):
            from .ports import open_port

            self._port = open_port(str(port), baudrate)
            self._owns_port = True
        else:
            self._port = port
            self._owns_port = False
        self.port_name = getattr(self._port, "port", None) or str(port)
        self._poll_s = min(_POLL_S, self.inter_byte_timeout_s / 4)
        if self._owns_port:
            self._port.timeout = self._poll_s
        port_timeout = getattr(self._port, "timeout", None)
        self._blocking_read_ok = port_timeout is not None and port_timeout <= _POLL_S
        self.set_wire_log(wire_log)
        try:
            self._info, self.wire_limits = self._handshake()
        except BaseException:
            self.close()
            raise
        self._max_payload = self.wire_limits.max_frame_payload
        self._decoder.max_payload = self._max_payload
        self._assembler.max_message_bytes = self.wire_limits.max_message_bytes

    # ---- context manager and lifetime -------------------------------------------------
    def __enter__(self) -> "SerialMacro":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self._info
        return (f"SerialMacro({self.port_name!r}, {i.model} {i.rows}x{i.cols}, "
                f"firmware {i.firmware_version}, capabilities={list(i.capabilities)})")

    def close(self) -> None:
        """Close the port (if this object opened it) and stop an attached emulator."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_port:
                self._port.close()
        finally:
            self.set_wire_log(None)
            if self._on_close is not None:
                self._on_close()

    def set_wire_log(self, target) -> None:
        """Switch the wire log: None (off), a file path (appended) or a text stream."""
        if self._log is not None and self._log_owned:
            self._log.close()
        self._log_owned = isinstance(target, (str, os.PathLike))
        self._log = open(target, "a", encoding="ascii") if self._log_owned else target

    def _trace(self, direction: str, data: bytes) -> None:
        if self._log is not None and data:
            self._log.write(f"{time.monotonic() - self._t0:12.6f} {direction} {data.hex()}\n")
            self._log.flush()

    # ---- transport ----------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _write(self, data: bytes) -> None:
        self._trace(">", data)
        need_s = 2.0 + 30.0 * len(data) / self.baudrate  # a big message takes a while
        if self._owns_port and need_s > (self._port.write_timeout or 0.0):
            self._port.write_timeout = need_s  # (setting it reconfigures the port: rarely)
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as exc:  # pyserial raises SerialException/OSError subclasses
            raise HardwareError(f"writing to {self.port_name} failed: {exc}") from exc
        self.stats.bytes_sent += len(data)

    def _read_some(self) -> bytes:
        """What the port has now; blocks at most one short poll interval."""
        try:
            waiting = self._port.in_waiting
            if waiting:
                data = self._port.read(waiting)
            elif self._blocking_read_ok:
                data = self._port.read(1)  # returns on the first byte or after the poll time
            else:
                time.sleep(self._poll_s)
                data = b""
        except Exception as exc:
            raise HardwareError(f"reading from {self.port_name} failed: {exc}") from exc
        if data:
            self._trace("<", data)
            self.stats.bytes_received += len(data)
        return data

    def _resync(self) -> None:
        """Forget partial input so the next reply is decoded from its sync bytes."""
        self._decoder.reset()
        self._assembler.reset()
        try:
            self._port.reset_input_buffer()
        except Exception:  # not every SerialBase implements it; decoding resyncs anyway
            pass

    def _await_reply(self, seq: int, cmd: int):
        """The complete reply message for ``(seq, cmd)``; raises timeout/corruption."""
        now = time.monotonic()
        deadline, hard_deadline = now + self.timeout_s, now + self.max_wait_s
        last_rx = now
        garbage_mark = self._decoder.garbage_bytes
        received_mark = self.stats.bytes_received
        while True:
            data = self._read_some()
            now = time.monotonic()
            items: list = []
            if data:
                last_rx = now
                items = self._decoder.feed(data)
                if self._decoder.frame_in_progress:
                    # the reply started in time (its header is intact): let it finish while
                    # bytes keep coming; junk almost never forges a header CRC
                    deadline = max(deadline, min(now + self.inter_byte_timeout_s,
                                                 hard_deadline))
            elif now - last_rx > self.inter_byte_timeout_s and (
                    self._decoder.pending or self._decoder.garbage_bytes != garbage_mark):
                # bytes arrived but no frame completed: one was lost or damaged
                items = self._decoder.idle() or [CorruptFrameError(
                    "garbage on the line and no valid reply")]
            if any(not isinstance(i, CorruptFrameError) for i in items):
                garbage_mark = self._decoder.garbage_bytes  # a frame arrived after the junk
            for item in items:
                if isinstance(item, CorruptFrameError):
                    hdr = item.header
                    if hdr is None or hdr["seq"] == seq:
                        raise item
                    continue  # a damaged stale frame of an older command
                if (item.is_response and item.cmd == 0 and item.seq == NO_SEQ
                        and item.status in _RETRY_STATUSES):
                    raise CorruptFrameError("the device received a damaged frame")
                if not item.is_response or item.seq != seq or item.cmd != cmd:
                    continue  # stale reply of an earlier attempt or command
                deadline = min(now + self.timeout_s, hard_deadline)
                self.stats.payload_received += len(item.payload)
                msg = self._assembler.add(item)
                if msg is None:
                    continue
                if msg.status == Status.IN_PROGRESS:
                    continue  # keep-alive: the deadline was just extended
                return msg
            # checked on every pass, not only on silence: a port that never stops sending
            # (another device, a wrong baud rate) must not hold the caller forever
            if now > deadline or now > hard_deadline:
                junk = self.stats.bytes_received - received_mark
                why = (f"; {junk} bytes arrived but none formed a valid reply (wrong baud "
                       "rate, or not a macro?)" if junk else "")
                raise LinkTimeoutError(
                    f"no reply to {Command(cmd).name} (seq {seq}) from {self.port_name} "
                    f"within {self.timeout_s:g} s{why}", received_bytes=junk)

    def _exchange(self, cmd: Command, payload: bytes = b"") -> bytes:
        """Send one command (retrying within bounds) and return the OK reply's payload."""
        if self._closed:
            raise HardwareError(f"the link to {self.port_name} is closed; open a new SerialMacro")
        seq = self._next_seq()
        wire = encode_message(seq, cmd, payload, max_payload=self._max_payload)
        last_error = HardwareError(f"{cmd.name}: no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                if delay > 0:
                    time.sleep(delay)
                self._resync()
            self.stats.attempts += 1
            self.stats.payload_sent += len(payload)
            self._write(wire)
            try:
                msg = self._await_reply(seq, cmd)
            except LinkTimeoutError as exc:
                self.stats.timeouts += 1
                last_error = exc
                continue
            except (CorruptFrameError, ChunkError) as exc:
                self.stats.corrupt += 1
                last_error = exc
                continue
            status = msg.status
            text = msg.payload.decode("utf-8", "replace") if status != Status.OK else ""
            if msg.version != PROTOCOL_VERSION or status == Status.BAD_VERSION:
                raise FirmwareMismatchError(
                    f"{self.port_name} answered with protocol version {msg.version} "
                    f"({text or 'no message'}); this driver speaks version {PROTOCOL_VERSION}. "
                    "Update the firmware or use a matching driver release.")
            if status == Status.OK:
                self.stats.commands += 1
                return msg.payload
            if status in _RETRY_STATUSES:
                self.stats.corrupt += 1
                last_error = CorruptFrameError(f"device rejected our frame: {text}")
                continue
            if status == Status.BUSY:
                self.stats.busy += 1
                last_error = DeviceBusyError(
                    f"{self.port_name} stayed busy for {attempt + 1} attempts: {text}")
                continue
            try:
                name = Status(status).name
            except ValueError:
                name = f"status {status:#04x}"
            kind = _ERROR_TYPES.get(status, DeviceError)
            raise kind(f"device refused {cmd.name}: {name}: {text}", status=status)
        final = type(last_error)(
            f"{cmd.name} failed after {self.retries + 1} attempts on {self.port_name}: "
            f"{last_error}")
        final.__dict__.update(last_error.__dict__)  # keep header / status / received_bytes
        raise final from last_error

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
        """Device counters: boot count, clock, frames, executed state changes."""
        return codec.decode_status(self._exchange(Command.STATUS))

    def run_reservoir(self, region, rasters, spec: ReservoirSpec) -> np.ndarray:
        """Run the LIF loop on the device (needs the run_reservoir capability).

        ``rasters`` uint8 ``(batch, T, n_inputs)`` -> uint8 spikes ``(batch, T, n_neurons)``;
        the sample crosses the link once instead of once per step.
        """
        if RUN_RESERVOIR not in self._info.capabilities:
            raise DeviceError(
                f"{self.port_name} does not advertise {RUN_RESERVOIR}; run the per-step loop "
                "(lsm.run_on_macro) instead", status=Status.UNSUPPORTED)
        r = self._region(region)
        check_reservoir_spec(spec)
        if r.shape != (spec.n_inputs + spec.n_neurons, 2 * spec.n_neurons):
            raise ShapeError(f"a reservoir of {spec.n_inputs} inputs and {spec.n_neurons} "
                             f"neurons needs a {(spec.n_inputs + spec.n_neurons)} x "
                             f"{2 * spec.n_neurons} tile, got {r.shape}")
        x = check_binary(rasters, spec.n_inputs, "rasters", ndim=3)
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

