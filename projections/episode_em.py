"""Transductive refinement of a few-shot episode by a tied-covariance Gaussian mixture.

Nearest prototypes by cosine assume every class spreads like the seen classes did (the
within-class whitening is fitted on them). An unseen pair can spread differently: even
its true class means reach 0.83 on spoken 2 vs 3, where a linear classifier trained on
labels reaches 0.95 (docs/zeroshot.md, "What bounds the weak pairs"). With the episode's
unlabelled queries the spread of the unseen classes themselves can be estimated: EM of a
Gaussian mixture with one covariance shared by the classes (semi-supervised linear
discriminant analysis; the support samples keep their labels, the queries enter with
posteriors), in the top principal directions of the episode's samples so that a few
hundred queries can estimate it. Query labels are never read.

The principal directions come from every sample of the unseen pool, support and query
alike; that pool is the same for every episode of a run, so :func:`pool_basis` runs once
per run and modality.
"""
from __future__ import annotations

import numpy as np
import torch

from rram_lsm.errors import ConfigError

__all__ = ["pool_basis", "tied_gaussian_em"]


def pool_basis(units: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, basis)``: the mean of ``units`` ``(n, F)`` and its top ``dims`` principal
    directions ``(F, d)``, ``d = min(dims, n - 1, F)``; coordinates are
    ``(x - mean) @ basis``."""
    if dims < 1:
        raise ConfigError(f"dims must be >= 1, got {dims}")
    x = torch.from_numpy(np.ascontiguousarray(units, np.float64))
    mean = x.mean(0)
    centred = x - mean
    n, n_features = centred.shape
    d = min(int(dims), n - 1, n_features)
    if d < 1:
        raise ConfigError(f"the pool of {n} samples has no principal direction")
    if n < n_features:  # decompose the smaller of the two Gram matrices
        val, vec = torch.linalg.eigh(centred @ centred.T)
        # directions of no variance have no unit vector C^T v: keep the pool's rank
        d = min(d, int((val > 1e-12 * val[-1].clamp_min(1e-300)).sum()))
        if d < 1:
            raise ConfigError("the pool's samples are all equal: no principal direction")
        vec = centred.T @ vec[:, -d:]
        basis = vec / vec.norm(dim=0)
    else:
        basis = torch.linalg.eigh(centred.T @ centred)[1][:, -d:]
    return mean.numpy(), basis.flip(1).numpy()


def tied_gaussian_em(query: np.ndarray, support: np.ndarray, support_class: np.ndarray,
                     posterior: np.ndarray, steps: int, shrinkage: float) -> np.ndarray:
    """Class log-likelihoods ``(n_query, C)`` after ``steps`` EM steps.

    ``query`` ``(n, d)`` and ``support`` ``(s, d)`` are coordinates; ``support_class``
    ``(s,)`` holds each support sample's class index; ``posterior`` ``(n, C)`` is the
    queries' starting posterior (e.g. from the prototypes' scores). Each step re-estimates
    the class means and the pooled covariance from support (weight 1) and queries
    (weight: posterior), shrinks the covariance towards ``trace / d`` times the identity
    by ``shrinkage`` (> 0: a few hundred queries in ``d`` directions need not span
    them), and sets the posteriors from the linear discriminant scores (equal class
    priors).
    """
    if int(steps) != steps or steps < 1 or not 0.0 < shrinkage <= 1.0:
        raise ConfigError(f"steps must be a whole number >= 1 and shrinkage in (0, 1], got "
                          f"{steps} and {shrinkage}")
    n_classes = posterior.shape[1]
    hard = np.eye(n_classes)[support_class]
    points = np.concatenate([support, query])
    d = points.shape[1]
    post = posterior
    for _ in range(int(steps)):
        weight = np.concatenate([hard, post])  # (s + n, C)
        mass = weight.sum(0)
        means = (weight.T @ points) / mass[:, None]
        scatter = np.zeros((d, d))
        for c in range(n_classes):
            dev = points - means[c]
            scatter += (dev * weight[:, c:c + 1]).T @ dev
        scatter /= mass.sum()
        scale = np.trace(scatter) / d
        if not scale > 0:
            raise ConfigError("the episode's samples are all equal: no covariance to fit")
        cov = (1.0 - shrinkage) * scatter + shrinkage * scale * np.eye(d)
        solved = np.linalg.solve(cov, means.T)  # (d, C)
        score = query @ solved - 0.5 * np.einsum("cd,dc->c", means, solved)
        z = score - score.max(1, keepdims=True)
        post = np.exp(z)
        post /= post.sum(1, keepdims=True)
    return score
