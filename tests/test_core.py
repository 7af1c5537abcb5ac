"""The shared layer: regions, safety checks, settings, backend specs, JSON records, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rram_lsm import (ConfigError, DataNotFoundError, EventFileError, Region, RegionError,
                      SafetyLimitError, SafetyLimits)
from rram_lsm.app.backends import parse_backend
from rram_lsm.app.cli import main
from rram_lsm.macro import check_form_request, check_program_request, check_region
from rram_lsm.records import get_path, read_record, write_record
from rram_lsm.app.settings import resolve_data_dir


def test_region_accepts_tuples_and_numpy_ints_and_rejects_fractions():
    assert Region.of((1, 2, np.int64(3), 4)) == Region(1, 2, 3, 4)
    assert Region(1, 2, 3, 4).slices == (slice(1, 4), slice(2, 6))
    for bad in [(0.5, 0, 2, 2), (0, 0, 2), "abcd", None]:
        with pytest.raises(RegionError):
            Region.of(bad)


@pytest.mark.parametrize("region", [(-1, 0, 2, 2), (0, 0, 0, 2), (511, 0, 2, 2), (0, 500, 1, 13)])
def test_check_region_rejects_outside_or_empty(region):
    with pytest.raises(RegionError, match="outside|no cells"):
        check_region(region, 512, 512)


def test_check_region_accepts_the_corner_tile():
    assert check_region((500, 500, 12, 12), 512, 512).shape == (12, 12)


def test_safety_checks_name_the_limit():
    limits = SafetyLimits(max_form_voltage_v=5.0, max_compliance_ua=500.0)
    check_form_request(limits, 3.6, 1e-6, 100.0)
    with pytest.raises(SafetyLimitError, match="5 V"):
        check_form_request(limits, 5.5, 1e-6, 100.0)
    with pytest.raises(SafetyLimitError, match="compliance"):
        check_form_request(limits, 3.6, 1e-6, 0.0)
    with pytest.raises(SafetyLimitError, match="pulse width"):
        check_form_request(limits, 3.6, 1.0, 100.0)
    with pytest.raises(SafetyLimitError):
        check_program_request(limits, float("nan"), 1e-6)


def test_event_file_error_names_file_and_offset():
    err = EventFileError("truncated record", path="a.bin", offset=15)
    assert str(err) == "a.bin at byte 15: truncated record"
    assert isinstance(err, ValueError) and err.offset == 15


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    assert resolve_data_dir(None) is None
    monkeypatch.setenv("RRAM_LSM_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path.resolve()
    with pytest.raises(DataNotFoundError, match="garrickorchard"):
        resolve_data_dir(tmp_path / "missing")


def test_backend_specs():
    assert parse_backend("sim") == ("sim", None)
    assert parse_backend("serial:socket://localhost:7000") == ("serial", "socket://localhost:7000")
    for bad in ["serial:", "gpu", "simulator"]:
        with pytest.raises(ConfigError):
            parse_backend(bad)


def test_write_record_is_atomic_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    rec = write_record(path, {"lsm": {"acc": np.float32(0.5)}, "a": np.arange(3)},
                       command="x", config={"p": tmp_path}, seeds=[0, 1])
    assert read_record(path)["lsm"]["acc"] == 0.5 and rec["seeds"] == [0, 1]
    assert get_path(read_record(path), "lsm.acc") == 0.5
    assert read_record(path)["environment"]["packages"]["numpy"] == np.__version__
    with pytest.raises(TypeError):
        write_record(path, {"bad": object()}, command="x")
    assert read_record(path)["a"] == [0, 1, 2]  # the earlier result survived
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind
    with pytest.raises(KeyError, match="nope"):
        get_path(read_record(path), "lsm.nope")


def test_written_records_take_the_umask_or_keep_the_replaced_files_mode(tmp_path):
    import os
    import stat

    from rram_lsm import records

    path = tmp_path / "r.json"
    write_record(path, {"a": 1}, command="x")
    # what open() would give, not mkstemp's 0600 (the umask is read once, at import)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~records._UMASK != 0o600
    path.chmod(0o640)
    write_record(path, {"a": 2}, command="x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and read_record(path)["a"] == 2
    assert os.umask(records._UMASK) == records._UMASK   # left as it was


def test_cache_directory_that_cannot_be_one_is_a_typed_error(tmp_path, monkeypatch, capsys):
    from rram_lsm.app.settings import cache_dir
    from rram_lsm.errors import OutputError

    (tmp_path / "f").write_text("")
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "f"))
    with pytest.raises(OutputError, match="is a file"):
        cache_dir()
    assert main(["encode", "--dataset", "nmnist"]) == 1
    assert "RRAM_LSM_CACHE" in capsys.readouterr().err


def test_negative_seeds_are_refused_by_the_parser(capsys):
    for argv in (["zeroshot", "--seed", "-1"], ["zeroshot", "--split-seed", "-1"],
                 ["demo", "--seed", "-1"], ["sweep", "--data-seed", "-1"],
                 ["energy", "--seed", "-1"], ["chip", "inspect", "--seed", "-2"],
                 ["classify", "--chip-seed", "-3"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert "a seed is an integer >= 0" in capsys.readouterr().err, argv


def test_cli_reports_typed_errors_without_traceback(capsys, tmp_path):
    code = main(["data", "info", "--data-dir", str(tmp_path / "missing")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("rram-lsm: error:") and "Traceback" not in err


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: rram-lsm" in capsys.readouterr().out


def test_forming_sweep_stops_at_the_target_and_names_the_limit():
    from rram_lsm.macro import form_to_sparsity
    from sim import SimMacro

    chip = SimMacro(seed=1)
    voltage, result = form_to_sparsity(chip, (0, 0, 64, 64), 0.5)
    assert 1.0 - result.formed.mean() <= 0.5
    # one step lower would not have reached the target (the sweep stops at the first voltage)
    lower = SimMacro(seed=1).form((0, 0, 64, 64), round(voltage - 0.05, 6), 1e-6, 100.0)
    assert 1.0 - lower.formed.mean() > 0.5
    import dataclasses

    from sim import macro40nm

    hard = dataclasses.replace(
        macro40nm, forming=dataclasses.replace(macro40nm.forming, breakdown_mean_v=4.9))
    with pytest.raises(SafetyLimitError, match=r"limit of 5 V with 0\.[0-9]+ of the region"):
        form_to_sparsity(SimMacro(seed=2, profile=hard), (0, 0, 32, 32), 0.1)
    with pytest.raises(SafetyLimitError, match="starts at 6 V"):
        form_to_sparsity(SimMacro(seed=2), (0, 0, 8, 8), 0.5, v_start=6.0)
