"""EM of a tied-covariance mixture over a few-shot episode (projections.episode_em)."""
from __future__ import annotations

import numpy as np
import pytest

from projections.episode_em import pool_basis, tied_gaussian_em
from projections.evaluate import fewshot_accuracies, fewshot_episodes
from projections.train import MethodConfig
from rram_lsm.errors import ConfigError


def _tilted_pair(seed=0, n=150, dim=10):
    """Two classes 1 apart along axis 0 that share a large spread along an oblique
    direction mixing axes 0 and 1: cosine to the class means confuses them, a
    discriminant fitted with the classes' own covariance does not."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n)
    x = 0.15 * rng.normal(size=(2 * n, dim))
    x[:, 0] += labels
    x[:, 2] += 3.0  # away from the origin, so unit vectors keep the geometry
    nuisance = np.zeros(dim)
    nuisance[[0, 1]] = [0.6, 0.8]
    x += 0.9 * rng.normal(size=(2 * n, 1)) * nuisance
    return x, labels


@pytest.mark.parametrize("n, dim", [(40, 12), (12, 40)])
def test_pool_basis_is_the_top_principal_directions(n, dim):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, dim)) * np.linspace(3.0, 0.1, dim)
    mean, basis = pool_basis(x, 5)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(basis.T @ basis, np.eye(5), atol=1e-10)
    centred = x - x.mean(0)
    eigval, eigvec = np.linalg.eigh(centred.T @ centred)
    top = eigvec[:, ::-1][:, :5]
    np.testing.assert_allclose(np.abs(np.sum(top * basis, 0)), 1.0, atol=1e-8)
    assert pool_basis(x, 500)[1].shape[1] == min(n - 1, dim)
    with pytest.raises(ConfigError):
        pool_basis(x, 0)


def test_pool_basis_stops_at_the_pools_rank():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 2)) @ rng.normal(size=(2, 30))  # rank 2 (1 after centring)
    basis = pool_basis(x, 8)[1]
    assert basis.shape[1] <= 2
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-8)


def test_em_does_not_depend_on_the_order_of_the_episode_classes():
    x, y = _tilted_pair(seed=2)
    y = y + 8  # classes 8 and 9
    idx = np.arange(len(y))
    ep = next(iter(fewshot_episodes(y, idx, y, idx, 3, 1, np.random.default_rng(0))))
    kw = dict(sources="own", raw_image=x, raw_audio=x, raw_weight=1.0, transductive=3,
              em_dims=4, em_steps=10, em_shrinkage=0.01)
    forward = fewshot_accuracies([ep], x, x, y, y, **kw)
    backward = fewshot_accuracies([{**ep, "classes": ep["classes"][::-1]}], x, x, y, y, **kw)
    assert forward["audio_to_image"]["top1"][0] == pytest.approx(
        backward["audio_to_image"]["top1"][0])


def test_em_with_the_pairs_own_covariance_beats_the_prototypes():
    x, y = _tilted_pair()
    support = np.array([0, 1, 2, 150, 151, 152])
    query = np.setdiff1d(np.arange(len(y)), support)
    means = np.stack([x[support[:3]].mean(0), x[support[3:]].mean(0)])
    cosine = (x[query] / np.linalg.norm(x[query], axis=1, keepdims=True)) @ (
        means / np.linalg.norm(means, axis=1, keepdims=True)).T
    prototypes = (np.argmax(cosine, 1) == y[query]).mean()
    start = np.exp(cosine / 0.05)
    start /= start.sum(1, keepdims=True)
    score = tied_gaussian_em(x[query], x[support], y[support], start, 10, 0.2)
    em = (np.argmax(score, 1) == y[query]).mean()
    assert score.shape == (len(query), 2)
    assert prototypes < 0.8 and em > 0.95


def test_one_em_step_is_the_gaussian_posterior_of_the_weighted_fit():
    """Scores after one step = log N(q; mean_c, cov) up to a per-query constant, with
    mean_c and cov fitted from support (weight 1) and queries (their posteriors), written
    out independently with scipy."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(5)
    d, shrinkage = 3, 0.3
    support, query = rng.normal(size=(4, d)), rng.normal(size=(9, d)) + 0.5
    support_class = np.array([0, 0, 1, 1])
    post = rng.dirichlet([1.0, 1.0], size=9)
    score = tied_gaussian_em(query, support, support_class, post, 1, shrinkage)
    w = np.vstack([np.eye(2)[support_class], post])
    x = np.vstack([support, query])
    means = [(w[:, c:c + 1] * x).sum(0) / w[:, c].sum() for c in range(2)]
    scatter = sum((w[:, c:c + 1] * (x - means[c])).T @ (x - means[c]) for c in range(2))
    scatter /= w.sum()
    cov = (1 - shrinkage) * scatter + shrinkage * np.trace(scatter) / d * np.eye(d)
    log_lik = np.stack([multivariate_normal(means[c], cov).logpdf(query) for c in range(2)], 1)
    np.testing.assert_allclose(score - score[:, :1], log_lik - log_lik[:, :1], atol=1e-10)


def test_the_queries_carry_the_fit():
    """With one shot per class the support has no spread to estimate the pair's
    covariance from: EM with the queries beats the same model fitted on the support
    alone (queries weighted ~0)."""
    x, y = _tilted_pair(seed=0)
    support = np.array([0, 150])
    query = np.setdiff1d(np.arange(len(y)), support)
    flat = np.full((len(query), 2), 0.5)
    with_queries = tied_gaussian_em(x[query], x[support], y[support], flat, 30, 0.01)
    no_queries = tied_gaussian_em(x[query], x[support], y[support], flat * 1e-12, 1, 0.01)
    acc = lambda score: (np.argmax(score, 1) == y[query]).mean()  # noqa: E731
    assert acc(with_queries) > acc(no_queries) + 0.05


def test_em_reads_no_query_labels():
    """Relabelling the queries cannot change the scores: they never enter."""
    x, y = _tilted_pair(seed=2)
    idx = np.arange(len(y))
    ep = next(iter(fewshot_episodes(y, idx, y, idx, 3, 1, np.random.default_rng(0))))
    kw = dict(sources="own", raw_image=x, raw_audio=x, raw_weight=1.0, transductive=3,
              em_dims=4, em_steps=10, em_shrinkage=0.01)
    a = fewshot_accuracies([ep], x, x, y, y, **kw)
    flipped = y.copy()
    flipped[ep["query_audio"]] = 1 - flipped[ep["query_audio"]]
    b = fewshot_accuracies([ep], x, x, flipped, flipped, **kw)
    # accuracy against flipped labels is exactly the complement: same predictions
    assert a["audio_to_image"]["top1"][0] == pytest.approx(1 - b["audio_to_image"]["top1"][0])
    assert a["audio_to_image"]["top1"][0] > 0.8  # and EM found the pair


def test_em_improves_episodes_over_soft_kmeans():
    x, y = _tilted_pair(seed=3)
    idx = np.arange(len(y))
    eps = list(fewshot_episodes(y, idx, y, idx, 5, 10, np.random.default_rng(4)))
    kw = dict(sources="own", raw_image=x, raw_audio=x, raw_weight=1.0, transductive=3)
    plain = fewshot_accuracies(eps, x, x, y, y, **kw)
    em = fewshot_accuracies(eps, x, x, y, y, em_dims=4, em_steps=10, em_shrinkage=0.01, **kw)
    assert em["audio_to_image"]["top1"].mean() > plain["audio_to_image"]["top1"].mean() + 0.1


def test_em_settings_are_checked():
    x, y = _tilted_pair()
    idx = np.arange(len(y))
    eps = list(fewshot_episodes(y, idx, y, idx, 2, 1, np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="raw_weight 1"):
        fewshot_accuracies(eps, x, x, y, y, raw_image=x, raw_audio=x, raw_weight=0.5,
                           em_dims=4, em_steps=2)
    with pytest.raises(ConfigError, match="steps"):
        tied_gaussian_em(x[:4], x[4:6], np.array([0, 1]), np.full((4, 2), 0.5), 0, 0.5)
    with pytest.raises(ConfigError, match="shrinkage"):  # a singular fit is not allowed
        tied_gaussian_em(x[:4], x[4:6], np.array([0, 1]), np.full((4, 2), 0.5), 2, 0.0)
    with pytest.raises(ConfigError, match="all equal"):
        tied_gaussian_em(np.ones((4, 3)), np.ones((2, 3)), np.array([0, 1]),
                         np.full((4, 2), 0.5), 2, 0.5)
    with pytest.raises(ConfigError, match="whole number"):
        MethodConfig(fewshot_raw_weight=1.0, fewshot_em_steps=0.5)
    with pytest.raises(ConfigError, match="fewshot_em"):
        MethodConfig(fewshot_raw_weight=0.5, fewshot_em_steps=3)
    with pytest.raises(ConfigError, match="fewshot_em"):
        MethodConfig(fewshot_raw_weight=1.0, fewshot_em_steps=3, fewshot_em_shrinkage=2.0)
    em = MethodConfig(fewshot_raw_weight=1.0, fewshot_em_steps=3)
    assert (em.fewshot_em_dims, em.fewshot_em_shrinkage) == (16, 0.2)  # the default's


def test_raw_spaces_wider_than_their_pool_give_the_full_width_figures(monkeypatch):
    """With fewer pool rows than features, few-shot works in the rows' span coordinates;
    prototypes, soft k-means and EM must classify every query as at full width."""
    from projections import evaluate

    rng = np.random.default_rng(7)
    y = np.repeat([0, 1, 2], 30)
    x = rng.normal(size=(3, 200))[y] * 0.15 + rng.normal(size=(90, 200))
    eps = list(fewshot_episodes(y, np.arange(90), y, np.arange(90), 3, 6,
                                np.random.default_rng(2)))
    kw = dict(sources="own", raw_image=x, raw_audio=x, raw_weight=1.0, transductive=3,
              em_dims=8, em_steps=5, em_shrinkage=0.2)
    widths = []
    span = evaluate._span_coordinates
    monkeypatch.setattr(evaluate, "_span_coordinates",
                        lambda rows: widths.append(rows.shape) or span(rows))
    compact = fewshot_accuracies(eps, x, x, y, y, **kw)
    assert widths == [(90, 200), (90, 200)]  # both modalities: 90 rows of 200 features
    monkeypatch.setattr(evaluate, "_span_coordinates", lambda rows: rows)
    full = fewshot_accuracies(eps, x, x, y, y, **kw)
    for d in compact:
        np.testing.assert_array_equal(compact[d]["top1"], full[d]["top1"])
    assert 0.4 < compact["audio_to_image"]["top1"].mean() < 1.0  # not a trivial task
