"""Choosing a method on seen-class validation data only (nested pseudo zero-shot).

The data are cut down to the *official training files of the seen classes* (default the
paper's 1-7); nothing of the unseen classes and no official test file is read. Inside
that, a seeded fraction of each class plays the role of "test", and random splits of the
seen classes into pseudo-seen / pseudo-unseen (e.g. 5 / 2) replay the whole protocol. Each
candidate is scored by the mean of pseudo-unseen zero-shot audio->image top-1 and
``shots``-shot audio->image top-1 (chance stands in for the zero-shot figure of a method
that cannot do zero-shot); the best score wins. The same choice then serves every
split of the real evaluation: it is never re-made per split.
"""
from __future__ import annotations

import numpy as np

from rram_lsm.errors import ConfigError

from .protocol import PAPER_SPLIT, PairedFeatures, run_protocol
from .recipes import candidates, get_method
from .train import MethodConfig

__all__ = ["validation_view", "select_method", "candidates"]


def validation_view(data: PairedFeatures, seen=PAPER_SPLIT[0], test_fraction: float = 0.2,
                    seed: int = 0) -> PairedFeatures:
    """Official-train samples of ``seen`` classes only, a seeded part marked as test."""
    rng = np.random.default_rng(seed)
    parts = {}
    for m in ("image", "audio"):
        labels = getattr(data, f"{m}_labels")
        keep = np.flatnonzero(np.isin(labels, seen) & ~getattr(data, f"{m}_is_test"))
        is_test = np.zeros(len(keep), bool)
        for c in seen:
            pos = np.flatnonzero(labels[keep] == c)
            n_test = int(round(test_fraction * len(pos)))
            is_test[rng.choice(pos, n_test, replace=False)] = True
        parts[m] = (getattr(data, f"{m}_values")[keep], labels[keep], is_test)
        if m == "audio":
            speakers = (None if data.audio_speakers is None
                        else np.asarray(data.audio_speakers)[keep])
    return PairedFeatures(*parts["image"], *parts["audio"],
                          meta={**data.meta, "validation_view": {
                              "seen": list(seen), "test_fraction": test_fraction,
                              "seed": seed}},
                          audio_speakers=speakers)


def select_method(data: PairedFeatures, candidates, *, seen=PAPER_SPLIT[0],
                  n_pseudo_unseen: int = 2, n_splits: int = 6, seeds=2, shots: int = 5,
                  split_seed: int = 0, progress: bool = True, engine: str = "auto",
                  workers: int = 1):
    """Score each candidate on the validation view; return ``(best_name, scores)``.

    ``scores[name]`` holds the pseudo-unseen zero-shot and few-shot audio->image top-1
    means and their average ``score``. Candidates are names in ``METHODS`` or configs.
    Candidates without training are scored for reference but, when any trained one is
    given, cannot be chosen: the default must retrieve, i.e. report zero-shot figures.
    ``data`` is one :class:`PairedFeatures`, or a mapping from feature kind to features
    when candidates run on different kinds (``MethodConfig.encoded_kind``). ``engine`` and
    ``workers`` are :func:`~projections.protocol.run_protocol`'s (the scores do not
    depend on them).
    """
    if not candidates:
        raise ConfigError("select_method needs at least one candidate")
    by_kind = dict(data) if isinstance(data, dict) else None
    views: dict = {}
    scores, configs = {}, {}
    for cand in candidates:
        cfg = get_method(cand) if isinstance(cand, str) else cand
        if not isinstance(cfg, MethodConfig):
            raise ConfigError(f"candidate {cand!r} is neither a method name nor a "
                              "MethodConfig")
        if by_kind is not None and cfg.encoded_kind not in by_kind:
            raise ConfigError(f"candidate {cfg.name!r} needs {cfg.encoded_kind!r} features; "
                              f"given {sorted(by_kind)}")
        kind = cfg.encoded_kind if by_kind is not None else None
        if kind not in views:
            views[kind] = validation_view(by_kind[kind] if by_kind is not None else data,
                                          seen)
        res = run_protocol(views[kind], cfg, splits=n_splits, split_seed=split_seed,
                           unseen=tuple(range(n_pseudo_unseen)), seeds=seeds,
                           shots=(shots,), classes=tuple(sorted(seen)), progress=progress,
                           engine=engine, workers=workers)
        agg = res.aggregate()
        fs = agg["fewshot"][str(shots)]["unseen"]["audio_to_image"]["top1"]["mean"]
        zs = agg.get("unseen", {}).get("audio_to_image", {}).get("top1", {}).get("mean")
        # a method without zero-shot ability scores chance there, not a free pass
        zs_or_chance = 1.0 / n_pseudo_unseen if zs is None else zs
        score = 0.5 * (zs_or_chance + fs)
        scores[cfg.name] = {"zeroshot_top1": zs, "fewshot_top1": fs, "score": score}
        configs[cfg.name] = cfg
    trained = [name for name, cfg in configs.items() if cfg.trained] or list(scores)
    best = max(trained, key=lambda k: scores[k]["score"])
    return best, scores
