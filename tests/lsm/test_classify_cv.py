"""``rram-lsm classify --cv``: stratified seeded folds, the ridge readout, inner-validation
choices, intervals, and the command on small files in the real N-MNIST format."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lsm.features import spike_features
from rram_lsm.app.cli import main
from rram_lsm.app.experiments.classify import (_ridge_predict, _standardised_gram,
                                               accuracy_interval, counts_from_windowed,
                                               cv_scores, paired_difference, stratified_folds)
from rram_lsm.errors import ConfigError

from .conftest import write_nmnist_tree


def test_folds_are_stratified_seeded_and_even():
    labels = np.repeat(np.arange(4), [10, 11, 12, 7])
    f = stratified_folds(labels, 5, seed=0)
    assert f.min() == 0 and f.max() == 4
    for c in range(4):  # each class spread over the folds to within one sample
        counts = np.bincount(f[labels == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    sizes = np.bincount(f)
    assert sizes.max() - sizes.min() <= 1
    np.testing.assert_array_equal(f, stratified_folds(labels, 5, seed=0))
    assert not np.array_equal(f, stratified_folds(labels, 5, seed=1))
    with pytest.raises(ConfigError, match="at least 8 samples"):
        stratified_folds(labels, 8, seed=0)
    with pytest.raises(ConfigError, match="k >= 2"):
        stratified_folds(labels, 1, seed=0)


def test_ridge_separates_separable_classes_and_ignores_noise_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    centres = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    x = np.concatenate([centres[y] + rng.normal(0, 0.5, (90, 2)),
                        rng.normal(0, 1, (90, 5)), np.ones((90, 1))], axis=1)  # + constant
    fit, evals = np.arange(0, 90, 2), np.arange(1, 90, 2)
    assert np.isfinite(_standardised_gram(x, fit)).all()  # the constant column is dropped
    pred = _ridge_predict(x, y, fit, evals, 3, [1e-3, 1.0])
    assert (pred[0] == y[evals]).mean() == 1.0
    # a huge penalty leaves only the intercept: the fit set's majority class everywhere
    fit = np.r_[np.flatnonzero(y == 2), np.flatnonzero(y != 2)[::3]]
    flat = _ridge_predict(x, y, fit, evals, 3, [1e9])[0]
    assert set(flat) == {2}


@pytest.mark.parametrize("width", [3, 40])  # primal (F < rows) and dual (F >= rows)
def test_leave_one_out_accuracy_is_exact(width):
    """The closed-form leave-one-out equals refitting without each row in turn (the
    standardisation fixed on all fit rows, as in the closed form)."""
    from rram_lsm.app.experiments.classify import _Ridge, _standardised

    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 10)
    x = rng.normal(0, 1, (30, width)) + 0.8 * np.eye(3)[y].repeat(width, axis=1)[:, :width]
    fit = np.arange(30)
    model = _Ridge(x, y, fit, fit, 3)
    z = np.concatenate(list(_standardised(x, fit)), axis=1).astype(np.float64)
    for lam in (0.01, 1.0):
        hits = []
        for i in range(30):
            keep = np.delete(fit, i)
            a = np.c_[z[keep], np.ones(29)]
            t = np.eye(3)[y[keep]]
            reg = lam * model.scale * np.eye(a.shape[1])
            reg[-1, -1] = 0.0  # the intercept is not penalised
            coef = np.linalg.lstsq(a.T @ a + reg, a.T @ t, rcond=None)[0]
            hits.append(int((np.r_[z[i], 1.0] @ coef).argmax() == y[i]))
        assert model.loo_accuracy(lam) == pytest.approx(np.mean(hits), abs=1e-12)


def test_cv_scores_pick_the_informative_candidate_by_inner_validation():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 25)
    good = np.eye(4)[y] * 3 + rng.normal(0, 0.5, (100, 4))
    bad = rng.normal(0, 1, (100, 4))
    folds = stratified_folds(y, 5, seed=0)
    out = cv_scores({"good": good, "bad": bad}, y, folds,
                    families={"any": ["bad", "good"], "bad_only": ["bad"]}, progress=False)
    assert out["families"]["any"]["picks"] == ["good"] * 5
    assert out["candidates"]["good"]["correct"].mean() > 0.95
    assert out["candidates"]["bad"]["correct"].mean() < 0.5
    np.testing.assert_array_equal(out["families"]["any"]["correct"],
                                  out["candidates"]["good"]["correct"])
    assert len(out["candidates"]["good"]["fold_accuracy"]) == 5


def test_intervals():
    half = accuracy_interval(np.arange(100) % 2 == 0)
    assert half["accuracy"] == 0.5
    assert half["ci95"] == pytest.approx([0.4038, 0.5962], abs=1e-4)  # Wilson, n = 100
    d = paired_difference(np.ones(50, bool), np.r_[np.ones(40), np.zeros(10)].astype(bool))
    assert d["difference"] == pytest.approx(0.2)
    assert d["ci95"][0] < 0.2 < d["ci95"][1] and d["ci95"][0] > 0.08


def test_counts_from_windowed_equal_counts():
    s = (np.random.default_rng(2).random((6, 129, 5)) < 0.1).astype(np.uint8)
    w = spike_features(s, "windowed", n_windows=5)  # windows of 26, 26, 25, 26, 26 steps
    np.testing.assert_allclose(counts_from_windowed(w, 129, 5), spike_features(s, "counts"),
                               rtol=1e-6)


@pytest.fixture
def tiny_nmnist(tmp_path):
    """40 files in the real N-MNIST format: class c lights a 4 x 4 block of the centre
    crop at a class-specific place, with seeded random background events."""
    rng = np.random.default_rng(0)

    def events(split, c, k):
        bx, by = 9 + (c % 5) * 3, 9 + (c // 5) * 8
        xs = np.concatenate([bx + rng.integers(0, 4, 80), rng.integers(0, 34, 40)])
        ys = np.concatenate([by + rng.integers(0, 4, 80), rng.integers(0, 34, 40)])
        return xs, ys, True, np.sort(rng.integers(0, 100_000, len(xs)))

    write_nmnist_tree(tmp_path / "data" / "nmnist", events)
    return tmp_path / "data"


def test_classify_cv_cli_writes_table_intervals_and_plot(tiny_nmnist, tmp_path):
    out, png = tmp_path / "cv.json", tmp_path / "cv.png"
    assert main(["classify", "--cv", "3", "--dataset", "nmnist", "--data-dir",
                 str(tiny_nmnist), "--sizes", "20", "30", "--no-progress", "--no-cache",
                 "--with-input", "--json", str(out), "--plot", str(png)]) == 0
    record = json.loads(out.read_text())
    (run,) = record["runs"]
    assert run["n_samples"] == 40 and run["folds"] == 3 and run["synthetic"] is False
    assert sum(run["fold_sizes"]) == 40
    assert set(run["candidates"]) == {"n20-s0.3-windowed", "n20-s0.3-counts",
                                      "n30-s0.3-windowed", "n30-s0.3-counts", "input-w1",
                                      "input-w5", "input-w10", "input-raster",
                                      "n20-s0.3-windowed+input-w5",
                                      "n30-s0.3-windowed+input-w5"}
    # a concatenation is never counted as a reservoir result
    assert set(run["families"]["reservoir"]["picks"]) <= {
        "n20-s0.3-windowed", "n20-s0.3-counts", "n30-s0.3-windowed", "n30-s0.3-counts"}
    assert "reservoir_plus_input_minus_raw" in run
    for c in run["candidates"].values():
        lo, hi = c["ci95"]
        assert 0.0 <= lo <= c["accuracy"] <= hi <= 1.0
    raw = run["families"]["raw_input"]
    assert set(raw["picks"]) <= {"input-w1", "input-w5", "input-w10", "input-raster"}
    # the class is where the block is: the raw input separates the classes
    assert raw["accuracy"] > 0.8
    d = run["reservoir_minus_raw"]
    assert d["difference"] == pytest.approx(run["families"]["reservoir"]["accuracy"]
                                            - raw["accuracy"])
    assert record["command"] == "classify --cv" and record["seeds"]["fold_seed"] == 0
    assert png.stat().st_size > 10_000
    assert main(["classify", "--dataset", "nmnist", "fsdd", "--no-progress"]) != 0


def test_classify_cv_ensemble_adds_members_on_their_own_tiles(tiny_nmnist, tmp_path):
    """An ensemble's first member is the reservoir of a run without ensemble (same tiles,
    same out-of-fold answers); the others are formed on tiles of their own."""
    single, ens = tmp_path / "single.json", tmp_path / "ens.json"
    common = ["classify", "--cv", "3", "--dataset", "nmnist", "--data-dir", str(tiny_nmnist),
              "--sizes", "20", "--no-progress", "--no-cache"]
    assert main(common + ["--json", str(single)]) == 0
    assert main(common + ["--ensemble", "3", "--json", str(ens), "--plot",
                          str(tmp_path / "ens.png")]) == 0
    (one,) = json.loads(single.read_text())["runs"]
    (run,) = json.loads(ens.read_text())["runs"]
    assert run["ensemble"] == 3 and one["ensemble"] == 1
    assert {"n20x3-s0.3-windowed", "n20x3-s0.3-counts"} <= set(run["candidates"])
    for c in ("n20-s0.3-windowed", "n20-s0.3-counts"):
        assert run["candidates"][c] == one["candidates"][c]
    info = run["reservoirs"]["n20x3-s0.3"]
    assert info["members"] == 3 and info["n_neurons"] == 60 and info["tiles"] == 3
    assert [p["name"] for p in info["placements"]] == ["nmnist", "nmnist.member1",
                                                       "nmnist.member2"]
    cells = [{(p["macro"], r, c) for r in range(p["region"][0], p["region"][0] + p["region"][2])
              for c in range(p["region"][1], p["region"][1] + p["region"][3])}
             for p in info["placements"]]
    assert all(not (cells[i] & cells[j]) for i in range(3) for j in range(i + 1, 3))
    assert main(common + ["--ensemble", "0"]) != 0


def test_ensemble_members_are_independent_reservoirs(tiny_nmnist):
    """A member named apart is formed on new tiles: other weights, other features; the
    reservoir under the dataset's own name is unchanged by members formed after it."""
    from lsm import EncodeOptions, preset
    from rram_lsm.app.features import encode, open_data
    from rram_lsm.app.session import ChipSession

    ds = open_data("nmnist", tiny_nmnist, progress=False, input="crop")
    cfg = preset("nmnist").replace(n_neurons=20)
    opts = EncodeOptions(kind="windowed", progress=False)
    with ChipSession("sim", chip_seed=0) as chip:
        alone = encode(chip, "nmnist", ds, lsm_preset=cfg, cache=False, options=opts)
    with ChipSession("sim", chip_seed=0) as chip:
        first = encode(chip, "nmnist", ds, lsm_preset=cfg, cache=False, options=opts)
        other = encode(chip, "nmnist", ds, lsm_preset=cfg, cache=False, options=opts,
                       reservoir="nmnist.member1")
        w_first = chip.reservoir("nmnist", cfg).weights()[1]
        w_other = chip.reservoir("nmnist.member1", cfg).weights()[1]
    np.testing.assert_array_equal(first.values, alone.values)
    assert first.meta["placement"]["region"] != other.meta["placement"]["region"]
    assert not np.allclose(w_first, w_other)
    assert not np.array_equal(first.values, other.values)
