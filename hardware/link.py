"""``Link``: the host side of the framing layer (docs/protocol.md, "Framing" and "Retries").

Opens ports with ``serial.serial_for_url`` (device paths, ``socket://``, ``loop://``...) or
takes an already open ``serial.SerialBase``. A link numbers requests, frames them, waits for
the matching reply (bounded, restarted by the device's IN_PROGRESS keep-alives), resyncs and
retransmits on loss or damage, and records every byte in an optional wire log. Every wait is
bounded, every failure is typed, and retries reuse the sequence number so the device's reply
cache makes FORM, PROGRAM, ADVANCE and RESET happen exactly once. It knows nothing of what
the payloads mean: that is :class:`hardware.driver.SerialMacro`'s job.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

from rram_lsm.errors import ConfigError

from .errors import (ChunkError, CorruptFrameError, DeviceArgumentError, DeviceBusyError,
                     DeviceError, DeviceRegionError, DeviceResetError, DeviceSafetyLimitError,
                     DeviceShapeError, FirmwareMismatchError, HardwareError, LinkLostError,
                     LinkTimeoutError)
from .protocol import (DEFAULT_MAX_FRAME_PAYLOAD, NO_SEQ, PROTOCOL_VERSION, STATE_CHANGING,
                       Command, FrameDecoder, MessageAssembler, Status, encode_message)

__all__ = ["Link", "LinkStats"]

_RETRY_STATUSES = {Status.BAD_CRC, Status.BAD_FRAME, Status.CHUNK_ERROR}
_ERROR_TYPES = {
    Status.REGION_ERROR: DeviceRegionError,
    Status.SHAPE_ERROR: DeviceShapeError,
    Status.SAFETY_LIMIT: DeviceSafetyLimitError,
    Status.BAD_ARGUMENT: DeviceArgumentError,
}
_POLL_S = 0.005


def _command_name(cmd: int) -> str:
    try:
        return Command(cmd).name
    except ValueError:
        return f"0x{cmd:02x}"


@dataclass
class LinkStats:
    """Counters of one link session (mutable; read them, don't set them)."""

    completed: int = 0
    """Commands completed (an OK reply accepted)."""
    commands: dict[str, int] = field(default_factory=Counter)
    """Commands sent, by :class:`~hardware.protocol.Command` name, each counted once however
    often it was retransmitted (a ``Counter``: a name never sent reads 0)."""
    retransmissions: dict[str, int] = field(default_factory=Counter)
    """Transmissions beyond the first, by command name (they sum to ``retries``)."""
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
    device_resets: int = 0
    """Device reboots the driver noticed (``boot_count`` in STATUS went up)."""
    reconnects: int = 0
    """Times the port was opened again (:meth:`Link.reopen`)."""


class Link:
    """A framed, retrying request/reply channel to a device on a serial port.

    ``port`` is a URL/path for ``serial.serial_for_url`` or an open ``SerialBase`` (not
    closed by :meth:`close`). ``timeout_s`` bounds each wait for a reply (restarted by the
    device's IN_PROGRESS keep-alives, never beyond ``max_wait_s``); ``retries`` bounds
    re-transmissions, with exponential backoff from ``backoff_s`` capped at
    ``max_backoff_s``; a partial frame followed by ``inter_byte_timeout_s`` of silence
    counts as lost. ``wire_log`` (None, a path or a text stream; see :meth:`set_wire_log`)
    records every byte in hex with timestamps. ``first_seq`` fixes the first sequence
    number (random per session otherwise, so a new session never collides with the
    device's cached reply).

    ``on_lost_reply(seq, cmd)``, when set, is called after a wait that ended without a reply
    and before the retransmission (the driver reads STATUS there to notice a reboot); it may
    raise to stop the retransmission. A state-changing command that fails for want of an
    answer (timeout, damage, a lost port) is remembered: if the next state-changing command
    is the same command with the same payload, it goes out with the same sequence number
    and bytes, so the device's exactly-once record answers it if it did run.
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
        self._lost: str | None = None  # why the port failed, once it did
        self._unfinished: tuple | None = None  # (cmd, payload, seq) of a failed state change
        self.on_lost_reply = None
        """Hook ``(seq, cmd) -> None`` run after a wait without reply, before retransmitting."""
        self._poll_s = min(_POLL_S, self.inter_byte_timeout_s / 4)
        self._attach(port)
        self.set_wire_log(wire_log)

    def _attach(self, port) -> None:
        if isinstance(port, (str, os.PathLike)):
            from .ports import open_port

            self._port = open_port(str(port), self.baudrate)
            self._owns_port = True
            self.url = str(port)
        else:
            self._port = port
            self._owns_port = False
            self.url = None
        self.port_name = getattr(self._port, "port", None) or str(port)
        """What error messages call the port (its device path, or the URL given)."""
        if self._owns_port:
            self._port.timeout = self._poll_s
        port_timeout = getattr(self._port, "timeout", None)
        self._blocking_read_ok = port_timeout is not None and port_timeout <= _POLL_S

    def reopen(self, port=None) -> None:
        """Open the port again (``port``: another URL/path or open ``SerialBase``; None: the
        URL this link opened), after it was lost. Sequence numbers continue and a remembered
        unfinished state-changing command stays remembered; the decoder starts afresh."""
        if self._closed:
            raise HardwareError(f"the link to {self.port_name} is closed; open a new SerialMacro")
        if port is None:
            if self.url is None:
                raise ConfigError(f"{self.port_name} was given as an open port object; pass "
                                  "the port (a URL or SerialBase) to reconnect to")
            port = self.url
        old, owned = self._port, self._owns_port
        if owned:
            try:
                old.close()
            except Exception:  # it is gone already; closing only releases our handle
                pass
        self._attach(port)
        self._lost = None
        self._decoder = FrameDecoder(self._max_payload)
        self._assembler.reset()
        self.stats.reconnects += 1

    @property
    def lost(self) -> bool:
        """True once the port failed (until :meth:`reopen`)."""
        return self._lost is not None

    # ---- lifetime ---------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Close the port (if this link opened it) and the wire log; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_port:
                try:
                    self._port.close()
                except Exception:
                    if self._lost is None:
                        raise  # a lost port may fail to close; it is gone either way
        finally:
            self.set_wire_log(None)

    def set_limits(self, max_frame_payload: int, max_message_bytes: int) -> None:
        """Adopt the frame and message bounds the device advertised (after the handshake)."""
        self._max_payload = int(max_frame_payload)
        self._decoder.max_payload = self._max_payload
        self._assembler.max_message_bytes = int(max_message_bytes)

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

    # ---- bytes ------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def write(self, data: bytes) -> None:
        """Write ``data`` to the port (traced, counted); HardwareError if the port fails."""
        self._trace(">", data)
        need_s = 2.0 + 30.0 * len(data) / self.baudrate  # a big message takes a while
        if self._owns_port and need_s > (self._port.write_timeout or 0.0):
            self._port.write_timeout = need_s  # (setting it reconfigures the port: rarely)
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as exc:  # pyserial raises SerialException/OSError subclasses
            if type(exc).__name__ == "SerialTimeoutException":  # the port stayed blocked
                raise LinkTimeoutError(f"writing to {self.port_name} timed out: {exc}") from exc
            raise self._port_failed("writing to", exc) from exc
        self.stats.bytes_sent += len(data)

    def _port_failed(self, doing: str, exc: BaseException) -> LinkLostError:
        self._lost = f"{doing} {self.port_name} failed: {exc}"
        return LinkLostError(f"{self._lost} (device unplugged, powered off or its process "
                             "gone?); reconnect() once it is back")

    def read_some(self) -> bytes:
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
            raise self._port_failed("reading from", exc) from exc
        if data:
            self._trace("<", data)
            self.stats.bytes_received += len(data)
        return data

    def resync(self) -> None:
        """Forget partial input so the next reply is decoded from its sync bytes."""
        self._decoder.reset()
        self._assembler.reset()
        try:
            self._port.reset_input_buffer()
        except Exception:  # not every SerialBase implements it; decoding resyncs anyway
            pass

    # ---- replies ----------------------------------------------------------------------------
    def await_reply(self, seq: int, cmd: int):
        """The complete reply message for ``(seq, cmd)``; raises timeout/corruption."""
        now = time.monotonic()
        deadline, hard_deadline = now + self.timeout_s, now + self.max_wait_s
        last_rx = now
        garbage_mark = self._decoder.stray_bytes
        received_mark = self.stats.bytes_received
        while True:
            data = self.read_some()
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
                    self._decoder.pending or self._decoder.stray_bytes != garbage_mark):
                # bytes arrived but no frame completed: one was lost or damaged
                items = self._decoder.idle() or [CorruptFrameError(
                    "garbage on the line and no valid reply")]
            if any(not isinstance(i, CorruptFrameError) for i in items):
                garbage_mark = self._decoder.stray_bytes  # a frame arrived after the junk
            for item in items:
                if isinstance(item, CorruptFrameError):
                    hdr = item.header
                    if hdr is None or hdr["seq"] in (seq, NO_SEQ):
                        raise item  # our reply, or a NAK, arrived damaged: retransmit
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
                    f"no reply to {_command_name(cmd)} (seq {seq}) from {self.port_name} "
                    f"within {self.timeout_s:g} s{why}", received_bytes=junk)

    def exchange(self, cmd: Command, payload: bytes = b"") -> bytes:
        """Send one command (retrying within bounds) and return the OK reply's payload.

        Raises :class:`~hardware.errors.LinkTimeoutError`, ``CorruptFrameError``,
        ``ChunkError`` or ``DeviceBusyError`` once the retries are spent,
        ``FirmwareMismatchError`` on a protocol version mismatch, and the typed
        ``DeviceError`` subclass of the status for a refusal (never retried).
        """
        if self._closed:
            raise HardwareError(f"the link to {self.port_name} is closed; open a new SerialMacro")
        if self._lost is not None:
            raise LinkLostError(f"{self._lost}; call reconnect() before sending "
                                f"{_command_name(cmd)}")
        payload = bytes(payload)
        if cmd not in STATE_CHANGING:
            return self._transact(self._next_seq(), cmd, payload)
        unfinished, self._unfinished = self._unfinished, None
        if unfinished is not None and unfinished[:2] == (cmd, payload):
            seq = unfinished[2]  # the same request again: the same bytes (exactly-once)
        else:
            seq = self._next_seq()
        try:
            return self._transact(seq, cmd, payload)
        except (LinkTimeoutError, LinkLostError, CorruptFrameError, ChunkError,
                DeviceBusyError):
            self._unfinished = (cmd, payload, seq)
            raise

    def forget_unfinished(self) -> None:
        """Forget a remembered unfinished state-changing command (its outcome was settled)."""
        self._unfinished = None

    @property
    def unfinished(self) -> tuple[int, int] | None:
        """``(seq, cmd)`` of the remembered unfinished state-changing command, or None."""
        return None if self._unfinished is None else (self._unfinished[2],
                                                       self._unfinished[0])

    def _transact(self, seq: int, cmd: int, payload: bytes) -> bytes:
        name = _command_name(cmd)
        wire = encode_message(seq, cmd, payload, max_payload=self._max_payload)
        last_error = HardwareError(f"{name}: no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                if delay > 0:
                    time.sleep(delay)
                self.resync()
            self.stats.attempts += 1
            self.stats.payload_sent += len(payload)
            self.write(wire)
            (self.stats.retransmissions if attempt else self.stats.commands)[name] += 1
            try:
                msg = self.await_reply(seq, cmd)
            except LinkTimeoutError as exc:
                self.stats.timeouts += 1
                last_error = exc
                hook = self.on_lost_reply
                if hook is not None and attempt < self.retries:
                    self.on_lost_reply = None  # the hook's own exchanges run without it
                    try:
                        hook(seq, cmd)
                    finally:
                        self.on_lost_reply = hook
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
                self.stats.completed += 1
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
                status_name = Status(status).name
            except ValueError:
                status_name = f"status {status:#04x}"
            kind = _ERROR_TYPES.get(status, DeviceError)
            raise kind(f"device refused {name}: {status_name}: {text}", status=status)
        final = type(last_error)(
            f"{name} failed after {self.retries + 1} attempts on {self.port_name}: "
            f"{last_error}")
        final.__dict__.update(last_error.__dict__)  # keep header / status / received_bytes
        raise final from last_error
