"""Cross-modal pairing and leak-free splits, on label arrays only (no data loading).

Rule (documented for users, tested for leakage):

* Unseen classes (default 8, 9) take *every* sample of those classes, from both official
  splits of each dataset; nothing of them reaches training or model selection.
* Seen classes (default 1-7): the official *test* files form ``test``; the official *train*
  files are split per class into ``train`` and ``val`` (``val_fraction`` of each class,
  seeded), so model selection never touches a test file.
* Pairs: within a part and a class, image and audio samples are each shuffled with the
  seeded generator and matched in order, cycling the shorter list, so every sample of the
  larger modality is used once and the smaller one's samples are reused evenly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rram_lsm.errors import ConfigError

__all__ = ["PARTS", "CrossModalSplit", "split_cross_modal", "pair_by_class"]

PARTS = ("train", "val", "test", "unseen")


@dataclass(frozen=True)
class CrossModalSplit:
    """Sample indices of each part, per modality, for one seen/unseen class split."""

    seen: tuple[int, ...]
    """Classes used for training, validation and seen-class testing."""
    unseen: tuple[int, ...]
    """Classes held out entirely, for zero-shot and few-shot evaluation."""
    image: dict = field(default_factory=dict)
    """part name -> int64 indices into the image arrays."""
    audio: dict = field(default_factory=dict)
    """part name -> int64 indices into the audio arrays."""
    seed: int = 0
    """Seed that drew the train/val split."""

    def pairs(self, part: str, image_labels, audio_labels, seed: int | None = None):
        """Paired ``(image_idx, audio_idx)`` for ``part`` (same class in each pair)."""
        if part not in PARTS:
            raise ConfigError(f"unknown part {part!r}; expected one of {PARTS}")
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return pair_by_class(
            np.asarray(image_labels), self.image[part], np.asarray(audio_labels),
            self.audio[part], rng,
        )


def _check_classes(seen, unseen) -> tuple[tuple[int, ...], tuple[int, ...]]:
    seen_t = tuple(sorted(int(c) for c in seen))
    unseen_t = tuple(sorted(int(c) for c in unseen))
    if not seen_t or not unseen_t:
        raise ConfigError("both seen and unseen class lists must be non-empty")
    overlap = set(seen_t) & set(unseen_t)
    if overlap:
        raise ConfigError(f"classes {sorted(overlap)} are both seen and unseen")
    return seen_t, unseen_t


def _split_one(labels, is_test, seen, unseen, val_fraction, rng) -> dict:
    labels = np.asarray(labels)
    is_test = np.asarray(is_test, dtype=bool)
    if labels.shape != is_test.shape:
        raise ConfigError(
            f"labels {labels.shape} and official test flags {is_test.shape} differ in shape"
        )
    parts = {name: [] for name in PARTS}
    for c in seen:
        train_pool = np.flatnonzero((labels == c) & ~is_test)
        train_pool = train_pool[rng.permutation(len(train_pool))]
        n_val = int(round(val_fraction * len(train_pool)))
        if len(train_pool) >= 2:
            n_val = min(max(n_val, 1), len(train_pool) - 1)
        parts["val"].append(np.sort(train_pool[:n_val]))
        parts["train"].append(np.sort(train_pool[n_val:]))
        parts["test"].append(np.flatnonzero((labels == c) & is_test))
    for c in unseen:
        parts["unseen"].append(np.flatnonzero(labels == c))
    return {k: (np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64))
            for k, v in parts.items()}


def split_cross_modal(image_labels, image_is_test, audio_labels, audio_is_test,
                      seen=(1, 2, 3, 4, 5, 6, 7), unseen=(8, 9), val_fraction: float = 0.2,
                      seed: int = 0) -> CrossModalSplit:
    """Split both modalities into train/val/test (seen) and unseen parts; see module doc."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    seen_t, unseen_t = _check_classes(seen, unseen)
    rng = np.random.default_rng(seed)
    image = _split_one(image_labels, image_is_test, seen_t, unseen_t, val_fraction, rng)
    audio = _split_one(audio_labels, audio_is_test, seen_t, unseen_t, val_fraction, rng)
    return CrossModalSplit(seen=seen_t, unseen=unseen_t, image=image, audio=audio, seed=seed)


def pair_by_class(labels_a, idx_a, labels_b, idx_b, rng: np.random.Generator):
    """Pair indices of two modalities class by class; see the module docstring for the rule."""
    labels_a = np.asarray(labels_a)
    labels_b = np.asarray(labels_b)
    out_a, out_b = [], []
    for c in np.union1d(labels_a[idx_a], labels_b[idx_b]):
        a = np.asarray(idx_a)[labels_a[idx_a] == c]
        b = np.asarray(idx_b)[labels_b[idx_b] == c]
        if len(a) == 0 or len(b) == 0:
            continue  # a class present in one modality only cannot be paired
        a = a[rng.permutation(len(a))]
        b = b[rng.permutation(len(b))]
        n = max(len(a), len(b))
        out_a.append(a[np.arange(n) % len(a)])
        out_b.append(b[np.arange(n) % len(b)])
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_a).astype(np.int64), np.concatenate(out_b).astype(np.int64)
