"""A few-shot metric fitted in closed form on the seen classes: within-class whitening.

Few-shot prototypes compare a query with class means by cosine. Plain standardisation
weights every feature direction alike, although much of the spread of a spoken digit is
the same for every digit: speaker, loudness, speaking rate. The pooled within-class
covariance of the *seen* classes' training samples measures that nuisance spread;
whitening with it (the metric of linear discriminant analysis, as used for few-shot
enrolment in speaker verification, Ioffe 2006, "Probabilistic linear discriminant
analysis") shrinks those directions before the cosine. It is estimated once per split
from seen-class training data only, so nothing of the unseen classes is used. Shrinkage
towards a scaled identity (Ledoit & Wolf 2004) keeps the inverse stable when the number
of features approaches the number of samples.
"""
from __future__ import annotations

import numpy as np
import torch

from rram_lsm.errors import ConfigError, ShapeError

__all__ = ["within_class_whitener"]


def within_class_whitener(values: np.ndarray, labels: np.ndarray, idx: np.ndarray,
                          shrinkage: float = 0.5):
    """A function mapping features ``(N, F)`` into the whitened space of ``values[idx]``.

    ``labels[idx]`` must hold at least two classes with two samples or more; the mean
    removed is that of ``values[idx]``. ``shrinkage`` in [0, 1]: 0 is the sample
    within-class covariance, 1 is plain per-sample centring with isotropic scaling.

    The whitened coordinates are defined up to a rotation: any ``W`` with
    ``W W^T = S^-1`` for the shrunk within-class scatter ``S`` whitens, and which one is
    used depends on the path (fewer samples than features: ``S^-1/2``; else, for
    shrinkage > 0, ``L^-T`` from ``S``'s Cholesky factor; shrinkage 0: ``S^-1/2``). Inner products, norms, cosines and distances of whitened
    rows, all that few-shot scoring reads, are those of the metric ``S^-1`` on every path.
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise ConfigError(f"shrinkage must be in [0, 1], got {shrinkage}")
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ShapeError(f"values must be (N, F), got shape {values.shape}")
    idx = np.unique(np.asarray(idx))
    ref, ref_labels = values[idx], np.asarray(labels)[idx]
    classes, counts = np.unique(ref_labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        raise ConfigError("within-class whitening needs >= 2 classes with >= 2 samples "
                          f"each; got counts {dict(zip(classes.tolist(), counts.tolist()))}")
    # torch for the linear algebra: it runs on the threads the app pins (numpy's BLAS
    # ignores them, and on a loaded 2-core machine its thread pool can make one eigh 40x
    # slower)
    ref_t = torch.from_numpy(np.ascontiguousarray(ref))
    centred = ref_t.clone()
    for c in classes:
        members = torch.from_numpy(ref_labels == c)
        centred[members] -= ref_t[members].mean(0)
    n_samples, n_features = centred.shape
    mean = ref_t.mean(0)
    if 0.0 < shrinkage and n_samples < n_features:
        apply = _low_rank_inverse_sqrt(centred, shrinkage)
    elif 0.0 < shrinkage:
        apply = _cholesky_whitening(centred, shrinkage)
    else:
        apply = _full_inverse_sqrt(centred, shrinkage)

    def whiten(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != n_features:
            raise ShapeError(f"expected (N, {n_features}) features, got {x.shape}")
        return apply(torch.from_numpy(np.ascontiguousarray(x)) - mean).to(
            torch.float32).numpy()

    return whiten


def _spread(total_square: float, n_features: int) -> float:
    """The scale of the identity that shrinkage mixes in: the mean within-class variance."""
    scale = total_square / n_features
    if not scale > 0:
        raise ConfigError("the reference features have no within-class spread to whiten")
    return scale


def _shrunk_scatter(centred: torch.Tensor, shrinkage: float):
    """``(S, scale)``: the within-class scatter shrunk towards ``scale`` times the identity."""
    n_features = centred.shape[1]
    scatter = centred.T @ centred / len(centred)
    scale = _spread(float(torch.trace(scatter)), n_features)
    return (1.0 - shrinkage) * scatter + shrinkage * scale * torch.eye(
        n_features, dtype=torch.float64), scale


def _full_inverse_sqrt(centred: torch.Tensor, shrinkage: float):
    """``x -> x S^-1/2`` for the shrunk scatter ``S``, from the eigenvectors of ``S``
    (``F x F``): the reference, and the only way when ``S`` may be singular."""
    scatter, scale = _shrunk_scatter(centred, shrinkage)
    eigval, eigvec = torch.linalg.eigh(scatter)
    # a rank-deficient scatter only reaches here with shrinkage 0; floor keeps it finite
    eigval = eigval.clamp_min(1e-9 * scale)
    transform = (eigvec / eigval.sqrt()) @ eigvec.T
    return lambda x: x @ transform


def _cholesky_whitening(centred: torch.Tensor, shrinkage: float):
    """``x -> x L^-T`` for ``S = L L^T``: a whitening of the same metric as ``S^-1/2``
    (``L^-T`` is ``S^-1/2`` times a rotation) for less work: a Cholesky factorisation
    and a triangular solve per call instead of an ``F x F`` eigendecomposition and
    ``F x F`` products (the seen-class audio of a pair: 1,900
    training samples of 1,168 features). ``S`` is positive definite: ``shrinkage`` > 0
    puts its eigenvalues at ``shrinkage x scale`` or above."""
    factor = torch.linalg.cholesky(_shrunk_scatter(centred, shrinkage)[0])
    return lambda x: torch.linalg.solve_triangular(factor, x.T, upper=False).T


def _low_rank_inverse_sqrt(centred: torch.Tensor, shrinkage: float):
    """The same map when there are fewer samples ``n`` than features ``F``, from the
    ``n x n`` Gram matrix: ``S = a C^T C + b I`` has ``S^-1/2 = b^-1/2 I + C^T M C`` with
    ``M = U g(L) U^T`` for ``C C^T = U L U^T`` and ``g(l) = ((a l + b)^-1/2 - b^-1/2) / l``.

    One ``n x n`` eigendecomposition instead of an ``F x F`` one (a seen-class image
    split: 490 training samples of 1,480 features) and no ``F x F`` product; ``g`` is
    written without the division, so null directions of ``C`` (``l = 0``) are exact.
    """
    gram = centred @ centred.T
    a = (1.0 - shrinkage) / len(centred)
    b = shrinkage * _spread(float(torch.trace(gram)) / len(centred), centred.shape[1])
    lam, u = torch.linalg.eigh(gram)
    lam = lam.clamp_min(0.0)
    root_b, root_s = b ** 0.5, (a * lam + b).sqrt()
    g = -a / (root_s * root_b * (root_s + root_b))
    mid = (u * g) @ u.T
    return lambda x: x / root_b + ((x @ centred.T) @ mid) @ centred
