"""Metrics on embeddings (numpy): cross-modal retrieval, prototype classification, few-shot.

Retrieval of a query counts as correct when the retrieved item of the other modality has
the query's class ("class match"), as in the paper. Chance levels are computed exactly from
the class frequencies of queries and gallery, so imbalanced sets are judged fairly.
"""
from __future__ import annotations

from math import comb

import numpy as np
from scipy import stats

from rram_lsm.errors import ConfigError

from .episode_em import pool_basis, tied_gaussian_em

__all__ = [
    "retrieval_metrics",
    "prototype_accuracy",
    "fewshot_episodes",
    "fewshot_accuracy",
    "fewshot_accuracies",
    "summarize",
    "paired_difference",
]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _posterior(score: np.ndarray, temperature: float) -> np.ndarray:
    """Each query's class posterior: the softmax of its scores over ``temperature``."""
    z = score / temperature
    post = np.exp(z - z.max(1, keepdims=True))
    return post / post.sum(1, keepdims=True)


def _check(q, q_labels, g, g_labels):
    if len(q) != len(q_labels) or len(g) != len(g_labels):
        raise ConfigError("each embedding array needs one label per row")
    if len(q) == 0 or len(g) == 0:
        raise ConfigError("queries and gallery must both be non-empty")


def retrieval_metrics(q: np.ndarray, q_labels, g: np.ndarray, g_labels, k: int = 5) -> dict:
    """Top-1 and recall@k class-match retrieval of queries ``q`` among gallery ``g``.

    Similarity is the dot product (embeddings are L2-normalised by the heads). Returns
    fractions ``top1``, ``recall_at_{k}``, their chance levels for a random ranking, and the
    counts ``n_queries``, ``n_gallery``. Ties resolve to the lowest gallery index.
    """
    _check(q, q_labels, g, g_labels)
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    sim = np.asarray(q, np.float64) @ np.asarray(g, np.float64).T
    k_eff = min(k, len(g))
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k_eff]
    hits = g_labels[top] == q_labels[:, None]
    n_g = len(g_labels)
    match = np.array([(g_labels == c).sum() for c in q_labels])
    chance_k = 1.0 - np.array([comb(n_g - m, k_eff) / comb(n_g, k_eff) for m in match])
    return {
        "top1": float(hits[:, 0].mean()),
        f"recall_at_{k}": float(hits.any(axis=1).mean()),
        "chance_top1": float((match / n_g).mean()),
        f"chance_recall_at_{k}": float(chance_k.mean()),
        "n_queries": int(len(q_labels)),
        "n_gallery": int(n_g),
    }


def prototype_accuracy(q: np.ndarray, q_labels, g: np.ndarray, g_labels) -> dict:
    """Classify queries by the nearest class prototype (normalised class mean of ``g``)."""
    _check(q, q_labels, g, g_labels)
    q_labels, g_labels = np.asarray(q_labels), np.asarray(g_labels)
    classes = np.unique(g_labels)
    protos = _unit(np.stack([_unit(g[g_labels == c]).mean(0) for c in classes]))
    pred = classes[np.argmax(_unit(q) @ protos.T, axis=1)]
    return {"accuracy": float((pred == q_labels).mean()), "chance": 1.0 / len(classes),
            "n_queries": int(len(q_labels))}


def _span_coordinates(rows: np.ndarray) -> np.ndarray:
    """The coordinates ``(n, n)`` of ``rows`` ``(n, F)``, ``n < F``, in an orthonormal
    basis of their span (``rows = coords @ Q^T``, QR of ``rows^T``): every inner product,
    norm and principal direction among them is kept, in ``n`` dimensions instead of
    ``F`` (an unseen pair's pool: ~220 image rows of 1,480 features, ~600 audio rows of
    1,168)."""
    return np.linalg.qr(rows.T, mode="r").T


def fewshot_episodes(image_labels, image_idx, audio_labels, audio_idx, shots: int,
                     episodes: int, rng: np.random.Generator):
    """Yield few-shot episodes over the given samples as dicts of index arrays.

    Each episode draws ``shots`` image and ``shots`` audio samples per class as the paired
    support (``support_image``, ``support_audio``, class-sorted); the queries
    (``query_image``, ``query_audio``) are every other sample of those classes, so no
    query is ever a support sample. Classes with too few samples raise ConfigError.
    """
    if shots < 1 or episodes < 1:
        raise ConfigError(f"shots and episodes must be >= 1, got {shots} and {episodes}")
    image_labels, audio_labels = np.asarray(image_labels), np.asarray(audio_labels)
    image_idx, audio_idx = np.asarray(image_idx), np.asarray(audio_idx)
    classes = np.unique(image_labels[image_idx])
    pools = {}
    for c in classes:
        pi = image_idx[image_labels[image_idx] == c]
        pa = audio_idx[audio_labels[audio_idx] == c]
        if len(pi) <= shots or len(pa) <= shots:
            raise ConfigError(f"class {c} has {len(pi)} image / {len(pa)} audio samples; "
                              f"{shots}-shot needs more than {shots} of each")
        pools[c] = (pi, pa)
    for _ in range(episodes):
        sup_i, sup_a = [], []
        for c in classes:
            pi, pa = pools[c]
            sup_i.append(rng.choice(pi, shots, replace=False))
            sup_a.append(rng.choice(pa, shots, replace=False))
        sup_i, sup_a = np.concatenate(sup_i), np.concatenate(sup_a)
        yield {
            "classes": classes,
            "support_image": sup_i,
            "support_audio": sup_a,
            "query_image": np.setdiff1d(image_idx, sup_i),
            "query_audio": np.setdiff1d(audio_idx, sup_a),
        }


def fewshot_accuracy(episode: dict, z_image, z_audio, image_labels, audio_labels, *,
                     sources: str = "both", raw_image=None, raw_audio=None,
                     raw_weight: float = 0.0, transductive: int = 0,
                     transductive_temperature: float = 0.05, em_dims: int = 0,
                     em_steps: int = 0, em_shrinkage: float = 0.2) -> dict:
    """Nearest-prototype accuracy of one episode in both directions.

    ``audio_to_image``: audio queries are assigned the class of the best-scoring prototype
    (the image class it retrieves); ``image_to_audio`` likewise. Prototypes are normalised
    class means of the support embeddings of ``sources`` (``image``, ``audio``, ``both``,
    or ``own``: the query's own modality).
    With ``raw_weight`` > 0 the score mixes in the cosine to same-modality prototypes of
    the raw (standardised) features ``raw_image``/``raw_audio``.
    ``transductive``: refinement steps of the prototypes with the episode's unlabelled
    queries (see :func:`fewshot_accuracies`); 0 classifies every query on its own.
    ``em_*``: the episode's mixture (see :func:`fewshot_accuracies`); its principal
    directions come from this episode's samples alone.
    """
    out = fewshot_accuracies([episode], z_image, z_audio, image_labels, audio_labels,
                             sources=sources, raw_image=raw_image, raw_audio=raw_audio,
                             raw_weight=raw_weight, transductive=transductive,
                             transductive_temperature=transductive_temperature,
                             em_dims=em_dims, em_steps=em_steps, em_shrinkage=em_shrinkage)
    return {d: {"top1": float(r["top1"][0]), "n_queries": int(r["n_queries"][0])}
            for d, r in out.items()}


def fewshot_accuracies(episodes, z_image, z_audio, image_labels, audio_labels, *,
                       sources: str = "both", raw_image=None, raw_audio=None,
                       raw_weight: float = 0.0, transductive: int = 0,
                       transductive_temperature: float = 0.05, em_dims: int = 0,
                       em_steps: int = 0, em_shrinkage: float = 0.2) -> dict:
    """:func:`fewshot_accuracy` of every episode of ``episodes``, at once.

    ``transductive`` > 0 refines the prototypes with the episode's unlabelled queries by
    that many soft k-means steps (Ren et al. 2018, "Meta-learning for semi-supervised
    few-shot classification"): each query's class posterior is the softmax of its score
    over ``transductive_temperature``; each prototype (in every space the score uses)
    becomes the unit vector of ``shots x`` its support prototype plus the posterior-weighted
    sum of the query units; the final scores use the refined prototypes. Labels are
    never read before the accuracy is counted: the queries enter as unlabelled samples
    of the episode's classes, as in transductive few-shot evaluation.

    ``em_steps`` > 0 (raw features only, ``raw_weight`` 1) then classifies the queries by
    a tied-covariance Gaussian mixture fitted by that many EM steps in the top
    ``em_dims`` principal directions of the unseen pool, starting from the prototypes'
    posteriors, with covariance shrinkage ``em_shrinkage``
    (:mod:`projections.episode_em`).

    Returns ``{direction: {"top1": (E,) array, "n_queries": (E,) array}}``. Each sample is
    L2-normalised once for all episodes (a row's unit vector does not depend on which
    other rows are normalised with it). A raw space is read by inner products of the
    episodes' rows only, so with fewer rows than features it works in their span's
    coordinates (:func:`_span_coordinates`): the figures are those of calling
    :func:`fewshot_accuracy` episode by episode up to float rounding (without EM; with
    it, one episode's own rows give its principal directions).
    """
    if sources not in ("image", "audio", "both", "own"):
        raise ConfigError(f"unknown prototype sources {sources!r}")
    if raw_weight > 0.0 and (raw_image is None or raw_audio is None):
        raise ConfigError("raw_weight > 0 needs raw_image and raw_audio features")
    if int(transductive) < 0 or not transductive_temperature > 0:
        raise ConfigError(f"transductive must be >= 0 and its temperature > 0, got "
                          f"{transductive} and {transductive_temperature}")
    if em_steps and (raw_weight != 1.0 or int(em_dims) < 1):
        raise ConfigError(f"em_steps > 0 needs raw_weight 1 and em_dims >= 1, got "
                          f"raw_weight {raw_weight}, em_dims {em_dims}")
    episodes = list(episodes)
    image_labels, audio_labels = np.asarray(image_labels), np.asarray(audio_labels)
    rows = {m: np.unique(np.concatenate([ep[f"{k}_{m}"] for ep in episodes
                                         for k in ("support", "query")]))
            for m in ("image", "audio")}

    def units(z, m, span=False):
        # span: a raw space is read within one modality, by inner products of its rows
        # only, so fewer rows than features can work in their span's coordinates
        if z is None:
            return None
        z = np.asarray(z)
        pool = _unit(z[rows[m]])
        if span and len(pool) < pool.shape[1]:
            pool = _span_coordinates(pool)
        u = np.zeros((len(z), pool.shape[1]))
        u[rows[m]] = pool
        return u

    emb = {"image": units(z_image, "image"), "audio": units(z_audio, "audio")} \
        if raw_weight < 1.0 else None
    raw = {"image": units(raw_image, "image", span=True),
           "audio": units(raw_audio, "audio", span=True)} if raw_weight > 0.0 else None
    labels = {"image": image_labels, "audio": audio_labels}
    coords = {}
    if em_steps:
        for m in ("image", "audio"):
            mean, basis = pool_basis(raw[m][rows[m]], int(em_dims))
            coords[m] = (raw[m] - mean) @ basis

    def protos(u, idx, lab, classes):
        return np.stack([u[idx[lab[idx] == c]].mean(0) for c in classes])

    out = {d: {"top1": np.zeros(len(episodes)), "n_queries": np.zeros(len(episodes), int)}
           for d in ("audio_to_image", "image_to_audio")}
    for e, ep in enumerate(episodes):
        classes = ep["classes"]
        support = {"image": ep["support_image"], "audio": ep["support_audio"]}
        for name, own in (("audio_to_image", "audio"), ("image_to_audio", "image")):
            q_idx = ep[f"query_{own}"]
            # (weight, query units, unit prototypes) of each space the score reads
            spaces = []
            if raw_weight < 1.0:
                use = own if sources == "own" else sources
                parts = [protos(emb[m], support[m], labels[m], classes)
                         for m in ("image", "audio") if use in (m, "both")]
                spaces.append((1.0 - raw_weight, emb[own][q_idx], _unit(sum(parts))))
            if raw_weight > 0.0:
                spaces.append((raw_weight, raw[own][q_idx],
                               _unit(protos(raw[own], support[own], labels[own], classes))))

            def scores(sp):
                return sum(w * (q @ p.T) for w, q, p in sp)

            score = scores(spaces)
            if transductive:
                shots = len(support[own]) / len(classes)
                start = [(w, q, shots * p) for w, q, p in spaces]
                for _ in range(int(transductive)):
                    post = _posterior(score, transductive_temperature)
                    spaces = [(w, q, _unit(p0 + post.T @ q)) for w, q, p0 in start]
                    score = scores(spaces)
            if em_steps:
                s_idx = support[own]
                position = {c: i for i, c in enumerate(classes)}
                s_class = np.array([position[c] for c in labels[own][s_idx]])
                score = tied_gaussian_em(coords[own][q_idx], coords[own][s_idx], s_class,
                                         _posterior(score, transductive_temperature),
                                         int(em_steps), float(em_shrinkage))
            pred = classes[np.argmax(score, axis=1)]
            out[name]["top1"][e] = float((pred == labels[own][q_idx]).mean())
            out[name]["n_queries"][e] = len(q_idx)
    return out


def summarize(values, groups=None, bounds=None) -> dict:
    """``{mean, std, ci95: [lo, hi], n}`` of ``values`` (NaNs dropped).

    ``std`` is over all values. The 95 % interval is a t-interval over the group means
    when ``groups`` (e.g. the split of each run) has more than one group — runs of one
    split are correlated, so the split is the unit — and over the values otherwise.
    """
    v = np.asarray(values, np.float64)
    keep = np.isfinite(v)
    v = v[keep]
    if v.size == 0:
        return {"mean": None, "std": None, "ci95": [None, None], "n": 0}
    units = v
    if groups is not None:
        g = np.asarray(groups)[keep]
        uniq = np.unique(g)
        if len(uniq) > 1:
            units = np.array([v[g == u].mean() for u in uniq])
    mean = float(v.mean())
    if len(units) > 1:
        half = float(stats.t.ppf(0.975, len(units) - 1) * units.std(ddof=1)
                     / np.sqrt(len(units)))
    else:
        half = float("nan")
    lo, hi = mean - half, mean + half
    if bounds is not None and np.isfinite(half):
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": mean, "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "ci95": [lo, hi], "n": int(v.size)}


def paired_difference(a_per_split, b_per_split, key: str, unseen_sets=None) -> dict:
    """Paired difference ``a - b`` of metric ``key`` between two protocol records.

    ``*_per_split`` are :meth:`~projections.protocol.ZeroShotResult.per_split` lists (the
    JSON's ``per_split``) of two recipes on the same splits and seeds; ``key`` is one of
    their metric names (e.g. ``"unseen.audio_to_image.top1"``). Runs pair by (split,
    seed); each split's mean difference is the unit of the 95 % t-interval, as in
    :func:`summarize`. ``unseen_sets``: only the splits whose unseen classes are listed
    (e.g. the 10 seeded splits of one split seed); default every split of ``a``.
    Returns ``{mean, ci95, n_splits, n_runs, per_split: {"u1,u2": mean difference}}``.
    """
    def index(rows):
        out = {}
        for r in rows:
            if key not in r:
                raise ConfigError(f"a per-split row lacks {key!r}; it has "
                                  f"{sorted(k for k in r if '.' in k)}")
            out[tuple(r["unseen"])] = dict(zip(r["seeds"], r[key]))
        return out

    a, b = index(a_per_split), index(b_per_split)
    wanted = [tuple(u) for u in unseen_sets] if unseen_sets is not None else list(a)
    diffs, groups, per_split = [], [], {}
    for g, u in enumerate(wanted):
        if u not in a or u not in b:
            raise ConfigError(f"split with unseen {list(u)} is missing from a record")
        seeds = sorted(set(a[u]) & set(b[u]))
        if not seeds:
            raise ConfigError(f"split with unseen {list(u)}: the records share no seed")
        d = [a[u][s] - b[u][s] for s in seeds]
        diffs += d
        groups += [g] * len(d)
        per_split[",".join(str(c) for c in u)] = float(np.mean(d))
    summary = summarize(diffs, groups)
    return {"mean": summary["mean"], "ci95": summary["ci95"], "n_splits": len(wanted),
            "n_runs": summary["n"], "per_split": per_split}
