"""Bad files and bad output paths on the command line: one typed line, no traceback (issue 15).

Typed errors exit with the CLI's code for them (1; argparse's usage errors exit 2).
"""
from __future__ import annotations

import json
import os

import pytest

from rram_lsm.app.cli import main
from rram_lsm.errors import OutputError, RecordError
from rram_lsm.records import read_record

ERROR_EXIT = 1


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("rram-lsm: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("content, match", [
    (bytes(range(256)) * 4, "not UTF-8 text"),            # was UnicodeDecodeError
    (b'{"command": "chip inspect", ', "not a JSON record"),  # was JSONDecodeError
    (b"[1, 2]", "not an object"),
    (b'{"a": 1}', "not a result record"),
])
def test_rerun_of_something_that_is_not_a_record(tmp_path, capsys, content, match):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    assert main(["rerun", str(path)]) == ERROR_EXIT
    assert match in _one_error_line(capsys)


def test_read_record_errors_are_typed_and_name_the_file(tmp_path):
    with pytest.raises(RecordError) as err:
        read_record(tmp_path / "missing.json")
    assert err.value.path == tmp_path / "missing.json" and isinstance(err.value, ValueError)
    with pytest.raises(RecordError, match="directory"):
        read_record(tmp_path)


def test_demo_out_in_a_place_that_cannot_be_created(tmp_path, capsys):
    """``demo --out /proc/forbidden`` used to fail with FileNotFoundError (after the
    imports; now before any work: the options are checked in the command)."""
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    targets = [blocker / "below"]
    if os.path.isdir("/proc/self"):
        targets.append("/proc/forbidden")
    for target in targets:
        assert main(["demo", "--quick", "--no-progress", "--out", str(target)]) == ERROR_EXIT
        line = _one_error_line(capsys)
        assert "--out" in line and str(target) in line


def test_demo_out_naming_an_existing_file(tmp_path, capsys, monkeypatch):
    """Used to be FileExistsError; checked before the demo starts encoding."""
    import rram_lsm.app.experiments.demo as demo

    def must_not_run(*a, **k):
        raise AssertionError("the demo ran although --out is unusable")

    monkeypatch.setattr(demo, "run_demo", must_not_run)
    out = tmp_path / "results.txt"
    out.write_text("earlier results")
    assert main(["demo", "--quick", "--no-progress", "--out", str(out)]) == ERROR_EXIT
    assert "names a file, not a directory" in _one_error_line(capsys)
    assert out.read_text() == "earlier results"


def test_json_output_is_checked_before_the_work(tmp_path, capsys):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    for target, match in ((tmp_path, "names a directory"),
                          (blocker / "x.json", "is a file, so nothing can be written")):
        assert main(["chip", "inspect", "--region", "0,0,8,8", "--json", str(target)]) \
            == ERROR_EXIT
        out = capsys.readouterr()
        assert "formed at" not in out.out  # the command never started
        assert "Traceback" not in out.err and match in out.err


def test_output_error_is_an_os_error_with_a_readable_message(tmp_path):
    from rram_lsm.records import write_record

    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError) as err:
        write_record(tmp_path / "f" / "r.json", {"a": 1}, command="x")
    assert isinstance(err.value, OSError) and str(err.value).startswith(str(tmp_path))


def test_rerun_output_directory_blocked_by_a_file(tmp_path, capsys):
    rec = tmp_path / "fit.json"
    rec.write_text(json.dumps({"command": "chip fit", "config": {"out": "profile.json"}}))
    (tmp_path / "rerun").write_text("not a directory")
    assert main(["rerun", str(rec)]) == ERROR_EXIT
    assert "rerun" in _one_error_line(capsys)


def test_plot_names_are_checked_before_the_work(tmp_path, capsys):
    """A --plot without a figure suffix (matplotlib would write NAME.png and the CLI
    report NAME) or naming a directory is refused first; a missing folder is created."""
    for bad, match in ((tmp_path / "fig.xyz", "needs a figure file name"),
                       (tmp_path / "fig", "needs a figure file name"),
                       (tmp_path, "names a directory")):
        assert main(["chip", "inspect", "--plot", str(bad)]) == ERROR_EXIT
        assert match in _one_error_line(capsys)
    target = tmp_path / "new" / "fig.png"
    assert main(["chip", "inspect", "--plot", str(target)]) == 0
    assert target.stat().st_size > 0 and str(target) in capsys.readouterr().out
