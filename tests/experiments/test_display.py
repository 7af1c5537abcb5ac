"""Jupyter display: HTML summaries of results, chips and plain dataclasses; exports."""
from __future__ import annotations

import importlib
import inspect

import numpy as np

from rram_lsm.app.experiments import show
from rram_lsm.app.experiments.display import text_table
from rram_lsm.app.experiments.energy import count_operations, estimate_energy


class _FakeChip:
    """Enough of a Macro for the chip table (no _repr_html_ of its own)."""

    def info(self):
        from rram_lsm.macro import MacroInfo

        return MacroInfo(rows=4, cols=6, model="fake<chip>", firmware_version="1",
                         protocol_version=1, read_voltage_v=0.2, adc_bits=None, adc_lsb_ua=0.0)

    def clock_s(self):
        return 12.5


def test_chip_without_html_gets_an_escaped_table():
    html = show(_FakeChip())._repr_html_()
    assert "fake&lt;chip&gt;" in html and "4 x 6" in html and "ideal" in html and "12.5 s" in html


def test_objects_with_their_own_html_pass_through_and_dataclasses_get_a_table():
    from sim import load_profile

    prof = load_profile(None)
    assert show(prof) is prof
    counts = count_operations(np.ones((1, 2, 3), np.uint8), np.zeros((1, 2, 2), np.uint8))
    html = show(counts)._repr_html_()
    assert "input_events" in html and "<td>6.0</td>" in html
    report = estimate_energy(counts)
    assert "energy ratio" in report._repr_html_()
    assert show(3) == 3


def test_text_table_aligns_columns():
    lines = text_table(["name", "v"], [["a", 1.5], ["long name", 10]]).splitlines()
    # first column left-aligned to 9 characters, the rest right-aligned, two spaces apart
    assert lines[0] == "name         v"
    assert lines[1] == "---------  ---"
    assert lines[2] == "a          1.5" and lines[3] == "long name   10"


def test_every_public_name_is_documented():
    module = importlib.import_module("rram_lsm.app.experiments")
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_energy_text_says_what_was_counted_and_on_what_data():
    from rram_lsm.app.experiments.display import energy_text
    from rram_lsm.app.experiments.energy import sum_passes

    x = np.zeros((2, 3, 4), np.uint8)
    x[0, 0, 1] = 1
    s = np.zeros((2, 3, 2), np.uint8)
    one = count_operations(x, s, projection_dim=2)
    reports = {"nmnist": estimate_energy(one), "fsdd": estimate_energy(sum_passes([one, one]))}
    text = energy_text(reports, {"nmnist": {"synthetic": True, "samples": 2},
                                 "fsdd": {"synthetic": False, "samples": 2,
                                          "cochlea_gain_per_s": [875.0, 1750.0]}})
    assert "fsdd (2 drives)" in text and "nmnist (" not in text
    assert "nmnist: 2 samples, SYNTHETIC" in text
    assert "fsdd: 2 samples, real data, cochlea at 2 drives (875, 1750 per s)" in text
    assert "SYNTHETIC" not in energy_text(reports)      # no provenance given: none claimed
