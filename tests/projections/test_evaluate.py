import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from projections.evaluate import (fewshot_accuracy, fewshot_episodes, prototype_accuracy,
                                  retrieval_metrics, summarize)
from rram_lsm.errors import ConfigError


def test_retrieval_constructed_case():
    # gallery: two images of class 0 along e0, one of class 1 along e1
    g = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    gl = np.array([0, 0, 1])
    q = np.array([[1.0, 0.0], [0.2, 0.8], [0.1, 0.9]])
    ql = np.array([0, 1, 0])  # the last query retrieves the wrong class
    m = retrieval_metrics(q, ql, g, gl, k=2)
    assert m["top1"] == pytest.approx(2 / 3)
    # top-2 of the last query is [class 1, class 0] -> hit
    assert m["recall_at_2"] == pytest.approx(1.0)
    # chance top-1: queries of class 0 match 2/3 of the gallery, class 1 1/3
    assert m["chance_top1"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    # chance of a hit in 2 random of 3: class 0 always, class 1: 1 - C(2,2)/C(3,2) = 2/3
    assert m["chance_recall_at_2"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert (m["n_queries"], m["n_gallery"]) == (3, 3)


def test_retrieval_chance_matches_random_embeddings():
    rng = np.random.default_rng(0)
    gl = rng.integers(0, 3, 300)
    ql = rng.integers(0, 3, 3000)
    m = retrieval_metrics(rng.normal(size=(3000, 8)), ql, rng.normal(size=(300, 8)), gl)
    se = np.sqrt(m["chance_top1"] * (1 - m["chance_top1"]) / 3000)
    assert abs(m["top1"] - m["chance_top1"]) < 4 * se


def test_prototype_accuracy_constructed():
    g = np.array([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]])
    gl = np.array([5, 5, 7])
    q = np.array([[0.8, 0.1], [0.1, 0.9], [0.9, 0.0]])
    out = prototype_accuracy(q, np.array([5, 7, 7]), g, gl)
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["chance"] == 0.5 and out["n_queries"] == 3


def test_metrics_reject_bad_input():
    with pytest.raises(ConfigError):
        retrieval_metrics(np.zeros((2, 2)), [0], np.zeros((2, 2)), [0, 1])
    with pytest.raises(ConfigError):
        prototype_accuracy(np.zeros((0, 2)), [], np.zeros((2, 2)), [0, 1])


@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 1000))
def test_fewshot_support_and_queries_disjoint(shots, episodes, seed):
    rng = np.random.default_rng(seed)
    yi = np.repeat([2, 5], 8)
    ya = np.repeat([2, 5, 9], 9)
    ii = np.arange(len(yi))
    ia = np.flatnonzero(ya != 9)  # class 9 is not part of this evaluation
    seen_queries = set()
    for ep in fewshot_episodes(yi, ii, ya, ia, shots, episodes, rng):
        assert not set(ep["support_image"]) & set(ep["query_image"])
        assert not set(ep["support_audio"]) & set(ep["query_audio"])
        assert set(ep["query_image"]) | set(ep["support_image"]) == set(ii)
        assert set(ep["query_audio"]) | set(ep["support_audio"]) == set(ia)
        for c in (2, 5):
            assert np.sum(yi[ep["support_image"]] == c) == shots
            assert np.sum(ya[ep["support_audio"]] == c) == shots
        seen_queries.update(ep["query_audio"])
    assert not seen_queries & set(np.flatnonzero(ya == 9))


def test_fewshot_rejects_too_few_samples():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ConfigError):
        next(fewshot_episodes(y, np.arange(4), y, np.arange(4), 2, 1,
                              np.random.default_rng(0)))


def test_fewshot_accuracy_constructed():
    yi = np.array([0, 0, 1, 1])
    ya = np.array([0, 0, 1, 1])
    z = np.array([[1.0, 0.0], [0.9, 0.3], [0.0, 1.0], [0.6, 0.4]])
    ep = {"classes": np.array([0, 1]), "support_image": np.array([0, 2]),
          "support_audio": np.array([0, 2]), "query_image": np.array([1, 3]),
          "query_audio": np.array([1, 3])}
    out = fewshot_accuracy(ep, z, z, yi, ya, sources="image")
    # query 3 = [0.6, 0.4] is closer to prototype e0: one of two correct
    assert out["audio_to_image"] == {"top1": 0.5, "n_queries": 2}
    # audio space with the classes on swapped axes: only audio prototypes classify audio
    z_audio = np.array([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.1]])
    own = fewshot_accuracy(ep, z, z_audio, yi, ya, sources="own")
    assert own["audio_to_image"]["top1"] == 1.0 and own["image_to_audio"]["top1"] == 0.5
    cross = fewshot_accuracy(ep, z, z_audio, yi, ya, sources="image")
    assert cross["audio_to_image"]["top1"] == 0.0
    with pytest.raises(ConfigError):
        fewshot_accuracy(ep, z, z, yi, ya, sources="nope")
    # raw features that separate the classes fix it when given all the weight
    raw = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    out = fewshot_accuracy(ep, z, z, yi, ya, raw_image=raw, raw_audio=raw, raw_weight=1.0)
    assert out["audio_to_image"]["top1"] == 1.0 and out["image_to_audio"]["top1"] == 1.0


def test_summarize_ci_matches_t_interval_and_groups():
    v = np.array([0.5, 0.7, 0.6, 0.9])
    s = summarize(v)
    half = stats.t.ppf(0.975, 3) * v.std(ddof=1) / 2
    assert s["mean"] == pytest.approx(0.675)
    assert s["ci95"] == pytest.approx([0.675 - half, 0.675 + half])
    assert s["n"] == 4
    # grouped: the interval is over the two group means (0.6, 0.75)
    g = summarize(v, groups=[0, 0, 1, 1])
    half_g = stats.t.ppf(0.975, 1) * np.std([0.6, 0.75], ddof=1) / np.sqrt(2)
    assert g["ci95"] == pytest.approx([0.675 - half_g, 0.675 + half_g])
    assert summarize([np.nan])["mean"] is None
