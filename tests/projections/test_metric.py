"""Within-class whitening: the closed-form few-shot metric fitted on the seen classes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from projections import METHODS, PairedFeatures, run_protocol
from projections import metric, protocol
from projections.metric import within_class_whitener
from rram_lsm.errors import ConfigError, ShapeError


def _nuisance_data(seed=0, n_per_class=40, n_classes=6, dim=8):
    """Class means differ along every axis by ~1; a shared nuisance direction (think
    speaker or loudness), oblique so that per-feature scaling cannot remove it, spreads
    every class by ~6 along it, identically for all."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    x = means[labels] + 0.3 * rng.normal(size=(len(labels), dim))
    nuisance = rng.normal(size=dim)
    x += 6.0 * rng.normal(size=(len(labels), 1)) * nuisance / np.linalg.norm(nuisance)
    return x.astype(np.float32), labels


def test_whitened_within_class_covariance_is_identity():
    x, y = _nuisance_data()
    idx = np.flatnonzero(y < 4)
    w = within_class_whitener(x, y, idx, shrinkage=0.0)(x[idx])
    centred = np.concatenate([w[y[idx] == c] - w[y[idx] == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(centred.T @ centred / len(idx), np.eye(x.shape[1]),
                               atol=1e-4)


def test_full_shrinkage_only_centres_and_scales():
    x, y = _nuisance_data()
    idx = np.flatnonzero(y < 4)
    w = within_class_whitener(x, y, idx, shrinkage=1.0)(x)
    shifted = x - x[idx].mean(0)
    ratio = w / np.where(shifted == 0, 1, shifted)
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-3)  # one common scale factor


def test_fitting_on_seen_classes_helps_unseen_prototypes():
    """The nuisance direction is learned on classes 0-3 and suppressed for 4-5."""
    x, y = _nuisance_data()
    seen = np.flatnonzero(y < 4)
    unseen = np.flatnonzero(y >= 4)

    def prototype_accuracy(z):
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        rng = np.random.default_rng(1)
        correct = total = 0
        for _ in range(50):
            support = [rng.choice(unseen[y[unseen] == c], 3, replace=False) for c in (4, 5)]
            protos = np.stack([z[s].mean(0) for s in support])
            query = np.setdiff1d(unseen, np.concatenate(support))
            pred = np.array([4, 5])[np.argmax(z[query] @ protos.T, axis=1)]
            correct += (pred == y[query]).sum()
            total += len(query)
        return correct / total

    standardised = (x - x[seen].mean(0)) / x[seen].std(0)
    whitened = within_class_whitener(x, y, seen, shrinkage=0.1)(x)
    assert prototype_accuracy(whitened) > prototype_accuracy(standardised) + 0.1


@pytest.mark.parametrize("shrinkage", [0.1, 0.5, 0.9, 1.0])
def test_fewer_samples_than_features_decompose_the_gram_matrix_to_the_same_map(
        shrinkage, monkeypatch):
    """With fewer reference samples than features the whitener decomposes the n x n Gram
    matrix instead of the F x F scatter; the map must be the reference path's."""
    rng = np.random.default_rng(3)
    n, dim = 40, 120
    x = rng.normal(size=(n + 25, dim)) * rng.uniform(0.1, 3.0, dim)
    x[:, 5] = 1.0  # a feature without spread: a null direction of the scatter
    y = rng.integers(0, 4, n + 25)
    idx = np.arange(n)
    paths = []
    low_rank, full = metric._low_rank_inverse_sqrt, metric._full_inverse_sqrt
    monkeypatch.setattr(metric, "_low_rank_inverse_sqrt",
                        lambda *a: paths.append("gram") or low_rank(*a))
    fast = within_class_whitener(x, y, idx, shrinkage)(x)
    assert paths == ["gram"]
    monkeypatch.setattr(metric, "_low_rank_inverse_sqrt", full)
    reference = within_class_whitener(x, y, idx, shrinkage)(x)
    assert np.abs(fast - reference).max() < 1e-5 * np.abs(reference).max()


def test_whitener_rejects_bad_input():
    x, y = _nuisance_data()
    with pytest.raises(ConfigError, match="shrinkage"):
        within_class_whitener(x, y, np.arange(len(y)), shrinkage=1.5)
    with pytest.raises(ConfigError, match=">= 2 classes"):
        within_class_whitener(x, y, np.flatnonzero(y == 0))
    with pytest.raises(ShapeError):
        within_class_whitener(x[:, 0], y, np.arange(len(y)))
    whiten = within_class_whitener(x, y, np.arange(len(y)))
    with pytest.raises(ShapeError, match=r"\(N, 8\)"):
        whiten(x[:, :3])
    with pytest.raises(ConfigError, match="fewshot_whiten"):
        METHODS["raw"].replace(fewshot_whiten=-0.1)
    with pytest.raises(ConfigError, match="raw features only"):
        METHODS["paper"].replace(fewshot_whiten=0.5)  # trained, raw weight 0: no effect


def test_protocol_fits_the_whitener_on_seen_training_rows_only(synthetic, monkeypatch):
    fitted, standardised = [], []
    real_whitener, real_standardizer = protocol.within_class_whitener, protocol._standardizer

    def whitener_spy(values, labels, idx, shrinkage):
        fitted.append((np.unique(idx), shrinkage))
        return real_whitener(values, labels, idx, shrinkage)

    def standardizer_spy(values, idx, scale_floor):
        standardised.append(np.unique(idx))
        return real_standardizer(values, idx, scale_floor)

    monkeypatch.setattr(protocol, "within_class_whitener", whitener_spy)
    monkeypatch.setattr(protocol, "_standardizer", standardizer_spy)
    method = METHODS["raw"].replace(fewshot_whiten=0.3)
    res = run_protocol(synthetic, method, unseen=(3, 8), seeds=1, shots=(2,), episodes=3,
                       progress=False)
    assert len(fitted) == 2  # one per modality, on exactly the standardiser's rows ...
    for (idx, shrinkage), train_rows, labels, is_test in zip(
            fitted, standardised, (synthetic.image_labels, synthetic.audio_labels),
            (synthetic.image_is_test, synthetic.audio_is_test)):
        assert shrinkage == 0.3
        np.testing.assert_array_equal(idx, train_rows)
        # ... which are seen-class official-train rows, minus validation
        assert not np.isin(labels[idx], (3, 8)).any() and not is_test[idx].any()
        seen_train = np.flatnonzero(~np.isin(labels, (3, 8)) & ~is_test)
        assert 0.6 * len(seen_train) < len(idx) < len(seen_train)
    assert 0.5 <= res.to_dict()["fewshot"]["unseen"]["audio_to_image"]["top1"]["mean"] <= 1


def test_whitening_leaves_zero_shot_figures_alone(kinded):
    base = METHODS["default"].replace(epochs=5, fewshot_whiten=None, features="counts")
    runs = [run_protocol(kinded, m, unseen=(3, 8), seeds=1, shots=(2,), episodes=3,
                         progress=False).to_dict()
            for m in (base, base.replace(fewshot_whiten=0.5))]
    for key in ("unseen", "seen_test"):  # json: a NaN CI (one run) compares equal
        assert json.dumps(runs[0][key], sort_keys=True) == json.dumps(runs[1][key],
                                                                       sort_keys=True)


@pytest.mark.parametrize("shrinkage", [0.1, 0.9])
def test_cholesky_whitening_keeps_the_metric_of_the_symmetric_map(shrinkage, monkeypatch):
    """More samples than features: the whitener uses ``S``'s Cholesky factor; its
    coordinates are a rotation of ``x S^-1/2``, so every inner product is the
    eigendecomposition's."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 40)) * rng.uniform(0.1, 3.0, 40)
    x[:, :5] += 4.0 * rng.normal(size=(300, 1))  # a shared oblique nuisance
    y = rng.integers(0, 5, 300)
    idx = np.arange(240)
    paths = []
    cholesky = metric._cholesky_whitening
    monkeypatch.setattr(metric, "_cholesky_whitening",
                        lambda *a: paths.append("cholesky") or cholesky(*a))
    fast = within_class_whitener(x, y, idx, shrinkage)(x).astype(np.float64)
    assert paths == ["cholesky"]
    monkeypatch.setattr(metric, "_cholesky_whitening", metric._full_inverse_sqrt)
    reference = within_class_whitener(x, y, idx, shrinkage)(x).astype(np.float64)
    assert not np.allclose(fast, reference, atol=1e-3)  # other coordinates ...
    gram, gram_ref = fast @ fast.T, reference @ reference.T
    # ... the same metric (float32 output: relative 1e-5)
    assert np.abs(gram - gram_ref).max() < 1e-5 * np.abs(gram_ref).max()
