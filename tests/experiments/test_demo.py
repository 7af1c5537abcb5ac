"""The demo on synthetic data: results.json with the zeroshot keys, provenance and figures."""
from __future__ import annotations

import json

import pytest

from rram_lsm.app.cli import main
from rram_lsm.records import get_path

FIGURES = ("reservoir_raster.png", "conductance_histogram.png", "embedding_map.png",
           "similarity_matrix.png", "accuracy_table.png", "energy.png")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    import contextlib
    import io

    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        code = main(["demo", "--quick", "--out", str(out), "--no-progress"])
    return code, out, buf.getvalue(), err.getvalue()


def test_demo_quick_on_synthetic_data_writes_the_record(demo_run):
    code, out, stdout, stderr = demo_run
    assert code == 0
    assert "SYNTHETIC" in stderr and "SYNTHETIC" in stdout
    rec = json.loads((out / "results.json").read_text())
    for key in ("unseen.audio_to_image.top1.mean", "unseen.image_to_audio.top1.mean",
                "seen_test.audio_to_image.top1.mean", "seen_test.image_to_audio.top1.ci95",
                "fewshot.unseen.audio_to_image.top1.mean", "chance.unseen.audio_to_image.top1",
                "baselines.protonet.unseen.audio_to_image.top1.mean",
                "energy.nmnist.energy_ratio", "energy.fsdd.rram.energy_j",
                "chip.nmnist.forming_voltage_v", "data.image.fingerprint",
                "environment.packages.numpy", "environment.git_revision"):
        get_path(rec, key)
    for key in ("unseen.audio_to_image.top1.mean", "fewshot.unseen.audio_to_image.top1.mean"):
        assert 0.0 <= get_path(rec, key) <= 1.0
    assert get_path(rec, "chance.unseen.audio_to_image.top1") == pytest.approx(0.5)
    assert rec["command"] == "demo" and rec["config"]["quick"] is True
    assert rec["data"]["image"]["synthetic"] is True and rec["data"]["data_dir"] is None
    assert rec["seeds"]["chip_seed"] == 0
    # Every chip operation was counted: energy of the co-design is below the dense digital.
    assert rec["energy"]["nmnist"]["energy_ratio"] > 1.0
    assert 0.3 < rec["chip"]["nmnist"]["unformed_fraction"] <= 0.5


def test_demo_writes_every_figure(demo_run):
    _, out, stdout, _ = demo_run
    for name in FIGURES:
        path = out / name
        assert path.stat().st_size > 15_000, name
        assert name in stdout
    assert "zero-shot unseen 8-9 audio->image" in stdout and "energy ratio" in stdout


def test_demo_record_reruns_equal_whether_the_feature_cache_hits_or_not(demo_run, capsys):
    """The examples (figures, energy) run on a fresh copy of the virtual chip: a cache miss
    consumes the tiles' read-noise streams in the encode, a hit does not, and the record
    must not depend on it. The test's own cache is empty: the first rerun misses, the
    second hits."""
    _, out, _, _ = demo_run
    for attempt in ("miss", "hit"):
        code = main(["rerun", str(out / "results.json"), "--check",
                     "--json", str(out / f"rerun_{attempt}.json"),
                     "--out", str(out / f"rerun_{attempt}")])
        assert code == 0, (attempt, capsys.readouterr().err[-2000:])
