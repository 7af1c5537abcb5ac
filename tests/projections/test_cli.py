import json

import pytest

from projections import save_npz
from rram_lsm.app.cli import main


@pytest.fixture
def feature_file(synthetic, tmp_path):
    path = tmp_path / "features.npz"
    save_npz(synthetic, path)
    return path


@pytest.fixture
def kinded_file(kinded, tmp_path):
    """Features with a kind record, as ``rram-lsm encode`` writes them: the default reads
    counts+input for its heads and counts+input_span for few-shot."""
    path = tmp_path / "kinded.npz"
    save_npz(kinded, path)
    return path


def test_zeroshot_cli_writes_the_keys(feature_file, tmp_path, capsys):
    out = tmp_path / "zs.json"
    rc = main(["zeroshot", "--features", str(feature_file), "--method", "paper",
               "--splits", "2", "--seeds", "2", "--shots", "1", "3", "--episodes", "4",
               "--epochs", "12",
               "--no-progress", "--plots", str(tmp_path / "figs"), "--json", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    for key in ("unseen", "seen_test"):
        for d in ("audio_to_image", "image_to_audio"):
            s = rec[key][d]["top1"]
            assert 0.0 <= s["mean"] <= 1.0 and s["std"] >= 0 and len(s["ci95"]) == 2
            assert s["ci95"][0] <= s["mean"] <= s["ci95"][1]
            assert s["n"] == 4
    few = rec["fewshot"]["unseen"]["audio_to_image"]["top1"]
    assert rec["fewshot"]["shots"] == 3 and 0.0 <= few["mean"] <= 1.0
    assert "1" in rec["fewshot_by_shots"]
    assert rec["chance"]["unseen"]["audio_to_image"]["top1"] == pytest.approx(0.5)
    assert rec["n_splits"] == 2 and len(rec["per_split"]) == 2
    assert rec["seeds"] == [0, 1] and rec["command"] == "zeroshot"
    assert rec["config"]["method_config"]["temperature"] == 1.0
    assert rec["config"]["method_config"]["epochs"] == 12
    assert "packages" in rec["environment"]
    names = {p.rsplit("/", 1)[-1] for p in rec["figures"]}
    assert {"zeroshot_embedding.png", "zeroshot_similarity.png",
            "zeroshot_confusion_unseen.png", "zeroshot_learning_curves.png",
            "zeroshot_per_split.png"} <= names
    assert "unseen.audio_to_image.top1" in capsys.readouterr().out


def test_zeroshot_cli_rejects_bad_requests(feature_file, tmp_path, capsys):
    assert main(["zeroshot", "--features", str(feature_file), "--method", "raw",
                 "--no-progress"]) == 1
    assert "--shots" in capsys.readouterr().err
    assert main(["zeroshot", "--features", str(tmp_path / "missing.npz"),
                 "--no-progress"]) == 1
    with pytest.raises(SystemExit):
        main(["zeroshot", "--features", str(feature_file), "--splits", "many"])
    # checked before any features are loaded: the missing file is never reached
    assert main(["zeroshot", "--features", str(tmp_path / "missing.npz"), "--seen", "1",
                 "2", "8", "--unseen", "8", "9", "--no-progress"]) == 1
    assert "[8] are both seen and unseen" in capsys.readouterr().err


def test_zeroshot_select_scores_candidates(feature_file, tmp_path, monkeypatch, capsys):
    import projections
    import projections.recipes as recipes
    from projections import METHODS

    cheap = [METHODS["raw"], METHODS["paper"].replace(name="quick", epochs=3)]
    monkeypatch.setattr(recipes, "candidates", lambda: cheap)
    out = tmp_path / "sel.json"
    assert main(["zeroshot", "--features", str(feature_file), "--select", "--splits", "2",
                 "--seeds", "1", "--shots", "2", "--no-progress", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert set(rec["selection"]) == {"raw", "quick"} and rec["best"] in rec["selection"]
    assert "best on seen-class validation" in capsys.readouterr().out
    # --splits all: every pseudo split of the seen classes, not a silent 6
    asked = {}
    real = projections.select_method

    def spy(*a, **kw):
        asked.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(projections, "select_method", spy)
    assert main(["zeroshot", "--features", str(feature_file), "--select", "--splits", "all",
                 "--seen", "1", "2", "3", "--seeds", "1", "--shots", "2", "--no-progress",
                 "--json", str(out)]) == 0
    assert asked["n_splits"] == "all"


def test_zeroshot_feature_kind_input_runs_without_the_reservoir(tmp_path, monkeypatch):
    """The ablation: the same protocol on the reservoir's input rates (synthetic data)."""
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    out = tmp_path / "zs.json"
    assert main(["zeroshot", "--method", "raw", "--feature-kind", "input", "--splits", "1",
                 "--seeds", "1", "--shots", "1", "--episodes", "2", "--no-progress",
                 "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["config"]["method_config"]["features"] == "input"
    assert 0.0 <= rec["fewshot"]["unseen"]["audio_to_image"]["top1"]["mean"] <= 1.0
    with pytest.raises(SystemExit):
        main(["zeroshot", "--method", "raw", "--feature-kind", "pixels", "--shots", "1"])


def test_zeroshot_fewshot_kind_changes_only_the_few_shot_features(tmp_path, monkeypatch,
                                                                 capsys):
    """--fewshot-kind: the heads keep the recipe's features, the few-shot metric reads the
    given kind (here the input's envelope in windows of the active span)."""
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    out = tmp_path / "zs.json"
    assert main(["zeroshot", "--fewshot-kind", "counts+input_span", "--fewshot-transform",
                 "sqrt", "--fewshot-whiten", "0.9", "--epochs", "2", "--splits", "1",
                 "--seeds", "1", "--shots", "1", "--episodes", "2", "--no-progress",
                 "--json", str(out)]) == 0
    cfg = json.loads(out.read_text())["config"]["method_config"]
    assert cfg["features"] == "counts+input" and cfg["fewshot_features"] == "counts+input_span"
    assert cfg["fewshot_transform"] == "sqrt" and cfg["fewshot_whiten"] == 0.9
    assert main(["zeroshot", "--fewshot-kind", "input_span", "--select", "--shots", "1",
                 "--no-progress"]) == 1
    assert "override one recipe" in capsys.readouterr().err
    assert main(["zeroshot", "--fewshot-whiten", "0.5", "--no-progress"]) == 1
    assert "add --shots K" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["zeroshot", "--fewshot-whiten", "1.5"])


def test_zeroshot_fewshot_em_turns_the_episode_mixture_on_and_off(tmp_path, monkeypatch):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    out = tmp_path / "zs.json"
    args = ["zeroshot", "--epochs", "1", "--splits", "1", "--seeds", "1", "--shots", "2",
            "--episodes", "2", "--no-progress", "--json", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["config"]["method_config"]["fewshot_em_steps"] == 10
    assert main(args + ["--fewshot-em", "0"]) == 0
    assert json.loads(out.read_text())["config"]["method_config"]["fewshot_em_steps"] == 0
    with pytest.raises(SystemExit):
        main(["zeroshot", "--fewshot-em", "-1"])


def test_zeroshot_fewshot_speakers_sets_or_drops_the_centring(tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    out = tmp_path / "zs.json"
    args = ["zeroshot", "--epochs", "1", "--splits", "1", "--seeds", "1", "--shots", "2",
            "--episodes", "2", "--no-progress", "--json", str(out)]
    for given, recorded in ((None, 0.2), ("0.5", 0.5), ("None", None)):
        assert main(args + (["--fewshot-speakers", given] if given else [])) == 0
        rec = json.loads(out.read_text())
        assert rec["config"]["method_config"]["fewshot_speaker_centring"] == recorded
        assert rec["data"]["n_audio_speakers"] == 1         # synthetic audio: one speaker
        said = capsys.readouterr().out
        assert ("centring: off (the recipe's" if recorded is None else
                "centring: off: the data name no speakers") in said
    for bad in ("0", "1.5", "many"):
        with pytest.raises(SystemExit):
            main(["zeroshot", "--fewshot-speakers", bad])
        assert "a number in (0, 1] or 'none'" in capsys.readouterr().err


def test_zeroshot_scale_floor_reaches_the_recipe(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    out = tmp_path / "zs.json"
    args = ["zeroshot", "--epochs", "1", "--splits", "1", "--seeds", "1", "--shots", "2",
            "--episodes", "2", "--no-progress", "--json", str(out)]
    assert main(args + ["--scale-floor", "0.2"]) == 0
    assert json.loads(out.read_text())["config"]["method_config"]["scale_floor"] == 0.2
    assert main(["zeroshot", "--scale-floor", "0.2", "--select", "--no-progress"]) == 1
    assert "--scale-floor overrides one recipe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["zeroshot", "--scale-floor", "1"])


def test_cli_feature_kinds_match_the_recipes():
    from projections.train import FEATURE_KINDS
    from rram_lsm.app.commands import zeroshot

    assert zeroshot.FEATURE_KINDS == FEATURE_KINDS


def test_select_on_a_file_scores_the_candidates_it_can_serve(synthetic, tmp_path,
                                                             monkeypatch, capsys):
    """A counts+input file (recorded blocks) serves counts, input and both; not windowed."""
    import dataclasses

    import projections.recipes as recipes
    from projections import METHODS

    blocks = {m: {"counts": [0, 12], "input": [12, 20]} for m in ("image", "audio")}
    data = dataclasses.replace(synthetic, meta={"feature_kind": "counts+input",
                                                "feature_blocks": blocks})
    path = tmp_path / "both.npz"
    save_npz(data, path)
    raw = METHODS["raw"]
    cands = [raw, raw.replace(name="raw_input", features="input"),
             raw.replace(name="raw_windowed", features="windowed")]
    monkeypatch.setattr(recipes, "candidates", lambda: cands)
    out = tmp_path / "sel.json"
    assert main(["zeroshot", "--features", str(path), "--select", "--splits", "1",
                 "--seeds", "1", "--shots", "2", "--episodes", "2", "--no-progress",
                 "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())["selection"]) == {"raw", "raw_input"}
    assert "1 candidate(s) need features this file does not hold" in capsys.readouterr().out
    assert main(["zeroshot", "--features", str(path), "--select", "--feature-kind",
                 "input", "--no-progress"]) == 1


def test_cli_engines_match_the_library():
    from projections import ENGINES
    from rram_lsm.app.commands import zeroshot  # noqa: F401 (the choices live in register)
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    zeroshot.register(sub)
    action = next(a for a in sub.choices["zeroshot"]._actions if a.dest == "engine")
    assert tuple(action.choices) == ENGINES and action.default == "auto"


def test_zeroshot_engines_write_the_same_metrics(kinded_file, tmp_path):
    """``--engine per-run`` forces the reference loop; the default batched engine writes the
    same metrics (and says which engine ran)."""
    recs = {}
    for engine in ("per-run", "auto"):
        out = tmp_path / f"{engine}.json"
        assert main(["zeroshot", "--features", str(kinded_file), "--splits", "2",
                     "--seeds", "2", "--shots", "2", "--episodes", "3", "--epochs", "4",
                     "--engine", engine, "--workers", "2", "--no-progress",
                     "--json", str(out)]) == 0
        recs[engine] = json.loads(out.read_text())
    assert recs["per-run"]["engine"] == "per-run" and recs["auto"]["engine"] == "batched"
    for key in ("unseen", "seen_test", "fewshot", "fewshot_by_shots", "chance", "per_split"):
        assert recs["per-run"][key] == recs["auto"][key]
    assert recs["per-run"]["training"]["best_epoch"] == recs["auto"]["training"]["best_epoch"]


def test_zeroshot_patience_overrides_the_recipes_early_stop(kinded_file, tmp_path, capsys):
    """``--patience none`` trains every epoch; a short patience stops the heads early
    (less training work), and the record says which was run."""
    recs = {}
    for patience in ("none", "1"):
        out = tmp_path / f"p{patience}.json"
        assert main(["zeroshot", "--features", str(kinded_file), "--splits", "1",
                     "--seeds", "2", "--shots", "2", "--episodes", "2", "--epochs", "40",
                     "--patience", patience, "--no-progress", "--json", str(out)]) == 0
        recs[patience] = json.loads(out.read_text())
    assert recs["none"]["config"]["method_config"]["patience"] is None
    assert recs["1"]["config"]["method_config"]["patience"] == 1
    assert recs["1"]["training"]["flops"]["mean"] < recs["none"]["training"]["flops"]["mean"]
    with pytest.raises(SystemExit):
        main(["zeroshot", "--features", str(kinded_file), "--patience", "0"])
    assert "a number of epochs >= 1 or none" in capsys.readouterr().err
