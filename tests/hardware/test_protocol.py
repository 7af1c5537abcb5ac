"""Framing, decoding and the driver's exact bytes on the wire (docs/protocol.md)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware import (ChunkError, Command, CorruptFrameError, DeviceBusyError,
                      DeviceRegionError, DeviceSafetyLimitError, FirmwareMismatchError, Frame,
                      FrameDecoder, LinkTimeoutError, MessageAssembler, SerialMacro, Status,
                      crc16, crc32, encode_frame, encode_message)
from hardware import codec
from hardware.errors import ProtocolError
from rram_lsm.errors import RegionError, SafetyLimitError, ShapeError
from rram_lsm.macro import MacroInfo, Region, SafetyLimits

FIRST_SEQ = 0x0100
"""Driver sequence numbers in scripted tests start after this one."""

INFO = MacroInfo(rows=16, cols=8, model="test-macro", firmware_version="t-1",
                 protocol_version=1, read_voltage_v=0.2, adc_bits=8, adc_lsb_ua=0.5,
                 limits=SafetyLimits(), capabilities=())


def reply(seq: int, cmd: int, payload: bytes = b"", status: int = 0, **kw) -> bytes:
    """Exact bytes of a device response."""
    return encode_message(seq, cmd, payload, status=status, response=True, **kw)


def request(seq: int, cmd: int, payload: bytes = b"", **kw) -> bytes:
    """Exact bytes of a host request."""
    return encode_message(seq, cmd, payload, **kw)


def info_reply(seq: int = FIRST_SEQ + 1, info: MacroInfo = INFO, **wire) -> bytes:
    """The handshake reply of the scripted test macro."""
    limits = codec.WireLimits(wire.get("max_frame_payload", 4096),
                              wire.get("max_message_bytes", 1 << 20))
    return reply(seq, Command.INFO, codec.encode_info(info, limits),
                 max_payload=limits.max_frame_payload)


def status_reply(seq: int, boot_count: int = 1, last_state_seq: int = 0xFFFF,
                 **kw) -> bytes:
    """A STATUS reply of the scripted test macro."""
    st = codec.DeviceStatus(False, boot_count, 0.0, 1, 0, 0, last_state_seq)
    return reply(seq, Command.STATUS, codec.encode_status(st), **kw)


def status_exchange(seq: int, boot_count: int = 1, last_state_seq: int = 0xFFFF):
    """One STATUS request and its reply."""
    return (request(seq, Command.STATUS), status_reply(seq, boot_count, last_state_seq))



# Two of docs/protocol.md's worked examples (test_doc_examples.py holds them to the document).
DOC_FORM = bytes.fromhex(
    "a55a01000201100000002000d9a5" "0000000002000400" "0000000000000c40"
    "8dedb5a0f7c6b03e" "0000000000005940" "5ddf8a28")
DOC_INFO = bytes.fromhex("a55a010002010100000000001bfc4d3b6922")


def test_crc_check_values():
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE
    assert crc32(b"123456789") == 0xCBF43926  # CRC-32/ISO-HDLC


# the document's worked examples themselves: tests/hardware/test_doc_examples.py


def test_decoder_byte_by_byte_and_in_one_piece():
    frames = [encode_frame(Frame(7, Command.READ, 0, bytes(range(40)))), DOC_FORM, DOC_INFO]
    wire = b"".join(frames)
    dec = FrameDecoder()
    got = [item for b in wire for item in dec.feed(bytes([b]))]
    assert [g.seq for g in got] == [7, 0x0102, 0x0102]
    assert got[1].payload == DOC_FORM[14:-4] and got[1].cmd == Command.FORM
    assert FrameDecoder().feed(wire) == got


def test_decoder_reports_payload_crc_error_with_header_and_resyncs():
    bad = bytearray(DOC_FORM)
    bad[20] ^= 0xFF
    out = FrameDecoder().feed(b"\x00\xa5junk" + bytes(bad) + DOC_INFO)
    assert isinstance(out[0], CorruptFrameError) and out[0].header["seq"] == 0x0102
    assert out[0].header["cmd"] == Command.FORM
    assert isinstance(out[-1], Frame) and out[-1].cmd == Command.INFO


def test_decoder_damaged_header_is_skipped_silently():
    bad = bytearray(DOC_FORM)
    bad[10] ^= 0x01  # the length: the header CRC catches it before any payload is awaited
    out = FrameDecoder().feed(bytes(bad) + DOC_INFO)
    assert len(out) == 1 and out[0].cmd == Command.INFO


def test_decoder_rejects_overlong_length():
    dec = FrameDecoder(max_payload=16)
    frame = encode_frame(Frame(1, Command.READ, 0, b"y" * 20), max_payload=64)
    out = dec.feed(frame + DOC_INFO)
    assert isinstance(out[0], CorruptFrameError) and "payload bytes" in str(out[0])
    assert out[-1].cmd == Command.INFO


def test_lost_byte_frame_is_reported_on_idle_or_when_the_next_frame_overfills_it():
    dec = FrameDecoder()
    assert dec.feed(DOC_FORM[:-7]) == []  # a byte was lost: the frame never completes
    out = dec.idle()  # the line went quiet
    assert len(out) == 1 and isinstance(out[0], CorruptFrameError)
    assert out[0].header["seq"] == 0x0102 and dec.pending == 0
    assert dec.feed(DOC_INFO)[0].cmd == Command.INFO
    # without a quiet gap, the next frame completes the short one, which fails its CRC,
    # and the rescan from the byte after its sync still finds the next frame
    out = dec.feed(DOC_FORM[:-7] + DOC_INFO)
    assert isinstance(out[0], CorruptFrameError) and out[-1].cmd == Command.INFO


def test_decoder_reports_a_damaged_frame_once_and_counts_only_stray_bytes():
    bad = bytearray(DOC_FORM)
    bad[20] ^= 0xFF
    dec = FrameDecoder()
    out = dec.feed(bytes(bad))
    assert len(out) == 1 and out[0].header["seq"] == 0x0102
    # the rescan skipped the rest of the frame, which its report already answers
    assert dec.idle() == [] and dec.stray_bytes == 0 and dec.garbage_bytes == len(bad)
    assert dec.feed(b"\x13\x37") == [] and dec.idle() == [] and dec.stray_bytes == 2
    # a short frame completed by the next one: reported once, the next frame still found
    dec = FrameDecoder()
    out = dec.feed(DOC_FORM[:-7] + DOC_INFO) + dec.idle()
    assert [type(i).__name__ for i in out] == ["CorruptFrameError", "Frame"]
    assert dec.stray_bytes == 0
    # a partial frame without an intact header, inside a reported frame's span: no report
    dec = FrameDecoder()
    tail = bytearray(DOC_FORM)
    tail[20] ^= 0xFF
    tail[-6:-4] = b"\xa5\x5a"  # a sync in its last bytes, cut short by the frame's end
    assert len(dec.feed(bytes(tail))) == 1 and dec.pending == 6
    assert dec.idle() == [] and dec.stray_bytes == 0


@given(garbage=st.lists(st.binary(max_size=64), max_size=8),
       payload=st.binary(max_size=300), seq=st.integers(0, 0xFFFF))
def test_fuzz_decoder_never_crashes_and_resyncs(garbage, payload, seq):
    dec = FrameDecoder(max_payload=256)
    items = []
    for piece in garbage:
        items += dec.feed(piece)
    assert all(isinstance(i, (Frame, CorruptFrameError)) for i in items)
    for i in items:  # anything accepted really carried valid CRCs
        if isinstance(i, Frame):
            assert len(i.payload) <= 256
    good = encode_message(seq, Command.MVM, payload, max_payload=256)
    out = dec.feed(good) + dec.idle()
    assert all(isinstance(i, (Frame, CorruptFrameError)) for i in out)
    frames = [i for i in out if isinstance(i, Frame) and i.seq == seq and i.cmd == Command.MVM]
    asm = MessageAssembler()
    msgs = [m for m in (asm.add(f) for f in frames) if m is not None]
    assert msgs and msgs[-1].payload == payload


@given(data=st.binary(max_size=200))
def test_fuzz_payload_decoders_raise_only_protocol_errors(data):
    from rram_lsm.errors import ConfigError

    region = Region(0, 0, 3, 5)
    for decode in (codec.decode_info, codec.decode_status, codec.decode_mvm_reply,
                   codec.decode_spikes, codec.decode_mvm_request,
                   codec.decode_reservoir_request, codec.decode_form_request,
                   codec.decode_program_request,
                   lambda p: codec.decode_form_reply(p, region),
                   lambda p: codec.decode_program_reply(p, region)):
        try:
            decode(data)
        except ProtocolError:
            pass
        except ConfigError:  # a well-formed spec with bad values: ReservoirSpec refuses it
            assert decode is codec.decode_reservoir_request


def test_chunking_round_trip_and_bounds():
    payload = (np.arange(10_000) % 251).astype(np.uint8).tobytes()
    wire = encode_message(9, Command.PROGRAM, payload, max_payload=4096)
    frames = FrameDecoder().feed(wire)
    assert [f.chunk for f in frames] == [0, 1, 2] and [f.more for f in frames] == [1, 1, 0]
    assert len(wire) == len(payload) + 3 * 18
    asm = MessageAssembler()
    assert [asm.add(f) for f in frames[:2]] == [None, None]
    assert asm.add(frames[2]).payload == payload
    with pytest.raises(ChunkError, match="chunk 1"):
        MessageAssembler().add(frames[1])  # no chunk 0 before it
    small = MessageAssembler(max_message_bytes=5000)
    small.add(frames[0])
    with pytest.raises(ChunkError, match="exceeds 5000"):
        small.add(frames[1])
    with pytest.raises(ChunkError):
        encode_frame(Frame(1, 1, 0, b"z" * 5000))


# ---- the driver against exact scripted frames ------------------------------------------------
def _open(port, **kw) -> SerialMacro:
    kw.setdefault("timeout_s", 0.05)
    kw.setdefault("inter_byte_timeout_s", 0.01)
    kw.setdefault("backoff_s", 0.0)
    return SerialMacro(port, first_seq=FIRST_SEQ, **kw)


FIRST_CMD = FIRST_SEQ + 3
"""Sequence number of the first command after the handshake (INFO, STATUS)."""


def _hello(info: MacroInfo = INFO, **wire) -> list:
    """The handshake: INFO, then STATUS (boot_count 1)."""
    return [(request(FIRST_SEQ + 1, Command.INFO), info_reply(info=info, **wire)),
            (request(FIRST_SEQ + 2, Command.STATUS),
             status_reply(FIRST_SEQ + 2, max_payload=wire.get("max_frame_payload", 4096)))]


def test_handshake_exact_bytes_and_info(scripted):
    port = scripted(_hello())
    m = _open(port)
    # sync, version 1, request, seq 0x0101 LE, INFO, status 0, chunk 0, length 0, CRCs
    assert port.written[0] == bytes.fromhex("a55a01000101010000000000" "6e34" "7f47a90e")
    assert m.info() == INFO and m.wire_limits.max_message_bytes == 1 << 20
    # then STATUS, whose boot_count is the baseline for noticing reboots
    assert port.written[1] == request(FIRST_SEQ + 2, Command.STATUS) and m.boot_count == 1
    assert port.done()


def test_repeating_a_failed_state_change_resends_its_exact_request(scripted):
    from rram_lsm.macro import FormResult

    seq = FIRST_CMD
    payload = codec.encode_form_request(Region(0, 0, 1, 1), 3.0, 1e-6, 100.0)
    ok = reply(seq, Command.FORM, codec.encode_form_reply(
        FormResult(np.ones((1, 1), bool), np.full((1, 1), 12.0))))
    other = codec.encode_form_request(Region(1, 0, 1, 1), 3.0, 1e-6, 100.0)
    port = scripted([*_hello(), (request(seq, Command.FORM, payload), b""),
                     (request(seq + 1, Command.CLOCK),
                      reply(seq + 1, Command.CLOCK, codec.encode_f64(0.0))),
                     (request(seq, Command.FORM, payload), ok),
                     (request(seq + 2, Command.FORM, other), reply(seq + 2, Command.FORM, b"no",
                                                                  Status.SAFETY_LIMIT))])
    m = _open(port, retries=0)
    with pytest.raises(LinkTimeoutError):
        m.form((0, 0, 1, 1), 3.0, 1e-6, 100.0)
    assert m.link.unfinished == (seq, Command.FORM)
    m.clock_s()  # a read in between (say, to look at the region) changes nothing
    # the same call again: the same seq and bytes, so a device that did run it replays it
    assert m.form((0, 0, 1, 1), 3.0, 1e-6, 100.0).conductance_us[0, 0] == 12.0
    assert m.link.unfinished is None
    with pytest.raises(DeviceSafetyLimitError):  # another command: a new seq
        m.form((1, 0, 1, 1), 3.0, 1e-6, 100.0)
    assert port.done()


def test_form_request_bytes_and_reply_decoding(scripted):
    seq = FIRST_CMD
    formed = np.array([[1, 0, 1], [0, 0, 1]], bool)
    g = np.array([[13.0, 0.1, 12.5], [0.1, 0.1, 9.75]])
    from rram_lsm.macro import FormResult

    req = request(seq, Command.FORM, codec.encode_form_request(Region(2, 1, 2, 3), 3.5,
                                                               1e-6, 100.0))
    port = scripted([*_hello(), (req, reply(seq, Command.FORM, codec.encode_form_reply(
        FormResult(formed, g))))])
    res = _open(port).form((2, 1, 2, 3), 3.5, 1e-6, 100.0)
    np.testing.assert_array_equal(res.formed, formed)
    np.testing.assert_array_equal(res.conductance_us, g)
    assert port.done()


def test_mvm_codes_are_subtracted_after_digitising(scripted):
    seq = FIRST_CMD
    x = np.array([[1, 0] * 8, [0, 1] * 8], np.uint8)
    req = request(seq, Command.MVM, codec.encode_mvm_request(Region(0, 0, 16, 4), x, True))
    assert len(req) == 18 + 8 + 5 + 2 * 2  # inputs bit-packed: 2 bytes per sample
    codes = np.array([[3, 1, 250, 255], [0, 7, 9, 9]])
    port = scripted([*_hello(), (req, reply(seq, Command.MVM,
                                           codec.encode_mvm_reply(codes, codec.ENC_U8)))])
    out = _open(port).mvm((0, 0, 16, 4), x, differential=True)
    lsb = INFO.adc_lsb_ua
    np.testing.assert_array_equal(out, codes[:, 0::2] * lsb - codes[:, 1::2] * lsb)


def test_corrupted_reply_is_retried_with_identical_bytes(scripted):
    seq = FIRST_CMD
    good = reply(seq, Command.CLOCK, codec.encode_f64(12.5))
    bad = bytearray(good)
    bad[16] ^= 0x40
    req = request(seq, Command.CLOCK)
    port = scripted([*_hello(), (req, bytes(bad)), (req, good)])
    m = _open(port)
    assert m.clock_s() == 12.5
    assert m.stats.retries == 1 and m.stats.corrupt == 1 and port.done()


def test_nak_and_unattributed_nak_trigger_immediate_retransmission(scripted):
    seq = FIRST_CMD
    req = request(seq, Command.ADVANCE, codec.encode_f64(5.0))
    ok = reply(seq, Command.ADVANCE, codec.encode_f64(5.0))
    port = scripted([*_hello(), (req, reply(seq, Command.ADVANCE, b"crc", Status.BAD_CRC)),
                     (req, reply(0xFFFF, 0, b"garbage", Status.BAD_FRAME)), (req, ok)])
    m = _open(port, timeout_s=5.0)  # NAKs must not wait for the timeout
    assert m.advance_time(5.0) == 5.0 and m.stats.retries == 2 and port.done()
    assert m.stats.timeouts == 0


def test_a_damaged_nak_still_means_retransmit_now(scripted):
    seq = FIRST_CMD
    req = request(seq, Command.CLOCK)
    nak = bytearray(reply(0xFFFF, 0, b"", Status.BAD_FRAME))
    nak[-1] ^= 0x01  # its CRC-32 damaged on the way back: the header is still readable
    stale = bytearray(reply(seq - 1, Command.CLOCK, codec.encode_f64(1.0)))
    stale[-1] ^= 0x01  # a damaged late answer to an earlier command is only skipped
    port = scripted([*_hello(), (req, bytes(nak)),
                     (req, bytes(stale) + reply(seq, Command.CLOCK, codec.encode_f64(2.0)))])
    m = _open(port, timeout_s=5.0)
    assert m.clock_s() == 2.0 and m.stats.timeouts == 0 and m.stats.retries == 1


def test_stale_replies_and_keepalives_are_skipped(scripted):
    seq = FIRST_CMD
    stale = reply(seq - 1, Command.CLOCK, codec.encode_f64(1.0))
    keepalive = reply(seq, Command.CLOCK, status=Status.IN_PROGRESS)
    port = scripted([*_hello(), (request(seq, Command.CLOCK),
                                stale + keepalive + reply(seq, Command.CLOCK,
                                                          codec.encode_f64(2.0)))])
    assert _open(port).clock_s() == 2.0


def test_busy_then_ok_and_busy_exhausted(scripted):
    seq = FIRST_CMD
    req = request(seq, Command.CLOCK)
    busy = reply(seq, Command.CLOCK, b"busy with seq 7", Status.BUSY)
    ok = reply(seq, Command.CLOCK, codec.encode_f64(3.0))
    port = scripted([*_hello(), (req, busy), (req, ok)])
    assert _open(port).clock_s() == 3.0
    port = scripted(_hello() + [(req, busy)] * 3)
    with pytest.raises(DeviceBusyError, match="3 attempts"):
        _open(port, retries=2).clock_s()


def test_timeout_after_bounded_retries(scripted):
    seq = FIRST_CMD
    req = request(seq, Command.READ, codec.pack_region(Region(0, 0, 1, 1)))
    # after each wait without reply the driver reads STATUS (a reboot?) before resending
    port = scripted(_hello() + [(req, b""), status_exchange(seq + 1), (req, b""),
                                status_exchange(seq + 2), (req, b"")])
    m = _open(port, retries=2)
    with pytest.raises(LinkTimeoutError, match="3 attempts"):
        m.read_conductance((0, 0, 1, 1))
    assert m.stats.timeouts == 3 and port.done() and m.stats.device_resets == 0


@pytest.mark.parametrize("status, kind, base", [
    (Status.REGION_ERROR, DeviceRegionError, RegionError),
    (Status.SAFETY_LIMIT, DeviceSafetyLimitError, SafetyLimitError),
])
def test_device_errors_are_typed(scripted, status, kind, base):
    seq = FIRST_CMD
    req = request(seq, Command.FORM, codec.encode_form_request(Region(0, 0, 1, 1), 3.0,
                                                               1e-6, 100.0))
    port = scripted([*_hello(), (req, reply(seq, Command.FORM, b"refused", status))])
    with pytest.raises(kind, match="refused") as err:
        _open(port).form((0, 0, 1, 1), 3.0, 1e-6, 100.0)
    assert isinstance(err.value, base) and err.value.status == status


def test_client_checks_refuse_before_sending(scripted):
    port = scripted(_hello())
    m = _open(port)
    with pytest.raises(SafetyLimitError):
        m.form((0, 0, 1, 1), 9.0, 1e-6, 100.0)
    with pytest.raises(RegionError):
        m.read_conductance((15, 0, 2, 1))
    with pytest.raises(ShapeError):
        m.mvm((0, 0, 16, 8), np.full((1, 16), 2))
    assert len(port.written) == 2  # only the handshake went out


@pytest.mark.parametrize("make_reply, match", [
    (lambda: reply(FIRST_SEQ + 1, Command.INFO, b"old", Status.BAD_VERSION), "version"),
    (lambda: reply(FIRST_SEQ + 1, Command.INFO, b"\x01\x02"), "cannot parse"),
    (lambda: info_reply(info=INFO.__class__(**{**INFO.__dict__, "protocol_version": 2})),
     "protocol 2"),
    (lambda: encode_message(FIRST_SEQ + 1, Command.INFO, b"", response=True, version=2),
     "version 2"),
])
def test_firmware_mismatch_is_refused(scripted, make_reply, match):
    port = scripted([(request(FIRST_SEQ + 1, Command.INFO), make_reply())])
    with pytest.raises(FirmwareMismatchError, match=match):
        _open(port)


def test_large_messages_use_the_advertised_frame_size(scripted):
    seq = FIRST_CMD
    target = np.full((16, 8), 10.0)
    payload = codec.encode_program_request(Region(0, 0, 16, 8), target, 0.5, 10)
    req = request(seq, Command.PROGRAM, payload, max_payload=64)
    from rram_lsm.macro import ProgramResult

    res = ProgramResult(target, np.ones((16, 8), np.int32), np.ones((16, 8), bool))
    port = scripted([*_hello(max_frame_payload=64),
                     (req, reply(seq, Command.PROGRAM, codec.encode_program_reply(res),
                                 max_payload=64))])
    out = _open(port).program((0, 0, 16, 8), target, 0.5, 10)
    np.testing.assert_array_equal(out.conductance_us, target)
    assert len(req) > 64 * 10 and port.done()


def test_wire_log_records_hex_with_timestamps(scripted, tmp_path):
    log = tmp_path / "wire.log"
    _open(scripted(_hello()), wire_log=log).close()
    lines = log.read_text().splitlines()
    assert lines[0].split()[1] == ">" and lines[0].split()[2] == _hello()[0][0].hex()
    assert lines[1].split()[1] == "<" and float(lines[1].split()[0]) >= 0


class _Wrapped:
    """A port stand-in that changes how a ScriptedPort's replies come back."""

    timeout = 0.001

    def __init__(self, inner):
        self.inner = inner

    def write(self, data: bytes) -> int:
        return self.inner.write(data)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _Babbler(_Wrapped):
    """Never stops sending junk (another device, or a wrong baud rate) until ``quiet``."""

    port = "babble://"
    quiet = False

    @property
    def in_waiting(self) -> int:
        return self.inner.in_waiting if self.quiet else 5

    def read(self, n: int = 1) -> bytes:
        return self.inner.read(n) if self.quiet else b"\xa5\x13\x37\x00\xff"[:n]


def test_a_port_that_never_stops_sending_still_times_out_then_recovers(scripted):
    seq = FIRST_CMD
    req = request(seq, Command.CLOCK)
    status = request(seq + 1, Command.STATUS)
    port = _Babbler(scripted([*_hello(), (req, b""), (status, b""), (status, b""), (req, b""),
                              (request(seq + 2, Command.CLOCK),
                               reply(seq + 2, Command.CLOCK, codec.encode_f64(4.0)))]))
    port.quiet = True
    m = _open(port, retries=1)
    port.quiet = False
    with pytest.raises(LinkTimeoutError, match="none formed a valid reply") as err:
        m.clock_s()  # the wait is bounded although bytes keep arriving
    # CLOCK twice, and between them STATUS twice (unanswered: a read is simply resent)
    assert err.value.received_bytes > 0 and m.stats.timeouts == 4
    port.quiet = True
    assert m.clock_s() == 4.0 and port.inner.done()  # the session resynchronised


def test_handshake_with_a_babbling_port_reports_received_bytes(scripted):
    port = _Babbler(scripted([(request(FIRST_SEQ + 1, Command.INFO), b"")] * 2))
    with pytest.raises(LinkTimeoutError, match="INFO handshake") as err:
        _open(port, retries=1)
    assert err.value.received_bytes > 0


def test_non_numeric_arguments_are_config_errors_before_sending(scripted):
    from rram_lsm.errors import ConfigError

    port = scripted(_hello())
    m = _open(port)
    for call in (lambda: m.form((0, 0, 1, 1), "3.5", 1e-6, 100.0),
                 lambda: m.form((0, 0, 1, 1), 3.5, None, 100.0),
                 lambda: m.advance_time("1"),
                 lambda: m.program((0, 0, 1, 1), np.ones((1, 1)), "0.5", 3)):
        with pytest.raises(ConfigError):
            call()
    with pytest.raises(ShapeError, match="real numbers"):
        m.program((0, 0, 1, 1), np.array([["a"]]), 0.5, 3)
    with pytest.raises(ConfigError, match="positive"):
        _open(scripted([]), timeout_s=0)
    assert len(port.written) == 2  # the handshake


@pytest.mark.parametrize("change, match", [
    (dict(n_inputs=70_000), "n_inputs"), (dict(n_neurons=65_536), "n_neurons"),
    (dict(refractory_steps=1 << 16), "refractory_steps"), ("not a spec", "ReservoirSpec"),
    ("codec without subtract", "no code on the wire"),
])
def test_run_reservoir_refuses_specs_the_wire_cannot_carry(scripted, monkeypatch, change,
                                                           match):
    """ReservoirSpec validates its values itself; the driver adds only the wire's limits."""
    from dataclasses import replace

    from rram_lsm.errors import ConfigError
    from rram_lsm.macro import RUN_RESERVOIR
    from rram_lsm.reservoir import ReservoirSpec

    info = replace(INFO, capabilities=(RUN_RESERVOIR,))
    port = scripted(_hello(info=info))
    spec = ReservoirSpec(4, 2, 0.9, 1.0, 1.0, 1.0)
    if change == "not a spec":
        spec = spec.__dict__
    elif change == "codec without subtract":  # a reset rule the bottom layer knows, the wire not
        monkeypatch.setattr(codec, "RESET_MODES", ("zero",))
        spec = replace(spec, reset="subtract")
    else:
        spec = replace(spec, **change)
    with pytest.raises(ConfigError, match=match):
        _open(port).run_reservoir((0, 0, 6, 4), np.zeros((1, 3, 4), np.uint8), spec)
    assert len(port.written) == 2  # the handshake


def test_run_reservoir_checks_tile_and_rasters_before_sending(scripted):
    from dataclasses import replace

    from rram_lsm.macro import RUN_RESERVOIR
    from rram_lsm.reservoir import ReservoirSpec

    info = replace(INFO, capabilities=(RUN_RESERVOIR,))
    port = scripted(_hello(info=info))
    m = _open(port)
    spec = ReservoirSpec(4, 2, 0.9, 1.0, 1.0, 1.0)
    with pytest.raises(ShapeError, match="tile"):
        m.run_reservoir((0, 0, 6, 3), np.zeros((1, 3, 4), np.uint8), spec)
    with pytest.raises(RegionError):
        m.run_reservoir((12, 0, 6, 4), np.zeros((1, 3, 4), np.uint8), spec)
    for bad in (np.zeros((3, 4), np.uint8), np.zeros((1, 3, 5), np.uint8),
                np.full((1, 3, 4), 2)):
        with pytest.raises(ShapeError):
            m.run_reservoir((0, 0, 6, 4), bad, spec)
    assert len(port.written) == 2  # the handshake


def test_run_reservoir_without_the_capability_points_to_the_reference_loop(scripted):
    from hardware import DeviceError
    from rram_lsm.reservoir import ReservoirSpec

    m = _open(scripted(_hello()))
    with pytest.raises(DeviceError, match="run_reference") as err:
        m.run_reservoir((0, 0, 6, 4), np.zeros((1, 3, 4), np.uint8),
                        ReservoirSpec(4, 2, 0.9, 1.0, 1.0, 1.0))
    assert err.value.status == Status.UNSUPPORTED


def test_stats_count_each_command_once_and_retransmissions_apart(scripted):
    seq = FIRST_CMD
    form = request(seq, Command.FORM, codec.encode_form_request(Region(0, 0, 1, 1), 3.0,
                                                                1e-6, 100.0))
    from rram_lsm.macro import FormResult

    ok = reply(seq, Command.FORM, codec.encode_form_reply(
        FormResult(np.ones((1, 1), bool), np.full((1, 1), 12.0))))
    clock = request(seq + 3, Command.CLOCK)
    port = scripted([*_hello(), (form, b""), status_exchange(seq + 1), (form, b""),
                     status_exchange(seq + 2), (form, ok),
                     (clock, reply(seq + 3, Command.CLOCK, codec.encode_f64(1.0)))])
    m = _open(port)
    m.form((0, 0, 1, 1), 3.0, 1e-6, 100.0)
    m.clock_s()
    s = m.stats
    assert s.commands == {"INFO": 1, "STATUS": 3, "FORM": 1, "CLOCK": 1}
    assert s.commands["FORM"] == 1 and s.commands["PROGRAM"] == 0  # never sent reads 0
    assert s.retransmissions == {"FORM": 2} and s.retries == 2 and s.timeouts == 2
    assert s.attempts == 8 and s.completed == 6 and port.done()


def test_identity_defaults_to_port_and_handshake_and_can_be_given(scripted):
    from rram_lsm.errors import ConfigError

    m = _open(scripted(_hello()))
    assert m.identity() == {"backend": "serial", "url": "scripted://", "model": "test-macro",
                            "firmware_version": "t-1"}
    given = {"backend": "emulator", "seed": 3, "profile": {"name": "p"}}
    m = _open(scripted(_hello()), identity=given)
    got = m.identity()
    assert got == given
    got["profile"]["name"] = "changed"  # a copy: the macro's identity stays as given
    given["seed"] = 4
    assert m.identity() == {"backend": "emulator", "seed": 3, "profile": {"name": "p"}}
    with pytest.raises(ConfigError, match="identity"):
        _open(scripted([]), identity="chip-1")


class _Trickle(_Wrapped):
    """Once ``slow`` is set: a reply's 14 header bytes at once, then one byte per read every
    ``gap_s`` (a long reply still streaming in when the reply timeout expires)."""

    port = "trickle://"

    def __init__(self, inner, gap_s):
        super().__init__(inner)
        self.gap_s, self.slow, self.sent = gap_s, False, 0

    @property
    def in_waiting(self) -> int:
        waiting = self.inner.in_waiting
        if not self.slow or not waiting:
            return waiting
        return 14 if self.sent == 0 else 1

    def read(self, n: int = 1) -> bytes:
        import time

        if self.slow and self.sent:
            time.sleep(self.gap_s)
        out = self.inner.read(n)
        self.sent += len(out) if self.slow else 0
        return out


def test_a_reply_that_started_in_time_may_finish_after_the_timeout(scripted):
    seq = FIRST_CMD
    port = _Trickle(scripted([*_hello(), (request(seq, Command.CLOCK),
                                         reply(seq, Command.CLOCK, codec.encode_f64(6.0)))]),
                    gap_s=0.01)
    m = _open(port, timeout_s=0.05, inter_byte_timeout_s=0.5)
    port.slow = True  # 12 bytes after the header at 10 ms each: 0.12 s > timeout_s
    assert m.clock_s() == 6.0 and m.stats.timeouts == 0 and port.inner.done()
