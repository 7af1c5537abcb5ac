"""Wire framing of the macro protocol (docs/protocol.md): pure functions from bytes to bytes.

Nothing here touches a port or a clock. ``encode_frame`` builds one frame,
``encode_message`` splits a message into chunk frames, ``FrameDecoder`` turns an incoming
byte stream (fed in arbitrary pieces) into frames and typed corruption reports, and
``MessageAssembler`` joins chunk frames into messages with bounds checks.
"""
from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from .errors import ChunkError, CorruptFrameError

__all__ = [
    "SYNC", "PROTOCOL_VERSION", "HEADER_SIZE", "TRAILER_SIZE", "FRAME_OVERHEAD",
    "DEFAULT_MAX_FRAME_PAYLOAD", "DEFAULT_MAX_MESSAGE_BYTES",
    "FLAG_RESPONSE", "FLAG_MORE", "NO_SEQ", "Command", "Status", "STATE_CHANGING",
    "Frame", "crc16", "crc32", "encode_frame", "encode_message",
    "FrameDecoder", "MessageAssembler", "Message",
]

SYNC = b"\xa5\x5a"
PROTOCOL_VERSION = 1
_HEADER = struct.Struct("<2sBBHBBHH")  # sync, version, flags, seq, cmd, status, chunk, length
HEADER_SIZE = _HEADER.size + 2  # + CRC-16 of bytes 2..11
TRAILER_SIZE = 4  # CRC-32 of bytes 2 .. end of payload
FRAME_OVERHEAD = HEADER_SIZE + TRAILER_SIZE
DEFAULT_MAX_FRAME_PAYLOAD = 4096
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

NO_SEQ = 0xFFFF
"""Sequence number of a NAK the device cannot attribute to a request (its command byte is 0)."""

FLAG_RESPONSE = 0x01
FLAG_MORE = 0x02
_KNOWN_FLAGS = FLAG_RESPONSE | FLAG_MORE


class Command(IntEnum):
    """Command codes (byte 6 of the header)."""

    INFO = 0x01
    STATUS = 0x02
    RESET = 0x03
    CLOCK = 0x04
    ADVANCE = 0x05
    FORM = 0x10
    PROGRAM = 0x11
    READ = 0x12
    MVM = 0x13
    RUN_RESERVOIR = 0x20


class Status(IntEnum):
    """Status codes (byte 7 of a response header; 0 in requests)."""

    OK = 0x00
    IN_PROGRESS = 0x01
    BUSY = 0x02
    BAD_CRC = 0x10
    BAD_FRAME = 0x11
    BAD_VERSION = 0x12
    UNKNOWN_COMMAND = 0x13
    BAD_PAYLOAD = 0x14
    CHUNK_ERROR = 0x15
    REGION_ERROR = 0x20
    SHAPE_ERROR = 0x21
    SAFETY_LIMIT = 0x22
    UNSUPPORTED = 0x23
    BAD_ARGUMENT = 0x24
    INTERNAL = 0x30


STATE_CHANGING = frozenset({Command.RESET, Command.ADVANCE, Command.FORM, Command.PROGRAM})
"""Commands the device executes exactly once per sequence number (cached reply on retry)."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    return binascii.crc_hqx(data, 0xFFFF)


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC, as ``zlib.crc32`` (the Ethernet/zip CRC)."""
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    """One decoded frame (CRCs already checked)."""

    seq: int
    """Sequence number (u16) of the request this frame belongs to."""
    cmd: int
    """Command code."""
    status: int = 0
    """Status code (responses), 0 in requests."""
    payload: bytes = b""
    """Payload bytes of this frame (one chunk of a message)."""
    flags: int = 0
    """FLAG_RESPONSE | FLAG_MORE bits."""
    chunk: int = 0
    """Chunk index within the message, from 0."""
    version: int = PROTOCOL_VERSION
    """Protocol version byte."""

    @property
    def is_response(self) -> bool:
        """True for device-to-host frames."""
        return bool(self.flags & FLAG_RESPONSE)

    @property
    def more(self) -> bool:
        """True if another chunk of the same message follows."""
        return bool(self.flags & FLAG_MORE)


def encode_frame(frame: Frame, max_payload: int = DEFAULT_MAX_FRAME_PAYLOAD) -> bytes:
    """The exact wire bytes of ``frame``; ValueError-typed ChunkError if it is too large."""
    if len(frame.payload) > max_payload or len(frame.payload) > 0xFFFF:
        raise ChunkError(
            f"frame payload of {len(frame.payload)} bytes exceeds the maximum of "
            f"{max_payload}; send it with encode_message, which chunks it"
        )
    head = _HEADER.pack(SYNC, frame.version & 0xFF, frame.flags & 0xFF, frame.seq & 0xFFFF,
                        frame.cmd & 0xFF, frame.status & 0xFF, frame.chunk & 0xFFFF,
                        len(frame.payload))
    head += struct.pack("<H", crc16(head[2:]))
    body = head + bytes(frame.payload)
    return body + struct.pack("<I", crc32(body[2:]))


def encode_message(seq: int, cmd: int, payload: bytes = b"", *, status: int = 0,
                   response: bool = False, max_payload: int = DEFAULT_MAX_FRAME_PAYLOAD,
                   version: int = PROTOCOL_VERSION) -> bytes:
    """Wire bytes of a whole message, split into chunk frames of at most ``max_payload``."""
    if max_payload <= 0:
        raise ChunkError(f"max_payload must be positive, got {max_payload}")
    n_chunks = max(1, -(-len(payload) // max_payload))
    if n_chunks > 0x10000:
        raise ChunkError(f"a {len(payload)}-byte message needs more than 65536 chunks")
    base = FLAG_RESPONSE if response else 0
    out = bytearray()
    view = memoryview(payload)
    for i in range(n_chunks):
        part = bytes(view[i * max_payload:(i + 1) * max_payload])
        flags = base | (FLAG_MORE if i < n_chunks - 1 else 0)
        out += encode_frame(Frame(seq, cmd, status, part, flags, i, version), max_payload)
    return bytes(out)


class FrameDecoder:
    """Incremental frame decoder with resynchronisation; never raises on any input.

    ``feed(data)`` returns a list whose items are :class:`Frame` (both CRCs good) or
    :class:`CorruptFrameError` *instances* (not raised) describing a rejected frame; when
    the header was intact, the error's ``header`` holds its fields so a device can answer
    the right sequence number. After any rejection the decoder rescans from the byte after
    the rejected sync bytes, so a good frame hidden behind garbage is still found.
    ``idle()`` tells it the line went quiet: a partial frame is dropped (reported) and the
    buffer rescanned, since a byte was probably lost.

    **One report per damaged frame.** A frame rejected with an intact header owns the
    ``18 + length`` bytes its header announces: bytes of that span that the rescan skips,
    or that sit in a partial frame without an intact header of its own when the line goes
    quiet, are not reported again and are not counted in ``stray_bytes`` (a good frame
    inside the span is still decoded, and a damaged one with an intact header is still
    reported). ``stray_bytes`` counts only skipped bytes that no report accounts for: a
    device NAKs those once, as unattributed garbage.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_FRAME_PAYLOAD):
        self.max_payload = int(max_payload)
        self._buf = bytearray()
        self._pos = 0  # stream offset of _buf[0]
        self._owned_until = 0  # stream offset up to which bytes belong to a reported frame
        self.garbage_bytes = 0
        """Bytes skipped while hunting for sync bytes (diagnostics)."""
        self.stray_bytes = 0
        """Skipped bytes outside every reported frame's span (garbage nobody answered yet)."""

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet decoded."""
        return len(self._buf)

    @property
    def frame_in_progress(self) -> bool:
        """True if the buffer starts with a header that passed its CRC (a frame is arriving)."""
        return self._parse_header() is not None

    def reset(self) -> None:
        """Forget any buffered bytes (as reported: none of them is counted as stray)."""
        self._pos += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list:
        """Decode as many frames as ``data`` completes; see the class docstring."""
        self._buf += data
        out: list = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def idle(self) -> list:
        """The line went quiet: report a partial frame, drop its sync and rescan."""
        out = self.feed(b"")
        while self._buf:
            # _next left the buffer at a sync with an incomplete frame (or a lone sync byte)
            if len(self._buf) >= len(SYNC):
                header = self._parse_header()
                if header is not None:
                    out.append(self._reject("incomplete frame: the line went quiet mid-frame",
                                            header))
                    out.extend(self.feed(b""))
                    continue
                if self._pos >= self._owned_until:
                    # no intact header: the report answers for every byte still buffered
                    self._owned_until = self._pos + len(self._buf)
                    out.append(CorruptFrameError(
                        "incomplete frame: the line went quiet mid-frame", header=None))
            self._skip(1)
            out.extend(self.feed(b""))
        return out

    def _skip(self, n: int) -> None:
        if n > 0:
            n = min(n, len(self._buf))
            self.stray_bytes += max(0, self._pos + n - max(self._owned_until, self._pos))
            del self._buf[:n]
            self._pos += n
            self.garbage_bytes += n

    def _reject(self, message: str, header: dict) -> CorruptFrameError:
        """Report the frame at the buffer's start (intact header); it owns its span."""
        span = HEADER_SIZE + header["length"] + TRAILER_SIZE
        self._owned_until = max(self._owned_until, self._pos + span)
        self._skip(1)
        return CorruptFrameError(message, header=header)

    def _parse_header(self):
        """The header fields as a dict if the buffer starts with a valid header, else None."""
        if len(self._buf) < HEADER_SIZE:
            return None
        fields = _HEADER.unpack_from(self._buf)
        (got,) = struct.unpack_from("<H", self._buf, _HEADER.size)
        if got != crc16(bytes(self._buf[2:_HEADER.size])):
            return None
        _, version, flags, seq, cmd, status, chunk, length = fields
        return dict(version=version, flags=flags, seq=seq, cmd=cmd, status=status,
                    chunk=chunk, length=length)

    def _next(self):
        while True:
            start = self._buf.find(SYNC)
            if start < 0:
                # keep a trailing first sync byte: the second may arrive in the next piece
                keep = 1 if self._buf[-1:] == SYNC[:1] else 0
                self._skip(len(self._buf) - keep)
                return None
            self._skip(start)
            if len(self._buf) < HEADER_SIZE:
                return None
            header = self._parse_header()
            if header is None:
                self._skip(1)
                continue
            if header["length"] > self.max_payload or header["flags"] & ~_KNOWN_FLAGS:
                return self._reject(
                    f"header announces {header['length']} payload bytes (max "
                    f"{self.max_payload}) or unknown flags {header['flags']:#x}", header)
            total = HEADER_SIZE + header["length"] + TRAILER_SIZE
            if len(self._buf) < total:
                return None
            body = bytes(self._buf[:total - TRAILER_SIZE])
            (got,) = struct.unpack_from("<I", self._buf, total - TRAILER_SIZE)
            if got != crc32(body[2:]):
                return self._reject("payload CRC-32 mismatch", header)
            del self._buf[:total]
            self._pos += total
            return Frame(header["seq"], header["cmd"], header["status"],
                         body[HEADER_SIZE:], header["flags"], header["chunk"],
                         header["version"])


@dataclass(frozen=True)
class Message:
    """A whole message: the chunks of one (seq, cmd, direction) joined."""

    seq: int
    """Sequence number."""
    cmd: int
    """Command code."""
    status: int
    """Status code of the last chunk."""
    payload: bytes
    """Joined payload."""
    is_response: bool
    """Direction."""
    version: int = PROTOCOL_VERSION
    """Protocol version byte of the frames."""


class MessageAssembler:
    """Joins chunk frames into messages, checking order and size bounds.

    ``add(frame)`` returns a :class:`Message` when the frame completes one, ``None`` while
    chunks are outstanding, and raises :class:`ChunkError` (the partial message is dropped)
    for a chunk out of order, a chunk of another message before the current one ended, or
    a message longer than ``max_message_bytes``.
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self.max_message_bytes = int(max_message_bytes)
        self._key = None
        self._parts: list[bytes] = []
        self._size = 0

    def reset(self) -> None:
        """Drop any partial message."""
        self._key, self._parts, self._size = None, [], 0

    def add(self, frame: Frame) -> Message | None:
        """Add one frame; see the class docstring."""
        key = (frame.seq, frame.cmd, frame.is_response)
        if frame.chunk == 0:
            self.reset()
            self._key = key
        elif self._key != key or frame.chunk != len(self._parts):
            expected = len(self._parts)
            self.reset()
            raise ChunkError(
                f"chunk {frame.chunk} of seq {frame.seq} cmd {frame.cmd:#04x} arrived "
                f"where chunk {expected} of another message (or none) was expected")
        self._size += len(frame.payload)
        if self._size > self.max_message_bytes:
            self.reset()
            raise ChunkError(
                f"message of seq {frame.seq} exceeds {self.max_message_bytes} bytes")
        self._parts.append(frame.payload)
        if frame.more:
            return None
        msg = Message(frame.seq, frame.cmd, frame.status, b"".join(self._parts),
                      frame.is_response, frame.version)
        self.reset()
        return msg
