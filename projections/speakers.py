"""Speaker-centred few-shot features: the speaker's offset taken off each spoken digit.

In a spoken-digit pool the largest clusters are speakers, not digits (FSDD's weakest
pairs: the speaker carries over five times the digit's share of the variance,
docs/zeroshot.md), so five labelled utterances cannot tell a digit's offset from a
speaker's. Each speaker says every digit, so subtracting a speaker's mean over the pool
from that speaker's pool utterances removes the offset and keeps the digits apart. The
queries' speakers are not known: a linear discriminant over speakers, fitted on the seen
classes' training utterances (whose speaker labels are training metadata), predicts
them. Its speaker means are offsets within each digit (each seen digit's mean taken
off first), so they transfer to digits it never heard; its metric is the scatter within
(speaker, digit) cells, shrunk towards a scaled identity as the few-shot whitener's is.
An unseen pool utterance is compared after the pool's own mean is taken off, the
unseen digits' shared part.
"""
from __future__ import annotations

import numpy as np
import torch

from rram_lsm.errors import ConfigError, ShapeError

from .metric import _shrunk_scatter

__all__ = ["predict_speakers", "speakers_to_name", "centre_by_group", "speaker_centred"]


def predict_speakers(values: np.ndarray, labels: np.ndarray, speakers: np.ndarray,
                     train: np.ndarray, pool: np.ndarray, shrinkage: float = 0.2
                     ) -> np.ndarray:
    """The predicted speaker of each row of ``values[pool]``, from ``values[train]``.

    ``speakers[train]`` must name at least two speakers with two rows or more
    (:func:`speakers_to_name`; rarer speakers are left out); ``speakers[pool]`` is never
    read. ``shrinkage`` in (0, 1] of the within-cell scatter
    towards a scaled identity.
    """
    if not 0.0 < shrinkage <= 1.0:
        raise ConfigError(f"speaker shrinkage must be in (0, 1], got {shrinkage}")
    if np.ndim(values) != 2:
        raise ShapeError(f"values must be (N, F), got shape {np.shape(values)}")
    train, pool = np.unique(np.asarray(train)), np.asarray(pool)
    names = speakers_to_name(speakers, train)
    if len(names) < 2:
        raise ConfigError("predicting speakers needs >= 2 speakers with >= 2 training "
                          f"rows each; got {len(names)}")
    # a speaker with one training row has no within-cell spread to fit: not a candidate
    train = train[np.isin(np.asarray(speakers)[train], names)]
    who = np.asarray(speakers)[train]
    ref = torch.from_numpy(np.asarray(values[train], np.float64))
    digit = np.asarray(labels)[train]
    for c in np.unique(digit):
        members = torch.from_numpy(digit == c)
        ref[members] -= ref[members].mean(0)
    which = torch.from_numpy(np.searchsorted(names, who))
    offsets = torch.stack([ref[which == k].mean(0) for k in range(len(names))])
    scatter = _shrunk_scatter(ref - offsets[which], shrinkage)[0]
    # linear discriminant scores 2 o^T S^-1 x - o^T S^-1 o: one Cholesky solve, no inverse
    factor = torch.linalg.cholesky(scatter)
    metric_offsets = torch.cholesky_solve(offsets.T, factor)          # S^-1 o, (F, K)
    x = torch.from_numpy(np.asarray(values[pool], np.float64))
    x = x - x.mean(0)
    scores = 2.0 * x @ metric_offsets - (offsets.T * metric_offsets).sum(0)
    return names[scores.argmax(1).numpy()]


def speakers_to_name(speakers: np.ndarray, train: np.ndarray) -> np.ndarray:
    """The speakers a discriminant fitted on ``train`` can name: those with two training
    rows or more (sorted). Centring needs two of them."""
    names, counts = np.unique(np.asarray(speakers)[np.unique(np.asarray(train))],
                              return_counts=True)
    return names[counts >= 2]


def centre_by_group(values: np.ndarray, rows: np.ndarray, groups: np.ndarray
                    ) -> np.ndarray:
    """A copy of ``values`` whose ``rows`` each have their group's mean over ``rows``
    taken off (``groups``: one label per row of ``rows``); other rows unchanged."""
    rows, groups = np.asarray(rows), np.asarray(groups)
    if groups.shape != rows.shape:
        raise ShapeError(f"groups {groups.shape} must match rows {rows.shape}")
    out = np.array(values, copy=True)
    for g in np.unique(groups):
        mine = rows[groups == g]
        out[mine] -= out[mine].mean(0)
    return out


def speaker_centred(values: np.ndarray, labels: np.ndarray, speakers: np.ndarray,
                    train: np.ndarray, pool: np.ndarray, shrinkage: float = 0.2):
    """``(centred, predicted)``: ``values`` with each pool row's predicted speaker's pool
    mean taken off (:func:`predict_speakers`, :func:`centre_by_group`), and the
    predictions (one per row of ``np.unique(pool)``, in that order)."""
    pool = np.unique(np.asarray(pool))
    predicted = predict_speakers(values, labels, speakers, train, pool, shrinkage)
    return centre_by_group(values, pool, predicted), predicted
