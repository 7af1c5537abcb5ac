"""The device side (Emulator.receive) with exact frames, and the driver wired to it in-process."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware import (Command, Emulator, Faults, Frame, FrameDecoder, MessageAssembler,
                      ReferenceFirmware, SerialMacro, Status, encode_frame, encode_message)
from hardware import codec
from hardware.protocol import NO_SEQ
from rram_lsm.errors import ConfigError
from rram_lsm.macro import RUN_RESERVOIR, Region
from rram_lsm.reservoir import ReservoirSpec, run_reference


@pytest.fixture
def small_profile(noise_free_profile):
    return replace(noise_free_profile, array=replace(noise_free_profile.array, rows=32, cols=32))


@pytest.fixture
def emu(small_profile):
    from sim import SimMacro

    return Emulator(SimMacro(seed=11, profile=small_profile))


def _replies(data: bytes):
    asm = MessageAssembler()
    msgs = [asm.add(f) for f in FrameDecoder().feed(data)]
    return [m for m in msgs if m is not None]


FORM = codec.encode_form_request(Region(0, 0, 4, 4), 3.7, 1e-6, 100.0)


def test_exactly_once_form_replays_the_cached_reply(emu):
    req = encode_message(500, Command.FORM, FORM)
    first = emu.receive(req)
    again = emu.receive(req)  # the host never saw `first` and retransmits
    assert again == first
    assert emu.counters["state_changes"] == 1 and emu.counters["replays"] == 1
    # same seq but another payload is a new command, not a retransmission
    other = codec.encode_form_request(Region(4, 4, 4, 4), 3.7, 1e-6, 100.0)
    emu.receive(encode_message(500, Command.FORM, other))
    assert emu.counters["state_changes"] == 2
    # reads are never cached
    read = encode_message(501, Command.READ, codec.pack_region(Region(0, 0, 4, 4)))
    emu.receive(read), emu.receive(read)
    assert emu.counters["replays"] == 1


def test_retried_advance_moves_the_clock_once(emu):
    req = encode_message(7, Command.ADVANCE, codec.encode_f64(100.0))
    replies = [_replies(emu.receive(req))[0] for _ in range(3)]
    assert all(codec.decode_f64(r.payload, 1, "t")[0] == 100.0 for r in replies)
    assert emu.macro.clock_s() == 100.0


@pytest.mark.parametrize("payload, cmd, status", [
    (codec.encode_form_request(Region(30, 0, 4, 4), 3.7, 1e-6, 100.0), Command.FORM,
     Status.REGION_ERROR),
    (codec.encode_form_request(Region(0, 0, 4, 4), 7.0, 1e-6, 100.0), Command.FORM,
     Status.SAFETY_LIMIT),
    (codec.encode_form_request(Region(0, 0, 4, 4), 3.0, 1.0, 100.0), Command.FORM,
     Status.SAFETY_LIMIT),
    (codec.encode_program_request(Region(0, 0, 2, 2), np.full((2, 2), 1e6), 0.1, 5),
     Command.PROGRAM, Status.BAD_ARGUMENT),
    (codec.encode_f64(-1.0), Command.ADVANCE, Status.BAD_ARGUMENT),
    (b"\x00\x01", Command.READ, Status.BAD_PAYLOAD),
    (b"", 0x7E, Status.UNKNOWN_COMMAND),
])
def test_device_side_checks(emu, payload, cmd, status):
    (msg,) = _replies(emu.receive(encode_message(3, cmd, payload)))
    assert (msg.seq, msg.cmd, msg.status) == (3, cmd, status)
    assert msg.payload  # a human-readable reason
    assert emu.counters["state_changes"] == 0


def test_naks_for_damaged_frames_and_versions(emu):
    req = bytearray(encode_message(9, Command.READ, codec.pack_region(Region(0, 0, 1, 1))))
    req[16] ^= 0x10
    (nak,) = _replies(emu.receive(bytes(req)))
    assert (nak.seq, nak.status) == (9, Status.BAD_CRC)
    assert emu.receive(b"\x13\x37 noise") == b""
    (nak,) = _replies(emu.flush())  # quiet line after garbage: unattributed NAK
    assert (nak.seq, nak.cmd, nak.status) == (NO_SEQ, 0, Status.BAD_FRAME)
    (msg,) = _replies(emu.receive(encode_message(4, Command.INFO, b"", version=2)))
    assert msg.status == Status.BAD_VERSION
    chunk1 = encode_message(5, Command.PROGRAM, b"x" * 5000)[4096 + 18:]
    (msg,) = _replies(emu.receive(chunk1))
    assert msg.status == Status.CHUNK_ERROR


def _advertised(emu) -> tuple:
    info, _ = codec.decode_info(_replies(emu.receive(encode_message(2, Command.INFO)))[0].payload)
    return info.capabilities


class _FusedMacro:
    """Delegates to a SimMacro but advertises a fused RUN_RESERVOIR that must never be used."""

    def __init__(self, macro):
        self._m = macro
        self.fused_calls = 0

    def __getattr__(self, name):
        return getattr(self._m, name)

    def info(self):
        return replace(self._m.info(), capabilities=(RUN_RESERVOIR,))

    def run_reservoir(self, region, rasters, spec):
        self.fused_calls += 1
        raise AssertionError("the emulator called the wrapped macro's run_reservoir")


SPEC = ReservoirSpec(n_inputs=6, n_neurons=3, decay=0.9, threshold=0.5, weight_scale=0.3,
                     g_ref_us=2.0)
TILE = Region(0, 0, *SPEC.tile_shape)


def _reservoir_request(seq, rasters, spec=SPEC, region=TILE) -> bytes:
    return encode_message(seq, Command.RUN_RESERVOIR,
                          codec.encode_reservoir_request(region, spec, rasters))


def test_run_reservoir_unsupported_without_firmware(small_profile):
    from sim import SimMacro

    emu = Emulator(_FusedMacro(SimMacro(seed=1, profile=small_profile)), firmware=False)
    (msg,) = _replies(emu.receive(encode_message(1, Command.RUN_RESERVOIR, b"")))
    assert msg.status == Status.UNSUPPORTED
    assert _advertised(emu) == ()  # the wrapped macro's capability is not the device's


def test_reference_firmware_is_the_reference_loop_not_the_fused_kernel(small_profile):
    from sim import SimMacro

    fused = _FusedMacro(SimMacro(seed=4, profile=small_profile))
    emu = Emulator(fused)
    assert isinstance(emu.firmware, ReferenceFirmware)
    assert _advertised(emu) == (RUN_RESERVOIR,)
    emu.receive(encode_message(1, Command.FORM, codec.encode_form_request(TILE, 3.6, 1e-6,
                                                                          100.0)))
    rasters = (np.random.default_rng(2).random((4, 9, 6)) < 0.4).astype(np.uint8)
    (msg,) = _replies(emu.receive(_reservoir_request(2, rasters)))
    assert msg.status == Status.OK
    spikes = codec.decode_spikes(msg.payload)
    ref = SimMacro(seed=4, profile=small_profile)
    ref.form(TILE, 3.6, 1e-6, 100.0)
    expected, _ = run_reference(ref, TILE, rasters, SPEC)
    assert 0 < spikes.mean() < 0.5  # neither silent nor saturated
    np.testing.assert_array_equal(spikes, expected)
    assert fused.fused_calls == 0


def test_firmware_is_injected_and_sees_only_the_array(small_profile):
    from sim import SimMacro

    seen = {}

    def firmware(macro, region, rasters, spec):
        seen.update(region=region, spec=spec, shape=rasters.shape,
                    has_fused=hasattr(macro, "run_reservoir"),
                    has_form=hasattr(macro, "form"), caps=macro.info().capabilities)
        return np.ones((*rasters.shape[:2], spec.n_neurons), np.uint8)

    emu = Emulator(_FusedMacro(SimMacro(seed=1, profile=small_profile)), firmware=firmware)
    assert emu.capabilities == (RUN_RESERVOIR,)  # a plain callable provides RUN_RESERVOIR
    (msg,) = _replies(emu.receive(_reservoir_request(3, np.zeros((2, 5, 6), np.uint8))))
    assert msg.status == Status.OK
    np.testing.assert_array_equal(codec.decode_spikes(msg.payload), np.ones((2, 5, 3)))
    assert seen == dict(region=TILE, spec=SPEC, shape=(2, 5, 6), has_fused=False,
                        has_form=False, caps=())


def test_firmware_capabilities_and_faults(small_profile):
    from sim import SimMacro

    macro = SimMacro(seed=1, profile=small_profile)

    class NoReservoir:
        capabilities = ()

        def __call__(self, *args):
            raise AssertionError("not advertised, so never called")

    emu = Emulator(macro, firmware=NoReservoir())
    assert _advertised(emu) == ()
    (msg,) = _replies(emu.receive(_reservoir_request(4, np.zeros((1, 2, 6), np.uint8))))
    assert msg.status == Status.UNSUPPORTED
    # a firmware answering the wrong shape is the device's fault, not the host's
    emu = Emulator(macro, firmware=lambda m, r, x, s: np.zeros((1, 1, 1), np.uint8))
    (msg,) = _replies(emu.receive(_reservoir_request(5, np.zeros((1, 2, 6), np.uint8))))
    assert msg.status == Status.INTERNAL and b"firmware" in msg.payload
    with pytest.raises(ConfigError, match="firmware"):
        Emulator(macro, firmware="reference")


def test_device_refuses_bad_reservoir_requests(emu):
    # a spec whose values ReservoirSpec refuses (built around its check, as a foreign host might)
    bad = ReservoirSpec(6, 3, 0.9, 0.5, 0.3, 2.0)
    object.__setattr__(bad, "decay", 1.5)
    rasters = np.zeros((1, 2, 6), np.uint8)
    (msg,) = _replies(emu.receive(_reservoir_request(6, rasters, spec=bad)))
    assert msg.status == Status.BAD_ARGUMENT and b"decay" in msg.payload
    (msg,) = _replies(emu.receive(_reservoir_request(7, rasters, region=Region(0, 0, 9, 5))))
    assert msg.status == Status.SHAPE_ERROR and b"tile" in msg.payload
    (msg,) = _replies(emu.receive(_reservoir_request(8, rasters, region=Region(30, 0, 9, 6))))
    assert msg.status == Status.REGION_ERROR


def test_driver_survives_lost_replies_exactly_once(emu, device_port_cls):
    # writes: 0 INFO, 1 STATUS, 2 FORM (reply lost), 3 STATUS (no reboot), 4 FORM retry,
    # 5 PROGRAM (reply lost), 6 STATUS, 7 PROGRAM retry
    port = device_port_cls(emu, lose_replies={2, 5})
    m = SerialMacro(port, timeout_s=0.05, backoff_s=0.0)
    res = m.form((0, 0, 4, 4), 3.7, 1e-6, 100.0)
    target = np.where(res.formed, 10.0, res.conductance_us)
    prog = m.program((0, 0, 4, 4), target, 0.2, 50)
    assert m.stats.retries == 2 and m.stats.timeouts == 2
    # each sent once (STATUS: the handshake's and one check per lost reply)...
    assert m.stats.commands == {"INFO": 1, "STATUS": 3, "FORM": 1, "PROGRAM": 1}
    assert m.stats.retransmissions == {"FORM": 1, "PROGRAM": 1}  # ... and retransmitted once
    assert emu.counters["state_changes"] == 2 and emu.counters["replays"] == 2
    assert port.written[2] == port.written[4] and port.written[5] == port.written[7]
    np.testing.assert_array_equal(prog.conductance_us,
                                  emu.macro.read_conductance((0, 0, 4, 4)))
    st = m.status()
    assert st.state_changes == 2 and st.boot_count == 1 and not st.busy


def test_faults_validate():
    with pytest.raises(ConfigError):
        Faults(corrupt_rate=1.5)
    with pytest.raises(ConfigError):
        Faults(latency_s=-1.0)
    assert not Faults().active and Faults(drop_rate=0.1).active


@pytest.fixture(scope="module")
def fuzz_emu(noise_free_profile):
    from sim import SimMacro

    small = replace(noise_free_profile, array=replace(noise_free_profile.array, rows=8, cols=8))
    return Emulator(SimMacro(seed=2, profile=small))


@given(data=st.lists(st.binary(max_size=80), max_size=6), cmd=st.sampled_from(list(Command)),
       payload=st.binary(max_size=120))
def test_fuzz_device_answers_anything_with_valid_frames(fuzz_emu, data, cmd, payload):
    out = b""
    for piece in data + [encode_message(77, cmd, payload)]:
        out += fuzz_emu.receive(piece)
    out += fuzz_emu.flush()
    items = FrameDecoder().feed(out)
    assert all(isinstance(i, Frame) and i.is_response for i in items)
    assert any(i.seq == 77 and i.cmd == cmd for i in items)  # the request got its answer


class _SlowMacro:
    """Delegates to a SimMacro; its MVM takes ``delay_s`` (a long command)."""

    def __init__(self, macro, delay_s):
        self._m, self.delay_s = macro, delay_s

    def __getattr__(self, name):
        return getattr(self._m, name)

    def mvm(self, *args, **kw):
        import time

        time.sleep(self.delay_s)
        return self._m.mvm(*args, **kw)


def test_served_long_command_sends_keepalives_and_busy(small_profile):
    import os
    import select
    import threading
    import tty

    from sim import SimMacro

    emu = Emulator(_SlowMacro(SimMacro(seed=3, profile=small_profile), 0.8), keepalive_s=0.1)
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()
    server = threading.Thread(target=emu.serve, args=(master, stop.is_set), daemon=True)
    server.start()
    try:
        mvm = encode_message(40, Command.MVM, codec.encode_mvm_request(
            Region(0, 0, 4, 2), np.ones((1, 4), np.uint8), False))
        os.write(slave, mvm)
        os.write(slave, encode_message(41, Command.CLOCK))  # while busy
        os.write(slave, mvm)  # a retransmission of the running command
        got, decoder = [], FrameDecoder()
        while not any(f.seq == 40 and f.status == Status.OK for f in got):
            ready, _, _ = select.select([slave], [], [], 5.0)
            assert ready, f"no final reply; got {got}"
            got += decoder.feed(os.read(slave, 4096))
        statuses = [(f.seq, Status(f.status)) for f in got]
        assert (41, Status.BUSY) in statuses
        assert statuses.count((40, Status.IN_PROGRESS)) >= 3  # 0.8 s at 0.1 s intervals
        # with keep-alives a driver whose timeout is shorter than the command still succeeds
        m = SerialMacro(os.ttyname(slave), timeout_s=0.5)  # < the 0.8 s command
        out = m.mvm((0, 0, 4, 2), np.ones((1, 4), np.uint8))
        assert out.shape == (1, 2) and m.stats.timeouts == 0 and m.stats.retries == 0
        m.close()
    finally:
        stop.set()
        server.join(5)
        os.close(master)
        os.close(slave)


def test_build_macro_passes_macro_index_only_when_nonzero(monkeypatch):
    import sys
    import types

    from hardware.spawn import build_macro

    calls = []

    def old_chip(seed, profile):  # a factory from before multi-macro chips
        calls.append((seed, profile))
        return "chip"

    def new_chip(seed, profile, macro_index=0):
        calls.append((seed, profile, macro_index))
        return "chip"

    module = types.ModuleType("fake_chips")
    module.old_chip, module.new_chip = old_chip, new_chip
    monkeypatch.setitem(sys.modules, "fake_chips", module)
    assert build_macro("fake_chips:old_chip", 3, "") == "chip"
    assert build_macro("fake_chips:new_chip", 3, "p", 2) == "chip"
    assert calls == [(3, None), (3, "p", 2)]
    with pytest.raises(ConfigError, match="does not take macro_index"):
        build_macro("fake_chips:old_chip", 3, None, 1)
    with pytest.raises(ConfigError, match="cannot import"):
        build_macro("fake_chips:missing", 3, None)


# ---- issue 15: device-side refusals and one NAK per damaged frame ----------------------------
@pytest.mark.parametrize("adc_bits", [8, None])
def test_differential_mvm_on_odd_columns_is_refused_whatever_the_adc(small_profile, adc_bits):
    from sim import SimMacro

    prof = replace(small_profile, adc=replace(small_profile.adc, bits=adc_bits))
    emu = Emulator(SimMacro(seed=0, profile=prof))
    # the request: region (0, 0, 8, 3), batch 1, flags 0x01 (the 8-bit ADC answered OK)
    req = encode_message(3, Command.MVM, codec.encode_mvm_request(
        Region(0, 0, 8, 3), np.ones((1, 8), np.uint8), True))
    (msg,) = _replies(emu.receive(req))
    assert msg.status == Status.REGION_ERROR and b"even number of columns" in msg.payload


def test_undefined_mvm_flag_bits_and_set_padding_bits_are_refused(emu):
    good = codec.encode_mvm_request(Region(0, 0, 3, 2), np.ones((2, 3), np.uint8), False)
    (msg,) = _replies(emu.receive(encode_message(1, Command.MVM, good)))
    assert msg.status == Status.OK
    for flags in (0x02, 0x80, 0x03):
        bad = bytearray(good)
        bad[12] = flags  # region (8), batch (4), then flags
        (msg,) = _replies(emu.receive(encode_message(2, Command.MVM, bytes(bad))))
        assert msg.status == Status.BAD_PAYLOAD and b"undefined flag bits" in msg.payload
    bad = bytearray(good)
    bad[-1] |= 0x08  # bit 3 of a 3-bit row: padding
    (msg,) = _replies(emu.receive(encode_message(3, Command.MVM, bytes(bad))))
    assert msg.status == Status.BAD_PAYLOAD and b"padding bits" in msg.payload
    rasters = np.zeros((1, 2, SPEC.n_inputs), np.uint8)
    req = bytearray(codec.encode_reservoir_request(TILE, SPEC, rasters))
    req[-1] = 0x40  # bit 6 of a 6-input row
    (msg,) = _replies(emu.receive(encode_message(4, Command.RUN_RESERVOIR, bytes(req))))
    assert msg.status == Status.BAD_PAYLOAD and b"padding bits" in msg.payload
    # the host reads the device's bitmaps by the same rule
    from rram_lsm.macro import FormResult

    reply = bytearray(codec.encode_form_reply(FormResult(np.ones((2, 3), bool),
                                                         np.ones((2, 3)))))
    reply[0] |= 0x80
    with pytest.raises(codec.ProtocolError, match="padding bits"):
        codec.decode_form_reply(bytes(reply), Region(0, 0, 2, 3))


def _one_nak(emu, damaged: bytes):
    """Everything the device answers to ``damaged`` and the quiet line after it."""
    return _replies(emu.receive(damaged) + emu.flush() + emu.flush())


@pytest.mark.parametrize("damage", ["payload", "flags", "length", "truncated", "crc"])
def test_one_damaged_frame_draws_exactly_one_nak(small_profile, damage):
    from sim import SimMacro

    emu = Emulator(SimMacro(seed=1, profile=small_profile), max_frame_payload=64)
    payload = codec.pack_region(Region(0, 0, 2, 2)) + bytes(range(40))
    frame = bytearray(encode_message(21, Command.READ, payload))
    if damage == "payload":
        frame[30] ^= 0x5A
    elif damage == "crc":
        frame[-1] ^= 0x01
    elif damage == "truncated":
        del frame[-3]  # a byte lost on the line
    else:
        head = dict(flags=0x04) if damage == "flags" else dict(payload=b"\xa5\x5a" * 50)
        f = Frame(21, Command.READ, 0, head.get("payload", payload), head.get("flags", 0))
        frame = bytearray(encode_frame(f, max_payload=200))
    naks = _one_nak(emu, bytes(frame))
    assert len(naks) == 1, [(m.seq, Status(m.status).name) for m in naks]
    want = Status.BAD_CRC if damage in ("payload", "crc") else Status.BAD_FRAME
    assert (naks[0].seq, naks[0].cmd, naks[0].status) == (21, Command.READ, want)
    assert emu.counters["frames_bad"] == 1
    # junk after it is other bytes: that gets its own (unattributed) NAK, once
    naks = _one_nak(emu, b"\x00\x13\x37junk")
    assert [(m.seq, m.status) for m in naks] == [(NO_SEQ, Status.BAD_FRAME)]
    # and the retransmission is answered as usual
    (msg,) = _replies(emu.receive(encode_message(21, Command.INFO)))
    assert msg.status == Status.OK
