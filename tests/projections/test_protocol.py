import numpy as np
import pytest
import torch

import projections.protocol as protocol
from projections import (METHODS, PairedFeatures, get_method, make_splits, run_protocol,
                         train_heads)
from projections.selection import select_method, validation_view
from rram_lsm.errors import ConfigError

FAST = METHODS["paper"].replace(name="fast", epochs=15)


def test_make_splits():
    assert make_splits() == [((1, 2, 3, 4, 5, 6, 7), (8, 9))]
    every = make_splits("all")
    assert len(every) == 36 and len(set(every)) == 36
    for seen, unseen in every:
        assert len(seen) == 7 and len(unseen) == 2 and not set(seen) & set(unseen)
    ten = make_splits(10, split_seed=3)
    assert len(set(ten)) == 10 and ten == make_splits(10, split_seed=3)
    assert ten != make_splits(10, split_seed=4)
    assert make_splits(None, unseen=(4, 7)) == [((1, 2, 3, 5, 6, 8, 9), (4, 7))]
    with pytest.raises(ConfigError):
        make_splits(37)
    with pytest.raises(ConfigError):
        make_splits(3, seen=(1, 2))
    with pytest.raises(ConfigError, match=r"\[8\] are both seen and unseen"):
        make_splits(None, seen=(1, 2, 8), unseen=(8, 9))


@pytest.mark.parametrize("engine", ["per-run", "batched"])
def test_training_never_sees_unseen_classes_or_test_files(synthetic, monkeypatch, engine):
    import projections.batched as batched

    calls = []
    real, real_batched = protocol.train_heads, batched.train_heads_batched

    def spy(cfg, xi, xa, train_pairs, val_pairs, yi, ya, **kw):
        calls.append((train_pairs, val_pairs))
        return real(cfg, xi, xa, train_pairs, val_pairs, yi, ya, **kw)

    def spy_batched(cfg, xi, xa, jobs, yi, ya, **kw):
        calls.extend((job.train_pairs, job.val_pairs) for job in jobs)
        return real_batched(cfg, xi, xa, jobs, yi, ya, **kw)

    monkeypatch.setattr(protocol, "train_heads", spy)
    monkeypatch.setattr(batched, "train_heads_batched", spy_batched)
    run_protocol(synthetic, FAST, unseen=(3, 8), seeds=2, shots=(2,), episodes=3,
                 progress=False, engine=engine)
    assert len(calls) == 2
    for pairs in calls:
        for ii, ia in pairs:
            for idx, labels, is_test in ((ii, synthetic.image_labels, synthetic.image_is_test),
                                         (ia, synthetic.audio_labels, synthetic.audio_is_test)):
                assert not np.isin(labels[idx], (3, 8)).any()
                assert not is_test[idx].any()


def test_classes_absent_from_the_data_are_rejected(synthetic):
    with pytest.raises(ConfigError, match=r"classes \[10\] have no image samples"):
        run_protocol(synthetic, "raw", seen=(1, 2, 3), unseen=(0, 10), seeds=1, shots=(1,),
                     episodes=1, progress=False)


def test_standardisation_stats_come_from_training_rows_only(synthetic, monkeypatch):
    seen_rows = []
    real = protocol._standardizer

    def spy(values, idx, scale_floor):
        seen_rows.append(np.asarray(idx))
        return real(values, idx, scale_floor)

    monkeypatch.setattr(protocol, "_standardizer", spy)
    run_protocol(synthetic, "raw", unseen=(3, 8), seeds=1, shots=(2,), episodes=2,
                 progress=False)
    assert len(seen_rows) == 2
    for idx, labels, is_test in zip(seen_rows, (synthetic.image_labels, synthetic.audio_labels),
                                    (synthetic.image_is_test, synthetic.audio_is_test)):
        assert len(idx) > 0
        assert not np.isin(labels[idx], (3, 8)).any() and not is_test[idx].any()


def test_train_heads_reads_only_paired_rows(synthetic):
    # poison every row outside the pairs: any read of them would make the weights NaN
    xi = np.full_like(synthetic.image_values, np.nan)
    xa = np.full_like(synthetic.audio_values, np.nan)
    tr = (np.array([0, 1, 40, 41]), np.array([0, 1, 40, 41]))
    va = (np.array([2, 42]), np.array([2, 42]))
    for i in np.r_[tr[0], va[0]]:
        xi[i] = synthetic.image_values[i]
        xa[i] = synthetic.audio_values[i]
    res = train_heads(FAST.replace(standardize=True), xi, xa, tr, va,
                      synthetic.image_labels, synthetic.audio_labels)
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    assert all(torch.isfinite(b).all() for b in res.model.buffers())


def test_training_is_deterministic_and_selects_on_validation(synthetic):
    sp = (np.arange(0, 200, 2), np.arange(0, 200, 2))
    vp = (np.arange(1, 60, 2), np.arange(1, 60, 2))
    a = train_heads(FAST, synthetic.image_values, synthetic.audio_values, sp, vp,
                    synthetic.image_labels, synthetic.audio_labels, seed=5)
    b = train_heads(FAST, synthetic.image_values, synthetic.audio_values, sp, vp,
                    synthetic.image_labels, synthetic.audio_labels, seed=5)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    assert a.curves == b.curves
    assert len(a.curves["val_top1"]) == FAST.epochs
    assert a.curves["val_top1"][a.best_epoch - 1] == max(a.curves["val_top1"])


def test_mismatched_pairs_rejected(synthetic):
    with pytest.raises(ConfigError):
        train_heads(FAST, synthetic.image_values, synthetic.audio_values,
                    (np.array([0, 1]), np.array([0, 200])), (np.array([2]), np.array([2])),
                    synthetic.image_labels, synthetic.audio_labels)


def test_zero_shot_beats_chance_on_shared_structure(synthetic):
    res = run_protocol(synthetic, FAST.replace(epochs=40), seeds=2, progress=False)
    d = res.to_dict()
    for direction in ("audio_to_image", "image_to_audio"):
        assert d["unseen"][direction]["top1"]["mean"] > d["chance"]["unseen"][direction][
            "top1"] + 0.2
        assert d["seen_test"][direction]["top1"]["mean"] > 0.5
    assert d["chance"]["unseen"]["audio_to_image"]["top1"] == pytest.approx(0.5)
    assert d["n_splits"] == 1 and d["n_seeds"] == 2


def test_zero_shot_is_chance_without_shared_structure(make_synthetic):
    # audio clusters are drawn independently of image clusters: seen classes teach nothing
    # about where unseen ones go, so zero-shot must stay near chance on average
    make_features = make_synthetic
    tops = []
    for seed in range(4):
        a = make_features(seed=seed)
        b = make_features(seed=100 + seed)
        data = PairedFeatures(a.image_values, a.image_labels, a.image_is_test,
                              b.audio_values, b.audio_labels, b.audio_is_test)
        res = run_protocol(data, FAST.replace(epochs=5), splits=3, split_seed=seed, seeds=1,
                           progress=False)
        tops.append(res.to_dict()["unseen"]["audio_to_image"]["top1"]["mean"])
    assert abs(np.mean(tops) - 0.5) < 0.15


def test_raw_fewshot_and_result_layout(synthetic):
    res = run_protocol(synthetic, "raw", splits=2, seeds=1, shots=(1, 3), episodes=5,
                       progress=False)
    d = res.to_dict()
    assert "unseen" not in d  # no zero-shot without training
    assert d["fewshot"]["shots"] == 3
    top = d["fewshot"]["unseen"]["audio_to_image"]["top1"]
    assert 0.8 < top["mean"] <= 1.0 and top["n"] == 2
    assert d["chance"]["fewshot"]["3"]["audio_to_image"] == 0.5
    assert len(d["per_split"]) == 2
    assert "<table>" in res._repr_html_()


def test_selection_uses_only_seen_training_files(synthetic):
    view = validation_view(synthetic)
    for m in ("image", "audio"):
        labels = getattr(view, f"{m}_labels")
        assert set(np.unique(labels)) == set(range(1, 8))
        assert 0.1 < getattr(view, f"{m}_is_test").mean() < 0.3
    n_train_seen = np.sum(np.isin(synthetic.image_labels, range(1, 8))
                          & ~synthetic.image_is_test)
    assert len(view.image_labels) == n_train_seen
    best, scores = select_method(synthetic, ["raw", FAST], n_splits=2, seeds=1, shots=2,
                                 progress=False)
    assert best in scores and set(scores) == {"raw", "fast"}
    assert scores["raw"]["zeroshot_top1"] is None


def test_unknown_method():
    with pytest.raises(ConfigError, match="default_round8"):
        get_method("nope")
    with pytest.raises(ConfigError):
        METHODS["paper"].replace(no_such_field=1)


def test_earlier_defaults_run_by_name():
    # round 8's default is what the recorded default_round8_36x3.json ran: the CLI must
    # be able to re-run it by name after the default moved on
    old = get_method("default_round8")
    assert old.name == "default_round8" and old != METHODS["default"]
    assert (old.temperature, old.clip_weight, old.fewshot_whiten) == (0.1, 0.0, 0.7)
    assert old.fewshot_features is None and old.features == METHODS["default"].features


def test_sqrt_transform_values():
    from projections.train import transform_features

    x = np.array([[0.0, 1.0, 4.0, -9.0]], np.float32)
    np.testing.assert_allclose(transform_features(x, "sqrt"), [[0.0, 1.0, 2.0, -3.0]])
    np.testing.assert_array_equal(transform_features(x, "none"), x)
    with pytest.raises(ConfigError):
        transform_features(x, "log")
    with pytest.raises(ConfigError):
        METHODS["default"].replace(feature_transform="log")
    with pytest.raises(ConfigError):
        METHODS["default"].replace(features="membrane")
    with pytest.raises(ConfigError):
        METHODS["default"].replace(ensemble=0)


def test_ensemble_embeddings_average_member_similarities(synthetic):
    one = protocol.evaluate_split(synthetic, range(1, 8), (8, 9), FAST, seed=0,
                                  keep_model=True)
    two = protocol.evaluate_split(synthetic, range(1, 8), (8, 9), FAST.replace(ensemble=2),
                                  seed=0, keep_model=True)
    z1, z2 = one.embeddings["audio"], two.embeddings["audio"]
    assert z2.shape == (z1.shape[0], 2 * z1.shape[1])
    # member 0 is the single model (same seed); the concatenation stays unit length
    np.testing.assert_allclose(z2[:, :z1.shape[1]] * np.sqrt(2), z1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(z2, axis=1), 1.0, atol=1e-5)
    assert two.train_flops == pytest.approx(2 * one.train_flops, rel=0.3)


def test_feature_kind_must_match_method(synthetic):
    tagged = PairedFeatures(synthetic.image_values, synthetic.image_labels,
                            synthetic.image_is_test, synthetic.audio_values,
                            synthetic.audio_labels, synthetic.audio_is_test,
                            {"feature_kind": "windowed"})
    with pytest.raises(ConfigError, match="windowed"):
        protocol.evaluate_split(tagged, range(1, 8), (8, 9), FAST, seed=0)
    out = protocol.evaluate_split(tagged, range(1, 8), (8, 9),
                                  FAST.replace(features="windowed", epochs=2), seed=0)
    assert 0.0 <= out.unseen["audio_to_image"]["top1"] <= 1.0
    # selection over several kinds picks each candidate's own features
    best, scores = select_method({"counts": synthetic, "windowed": tagged},
                                 ["raw", METHODS["raw"].replace(name="raw_w",
                                                                features="windowed")],
                                 n_splits=1, seeds=1, shots=2, progress=False)
    assert set(scores) == {"raw", "raw_w"}
    with pytest.raises(ConfigError, match="counts"):
        select_method({"windowed": tagged}, ["raw"], n_splits=1, seeds=1, shots=2,
                      progress=False)


def test_one_encoding_serves_every_kind_it_contains(synthetic):
    """counts+input data: a counts recipe sees the counts columns only, exactly."""
    n_counts = 12
    blocks = {m: {"counts": [0, n_counts], "input": [n_counts, 20]} for m in ("image", "audio")}
    both = PairedFeatures(synthetic.image_values, synthetic.image_labels,
                          synthetic.image_is_test, synthetic.audio_values,
                          synthetic.audio_labels, synthetic.audio_is_test,
                          {"feature_kind": "counts+input", "feature_blocks": blocks})
    counts = both.select_kind("counts")
    np.testing.assert_array_equal(counts.audio_values, synthetic.audio_values[:, :n_counts])
    assert counts.meta["feature_kind"] == "counts"
    assert both.select_kind("counts+input") is both
    np.testing.assert_array_equal(both.select_kind("input").image_values,
                                  synthetic.image_values[:, n_counts:])
    with pytest.raises(ConfigError, match="lack 'windowed'"):
        both.select_kind("windowed")
    short = {m: {"counts": [0, 12], "input": [12, 18]} for m in ("image", "audio")}
    with pytest.raises(ConfigError, match="do not describe|does not describe"):
        PairedFeatures(*[getattr(both, f) for f in ("image_values", "image_labels",
                                                    "image_is_test", "audio_values",
                                                    "audio_labels", "audio_is_test")],
                       {"feature_kind": "counts+input", "feature_blocks": short}
                       ).select_kind("counts")
    direct = protocol.evaluate_split(
        PairedFeatures(synthetic.image_values[:, :n_counts], synthetic.image_labels,
                       synthetic.image_is_test, synthetic.audio_values[:, :n_counts],
                       synthetic.audio_labels, synthetic.audio_is_test),
        range(1, 8), (8, 9), FAST, seed=0)
    via_blocks = protocol.evaluate_split(both, range(1, 8), (8, 9), FAST, seed=0)
    assert direct.unseen == via_blocks.unseen


def test_a_saved_file_keeps_its_kind_and_blocks(synthetic, tmp_path):
    import dataclasses

    from projections import load_npz, save_npz

    blocks = {m: {"counts": [0, 12], "input": [12, 20]} for m in ("image", "audio")}
    data = dataclasses.replace(synthetic, meta={"feature_kind": "counts+input",
                                                "feature_blocks": blocks})
    save_npz(data, tmp_path / "f.npz")
    back = load_npz(tmp_path / "f.npz")
    assert back.meta["feature_kind"] == "counts+input" and back.meta["feature_blocks"] == blocks
    assert back.select_kind("counts").audio_values.shape[1] == 12
    save_npz(synthetic, tmp_path / "plain.npz")  # no kind recorded: taken as given
    plain = load_npz(tmp_path / "plain.npz")
    assert "feature_kind" not in plain.meta and plain.select_kind("windowed") is plain


def test_selection_never_picks_an_untrained_candidate_over_a_trained_one(synthetic):
    quick = METHODS["paper"].replace(name="quick", epochs=2)
    best, scores = select_method(synthetic, ["raw", quick], n_splits=1, seeds=1, shots=2,
                                 progress=False)
    assert best == "quick" and set(scores) == {"raw", "quick"}
    assert select_method(synthetic, ["raw"], n_splits=1, seeds=1, shots=2,
                         progress=False)[0] == "raw"
