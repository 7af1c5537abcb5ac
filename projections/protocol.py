"""The evaluation protocol: splits x seeds, zero-shot and few-shot, aggregated with CIs.

For one split (seen / unseen classes) and one seed: ``lsm.data.split_cross_modal`` divides
both modalities into train / val (official train files of seen classes), test (official
test files of seen classes) and unseen (every sample of unseen classes). The heads train on
train pairs and are selected on val pairs; then, and only then, embeddings of the seen test
and unseen parts are scored. Few-shot draws its paired support from the unseen part and
queries every other unseen sample.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np

from rram_lsm.errors import ConfigError

from .evaluate import (fewshot_accuracies, fewshot_episodes, prototype_accuracy,
                       retrieval_metrics, summarize)
from .heads import feature_scale
from .metric import within_class_whitener
from .recipes import get_method
from .speakers import speaker_centred, speakers_to_name
from .train import MethodConfig, TrainResult, train_heads, transform_features

__all__ = ["DIGITS", "PAPER_SPLIT", "ENGINES", "PairedFeatures", "make_splits",
           "evaluate_split", "SplitResult", "run_protocol", "ZeroShotResult"]

DIGITS = tuple(range(1, 10))
"""Class pool of the splits: digits 1-9 (0 is left out, as in the paper's 1-7 / 8-9)."""
PAPER_SPLIT = ((1, 2, 3, 4, 5, 6, 7), (8, 9))
"""The paper's split: seen 1-7, unseen 8-9."""


@dataclass(frozen=True)
class PairedFeatures:
    """Frozen-encoder features of both modalities with labels and official-test flags."""

    image_values: np.ndarray
    """(N_image, F_image) float32 features."""
    image_labels: np.ndarray
    """(N_image,) int64 class ids."""
    image_is_test: np.ndarray
    """(N_image,) bool: sample comes from the official test split."""
    audio_values: np.ndarray
    """(N_audio, F_audio) float32 features."""
    audio_labels: np.ndarray
    """(N_audio,) int64 class ids."""
    audio_is_test: np.ndarray
    """(N_audio,) bool: sample comes from the official test split."""
    meta: dict = field(default_factory=dict)
    """Provenance (datasets, encoder settings, synthetic flag)."""
    audio_speakers: np.ndarray | None = None
    """(N_audio,) str: who spoke each utterance (the dataset's listing); None: unknown.
    Read only through the seen classes' training rows
    (``MethodConfig.fewshot_speaker_centring``)."""

    def __post_init__(self):
        if self.audio_speakers is not None and \
                np.shape(self.audio_speakers) != (self.audio_values.shape[0],):
            raise ConfigError(f"audio_speakers has shape {np.shape(self.audio_speakers)}; "
                              f"expected ({self.audio_values.shape[0]},)")
        for m in ("image", "audio"):
            v = getattr(self, f"{m}_values")
            if v.ndim != 2:
                raise ConfigError(f"{m} features must be 2-D (samples, features), got "
                                  f"shape {v.shape}")
            for extra in ("labels", "is_test"):
                a = getattr(self, f"{m}_{extra}")
                if a.shape != (v.shape[0],):
                    raise ConfigError(f"{m}_{extra} has shape {a.shape}; expected "
                                      f"({v.shape[0]},)")

    def select_kind(self, kind: str) -> "PairedFeatures":
        """The columns of feature kind ``kind`` (e.g. ``counts`` out of ``counts+input``).

        Data from :func:`projections.encode_pair` record where each kind's columns lie
        (``meta["feature_blocks"]``); data without that record must hold ``kind`` exactly.
        """
        held = self.meta.get("feature_kind")
        if held is None or held == kind:
            return self
        blocks = self.meta.get("feature_blocks") or {}
        parts = kind.split("+")
        if not all(p in blocks.get(m, {}) for m in ("image", "audio") for p in parts):
            raise ConfigError(f"the data hold {held!r} features, which lack {kind!r}; "
                              f"encode with encode_pair(kind={kind!r})")

        for m in ("image", "audio"):
            width = getattr(self, f"{m}_values").shape[1]
            if max(b for _, b in blocks[m].values()) != width:
                raise ConfigError(f"feature_blocks of {m} end at column "
                                  f"{max(b for _, b in blocks[m].values())} but the data have "
                                  f"{width}: the record does not describe these features")

        def cols(m):
            v = getattr(self, f"{m}_values")
            return np.concatenate([v[:, slice(*blocks[m][p])] for p in parts], axis=1)

        return dataclasses.replace(self, image_values=cols("image"),
                                   audio_values=cols("audio"),
                                   meta={**self.meta, "feature_kind": kind,
                                         "feature_blocks": None})

    @classmethod
    def from_features(cls, image, audio) -> "PairedFeatures":
        """From two ``lsm.Features`` (anything with values, labels, is_test, meta)."""
        return cls(np.asarray(image.values, np.float32), np.asarray(image.labels, np.int64),
                   np.asarray(image.is_test, bool), np.asarray(audio.values, np.float32),
                   np.asarray(audio.labels, np.int64), np.asarray(audio.is_test, bool),
                   {"image": dict(getattr(image, "meta", {}) or {}),
                    "audio": dict(getattr(audio, "meta", {}) or {})})


def make_splits(splits=None, split_seed: int = 0, seen=None, unseen=None,
                classes=DIGITS) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The (seen, unseen) class splits to evaluate.

    ``splits=None``: the one split given by ``seen``/``unseen`` (default the paper's);
    an int N: N distinct random splits of ``classes`` with as many unseen classes as
    ``unseen`` has (default 2), drawn with ``split_seed``; ``"all"``: every such split.
    """
    n_unseen = len(unseen) if unseen else len(PAPER_SPLIT[1])
    if splits is None:
        s = tuple(seen) if seen else None
        u = tuple(unseen) if unseen else None
        if s is None and u is None:
            return [PAPER_SPLIT]
        if u is None:
            u = tuple(c for c in classes if c not in s)
        if s is None:
            s = tuple(c for c in classes if c not in u)
        overlap = sorted(set(s) & set(u))
        if overlap:
            raise ConfigError(f"classes {overlap} are both seen and unseen; give disjoint "
                              "--seen and --unseen")
        return [(tuple(sorted(s)), tuple(sorted(u)))]
    if seen:
        raise ConfigError("--seen cannot be combined with --splits (splits draw their own)")
    every = [tuple(u) for u in itertools.combinations(sorted(classes), n_unseen)]
    if splits == "all":
        chosen = every
    else:
        n = int(splits)
        if not 1 <= n <= len(every):
            raise ConfigError(f"--splits must be between 1 and {len(every)} (or 'all'), "
                              f"got {n}")
        rng = np.random.default_rng(split_seed)
        chosen = [every[i] for i in sorted(rng.choice(len(every), n, replace=False))]
    return [(tuple(c for c in classes if c not in u), u) for u in chosen]


_ENSEMBLE_SEED_STEP = 1000
"""Seed offset between ensemble members (member j of seed s trains with s + 1000 j)."""


def _standardizer(values: np.ndarray, idx: np.ndarray, scale_floor: float = 0.0):
    ref = values[np.unique(idx)]
    mean, std = ref.mean(0), feature_scale(ref.std(0), scale_floor)
    return lambda x: (x - mean) / std


@dataclass
class SplitResult:
    """One run of the protocol, one (split, seed): its metrics and, when kept, its model.

    ``to_dict()`` is the run's JSON record (the metric fields, those that are not None);
    :class:`ZeroShotResult` aggregates these over runs.
    """

    seen_classes: list
    """The split's seen classes (training, validation, seen-class test)."""
    unseen_classes: list
    """The split's unseen classes (zero-shot and few-shot evaluation)."""
    seed: int
    """The run's seed (train/val draw, pairing, initialisation, batch order, episodes)."""
    method: str
    """Name of the recipe."""
    seen_test: dict | None = None
    """Zero-shot metrics on the seen classes' test files: ``{"audio_to_image": {...},
    "image_to_audio": {...}}``, each :func:`~projections.evaluate.retrieval_metrics` plus
    ``prototype`` (accuracy against the other modality's class prototypes). None for a
    method without training."""
    unseen: dict | None = None
    """The same metrics on the unseen classes (every sample of them)."""
    fewshot: dict = field(default_factory=dict)
    """``{str(K): {"unseen": {direction: {top1, n_queries, n_episodes, chance_top1}}}}``:
    K-shot nearest-prototype accuracy on the unseen classes, mean over episodes."""
    best_epoch: int | None = None
    """Epoch kept by validation (1-based; member 0 of an ensemble); None without training."""
    train_wall_s: float | None = None
    """Wall seconds of training (all ensemble members; a batched run's share of its
    stack's wall time); None without training."""
    train_flops: int | None = None
    """Counted training FLOPs (all ensemble members); None without training."""
    train: TrainResult | None = None
    """With ``keep_model``: member 0's :class:`~projections.train.TrainResult` (model,
    learning curves); None otherwise or without training."""
    parts: dict | None = None
    """With ``keep_model``: ``{"image": {part: indices}, "audio": {...}}`` of the parts
    ``train``, ``val``, ``test``, ``unseen`` (indices into the data's arrays)."""
    embeddings: dict | None = None
    """With ``keep_model``: ``{"image": (N_image, D), "audio": (N_audio, D)}`` embeddings
    of every sample (standardised raw features for a method without training)."""

    _METRICS = ("seen_classes", "unseen_classes", "seed", "method", "best_epoch",
                "train_wall_s", "train_flops", "seen_test", "unseen", "fewshot")

    def to_dict(self) -> dict:
        """The run's metrics as JSON-ready dicts (no model, parts or embeddings)."""
        out = {}
        for k in self._METRICS:
            v = getattr(self, k)
            if v is None or (k == "fewshot" and not v):
                continue
            out[k] = copy.deepcopy(v) if isinstance(v, (dict, list)) else v
        return out


@dataclass
class _Plan:
    """One run's split, prepared: what training and scoring both read."""

    data: PairedFeatures
    """The data (its labels; the features are ``x_*`` and ``f_*``)."""
    cfg: MethodConfig
    sp: "object"
    """The :class:`~projections.splits.CrossModalSplit`."""
    x_i: np.ndarray
    """The heads' image features after the method's transform (shared by every run of a
    protocol)."""
    x_a: np.ndarray
    """The heads' audio features after the method's transform."""
    f_i: np.ndarray
    """Few-shot's raw image features (``MethodConfig.fewshot_kind``), transformed."""
    f_a: np.ndarray
    """Few-shot's raw audio features."""
    seed: int

    def jobs(self):
        """The training jobs of the run: one per ensemble member."""
        from .batched import TrainJob

        d = self.data
        train = self.sp.pairs("train", d.image_labels, d.audio_labels)
        val = self.sp.pairs("val", d.image_labels, d.audio_labels)
        return [TrainJob(train, val, self.seed + _ENSEMBLE_SEED_STEP * j)
                for j in range(self.cfg.ensemble)]


def _method(method) -> MethodConfig:
    return get_method(method) if isinstance(method, str) else method


def _select(data: PairedFeatures, cfg: MethodConfig, kind: str | None = None
            ) -> PairedFeatures:
    kind = cfg.features if kind is None else kind
    try:
        return data.select_kind(kind)
    except ConfigError as exc:
        # the hint names what serves the whole recipe, not only the part that failed
        held = data.meta.get("feature_kind")
        why = (f"the data hold {held!r} features" if held is not None
               and "lack" in str(exc) else str(exc))
        raise ConfigError(f"method {cfg.name!r} runs on {kind!r} features, but {why}; "
                          f"encode with encode_pair(kind={cfg.encoded_kind!r}), the "
                          f"recipe's .encoded_kind") from None


def _transformed(data: PairedFeatures, cfg: MethodConfig):
    """``(x_i, x_a, f_i, f_a)``: the heads' features and few-shot's raw features, each in
    its kind and after its transform (the same arrays when the recipe does not tell them
    apart)."""
    heads = _select(data, cfg)
    x_i = transform_features(heads.image_values, cfg.feature_transform)
    x_a = transform_features(heads.audio_values, cfg.feature_transform)
    if (cfg.fewshot_kind, cfg.fewshot_feature_transform) == (cfg.features,
                                                               cfg.feature_transform):
        return x_i, x_a, x_i, x_a
    if cfg.fewshot_kind != cfg.features and data.meta.get("feature_kind") is None:
        # data without a kind record are taken as the heads' kind: they cannot serve another
        raise ConfigError(f"method {cfg.name!r} reads {cfg.fewshot_kind!r} features for "
                          f"few-shot, but the data record no feature kind to select them "
                          f"from; encode with encode_pair(kind={cfg.encoded_kind!r})")
    few = _select(data, cfg, cfg.fewshot_kind)
    return (x_i, x_a, transform_features(few.image_values, cfg.fewshot_feature_transform),
            transform_features(few.audio_values, cfg.fewshot_feature_transform))


def _prepare(data: PairedFeatures, seen, unseen, cfg: MethodConfig, seed: int,
             val_fraction: float, x=None) -> _Plan:
    """Check the classes, split, and transform (``x``: the transformed features if the
    caller has them already)."""
    from .splits import split_cross_modal

    for m in ("image", "audio"):
        absent = sorted(set(int(c) for c in (*seen, *unseen))
                        - set(np.unique(getattr(data, f"{m}_labels")).tolist()))
        if absent:
            # an absent unseen class would silently shrink the task (and raise its chance)
            raise ConfigError(f"classes {absent} have no {m} samples; choose seen/unseen "
                              "classes present in both modalities")
    sp = split_cross_modal(data.image_labels, data.image_is_test, data.audio_labels,
                           data.audio_is_test, seen=seen, unseen=unseen,
                           val_fraction=val_fraction, seed=seed)
    for part in ("train", "val", "test", "unseen"):
        if len(sp.image[part]) == 0 or len(sp.audio[part]) == 0:
            raise ConfigError(f"split seen={sp.seen} unseen={sp.unseen} leaves the "
                              f"{part!r} part empty in one modality; check the labels")
    x_i, x_a, f_i, f_a = x if x is not None else _transformed(data, cfg)
    return _Plan(data, cfg, sp, x_i, x_a, f_i, f_a, int(seed))


def _score(plan: _Plan, members: list, shots, episodes: int,
           keep_model: bool) -> SplitResult:
    """Embed with the trained ``members`` (none: no training) and evaluate the run."""
    data, cfg, sp, x_i, x_a = plan.data, plan.cfg, plan.sp, plan.x_i, plan.x_a
    seed = plan.seed
    raw_i = _standardizer(plan.f_i, sp.image["train"], cfg.scale_floor)(plan.f_i)
    raw_a = _standardizer(plan.f_a, sp.audio["train"], cfg.scale_floor)(plan.f_a)
    out = SplitResult(seen_classes=list(sp.seen), unseen_classes=list(sp.unseen),
                      seed=int(seed), method=cfg.name)
    trained = None
    if members:
        trained = members[0]
        # unit embeddings side by side / sqrt(n): a dot product is the members' mean cosine
        scale = np.float32(1.0 / np.sqrt(len(members)))
        z_i = np.concatenate([m.embed(x_i, "image") for m in members], axis=1) * scale
        z_a = np.concatenate([m.embed(x_a, "audio") for m in members], axis=1) * scale
        out.best_epoch = trained.best_epoch
        out.train_wall_s = sum(m.wall_s for m in members)
        out.train_flops = sum(m.train_flops for m in members)
        for part in ("test", "unseen"):
            ii, ia = sp.image[part], sp.audio[part]
            yi, ya = data.image_labels[ii], data.audio_labels[ia]
            a2i = retrieval_metrics(z_a[ia], ya, z_i[ii], yi)
            i2a = retrieval_metrics(z_i[ii], yi, z_a[ia], ya)
            metrics = {"audio_to_image": {**a2i, "prototype": prototype_accuracy(
                           z_a[ia], ya, z_i[ii], yi)["accuracy"]},
                       "image_to_audio": {**i2a, "prototype": prototype_accuracy(
                           z_i[ii], yi, z_a[ia], ya)["accuracy"]}}
            if part == "test":
                out.seen_test = metrics
            else:
                out.unseen = metrics
    else:
        z_i, z_a = raw_i, raw_a
    if shots:
        if cfg.fewshot_speaker_centring is not None and _speakers_known(data, sp):
            raw_a = speaker_centred(raw_a, data.audio_labels, data.audio_speakers,
                                    sp.audio["train"], sp.audio["unseen"],
                                    cfg.fewshot_speaker_centring)[0]
        # without heads few-shot reads the raw features themselves, centred as well
        fs_i, fs_a, fs_raw_i, fs_raw_a = z_i, z_a if members else raw_a, raw_i, raw_a
        if cfg.fewshot_whiten is not None:
            def whitened(values, m):
                labels = getattr(data, f"{m}_labels")
                whiten = within_class_whitener(values, labels, getattr(sp, m)["train"],
                                               cfg.fewshot_whiten)
                # few-shot reads only the unseen pool's rows (its episodes and its principal
                # directions): the others stay zero instead of costing an F x F product each
                pool = np.unique(getattr(sp, m)["unseen"])
                out = np.zeros(values.shape, np.float32)
                out[pool] = whiten(values[pool])
                return out
            fs_raw_i, fs_raw_a = whitened(raw_i, "image"), whitened(raw_a, "audio")
            if not cfg.trained:
                fs_i, fs_a = fs_raw_i, fs_raw_a
        rng = np.random.default_rng([int(seed), 7])
        for k in shots:
            eps = list(fewshot_episodes(data.image_labels, sp.image["unseen"],
                                        data.audio_labels, sp.audio["unseen"], int(k),
                                        episodes, rng))
            r = fewshot_accuracies(eps, fs_i, fs_a, data.image_labels, data.audio_labels,
                                   sources=cfg.fewshot_sources, raw_image=fs_raw_i,
                                   raw_audio=fs_raw_a, raw_weight=cfg.fewshot_raw_weight,
                                   transductive=cfg.fewshot_transductive,
                                   transductive_temperature=(
                                       cfg.fewshot_transductive_temperature),
                                   em_dims=cfg.fewshot_em_dims, em_steps=cfg.fewshot_em_steps,
                                   em_shrinkage=cfg.fewshot_em_shrinkage)
            out.fewshot[str(int(k))] = {"unseen": {
                d: {"top1": float(np.mean(r[d]["top1"])),
                    "n_queries": int(r[d]["n_queries"][-1]), "n_episodes": int(episodes),
                    "chance_top1": 1.0 / len(sp.unseen)}
                for d in ("audio_to_image", "image_to_audio")}}
    if keep_model:
        out.train = trained
        out.parts = {"image": sp.image, "audio": sp.audio}
        out.embeddings = {"image": z_i, "audio": z_a}
    return out


def _speakers_known(data: PairedFeatures, sp) -> bool:
    """Whether the seen classes' training utterances name two speakers or more, each
    with two utterances or more (what the discriminant needs)."""
    if data.audio_speakers is None:
        return False
    return len(speakers_to_name(data.audio_speakers, sp.audio["train"])) >= 2


def evaluate_split(data: PairedFeatures, seen, unseen, method: MethodConfig | str,
                   seed: int = 0, shots=(), episodes: int = 50, val_fraction: float = 0.2,
                   keep_model: bool = False) -> SplitResult:
    """Train (unless the method has no training) and evaluate one split with one seed.

    The heads train one after another (:func:`~projections.train.train_heads`, the
    per-run reference; :func:`run_protocol` trains many runs at once with the same
    result). With ``keep_model`` the result also holds the trained model, the parts and
    the embeddings (for plots).
    """
    cfg = _method(method)
    plan = _prepare(data, seen, unseen, cfg, seed, val_fraction)
    members = []
    if cfg.trained:
        members = [train_heads(cfg, plan.x_i, plan.x_a, job.train_pairs, job.val_pairs,
                               data.image_labels, data.audio_labels, seed=job.seed)
                   for job in plan.jobs()]
    return _score(plan, members, tuple(shots or ()), episodes, keep_model)


def _leaves(d: dict, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, prefix + (k,))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield prefix + (k,), float(v)


_RUN_ONLY = {"seed", "best_epoch", "train_wall_s", "train_flops"}


@dataclass
class ZeroShotResult:
    """All runs of a protocol and their aggregate; ``to_dict()`` is the JSON layout."""

    method: MethodConfig
    """The recipe evaluated."""
    runs: list
    """One :class:`SplitResult` per (split, seed), in split-major order."""
    splits: list
    """The (seen, unseen) splits, in order."""
    seeds: list
    """The training seeds."""
    shots: tuple = ()
    """Few-shot support sizes evaluated."""
    engine: str = "per-run"
    """How the heads were trained: ``per-run`` (one run after another) or ``batched``
    (many runs as one program); both give the same models and metrics."""

    def aggregate(self) -> dict:
        """Every numeric metric as ``{mean, std, ci95, n}`` over splits x seeds."""
        groups: dict = {}
        split_of: dict = {}
        for run in self.runs:
            r = run.to_dict()
            sid = (tuple(r["seen_classes"]), tuple(r["unseen_classes"]))
            for path, v in _leaves({k: v for k, v in r.items() if k not in _RUN_ONLY}):
                groups.setdefault(path, []).append(v)
                split_of.setdefault(path, []).append(self.splits.index(
                    (sid[0], sid[1])))
        agg: dict = {}
        for path, vals in groups.items():
            node = agg
            for p in path[:-1]:
                node = node.setdefault(p, {})
            fraction = not path[-1].startswith("n_")
            node[path[-1]] = summarize(vals, split_of[path], (0.0, 1.0) if fraction else None)
        return agg

    def to_dict(self) -> dict:
        """Aggregates under ``unseen``/``seen_test``/``fewshot``, plus chance, per_split."""
        agg = self.aggregate()
        out: dict = {"method": self.method.name, "n_splits": len(self.splits),
                     "n_seeds": len(self.seeds), "engine": self.engine}
        chance: dict = {}
        for part in ("unseen", "seen_test"):
            if part not in agg:
                continue
            out[part] = {}
            chance[part] = {}
            for d, m in agg[part].items():
                out[part][d] = {k: v for k, v in m.items() if not k.startswith("chance")}
                chance[part][d] = {k[len("chance_"):]: v["mean"] for k, v in m.items()
                                   if k.startswith("chance")}
        if "fewshot" in agg:
            by_shots = {}
            for k, parts in agg["fewshot"].items():
                by_shots[k] = {"unseen": {d: {kk: vv for kk, vv in m.items()
                                              if not kk.startswith("chance")}
                                          for d, m in parts["unseen"].items()}}
                chance.setdefault("fewshot", {})[k] = {
                    d: m["chance_top1"]["mean"] for d, m in parts["unseen"].items()}
            out["fewshot_by_shots"] = by_shots
            # the headline few-shot figure is the largest support size evaluated
            out["fewshot"] = {"shots": max(self.shots),
                              **by_shots[str(max(int(s) for s in self.shots))]}
        out["chance"] = chance
        if any(r.train_wall_s is not None for r in self.runs):
            out["training"] = {
                "wall_s": summarize([r.train_wall_s for r in self.runs]),
                "flops": summarize([r.train_flops for r in self.runs]),
                "best_epoch": summarize([r.best_epoch for r in self.runs]),
            }
        out["per_split"] = self.per_split()
        return out

    def per_split(self) -> list:
        """One entry per split: classes and the per-seed headline metrics."""
        rows = []
        for seen, unseen in self.splits:
            runs = [r.to_dict() for r in self.runs if tuple(r.unseen_classes) == unseen
                    and tuple(r.seen_classes) == seen]
            row: dict = {"seen": list(seen), "unseen": list(unseen),
                         "seeds": [r["seed"] for r in runs]}
            for path in _HEADLINE:
                vals = [_get(r, path) for r in runs]
                if any(v is not None for v in vals):
                    row[".".join(path)] = vals
            rows.append(row)
        return rows

    def headline(self) -> list[tuple[str, dict, float | None]]:
        """``(key, summary, chance)`` for each headline metric present."""
        agg = self.aggregate()
        rows = []
        for path in _HEADLINE:
            node = _get(agg, path)
            if node is None:
                continue
            chance = _get(agg, path[:-1] + ("chance_top1",))
            rows.append((".".join(path), node, None if chance is None else chance["mean"]))
        return rows

    def _repr_html_(self) -> str:
        head = (f"<b>{self.method.name}</b>: {len(self.splits)} split(s) x "
                f"{len(self.seeds)} seed(s)")
        lines = ["<table><tr><th>metric</th><th>mean</th><th>95 % CI</th><th>chance</th>"
                 "</tr>"]
        for key, s, ch in self.headline():
            lo, hi = s["ci95"]
            ci = "" if lo is None or not np.isfinite(lo) else f"{lo:.3f} - {hi:.3f}"
            lines.append(f"<tr><td>{key}</td><td>{s['mean']:.3f}</td><td>{ci}</td>"
                         f"<td>{'' if ch is None else f'{ch:.3f}'}</td></tr>")
        return head + "".join(lines) + "</table>"


def _get(d, path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


_HEADLINE = [
    ("unseen", "audio_to_image", "top1"), ("unseen", "image_to_audio", "top1"),
    ("seen_test", "audio_to_image", "top1"), ("seen_test", "image_to_audio", "top1"),
] + [("fewshot", str(k), "unseen", d, "top1") for k in (1, 2, 3, 5, 10)
     for d in ("audio_to_image", "image_to_audio")]


ENGINES = ("auto", "batched", "per-run")
"""How :func:`run_protocol` trains: ``per-run`` calls :func:`evaluate_split` run after run
(the reference); ``batched`` trains the runs as stacks (:mod:`projections.batched`), with
the same models and metrics bit for bit; ``auto`` is ``batched`` unless the recipe is
one whose stacked gradients are not bit-identical (see :func:`batched_is_exact`)."""


def batched_is_exact(cfg: MethodConfig) -> bool:
    """Whether stacked training reproduces :func:`~projections.train.train_heads` bit for bit.

    True for every loss alone and for any combination without the prototypical loss.
    The prototypical loss is computed slice by slice on a stack; mixed with CWCL,
    alignment, uniformity or the structure term, its gradient reaches the embeddings
    summed in another order than in a 2-D batch (equal up to float rounding only).
    """
    return not (cfg.proto_weight and (cfg.cwcl_weight or cfg.align_weight
                                      or cfg.uniform_weight or cfg.structure_weight))


def run_protocol(data: PairedFeatures, method: MethodConfig | str = "default", *,
                 splits=None, split_seed: int = 0, seen=None, unseen=None, seeds=3,
                 shots=(), episodes: int = 50, classes=DIGITS, progress: bool = True,
                 engine: str = "auto", workers: int = 1, stack_size: int | None = None,
                 keep_models: bool = False) -> ZeroShotResult:
    """Evaluate ``method`` over the chosen splits x seeds; see :func:`make_splits`.

    ``seeds`` is a count (seeds 0..n-1) or an explicit list; ``classes`` is the pool the
    random splits draw from. ``engine`` is one of :data:`ENGINES`. The batched engine
    trains stacks of at most ``stack_size`` runs (default: the runs divided evenly among
    the workers) in ``workers`` processes (one: in this process); torch's own thread
    count is the caller's, in every worker (the CLI pins one, so two workers keep two
    cores busy). Neither changes a result.
    ``keep_models`` keeps every run's model, parts and embeddings (:class:`SplitResult`).
    """
    from tqdm.auto import tqdm

    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if workers < 1 or (stack_size is not None and stack_size < 1):
        raise ConfigError(f"workers and stack_size must be >= 1, got {workers} and "
                          f"{stack_size}")
    cfg = _method(method)
    split_list = make_splits(splits, split_seed, seen, unseen, classes)
    seed_list = list(range(int(seeds))) if np.isscalar(seeds) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("at least one seed is needed")
    shots = tuple(int(k) for k in (shots or ()))
    if engine == "auto":
        engine = "batched" if batched_is_exact(cfg) else "per-run"
    bar = tqdm(total=len(split_list) * len(seed_list), desc=f"zeroshot {cfg.name}",
               disable=not progress)
    if engine == "per-run":
        runs = []
        for s, u in split_list:
            for seed in seed_list:
                runs.append(evaluate_split(data, s, u, cfg, seed=seed, shots=shots,
                                           episodes=episodes, keep_model=keep_models))
                bar.update(1)
    else:
        runs = _run_batched(data, cfg, [(s, u, seed) for s, u in split_list
                                        for seed in seed_list], shots, episodes, workers,
                            stack_size, keep_models, bar)
    bar.close()
    return ZeroShotResult(method=cfg, runs=runs, splits=split_list, seeds=seed_list,
                          shots=shots, engine=engine)


def _run_batched(data, cfg, runs, shots, episodes, workers, stack_size, keep_models,
                 bar) -> list[SplitResult]:
    """Every run (seen, unseen, seed) of the protocol with stacked training.

    With ``workers`` > 1 the stacks run in that many worker *processes* (spawned, each on
    the caller's torch thread count): the heads' steps are small operations whose Python
    dispatch holds the GIL, so threads share one core's worth of it, while processes keep
    every core busy. A worker computes exactly what the caller would (same code, same
    inputs, same threads), so results do not depend on ``workers``.
    """
    x = _transformed(data, cfg)
    # the plans and workers read labels only: features travel as x
    data = dataclasses.replace(data, image_values=x[0][:, :0], audio_values=x[1][:, :0])
    plans = [_prepare(data, s, u, cfg, seed, 0.2, x) for s, u, seed in runs]
    size = stack_size or -(-len(plans) // workers)
    # consecutive runs share a split, hence batch sizes: fewer sub-stacks per step
    chunks = [plans[i:i + size] for i in range(0, len(plans), size)]
    if workers == 1 or len(chunks) == 1:
        done = []
        for c in chunks:
            done.append(_work(cfg, x, data.image_labels, data.audio_labels, c, shots,
                              episodes, keep_models))
            bar.update(len(c))
        return [r for chunk in done for r in chunk]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    # the workers read the features once (initializer), the plans' splits per stack
    light = [[(p.sp, p.seed) for p in c] for c in chunks]
    done = [None] * len(chunks)
    with ProcessPoolExecutor(min(workers, len(chunks)),
                             mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init,
                             initargs=(torch.get_num_threads(), data, cfg, x,
                                       _blas_threads())) as pool:
        futures = {pool.submit(_work_remote, c, shots, episodes, keep_models): i
                   for i, c in enumerate(light)}
        from concurrent.futures import as_completed

        for f in as_completed(futures):
            i = futures[f]
            done[i] = f.result()
            bar.update(len(chunks[i]))
    return [r for chunk in done for r in chunk]


def _work(cfg, x, image_labels, audio_labels, chunk, shots, episodes, keep_models):
    """Train one stack of runs (``chunk``: :class:`_Plan` s) and score each run."""
    from .batched import train_heads_batched

    members = []
    if cfg.trained:
        jobs = [job for plan in chunk for job in plan.jobs()]
        trained = train_heads_batched(cfg, x[0], x[1], jobs, image_labels, audio_labels,
                                      val_loss=keep_models)
        members = [trained[i:i + cfg.ensemble] for i in range(0, len(trained), cfg.ensemble)]
    return [_score(plan, members[i] if members else [], shots, episodes, keep_models)
            for i, plan in enumerate(chunk)]


_WORKER: dict = {}
"""A worker process's features and recipe (set once by :func:`_worker_init`)."""


def _blas_threads() -> int | None:
    """The fewest threads any BLAS pool of this process uses (None: unknown)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl comes with scipy
        return None
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return min(counts) if counts else None


def _worker_init(threads: int, data, cfg, x, blas_threads=None) -> None:
    import torch

    torch.set_num_threads(threads)
    if blas_threads is not None:
        # numpy's BLAS as the caller has it (a pool per process would spin on a busy
        # machine where the caller capped it)
        from threadpoolctl import threadpool_limits

        _WORKER["blas"] = threadpool_limits(blas_threads, user_api="blas")
    _WORKER.update(data=data, cfg=cfg, x=x)


def _work_remote(light, shots, episodes, keep_models):
    """:func:`_work` in a worker process, from the runs' splits and seeds."""
    data, cfg, x = _WORKER["data"], _WORKER["cfg"], _WORKER["x"]
    chunk = [_Plan(data, cfg, sp, *x, seed) for sp, seed in light]
    return _work(cfg, x, data.image_labels, data.audio_labels, chunk, shots, episodes,
                 keep_models)
