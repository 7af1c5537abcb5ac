"""The device side of the wire protocol: a virtual macro's firmware, with link faults.

``Emulator`` wraps any macro, normally ``sim.SimMacro`` with the chip's seed and profile, so
its conductances are the simulator's. RUN_RESERVOIR is the *firmware*'s: a callable given to
the emulator (default :class:`ReferenceFirmware`, ``rram_lsm.reservoir.run_reference`` over
the array's ``mvm``) that sees the array only through ``info``, ``mvm``,
``read_conductance`` and ``clock_s``, never the wrapped macro's own ``run_reservoir``.
``Emulator.receive`` is the synchronous core (bytes in, reply bytes out) used by exact-frame
tests; ``Emulator.serve`` runs it on a file descriptor with a worker thread (so keep-alives
flow during long commands) and the configured link faults. Starting one in its own process
behind a pseudo-terminal is ``hardware.spawn``'s job.
"""
from __future__ import annotations

import errno
import math
import numbers
import os
import select
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from rram_lsm.errors import ConfigError, MacroError, RegionError, SafetyLimitError, ShapeError
from rram_lsm.macro import RUN_RESERVOIR, check_form_request, check_region
from rram_lsm.reservoir import check_tile, run_reference

from . import codec
from .errors import ChunkError, CorruptFrameError, HardwareError, ProtocolError
from .protocol import (DEFAULT_MAX_FRAME_PAYLOAD, DEFAULT_MAX_MESSAGE_BYTES, NO_SEQ,
                       PROTOCOL_VERSION,
                       STATE_CHANGING, Command, FrameDecoder, Message, MessageAssembler,
                       Status, crc32, encode_message)

__all__ = ["Faults", "Emulator", "ReferenceFirmware", "FIRMWARE_VERSION",
           "check_emulator_options"]

FIRMWARE_VERSION = "emu-1.0"
"""Firmware version string the emulator reports."""
_ERROR_STATUS = (  # most specific first: RegionError and ShapeError are ValueErrors too
    (RegionError, Status.REGION_ERROR),
    (ShapeError, Status.SHAPE_ERROR),
    (SafetyLimitError, Status.SAFETY_LIMIT),
    (ProtocolError, Status.BAD_PAYLOAD),
    (ConfigError, Status.BAD_ARGUMENT),
    (ValueError, Status.BAD_ARGUMENT),
)


class _Unsupported(HardwareError):
    """A capability this firmware lacks (answered UNSUPPORTED)."""


class _UnknownCommand(HardwareError):
    """A command code this firmware does not know (answered UNKNOWN_COMMAND)."""


_SPECIAL = {_Unsupported: Status.UNSUPPORTED, _UnknownCommand: Status.UNKNOWN_COMMAND}


@dataclass(frozen=True)
class Faults:
    """Link and device faults the emulator injects (all off by default)."""

    corrupt_rate: float = 0.0
    """Probability that a byte on the link (either direction) is replaced by another value."""
    drop_rate: float = 0.0
    """Probability that a byte on the link (either direction) is lost."""
    latency_s: float = 0.0
    """Delay (s) added before every reply."""
    reset_rate: float = 0.0
    """Probability per command to execute that the device reboots while handling it: half
    of these reboots strike on receipt (the request is lost, nothing runs), half after the
    command ran and was recorded, before the reply went out (the reply is lost)."""
    fault_seed: int = 0
    """Seed of the fault streams (one child stream per fault source), a non-negative int."""

    def __post_init__(self):
        for name in ("corrupt_rate", "drop_rate", "reset_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1), got {value!r}")
        if isinstance(self.latency_s, bool) or not isinstance(self.latency_s, numbers.Real) \
                or not 0 <= self.latency_s < math.inf:
            raise ConfigError(f"latency_s must be a finite number of seconds >= 0, got "
                              f"{self.latency_s!r}")
        if isinstance(self.fault_seed, bool) or not isinstance(self.fault_seed, numbers.Integral) \
                or self.fault_seed < 0:
            raise ConfigError(f"fault_seed must be a non-negative integer, got "
                              f"{self.fault_seed!r}")

    @property
    def active(self) -> bool:
        """True if any fault is switched on."""
        return bool(self.corrupt_rate or self.drop_rate or self.latency_s or self.reset_rate)


class ReferenceFirmware:
    """The emulator's default reservoir firmware: the normative loop, step by step.

    ``(macro, region, rasters, spec) -> spikes`` uint8 ``(batch, T, n_neurons)`` by
    :func:`rram_lsm.reservoir.run_reference` through ``macro.mvm``; so its spikes are those
    of the host's per-step loop by construction, and a test comparing them with a fused
    kernel compares two implementations. ``capabilities`` is what the emulator advertises
    for it in INFO.
    """

    capabilities: tuple[str, ...] = (RUN_RESERVOIR,)
    """Capabilities this firmware provides."""

    def __call__(self, macro, region, rasters, spec) -> np.ndarray:
        spikes, _ = run_reference(macro, region, rasters, spec)
        return spikes

    def __repr__(self) -> str:
        return "ReferenceFirmware()"


class _ArrayView:
    """What a firmware sees of the wrapped macro: the array's reads, nothing else.

    No ``run_reservoir`` (the firmware is the reservoir loop; the wrapped simulator's fused
    kernel must never stand in for it), no state changes, and no capabilities in ``info``.
    """

    def __init__(self, macro):
        self._macro = macro

    def info(self):
        return replace(self._macro.info(), capabilities=())

    def mvm(self, region, inputs, differential: bool = False):
        return self._macro.mvm(region, inputs, differential=differential)

    def read_conductance(self, region):
        return self._macro.read_conductance(region)

    def clock_s(self) -> float:
        return self._macro.clock_s()


def check_emulator_options(gap_s: float = 0.05, keepalive_s: float = 0.2,
                           baud: int | None = None,
                           max_frame_payload: int = DEFAULT_MAX_FRAME_PAYLOAD,
                           max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
    """Refuse emulator options that make no sense (ConfigError naming the option)."""
    for name, value in (("gap_s", gap_s), ("keepalive_s", keepalive_s)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not 0 < value < math.inf:
            raise ConfigError(f"{name} must be a positive, finite number of seconds, got "
                              f"{value!r}")
    if baud is not None and (isinstance(baud, bool) or not isinstance(baud, numbers.Integral)
                             or baud <= 0):
        raise ConfigError(f"baud must be a positive integer (or None: unpaced), got {baud!r}")
    if isinstance(max_frame_payload, bool) or not isinstance(max_frame_payload, numbers.Integral) \
            or not 64 <= max_frame_payload <= 0xFFFF:
        raise ConfigError(f"max_frame_payload must be an integer in [64, 65535] (INFO's u16; a "
                          f"host refuses less than 64), got {max_frame_payload!r}")
    if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, numbers.Integral) \
            or not 1024 <= max_message_bytes <= 0xFFFFFFFF:
        raise ConfigError(f"max_message_bytes must be an integer in [1024, 2**32 - 1], got "
                          f"{max_message_bytes!r}")


class Emulator:
    """Device side of the protocol around ``macro`` (see the module docstring).

    ``gap_s``: silence after which a partial frame counts as lost and is NAKed;
    ``keepalive_s``: interval of IN_PROGRESS frames during a long command; ``baud``: pace
    replies as a UART of that rate would (None: as fast as the pty goes);
    ``firmware``: callable ``(macro, region, rasters, spec) -> spikes`` behind the
    RUN_RESERVOIR command, called with a view of ``macro`` that has only ``info``, ``mvm``,
    ``read_conductance`` and ``clock_s`` (default :class:`ReferenceFirmware`; ``False``
    disables the capability). The advertised capabilities are the firmware's
    (its ``capabilities`` attribute, ``(RUN_RESERVOIR,)`` if it has none), never the wrapped
    macro's.
    """

    def __init__(self, macro, faults: Faults | None = None, *, gap_s: float = 0.05,
                 keepalive_s: float = 0.2, baud: int | None = None,
                 max_frame_payload: int = DEFAULT_MAX_FRAME_PAYLOAD,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, firmware=None):
        check_emulator_options(gap_s, keepalive_s, baud, max_frame_payload, max_message_bytes)
        self.macro = macro
        self.faults = faults or Faults()
        self.gap_s = float(gap_s)
        self.keepalive_s = float(keepalive_s)
        self.baud = baud
        self.wire = codec.WireLimits(int(max_frame_payload), int(max_message_bytes))
        if firmware is None:
            firmware = ReferenceFirmware()
        elif firmware is not False and not callable(firmware):
            raise ConfigError(f"firmware must be a callable (macro, region, rasters, spec) -> "
                              f"spikes, None (the reference loop) or False (none), got "
                              f"{firmware!r}")
        self.firmware = None if firmware is False else firmware
        """The RUN_RESERVOIR firmware (None: the capability is off)."""
        self.capabilities: tuple[str, ...] = () if self.firmware is None else tuple(
            getattr(self.firmware, "capabilities", (RUN_RESERVOIR,)))
        """What INFO advertises: the firmware's capabilities."""
        self._array = _ArrayView(macro)
        self._decoder = FrameDecoder(self.wire.max_frame_payload)
        self._assembler = MessageAssembler(self.wire.max_message_bytes)
        seqs = np.random.SeedSequence(self.faults.fault_seed).spawn(5)
        self._rng = dict(zip(("corrupt_rx", "drop_rx", "corrupt_tx", "drop_tx", "reset"),
                             (np.random.default_rng(s) for s in seqs)))
        # the exactly-once record lives in memory that survives a reboot (docs/protocol.md)
        self._last_state: tuple | None = None
        self._garbage_mark = 0  # the decoder's stray_bytes when garbage was last answered
        self._job: _Job | None = None
        self.counters = dict(boot_count=1, frames_ok=0, frames_bad=0, state_changes=0,
                             replays=0, reboots=0)
        """Device counters (STATUS reports most of them)."""

    # ---- what the device says about itself ----------------------------------------------
    def info(self):
        """MacroInfo as advertised over the wire."""
        base = self.macro.info()
        return replace(base, protocol_version=PROTOCOL_VERSION, capabilities=self.capabilities,
                       firmware_version=f"{FIRMWARE_VERSION}+{base.firmware_version}")

    def _status(self) -> codec.DeviceStatus:
        c = self.counters
        last = self._last_state[0] if self._last_state else NO_SEQ
        return codec.DeviceStatus(self._job is not None, c["boot_count"],
                                  float(self.macro.clock_s()), c["frames_ok"], c["frames_bad"],
                                  c["state_changes"], last)

    # ---- command execution ----------------------------------------------------------------
    def execute(self, cmd: int, payload: bytes) -> tuple[int, bytes]:
        """Run one request on the macro; return ``(status, reply payload)``. Never raises."""
        try:
            return Status.OK, self._execute(cmd, payload)
        except HardwareError as exc:
            status = Status.BAD_PAYLOAD if isinstance(exc, ProtocolError) else \
                _SPECIAL.get(type(exc), Status.INTERNAL)
            return status, str(exc).encode()
        except Exception as exc:  # the device must answer every request, whatever happened
            for kind, status in _ERROR_STATUS:
                if isinstance(exc, kind):
                    return status, str(exc).encode()
            kind = "macro error" if isinstance(exc, MacroError) else type(exc).__name__
            return Status.INTERNAL, f"{kind}: {exc}".encode()

    def _execute(self, cmd: int, payload: bytes) -> bytes:
        m = self.macro
        info = m.info()
        if cmd == Command.INFO:
            return codec.encode_info(self.info(), self.wire)
        if cmd == Command.STATUS:
            return codec.encode_status(self._status())
        if cmd == Command.CLOCK:
            return codec.encode_f64(m.clock_s())
        if cmd == Command.ADVANCE:
            return codec.encode_f64(m.advance_time(float(codec.decode_f64(payload, 1,
                                                                          "ADVANCE request")[0])))
        if cmd == Command.RESET:
            codec.Reader(payload, "RESET request").done()
            m.reset()
            return b""
        if cmd == Command.FORM:
            region, volt, width, compliance = codec.decode_form_request(payload)
            check_region(region, info.rows, info.cols)
            check_form_request(info.limits, volt, width, compliance)  # the device-side check
            return codec.encode_form_reply(m.form(region, volt, width, compliance))
        if cmd == Command.PROGRAM:
            region, target, tol, max_pulses = codec.decode_program_request(payload)
            check_region(region, info.rows, info.cols)
            return codec.encode_program_reply(m.program(region, target, tol, max_pulses))
        if cmd == Command.READ:
            region = codec.decode_region(payload, "READ request")
            return codec.encode_f64(m.read_conductance(region))
        if cmd == Command.MVM:
            return self._mvm(*codec.decode_mvm_request(payload), info)
        if cmd == Command.RUN_RESERVOIR:
            if RUN_RESERVOIR not in self.capabilities:
                raise _Unsupported("this firmware does not run the reservoir loop")
            region, spec, rasters = codec.decode_reservoir_request(payload)
            check_tile(region, spec, info.rows, info.cols)
            spikes = np.asarray(self.firmware(self._array, region, rasters, spec))
            expected = (*rasters.shape[:2], spec.n_neurons)
            if spikes.shape != expected or (spikes.size and not np.isin(spikes, (0, 1)).all()):
                raise MacroError(f"the firmware returned {spikes.dtype} spikes of shape "
                                 f"{spikes.shape}; expected 0/1 of shape {expected}")
            return codec.encode_spikes(spikes.astype(np.uint8))
        raise _UnknownCommand(f"unknown command {cmd:#04x}")

    def _mvm(self, region, inputs, differential, info) -> bytes:
        """Send ADC codes (1 or 2 bytes per column) when exact, else float64 values."""
        check_region(region, info.rows, info.cols)
        if differential and region.cols % 2:  # whatever the ADC: the pairs must be whole
            raise RegionError(f"differential mvm needs an even number of columns, got "
                              f"{region.cols}")
        bits, lsb = info.adc_bits, info.adc_lsb_ua
        if bits is not None and bits <= 16 and lsb > 0:
            raw = self.macro.mvm(region, inputs, differential=False)
            codes = np.rint(raw / lsb)
            if (codes.size == 0 or codes.min() >= 0) and np.array_equal(codes * lsb, raw):
                enc = codec.ENC_U8 if bits <= 8 else codec.ENC_U16
                return codec.encode_mvm_reply(codes, enc)
            values = raw[:, 0::2] - raw[:, 1::2] if differential else raw
        else:
            values = self.macro.mvm(region, inputs, differential=differential)
        return codec.encode_mvm_reply(values, codec.ENC_F64)

    # ---- message handling -----------------------------------------------------------------
    def _reply(self, seq: int, cmd: int, status: int, payload: bytes = b"") -> bytes:
        return encode_message(seq, cmd, payload, status=status, response=True,
                              max_payload=self.wire.max_frame_payload)

    def _admit(self, msg: Message) -> bytes | None:
        """An immediate reply for ``msg``, or None if it must be executed."""
        if msg.version != PROTOCOL_VERSION:
            return self._reply(msg.seq, msg.cmd, Status.BAD_VERSION,
                               f"this device speaks protocol {PROTOCOL_VERSION}".encode())
        if msg.cmd in (Command.INFO, Command.STATUS):  # answered even while busy
            return self._finish(msg, *self.execute(msg.cmd, msg.payload))
        if msg.cmd in STATE_CHANGING and self._last_state is not None:
            key = (msg.seq, msg.cmd, crc32(msg.payload))
            if self._last_state[:3] == key:
                self.counters["replays"] += 1
                return self._reply(msg.seq, msg.cmd, *self._last_state[3:])
        if self._job is not None:
            seq, cmd = self._job.msg.seq, self._job.msg.cmd
            if (seq, cmd) == (msg.seq, msg.cmd):
                return self._reply(msg.seq, msg.cmd, Status.IN_PROGRESS)
            return self._reply(msg.seq, msg.cmd, Status.BUSY,
                               f"busy with seq {seq} ({Command(cmd).name})".encode())
        return None

    def _finish(self, msg: Message, status: int, payload: bytes) -> bytes:
        if msg.cmd in STATE_CHANGING:
            self._last_state = (msg.seq, msg.cmd, crc32(msg.payload), status, payload)
            if status == Status.OK:
                self.counters["state_changes"] += 1
        return self._reply(msg.seq, msg.cmd, status, payload)

    def _on_items(self, items: list, start_job) -> bytes:
        """Handle decoder output; returns immediate reply bytes, starts jobs via start_job.

        A reboot while handling the items (a reset fault) loses the ones not yet handled.
        """
        out = bytearray()
        boot = self.counters["boot_count"]
        for item in items:
            if self.counters["boot_count"] != boot:
                break
            if isinstance(item, CorruptFrameError):
                self.counters["frames_bad"] += 1
                self._assembler.reset()
                h = item.header
                # NAKs carry no text: the shorter they are, the likelier they cross a bad link
                if h is not None and not h["flags"] & 1:
                    status = Status.BAD_CRC if "CRC" in str(item) else Status.BAD_FRAME
                    out += self._reply(h["seq"], h["cmd"], status)
                elif h is None:
                    out += self._reply(NO_SEQ, 0, Status.BAD_FRAME)
                continue
            self.counters["frames_ok"] += 1
            if item.is_response:
                continue  # our own echo or a confused peer: ignore
            try:
                msg = self._assembler.add(item)
            except ChunkError as exc:
                out += self._reply(item.seq, item.cmd, Status.CHUNK_ERROR, str(exc).encode())
                continue
            if msg is None:
                continue
            immediate = self._admit(msg)
            if immediate is not None:
                out += immediate
            else:
                out += start_job(msg)
        return bytes(out)

    def _quiet_items(self) -> list:
        """After a silent gap: partial frames and unattributed garbage become NAK items."""
        items = self._decoder.idle()
        if not items and self._decoder.stray_bytes != self._garbage_mark:
            items = [CorruptFrameError("garbage on the line")]
        self._garbage_mark = self._decoder.stray_bytes
        return items

    def receive(self, data: bytes) -> bytes:
        """Synchronous core: feed request bytes, execute inline, return all reply bytes.

        No faults, no threads; ``flush()`` plays the role of a quiet line.
        """
        items = self._decoder.feed(data)
        if any(not isinstance(i, CorruptFrameError) for i in items):
            self._garbage_mark = self._decoder.stray_bytes
        return self._on_items(items, self._run_now)

    def flush(self) -> bytes:
        """The line went quiet: NAK partial frames or garbage (synchronous core)."""
        return self._on_items(self._quiet_items(), self._run_now)

    def _run_now(self, msg: Message) -> bytes:
        return self._finish(msg, *self.execute(msg.cmd, msg.payload))

    # ---- serving a file descriptor ----------------------------------------------------------
    def _damage(self, data: bytes, direction: str) -> bytes:
        f = self.faults
        if not (f.corrupt_rate or f.drop_rate) or not data:
            return data
        arr = np.frombuffer(data, dtype=np.uint8).copy()
        if f.corrupt_rate:
            hit = self._rng["corrupt_" + direction].random(arr.size) < f.corrupt_rate
            flips = self._rng["corrupt_" + direction].integers(1, 256, arr.size, dtype=np.uint8)
            arr[hit] ^= flips[hit]
        if f.drop_rate:
            arr = arr[self._rng["drop_" + direction].random(arr.size) >= f.drop_rate]
        return arr.tobytes()

    def _write(self, fd: int, data: bytes) -> None:
        if not data:
            return
        if self.faults.latency_s:
            time.sleep(self.faults.latency_s)
        data = self._damage(data, "tx")
        view = memoryview(data)
        # paced: pieces of ~5 ms of UART time, so a long reply trickles as on a real line
        piece = max(1, self.baud // 2000) if self.baud else len(view)
        deadline = time.monotonic() + 5.0 + (len(view) * 10.0 / self.baud if self.baud else 0)
        while view and time.monotonic() < deadline:
            _, writable, _ = select.select([], [fd], [], 0.05)
            if not writable:
                continue
            try:
                n = os.write(fd, view[:piece])
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return  # nobody holds the terminal: the bytes fall on the floor
                raise
            view = view[n:]
            if self.baud:
                time.sleep(n * 10.0 / self.baud)

    def reboot(self) -> None:
        """A spontaneous reset (the reset fault; a test's power glitch): the partial input,
        an executing command's outcome and its unsent reply are lost, ``boot_count`` goes
        up. The exactly-once record and the cells survive (``macro.reset()``: the simulator
        keeps its cells and clock). A command executing now is abandoned unrecorded: it may
        have been applied, which is why a host must not repeat it blindly."""
        self.counters["reboots"] += 1
        self.counters["boot_count"] += 1
        self._decoder.reset()
        self._assembler.reset()
        self._garbage_mark = self._decoder.stray_bytes
        self._job = None
        self.macro.reset()

    _reboot = reboot

    def _start_job(self, msg: Message) -> bytes:
        """Run ``msg`` in a worker thread (keep-alives flow meanwhile); the reset fault may
        strike here, on receipt (the request is lost), or be armed for before the reply."""
        reboot_before_reply = False
        if self.faults.reset_rate:
            u = self._rng["reset"].random()
            if u < self.faults.reset_rate / 2:
                self.reboot()
                return b""
            reboot_before_reply = u < self.faults.reset_rate
        job = _Job(msg, reboot_before_reply)

        def work():
            job.reply = self.execute(msg.cmd, msg.payload)
        job.thread = threading.Thread(target=work, daemon=True)
        self._job = job
        job.thread.start()
        return b""

    def serve(self, fd: int, stop=None, poll_s: float = 0.02) -> None:
        """Serve requests on ``fd`` until ``stop()`` returns True (or KeyboardInterrupt).

        May be called again (on another descriptor) after it returned: a command still
        executing then is finished and answered on the new descriptor, as a device whose
        cable was replaced would.
        """
        stop = stop or (lambda: False)
        os.set_blocking(fd, False)
        last_rx = last_keepalive = time.monotonic()

        while not stop():
            waiting = self._job or self._decoder.pending or \
                self._decoder.stray_bytes != self._garbage_mark
            ready, _, _ = select.select([fd], [], [], min(0.002, self.gap_s / 4) if waiting
                                        else poll_s)
            now = time.monotonic()
            if ready:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    data = b""
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    time.sleep(poll_s)  # no client has the terminal open yet
                    continue
                if data:
                    last_rx = now
                    items = self._decoder.feed(self._damage(data, "rx"))
                    if any(not isinstance(i, CorruptFrameError) for i in items):
                        self._garbage_mark = self._decoder.stray_bytes
                    self._write(fd, self._on_items(items, self._start_job))
            elif now - last_rx > self.gap_s and (
                    self._decoder.pending or self._decoder.stray_bytes != self._garbage_mark):
                self._write(fd, self._on_items(self._quiet_items(), self._start_job))
            job = self._job
            if job is not None:
                if not job.thread.is_alive():
                    self._job = None
                    reply = self._finish(job.msg, *job.reply)
                    if job.reboot_before_reply:
                        self.reboot()
                    else:
                        self._write(fd, reply)
                elif now - last_keepalive > self.keepalive_s:
                    last_keepalive = now
                    self._write(fd, self._reply(job.msg.seq, job.msg.cmd, Status.IN_PROGRESS))


class _Job:
    """A command executing in the emulator's worker thread."""

    __slots__ = ("msg", "reboot_before_reply", "thread", "reply")

    def __init__(self, msg: Message, reboot_before_reply: bool):
        self.msg = msg
        self.reboot_before_reply = reboot_before_reply
        self.thread: threading.Thread | None = None
        self.reply: tuple | None = None
