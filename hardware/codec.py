"""Payload layouts of every command (docs/protocol.md, "Commands"): pure bytes <-> values.

Shared by the driver and the emulator so both sides read one definition. All integers and
floats are little-endian; bit vectors are packed LSB-first (``np.packbits(...,
bitorder="little")``) per row, each row starting on a byte boundary.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from rram_lsm.reservoir import ReservoirSpec
from rram_lsm.macro import FormResult, MacroInfo, ProgramResult, Region, \
    SafetyLimits, RUN_RESERVOIR

from .errors import ProtocolError

__all__ = [
    "Reader", "WireLimits", "DeviceStatus", "CAPABILITY_BITS", "RESET_MODES",
    "MVM_DIFFERENTIAL", "ENC_F64",
    "ENC_U8", "ENC_U16",
    "pack_bits", "unpack_bits", "pack_region", "decode_region", "encode_info", "decode_info",
    "encode_form_request", "decode_form_request", "encode_form_reply", "decode_form_reply",
    "encode_program_request", "decode_program_request", "encode_program_reply",
    "decode_program_reply", "encode_f64", "decode_f64", "encode_mvm_request",
    "decode_mvm_request", "encode_mvm_reply", "decode_mvm_reply", "encode_status",
    "decode_status", "encode_reservoir_request", "decode_reservoir_request",
    "encode_spikes", "decode_spikes",
]

CAPABILITY_BITS = {RUN_RESERVOIR: 0x1}
"""Capability name -> bit of the INFO capabilities word."""

MVM_DIFFERENTIAL = 0x01
"""MVM request flag bit 0; every other bit is undefined and refused (BAD_PAYLOAD)."""
ENC_F64, ENC_U8, ENC_U16 = 0, 1, 2
_DTYPES = {ENC_F64: np.dtype("<f8"), ENC_U8: np.dtype("u1"), ENC_U16: np.dtype("<u2")}
RESET_MODES = ("zero", "subtract")
"""ReservoirSpec.reset values by their u8 code in RUN_RESERVOIR requests."""


class Reader:
    """Bounds-checked cursor over a payload; every overrun is a ProtocolError."""

    def __init__(self, payload: bytes, what: str):
        self.buf = memoryview(bytes(payload))
        self.off = 0
        self.what = what

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        if n < 0 or self.off + n > len(self.buf):
            raise ProtocolError(
                f"{self.what}: payload of {len(self.buf)} bytes ends before byte "
                f"{self.off + n} (truncated or wrong layout)")
        out = bytes(self.buf[self.off:self.off + n])
        self.off += n
        return out

    def unpack(self, fmt: str) -> tuple:
        """Unpack a struct format (little-endian prefix added)."""
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))

    def array(self, dtype, count: int) -> np.ndarray:
        """``count`` items of ``dtype``."""
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(dt.itemsize * int(count)), dtype=dt).copy()

    def string(self) -> str:
        """A u8-length-prefixed UTF-8 string."""
        (n,) = self.unpack("B")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"{self.what}: string is not UTF-8") from exc

    def done(self) -> None:
        """Raise if bytes are left over (a layout mismatch)."""
        if self.off != len(self.buf):
            raise ProtocolError(
                f"{self.what}: {len(self.buf) - self.off} unexpected trailing bytes")


def pack_bits(bits: np.ndarray) -> bytes:
    """Pack a 2-D 0/1 array row by row, LSB first, each row padded to whole bytes."""
    return np.packbits(np.asarray(bits, dtype=np.uint8), axis=-1, bitorder="little").tobytes()


def unpack_bits(reader: Reader, n_rows: int, n_bits: int) -> np.ndarray:
    """Inverse of pack_bits: uint8 ``(n_rows, n_bits)`` of 0/1.

    The padding bits of each row's last byte must be 0 (ProtocolError otherwise): a row
    with a bit set beyond ``n_bits`` was packed for another width, so its meaning is unclear.
    """
    width = (n_bits + 7) // 8
    raw = reader.array("u1", n_rows * width).reshape(n_rows, width)
    pad = width * 8 - n_bits
    if pad and raw.size and np.any(raw[:, -1] >> (8 - pad)):
        row = int(np.flatnonzero(raw[:, -1] >> (8 - pad))[0])
        raise ProtocolError(
            f"{reader.what}: packed row {row} of {n_bits} bits has padding bits set in its "
            f"last byte ({int(raw[row, -1]):#04x}); padding bits must be 0")
    return np.unpackbits(raw, axis=-1, count=n_bits, bitorder="little")


def pack_region(region: Region) -> bytes:
    """Region as four u16: row0, col0, rows, cols."""
    return struct.pack("<4H", region.row0, region.col0, region.rows, region.cols)


def _region(reader: Reader) -> Region:
    return Region(*reader.unpack("4H"))


def decode_region(payload: bytes, what: str) -> Region:
    """A payload that is exactly one region (READ request)."""
    r = Reader(payload, what)
    region = _region(r)
    r.done()
    return region


@dataclass(frozen=True)
class WireLimits:
    """Link limits a device advertises in INFO besides MacroInfo."""

    max_frame_payload: int
    """Largest payload (bytes) of one frame the device accepts and sends."""
    max_message_bytes: int
    """Largest reassembled message (bytes)."""


@dataclass(frozen=True)
class DeviceStatus:
    """The STATUS reply."""

    busy: bool
    """True while a command is executing."""
    boot_count: int
    """Number of (re)boots since the device was powered (1 after power-up)."""
    clock_s: float
    """Macro clock (s)."""
    frames_ok: int
    """Frames received intact."""
    frames_bad: int
    """Frames rejected (CRC, framing)."""
    state_changes: int
    """State-changing commands actually executed (replays of cached replies excluded)."""
    last_state_seq: int
    """Sequence number of the last executed state-changing command (0xFFFF if none)."""


def encode_info(info: MacroInfo, wire: WireLimits) -> bytes:
    """INFO reply payload."""
    caps = 0
    for name in info.capabilities:
        caps |= CAPABILITY_BITS.get(name, 0)
    lim = info.limits
    out = struct.pack(
        "<BHHdBd5dHII", info.protocol_version, info.rows, info.cols, info.read_voltage_v,
        0 if info.adc_bits is None else info.adc_bits, info.adc_lsb_ua,
        lim.max_form_voltage_v, lim.max_program_voltage_v, lim.max_compliance_ua,
        lim.min_pulse_width_s, lim.max_pulse_width_s, wire.max_frame_payload,
        wire.max_message_bytes, caps)
    for text in (info.model, info.firmware_version):
        raw = text.encode("utf-8")[:255]
        out += struct.pack("<B", len(raw)) + raw
    return out


def decode_info(payload: bytes) -> tuple[MacroInfo, WireLimits]:
    """Parse an INFO reply payload."""
    r = Reader(payload, "INFO reply")
    (proto, rows, cols, v_read, bits, lsb, *lim, max_frame, max_msg, caps) = \
        r.unpack("BHHdBd5dHII")
    model, firmware = r.string(), r.string()
    r.done()
    names = tuple(n for n, bit in CAPABILITY_BITS.items() if caps & bit)
    info = MacroInfo(rows=rows, cols=cols, model=model, firmware_version=firmware,
                     protocol_version=proto, read_voltage_v=v_read,
                     adc_bits=None if bits == 0 else bits, adc_lsb_ua=lsb,
                     limits=SafetyLimits(*lim), capabilities=names)
    return info, WireLimits(max_frame, max_msg)


def encode_form_request(region: Region, voltage_v: float, pulse_width_s: float,
                        compliance_ua: float) -> bytes:
    """FORM request payload."""
    return pack_region(region) + struct.pack("<3d", voltage_v, pulse_width_s, compliance_ua)


def decode_form_request(payload: bytes) -> tuple[Region, float, float, float]:
    """Parse a FORM request."""
    r = Reader(payload, "FORM request")
    out = (_region(r), *r.unpack("3d"))
    r.done()
    return out


def encode_form_reply(res: FormResult) -> bytes:
    """FORM reply: formed bitmap (row-major, packed per region row), then f64 conductances."""
    return pack_bits(res.formed) + np.ascontiguousarray(res.conductance_us, "<f8").tobytes()


def decode_form_reply(payload: bytes, region: Region) -> FormResult:
    """Parse a FORM reply for ``region``."""
    r = Reader(payload, "FORM reply")
    formed = unpack_bits(r, region.rows, region.cols).astype(bool)
    g = r.array("<f8", region.rows * region.cols).reshape(region.shape)
    r.done()
    return FormResult(formed=formed, conductance_us=g.astype(np.float64))


def encode_program_request(region: Region, target_us: np.ndarray, tolerance_us: float,
                           max_pulses: int) -> bytes:
    """PROGRAM request payload."""
    return (pack_region(region) + struct.pack("<dI", tolerance_us, max_pulses)
            + np.ascontiguousarray(target_us, "<f8").tobytes())


def decode_program_request(payload: bytes) -> tuple[Region, np.ndarray, float, int]:
    """Parse a PROGRAM request."""
    r = Reader(payload, "PROGRAM request")
    region = _region(r)
    tol, max_pulses = r.unpack("dI")
    target = r.array("<f8", region.rows * region.cols).reshape(region.shape)
    r.done()
    return region, target.astype(np.float64), tol, max_pulses


def encode_program_reply(res: ProgramResult) -> bytes:
    """PROGRAM reply: f64 conductances, i32 pulses, converged bitmap."""
    return (np.ascontiguousarray(res.conductance_us, "<f8").tobytes()
            + np.ascontiguousarray(res.pulses, "<i4").tobytes() + pack_bits(res.converged))


def decode_program_reply(payload: bytes, region: Region) -> ProgramResult:
    """Parse a PROGRAM reply for ``region``."""
    r = Reader(payload, "PROGRAM reply")
    n = region.rows * region.cols
    g = r.array("<f8", n).reshape(region.shape).astype(np.float64)
    pulses = r.array("<i4", n).reshape(region.shape).astype(np.int32)
    conv = unpack_bits(r, region.rows, region.cols).astype(bool)
    r.done()
    return ProgramResult(conductance_us=g, pulses=pulses, converged=conv)


def encode_f64(values) -> bytes:
    """Payload of an f64 scalar (CLOCK/ADVANCE) or an f64 array, row-major (READ reply)."""
    return np.ascontiguousarray(values, "<f8").tobytes()


def decode_f64(payload: bytes, count: int, what: str) -> np.ndarray:
    """Exactly ``count`` f64 values."""
    r = Reader(payload, what)
    out = r.array("<f8", count).astype(np.float64)
    r.done()
    return out


def encode_mvm_request(region: Region, inputs: np.ndarray, differential: bool) -> bytes:
    """MVM request: region, u32 batch, u8 flags (bit 0 differential), packed input rows."""
    return (pack_region(region)
            + struct.pack("<IB", inputs.shape[0], MVM_DIFFERENTIAL if differential else 0)
            + pack_bits(inputs))


def decode_mvm_request(payload: bytes) -> tuple[Region, np.ndarray, bool]:
    """Parse an MVM request (undefined flag bits and set padding bits are ProtocolErrors)."""
    r = Reader(payload, "MVM request")
    region = _region(r)
    batch, flags = r.unpack("IB")
    if flags & ~MVM_DIFFERENTIAL:
        raise ProtocolError(f"MVM request: undefined flag bits {flags & ~MVM_DIFFERENTIAL:#04x} "
                            f"set (flags {flags:#04x}; only bit 0, differential, is defined)")
    inputs = unpack_bits(r, batch, region.rows)
    r.done()
    return region, inputs, bool(flags & MVM_DIFFERENTIAL)


def encode_mvm_reply(values: np.ndarray, encoding: int) -> bytes:
    """MVM reply: u8 encoding, u32 batch, u16 values per sample, then the values."""
    batch, width = values.shape
    return (struct.pack("<BIH", encoding, batch, width)
            + np.ascontiguousarray(values, _DTYPES[encoding]).tobytes())


def decode_mvm_reply(payload: bytes) -> tuple[int, np.ndarray]:
    """Parse an MVM reply into ``(encoding, values)`` (codes stay integers)."""
    r = Reader(payload, "MVM reply")
    encoding, batch, width = r.unpack("BIH")
    if encoding not in _DTYPES:
        raise ProtocolError(f"MVM reply: unknown value encoding {encoding}")
    vals = r.array(_DTYPES[encoding], batch * width).reshape(batch, width)
    r.done()
    return encoding, vals


def encode_status(st: DeviceStatus) -> bytes:
    """STATUS reply payload."""
    return struct.pack("<BIdIIIH", st.busy, st.boot_count, st.clock_s, st.frames_ok,
                       st.frames_bad, st.state_changes, st.last_state_seq)


def decode_status(payload: bytes) -> DeviceStatus:
    """Parse a STATUS reply."""
    r = Reader(payload, "STATUS reply")
    busy, *rest = r.unpack("BIdIIIH")
    r.done()
    return DeviceStatus(bool(busy), *rest)


def encode_reservoir_request(region: Region, spec: ReservoirSpec, rasters: np.ndarray) -> bytes:
    """RUN_RESERVOIR request: region, spec, u32 batch, u32 steps, packed input rows."""
    batch, steps, n_in = rasters.shape
    return (pack_region(region)
            + struct.pack("<HH4dBHII", spec.n_inputs, spec.n_neurons, spec.decay,
                          spec.threshold, spec.weight_scale, spec.g_ref_us,
                          RESET_MODES.index(spec.reset), spec.refractory_steps, batch,
                          steps)
            + pack_bits(rasters.reshape(batch * steps, n_in)))


def decode_reservoir_request(payload: bytes) -> tuple[Region, ReservoirSpec, np.ndarray]:
    """Parse a RUN_RESERVOIR request (ConfigError if ReservoirSpec refuses its values)."""
    r = Reader(payload, "RUN_RESERVOIR request")
    region = _region(r)
    n_in, n_neu, decay, thr, scale, g_ref, reset, refr, batch, steps = r.unpack("HH4dBHII")
    if reset >= len(RESET_MODES):
        raise ProtocolError(f"RUN_RESERVOIR request: unknown reset mode {reset}")
    spec = ReservoirSpec(n_in, n_neu, decay, thr, scale, g_ref, RESET_MODES[reset], refr)
    rasters = unpack_bits(r, batch * steps, n_in).reshape(batch, steps, n_in)
    r.done()
    return region, spec, rasters


def encode_spikes(spikes: np.ndarray) -> bytes:
    """RUN_RESERVOIR reply: u32 batch, u32 steps, u16 neurons, packed spike rows."""
    batch, steps, n = spikes.shape
    return struct.pack("<IIH", batch, steps, n) + pack_bits(spikes.reshape(batch * steps, n))


def decode_spikes(payload: bytes) -> np.ndarray:
    """Parse a RUN_RESERVOIR reply into uint8 ``(batch, steps, neurons)``."""
    r = Reader(payload, "RUN_RESERVOIR reply")
    batch, steps, n = r.unpack("IIH")
    spikes = unpack_bits(r, batch * steps, n).reshape(batch, steps, n)
    r.done()
    return spikes.astype(np.uint8)
