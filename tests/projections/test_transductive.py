"""Transductive few-shot prototypes: soft k-means refinement with the episode's queries."""
from __future__ import annotations

import json

import numpy as np
import pytest

from projections import METHODS, run_protocol
from projections.evaluate import fewshot_accuracies, fewshot_accuracy, fewshot_episodes
from projections.train import MethodConfig
from rram_lsm.errors import ConfigError


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(seed=0, n=60, dim=6, spread=0.9):
    """Two classes on the sphere whose means are close: a few noisy support samples put
    the prototypes off-centre, while the many queries show where the classes lie."""
    rng = np.random.default_rng(seed)
    means = _unit(rng.normal(size=(2, dim)))
    means[1] = _unit((means[0] + 0.8 * means[1])[None])[0]
    labels = np.repeat([0, 1], n)
    x = means[labels] + spread / np.sqrt(dim) * rng.normal(size=(2 * n, dim))
    return x.astype(np.float32), labels


def _episodes(labels, shots, n_episodes, seed=1):
    idx = np.arange(len(labels))
    return list(fewshot_episodes(labels, idx, labels, idx, shots, n_episodes,
                                 np.random.default_rng(seed)))


def _literal(episode, x, labels, steps, temperature):
    """Ren et al.'s soft k-means on unit vectors, written out for one direction."""
    u = _unit(np.asarray(x, np.float64))
    sup, q = episode["support_audio"], episode["query_audio"]
    classes = episode["classes"]
    shots = len(sup) / len(classes)
    p0 = np.stack([_unit(u[sup[labels[sup] == c]].mean(0)[None])[0] for c in classes])
    p = p0
    for _ in range(steps):
        s = u[q] @ p.T / temperature
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        p = _unit(np.stack([shots * p0[j] + (w[:, j:j + 1] * u[q]).sum(0)
                            for j in range(len(classes))]))
    return float((classes[np.argmax(u[q] @ p.T, 1)] == labels[q]).mean())


def test_zero_steps_is_the_inductive_prototype():
    x, y = _clusters()
    eps = _episodes(y, 2, 5)
    kw = dict(sources="own", raw_image=x, raw_audio=x, raw_weight=1.0)
    a = fewshot_accuracies(eps, x, x, y, y, **kw)
    b = fewshot_accuracies(eps, x, x, y, y, transductive=0, transductive_temperature=0.3,
                           **kw)
    for d in a:
        np.testing.assert_array_equal(a[d]["top1"], b[d]["top1"])


@pytest.mark.parametrize("steps,temperature", [(1, 0.05), (3, 0.1), (10, 0.02)])
def test_refinement_equals_the_written_out_soft_k_means(steps, temperature):
    x, y = _clusters(seed=3)
    for ep in _episodes(y, 1, 4):
        got = fewshot_accuracy(ep, x, x, y, y, sources="own", raw_image=x, raw_audio=x,
                               raw_weight=1.0, transductive=steps,
                               transductive_temperature=temperature)
        assert got["audio_to_image"]["top1"] == pytest.approx(
            _literal(ep, x, y, steps, temperature), abs=1e-12)


def test_refinement_helps_when_few_supports_miss_the_class_centres():
    x, y = _clusters(seed=0)
    eps = _episodes(y, 1, 40)
    kw = dict(sources="own", raw_image=x, raw_audio=x, raw_weight=1.0)
    inductive = fewshot_accuracies(eps, x, x, y, y, **kw)["audio_to_image"]["top1"].mean()
    refined = fewshot_accuracies(eps, x, x, y, y, transductive=3,
                                 transductive_temperature=0.05,
                                 **kw)["audio_to_image"]["top1"].mean()
    assert refined > inductive + 0.05


def test_predictions_never_read_the_query_labels():
    """Relabelling the queries changes which predictions count as right, never the
    predictions: accuracy against flipped query labels is one minus the accuracy."""
    x, y = _clusters(seed=5)
    ep = _episodes(y, 2, 1)[0]
    flipped = y.copy()
    flipped[ep["query_audio"]] = 1 - y[ep["query_audio"]]
    kw = dict(sources="own", raw_image=x, raw_audio=x, raw_weight=1.0, transductive=3)
    a = fewshot_accuracy(ep, x, x, y, y, **kw)["audio_to_image"]["top1"]
    b = fewshot_accuracy(ep, x, x, flipped, flipped, **kw)["audio_to_image"]["top1"]
    assert a + b == pytest.approx(1.0)


def test_bad_transductive_options_are_rejected():
    x, y = _clusters()
    eps = _episodes(y, 1, 1)
    with pytest.raises(ConfigError, match="transductive"):
        fewshot_accuracies(eps, x, x, y, y, transductive=-1)
    with pytest.raises(ConfigError, match="temperature"):
        fewshot_accuracies(eps, x, x, y, y, transductive=1, transductive_temperature=0.0)
    with pytest.raises(ConfigError, match="fewshot_transductive"):
        MethodConfig(fewshot_transductive=-2)
    with pytest.raises(ConfigError, match="fewshot_transductive"):
        MethodConfig(fewshot_transductive_temperature=-0.1)


def test_transductive_few_shot_leaves_zero_shot_figures_alone(kinded):
    base = METHODS["default"].replace(epochs=4, features="counts", fewshot_transductive=0)
    kw = dict(unseen=(3, 8), seeds=1, shots=(1,), episodes=4, progress=False)
    runs = [run_protocol(kinded, m, **kw).to_dict()
            for m in (base, base.replace(fewshot_transductive=3))]
    for key in ("unseen", "seen_test"):  # json: a NaN CI (one run) compares equal
        assert json.dumps(runs[0][key], sort_keys=True) == json.dumps(runs[1][key],
                                                                       sort_keys=True)


def test_the_default_few_shot_figures_are_its_untrained_twins(kinded):
    """Selection round 6 and the ablations score the default's few-shot metric through
    an untrained twin: with fewshot_raw_weight 1 the heads never enter few-shot."""
    from projections import evaluate_split

    d = METHODS["default"].replace(epochs=3)
    assert d.fewshot_raw_weight == 1.0 and d.fewshot_transductive > 0
    assert d.fewshot_em_steps > 0
    twin = d.fewshot_twin()
    assert not twin.trained and twin.fewshot_em_steps == d.fewshot_em_steps
    kw = dict(seen=range(1, 8), unseen=(8, 9), seed=1, shots=(1, 3), episodes=5)
    assert evaluate_split(kinded, method=d, **kw).fewshot == \
        evaluate_split(kinded, method=twin, **kw).fewshot
    with pytest.raises(ConfigError, match="no untrained twin"):
        d.replace(fewshot_raw_weight=0.5, fewshot_em_steps=0).fewshot_twin()


def test_few_shot_can_read_its_own_features_while_the_heads_keep_theirs(synthetic):
    """fewshot_features: the heads (zero-shot, seen test) train on ``features`` exactly as
    without it; few-shot compares the other kind, transformed by ``fewshot_transform``,
    exactly as an untrained twin on that kind does."""
    import dataclasses

    from projections import evaluate_split

    rng = np.random.default_rng(3)
    extra = {m: np.abs(getattr(synthetic, f"{m}_values")[:, :6]) +
             rng.random((len(getattr(synthetic, f"{m}_labels")), 6)).astype(np.float32)
             for m in ("image", "audio")}
    width = synthetic.image_values.shape[1]
    blocks = {m: {"counts": [0, width], "input_span": [width, width + 6]}
              for m in ("image", "audio")}
    both = dataclasses.replace(
        synthetic, image_values=np.hstack([synthetic.image_values, extra["image"]]),
        audio_values=np.hstack([synthetic.audio_values, extra["audio"]]),
        meta={"feature_kind": "counts+input_span", "feature_blocks": blocks})
    # the default with one kind for both, then few-shot on a kind of its own
    d = METHODS["default"].replace(epochs=3, features="counts", fewshot_features=None,
                                   fewshot_transform=None)
    split = d.replace(fewshot_features="input_span", fewshot_transform="sqrt")
    assert split.encoded_kind == "counts+input_span" and d.encoded_kind == "counts"
    kw = dict(seen=range(1, 8), unseen=(8, 9), seed=1, shots=(1, 3), episodes=5)
    plain, other = evaluate_split(both, method=d, **kw), evaluate_split(both, method=split,
                                                                       **kw)
    assert plain.unseen == other.unseen and plain.seen_test == other.seen_test
    assert plain.fewshot != other.fewshot
    twin = METHODS["raw"].replace(features="input_span", feature_transform="sqrt",
                                  fewshot_sources="own", fewshot_whiten=d.fewshot_whiten,
                                  fewshot_transductive=d.fewshot_transductive,
                                  fewshot_em_steps=d.fewshot_em_steps,
                                  fewshot_em_dims=d.fewshot_em_dims,
                                  fewshot_em_shrinkage=d.fewshot_em_shrinkage)
    assert other.fewshot == evaluate_split(both, method=twin, **kw).fewshot
    # the batched engine (and its worker processes) carry the second kind alike
    res = run_protocol(both, split, seen=range(1, 8), unseen=(8, 9), seeds=[1],
                       shots=(1, 3), episodes=5, progress=False, engine="batched")
    assert res.runs[0].fewshot == other.fewshot
    with pytest.raises(ConfigError, match="fewshot_features"):
        METHODS["default"].replace(fewshot_features="cochlea")
    # data without a kind record cannot serve a second kind: an error, not the heads' columns
    with pytest.raises(ConfigError, match="record no feature kind"):
        evaluate_split(dataclasses.replace(both, meta={}), method=split, **kw)
