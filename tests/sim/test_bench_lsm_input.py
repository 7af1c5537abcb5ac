"""``bench lsm`` says whether its rasters are real or synthetic (header and JSON)."""
from __future__ import annotations

import pytest

from rram_lsm.app.bench import bench_lsm


def test_without_a_data_directory_the_rasters_are_synthetic_and_said_so(monkeypatch):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    rasters, synthetic, data_dir = bench_lsm._rasters(None, 5)
    assert synthetic and data_dir is None and rasters.shape == (5, 50, 256)
    header = bench_lsm._header(synthetic, data_dir, rasters)
    assert "SYNTHETIC" in header and "NOT real N-MNIST" in header


def test_the_environment_names_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("RRAM_LSM_DATA", str(tmp_path / "missing"))
    with pytest.raises(Exception, match="does not exist"):
        bench_lsm._rasters(None, 2)  # a named directory is never silently replaced


def test_real_rasters_are_labelled_real():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not (root / "nmnist_small").is_dir() and not (root / "nmnist").is_dir():
        pytest.skip("no shared N-MNIST data next to the checkout")
    rasters, synthetic, data_dir = bench_lsm._rasters(str(root), 3)
    assert not synthetic and data_dir == str(root.resolve())
    assert bench_lsm._header(synthetic, data_dir, rasters).startswith("bench lsm: REAL")
