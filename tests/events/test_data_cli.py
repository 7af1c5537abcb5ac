"""``rram-lsm data info``: the numbers on the shared data and the synthetic fallback."""
from __future__ import annotations

from rram_lsm.app.cli import main
from rram_lsm.records import get_path, read_record


def test_data_info_on_shared_data(shared_data_dir, tmp_path, capsys):
    out = tmp_path / "info.json"
    assert main(["data", "info", "--data-dir", str(shared_data_dir), "--json", str(out),
                 "--no-progress"]) == 0
    rec = read_record(out)
    assert get_path(rec, "nmnist.train.per_class") == [97, 116, 99, 93, 105, 92, 94, 117,
                                                       87, 100]
    assert get_path(rec, "nmnist.test.per_class") == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    assert get_path(rec, "fsdd.train.per_class") == [270] * 10
    assert get_path(rec, "fsdd.test.per_class") == [30] * 10
    assert get_path(rec, "totals.per_dataset") == {"nmnist": 1100, "fsdd": 3000}
    assert rec["nmnist"]["synthetic"] is False and rec["fsdd"]["synthetic"] is False
    assert get_path(rec, "nmnist.events") == {"min": 1069, "mean": rec["nmnist"]["events"]
                                              ["mean"], "max": 7152}
    assert rec["ntidigits"]["available"] is False
    ref = rec["reference_recording"]
    assert ref["events"] == 898 and ref["active_channels"] == 44
    per_utterance = rec["fsdd"]["events"]["mean"]  # the calibration target (per file)
    assert ref["events"] / 1.5 < per_utterance < ref["events"] * 1.5
    text = capsys.readouterr().out
    assert "nmnist (real" in text and "1000" in text and "2700" in text


def test_data_info_without_data_dir_is_synthetic(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    out = tmp_path / "info.json"
    assert main(["data", "info", "--json", str(out), "--no-progress"]) == 0
    rec = read_record(out)
    assert rec["nmnist"]["synthetic"] is True and rec["fsdd"]["synthetic"] is True
    assert get_path(rec, "nmnist.train.per_class") == [40] * 10
    captured = capsys.readouterr()
    assert "SYNTHETIC" in captured.out and "download" in captured.err


def test_missing_data_dir_is_an_error_with_sources(tmp_path, capsys):
    assert main(["data", "info", "--data-dir", str(tmp_path / "none")]) == 1
    assert "download" in capsys.readouterr().err


def test_partial_data_dir_falls_back_per_dataset(tmp_path, capsys):
    assert main(["data", "info", "--data-dir", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "using synthetic data instead" in text and "SYNTHETIC" in text


def test_bench_loading_on_a_small_directory(tmp_path):
    from .test_datasets import make_nmnist

    make_nmnist(tmp_path / "data", n_train=2, n_test=1, classes=(0, 1, 2))
    out = tmp_path / "bench.json"
    assert main(["bench", "loading", "--data-dir", str(tmp_path / "data"), "--repeats", "1",
                 "--skip-fsdd", "--json", str(out)]) == 0
    rec = read_record(out)
    assert get_path(rec, "nmnist.files") == 9 and rec["nmnist"]["synthetic_files"] is False
    assert get_path(rec, "nmnist.raster_shape") == [9, 50, 256]
    assert get_path(rec, "nmnist.seconds_per_1000") > 0 and "fsdd_cochlea" not in rec


def test_data_dir_naming_a_file_says_it_is_not_a_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["data", "info", "--data-dir", str(tmp_path / "notes.txt")]) == 1
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and "does not exist" not in err
    assert "Traceback" not in err


def test_empty_train_split_stops_encode(tmp_path, capsys):
    """Issue 15: encode used to encode the test files alone and exit 0."""
    from .test_datasets import make_nmnist

    root = make_nmnist(tmp_path / "data", n_train=1, n_test=1, classes=(0, 1))
    for f in (root / "nmnist_small" / "Train").rglob("*.bin"):
        f.unlink()
    assert main(["encode", "--dataset", "nmnist", "--data-dir", str(root), "--no-cache",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "N-MNIST Train split is empty" in err and "Traceback" not in err
