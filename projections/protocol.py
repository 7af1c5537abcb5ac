"""The evaluation protocol: splits x seeds, zero-shot and few-shot, aggregated with CIs.

For one split (seen / unseen classes) and one seed: ``lsm.data.split_cross_modal`` divides
both modalities into train / val (official train files of seen classes), test (official
test files of seen classes) and unseen (every sample of unseen classes). The heads train on
train pairs and are selected on val pairs; then, and only then, embeddings of the seen test
and unseen parts are scored. Few-shot draws its paired support from the unseen part and
queries every other unseen sample.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np

from rram_lsm.errors import ConfigError

from .evaluate import (fewshot_accuracy, fewshot_episodes, prototype_accuracy,
                       retrieval_metrics, summarize)
from .metric import within_class_whitener
from .train import MethodConfig, TrainResult, get_method, train_heads, transform_features

__all__ = ["DIGITS", "PAPER_SPLIT", "PairedFeatures", "make_splits", "evaluate_split",
           "run_protocol", "ZeroShotResult"]

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

    def __post_init__(self):
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


def _standardizer(values: np.ndarray, idx: np.ndarray):
    ref = values[np.unique(idx)]
    mean, std = ref.mean(0), np.maximum(ref.std(0), 1e-6)
    return lambda x: (x - mean) / std


def evaluate_split(data: PairedFeatures, seen, unseen, method: MethodConfig | str,
                   seed: int = 0, shots=(), episodes: int = 50, val_fraction: float = 0.2,
                   keep_model: bool = False) -> dict:
    """Train (unless the method has no training) and evaluate one split with one seed.

    Returns a dict of metrics (see the module doc); with ``keep_model`` it also holds the
    :class:`TrainResult` (``"train"``) and the part indices (``"parts"``) for plotting.
    """
    from .splits import split_cross_modal

    cfg = get_method(method) if isinstance(method, str) else method
    try:
        data = data.select_kind(cfg.features)
    except ConfigError as exc:
        raise ConfigError(f"method {cfg.name!r} runs on {cfg.features!r} features: {exc}") \
            from None
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
    x_i = transform_features(data.image_values, cfg.feature_transform)
    x_a = transform_features(data.audio_values, cfg.feature_transform)
    raw_i = _standardizer(x_i, sp.image["train"])(x_i)
    raw_a = _standardizer(x_a, sp.audio["train"])(x_a)
    out: dict = {"seen_classes": list(sp.seen), "unseen_classes": list(sp.unseen),
                 "seed": int(seed), "method": cfg.name}
    trained = None
    if cfg.trained:
        members = [train_heads(cfg, x_i, x_a,
                               sp.pairs("train", data.image_labels, data.audio_labels),
                               sp.pairs("val", data.image_labels, data.audio_labels),
                               data.image_labels, data.audio_labels,
                               seed=seed + _ENSEMBLE_SEED_STEP * j)
                   for j in range(cfg.ensemble)]
        trained = members[0]
        # unit embeddings side by side / sqrt(n): a dot product is the members' mean cosine
        scale = np.float32(1.0 / np.sqrt(cfg.ensemble))
        z_i = np.concatenate([m.embed(x_i, "image") for m in members], axis=1) * scale
        z_a = np.concatenate([m.embed(x_a, "audio") for m in members], axis=1) * scale
        out.update(best_epoch=trained.best_epoch,
                   train_wall_s=sum(m.wall_s for m in members),
                   train_flops=sum(m.train_flops for m in members))
        for part in ("test", "unseen"):
            ii, ia = sp.image[part], sp.audio[part]
            yi, ya = data.image_labels[ii], data.audio_labels[ia]
            a2i = retrieval_metrics(z_a[ia], ya, z_i[ii], yi)
            i2a = retrieval_metrics(z_i[ii], yi, z_a[ia], ya)
            key = "seen_test" if part == "test" else "unseen"
            out[key] = {"audio_to_image": {**a2i, "prototype": prototype_accuracy(
                            z_a[ia], ya, z_i[ii], yi)["accuracy"]},
                        "image_to_audio": {**i2a, "prototype": prototype_accuracy(
                            z_i[ii], yi, z_a[ia], ya)["accuracy"]}}
    else:
        z_i, z_a = raw_i, raw_a
    if shots:
        fs_i, fs_a, fs_raw_i, fs_raw_a = z_i, z_a, raw_i, raw_a
        if cfg.fewshot_whiten is not None:
            def whitened(values, m):
                labels = getattr(data, f"{m}_labels")
                return within_class_whitener(values, labels, getattr(sp, m)["train"],
                                             cfg.fewshot_whiten)(values)
            fs_raw_i, fs_raw_a = whitened(raw_i, "image"), whitened(raw_a, "audio")
            if not cfg.trained:
                fs_i, fs_a = fs_raw_i, fs_raw_a
        rng = np.random.default_rng([int(seed), 7])
        out["fewshot"] = {}
        for k in shots:
            acc = {"audio_to_image": [], "image_to_audio": []}
            n_q = {"audio_to_image": 0, "image_to_audio": 0}
            for ep in fewshot_episodes(data.image_labels, sp.image["unseen"],
                                       data.audio_labels, sp.audio["unseen"], int(k),
                                       episodes, rng):
                r = fewshot_accuracy(ep, fs_i, fs_a, data.image_labels, data.audio_labels,
                                     sources=cfg.fewshot_sources, raw_image=fs_raw_i,
                                     raw_audio=fs_raw_a, raw_weight=cfg.fewshot_raw_weight)
                for d in acc:
                    acc[d].append(r[d]["top1"])
                    n_q[d] = r[d]["n_queries"]
            out["fewshot"][str(int(k))] = {"unseen": {
                d: {"top1": float(np.mean(acc[d])), "n_queries": n_q[d],
                    "n_episodes": int(episodes), "chance_top1": 1.0 / len(sp.unseen)}
                for d in acc}}
    if keep_model:
        out["train"] = trained
        out["parts"] = {"image": sp.image, "audio": sp.audio}
        out["embeddings"] = {"image": z_i, "audio": z_a}
    return out


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
    """One metrics dict per (split, seed), as :func:`evaluate_split` returns."""
    splits: list
    """The (seen, unseen) splits, in order."""
    seeds: list
    """The training seeds."""
    shots: tuple = ()
    """Few-shot support sizes evaluated."""

    def aggregate(self) -> dict:
        """Every numeric metric as ``{mean, std, ci95, n}`` over splits x seeds."""
        groups: dict = {}
        split_of: dict = {}
        for r in self.runs:
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
                     "n_seeds": len(self.seeds)}
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
        if any("train_wall_s" in r for r in self.runs):
            out["training"] = {
                "wall_s": summarize([r["train_wall_s"] for r in self.runs]),
                "flops": summarize([r["train_flops"] for r in self.runs]),
                "best_epoch": summarize([r["best_epoch"] for r in self.runs]),
            }
        out["per_split"] = self.per_split()
        return out

    def per_split(self) -> list:
        """One entry per split: classes and the per-seed headline metrics."""
        rows = []
        for seen, unseen in self.splits:
            runs = [r for r in self.runs if tuple(r["unseen_classes"]) == unseen
                    and tuple(r["seen_classes"]) == seen]
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


def run_protocol(data: PairedFeatures, method: MethodConfig | str = "default", *,
                 splits=None, split_seed: int = 0, seen=None, unseen=None, seeds=3,
                 shots=(), episodes: int = 50, classes=DIGITS,
                 progress: bool = True) -> ZeroShotResult:
    """Evaluate ``method`` over the chosen splits x seeds; see :func:`make_splits`.

    ``seeds`` is a count (seeds 0..n-1) or an explicit list; ``classes`` is the pool the
    random splits draw from.
    """
    from tqdm.auto import tqdm

    cfg = get_method(method) if isinstance(method, str) else method
    split_list = make_splits(splits, split_seed, seen, unseen, classes)
    seed_list = list(range(int(seeds))) if np.isscalar(seeds) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("at least one seed is needed")
    shots = tuple(int(k) for k in (shots or ()))
    runs = []
    bar = tqdm(total=len(split_list) * len(seed_list), desc=f"zeroshot {cfg.name}",
               disable=not progress)
    for s, u in split_list:
        for seed in seed_list:
            runs.append(evaluate_split(data, s, u, cfg, seed=seed, shots=shots,
                                       episodes=episodes))
            bar.update(1)
    bar.close()
    return ZeroShotResult(method=cfg, runs=runs, splits=split_list, seeds=seed_list,
                          shots=shots)
