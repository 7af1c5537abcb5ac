"""``rram-lsm bench zeroshot``: the keys it writes and the engines' equality (tiny settings)."""
from __future__ import annotations

import json

from rram_lsm.app.cli import main


def test_bench_zeroshot_on_synthetic_features(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"
    assert main(["bench", "zeroshot", "--epochs", "2", "--protocols", "2", "--seeds", "2",
                 "--per-run-runs", "3", "--episodes", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC features" in printed
    assert "(chance 0.50 for both)" in printed
    rec = json.loads(out.read_text())
    assert rec["input"] == "synthetic" and rec["command"] == "bench zeroshot"
    assert rec["per_run"]["runs"] == 3
    row = rec["batched"]["2x2"]
    for key in ("runs", "wall_s", "cpu_s", "runs_per_s", "s_per_run", "cpu_s_per_run",
                "train_gflop", "gflop_per_s", "speedup", "cpu_speedup", "metrics"):
        assert key in row
    assert row["runs"] == 4 and row["train_gflop"] > 0
    assert rec["equality"] == {"compared_runs": 3, "identical": True, "max_abs_diff": 0.0}
    assert rec["targets"] == {}  # the goals are for 10 x 3 and 36 x 3
