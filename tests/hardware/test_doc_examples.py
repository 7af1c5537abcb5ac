"""Every worked example of docs/protocol.md, read out of the document and rebuilt.

An example is a fenced block after a ``<!-- example: NAME -->`` line. Each line holds hex
bytes, then (after two spaces) a comment; a line ``...`` means the rest of the frame is not
shown. Requests are rebuilt from the values the text names; replies are what the chip the
text names (a fresh ``rram-lsm emulate --seed 0``) answers to the requests, sent in the
document's order. So the document cannot drift from the code or from the chip.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hardware import Command, Emulator, FrameDecoder, Status, encode_message
from hardware import codec
from rram_lsm.macro import Region
from rram_lsm.reservoir import ReservoirSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_BLOCK = re.compile(r"<!-- example: ([\w-]+) -->\s*\n```[a-z]*\n(.*?)```", re.S)


def _examples() -> dict[str, tuple[bytes, bool]]:
    """name -> (bytes shown, whether the rest is elided)."""
    out = {}
    for name, body in _BLOCK.findall(DOC.read_text(encoding="utf-8")):
        data, elided = bytearray(), False
        for line in body.splitlines():
            left = line.split("  ")[0].strip()
            if not left:
                continue
            if left in ("...", "…"):
                elided = True
                continue
            assert not elided, f"example {name}: bytes after '...'"
            try:
                data += bytes.fromhex(left)
            except ValueError:
                pytest.fail(f"example {name}: not hex bytes before the comment: {line!r}")
        assert name not in out, f"example {name} appears twice"
        out[name] = (bytes(data), elided)
    return out


EXAMPLES = _examples()
FORM_ARGS = (Region(0, 0, 2, 4), 3.5, 1e-6, 100.0)
SPEC = ReservoirSpec(3, 2, 0.9, 0.5, 1.0, 10.0, "zero", 0)
RASTERS = np.array([[[1, 0, 1], [0, 1, 1]]], np.uint8)

# what each request example is, from the values its text names
REQUESTS = {
    "info-request": encode_message(0x0102, Command.INFO),
    "form-request": encode_message(0x0102, Command.FORM, codec.encode_form_request(*FORM_ARGS)),
    "form-request-string": encode_message(0x0102, Command.FORM,
                                          codec.encode_form_request(*FORM_ARGS)),
    "refused-form-request": encode_message(0x0103, Command.FORM, codec.encode_form_request(
        Region(0, 0, 2, 4), 5.5, 1e-6, 100.0)),
    "run-reservoir-request": encode_message(0x0007, Command.RUN_RESERVOIR,
                                            codec.encode_reservoir_request(
                                                Region(0, 0, 5, 4), SPEC, RASTERS)),
}
# the session on the named chip: (request example, its reply example or None)
SESSION = [("info-request", None), ("form-request", "form-reply"),
           ("refused-form-request", "refused-form-reply"),
           ("run-reservoir-request", "run-reservoir-reply")]


def test_every_example_in_the_document_is_checked():
    checked = set(REQUESTS) | {reply for _, reply in SESSION if reply}
    assert set(EXAMPLES) == checked


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_examples_are_the_frames_of_their_values(name):
    shown, elided = EXAMPLES[name]
    assert not elided and shown == REQUESTS[name]


def test_reply_examples_are_what_the_named_chip_answers():
    from hardware.spawn import build_macro
    from sim import load_profile

    # `rram-lsm emulate --seed 0` builds exactly this device
    emu = Emulator(build_macro("sim:SimMacro", 0, load_profile(None)))
    info, _ = codec.decode_info(FrameDecoder().feed(emu.receive(EXAMPLES["info-request"][0]))[0]
                                .payload)
    assert (info.rows, info.cols, info.adc_bits, info.adc_lsb_ua) == (512, 512, 8, 0.78125)
    assert info.limits.max_form_voltage_v == 5.0 < 5.5  # the refused example is beyond it
    for request, reply in SESSION[1:]:
        got = emu.receive(EXAMPLES[request][0])
        shown, elided = EXAMPLES[reply]
        if elided:
            assert got[:len(shown)] == shown, f"{reply}: chip sent {got[:len(shown)].hex(' ')}"
        else:
            assert got == shown, f"{reply}: chip sent {got.hex(' ')}"
        (frame,) = FrameDecoder().feed(got)
        assert len(got) == 18 + len(frame.payload)
    # what the text says about them
    (form,) = FrameDecoder().feed(emu.receive(EXAMPLES["form-request"][0]))  # a replay
    res = codec.decode_form_reply(form.payload, FORM_ARGS[0])
    assert res.formed.astype(int).tolist() == [[0, 1, 0, 0], [0, 1, 1, 0]]
    (refused,) = FrameDecoder().feed(EXAMPLES["refused-form-reply"][0])
    assert refused.status == Status.SAFETY_LIMIT and len(refused.payload) == 46
    (spikes,) = FrameDecoder().feed(EXAMPLES["run-reservoir-reply"][0])
    assert codec.decode_spikes(spikes.payload).tolist() == [[[0, 0], [0, 1]]]
