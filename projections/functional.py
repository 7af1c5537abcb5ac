"""Pure loss functions for cross-modal alignment (torch tensors in, scalar tensor out).

Conventions: ``za`` and ``zb`` are embeddings of the two modalities, row ``i`` of each
being a pair (same class); the losses do *not* normalise them, so the caller decides
(the heads in :mod:`projections.heads` L2-normalise by default, as CLIP does).
``xa``/``xb`` are the frozen encoder features the embeddings were computed from.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "clip_loss",
    "supcon_loss",
    "joint_supcon_loss",
    "prototype_loss",
    "alignment_loss",
    "uniformity_loss",
    "cwcl_loss",
    "structure_loss",
]


def _check_pair(za: torch.Tensor, zb: torch.Tensor) -> None:
    from rram_lsm.errors import ConfigError

    if za.ndim != 2 or zb.ndim != 2 or za.shape[0] != zb.shape[0]:
        raise ConfigError(
            f"paired embeddings must be 2-D with equal rows; got {tuple(za.shape)} and "
            f"{tuple(zb.shape)}"
        )


def clip_loss(za: torch.Tensor, zb: torch.Tensor, temperature=1.0) -> torch.Tensor:
    """Symmetric InfoNCE over the batch (CLIP).

    Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
    Supervision" (ICML); van den Oord et al. 2018, "Representation Learning with
    Contrastive Predictive Coding". ``logits = za @ zb.T / temperature``; the target of row
    ``i`` is column ``i``; the loss is the mean of the a->b and b->a cross-entropies.
    ``temperature`` may be a float or a (learned) scalar tensor.
    """
    _check_pair(za, zb)
    logits = za @ zb.T / temperature
    target = torch.arange(za.shape[0], device=za.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _soft_target_ce(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_j w_ij log softmax(logits)_ij with rows of w summing to 1."""
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return -(weights * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def supcon_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor,
                temperature=0.1) -> torch.Tensor:
    """Cross-modal supervised-contrastive loss (label-aware InfoNCE), symmetric.

    Khosla et al. 2020, "Supervised Contrastive Learning" (NeurIPS), applied across
    modalities: every ``b`` sample of the same class as ``a_i`` is a positive of ``a_i``
    (uniform soft target over the positives), and vice versa. With all labels distinct
    this equals :func:`clip_loss`.
    """
    _check_pair(za, zb)
    logits = za @ zb.T / temperature
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)
    return 0.5 * (_soft_target_ce(logits, same) + _soft_target_ce(logits.T, same))


def joint_supcon_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor,
                      temperature=0.1) -> torch.Tensor:
    """Supervised-contrastive loss over the union of both modalities (SupCon, 2 views).

    Khosla et al. 2020, eq. 2 ("L_out"), with the two modalities as the two views: for
    every one of the ``2n`` embeddings, all other embeddings of its class, of either
    modality, are positives and the anchor itself is excluded. Unlike
    :func:`supcon_loss` it also clusters each modality by class on its own, which is what
    nearest-prototype few-shot within a modality needs.
    """
    _check_pair(za, zb)
    z = torch.cat([za, zb])
    y = torch.cat([labels, labels])
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    pos = ((y[:, None] == y[None, :]) & ~eye).to(z.dtype)
    logp = F.log_softmax(logits, dim=1).masked_fill(eye, 0.0)
    per_anchor = -(pos * logp).sum(1) / pos.sum(1).clamp_min(1.0)
    return per_anchor[pos.sum(1) > 0].mean()


def prototype_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor,
                   temperature=0.1) -> torch.Tensor:
    """Cross-modal prototypical loss, symmetric.

    Snell et al. 2017, "Prototypical Networks for Few-shot Learning" (NeurIPS), with the
    prototypes taken from the *other* modality: class means of ``zb`` in the batch
    (L2-normalised) classify each ``za`` by cosine similarity / temperature (Euclidean
    distance on the unit sphere up to a constant), and vice versa.
    """
    _check_pair(za, zb)
    classes, inverse = torch.unique(labels, return_inverse=True)
    onehot = F.one_hot(inverse, len(classes)).to(za.dtype)
    counts = onehot.sum(0, keepdim=True).T
    proto_a = F.normalize(onehot.T @ za / counts, dim=1)
    proto_b = F.normalize(onehot.T @ zb / counts, dim=1)
    loss_a = F.cross_entropy(za @ proto_b.T / temperature, inverse)
    loss_b = F.cross_entropy(zb @ proto_a.T / temperature, inverse)
    return 0.5 * (loss_a + loss_b)


def alignment_loss(za: torch.Tensor, zb: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Alignment term: mean ``||za_i - zb_i||^alpha`` over pairs.

    Wang & Isola 2020, "Understanding Contrastive Representation Learning through
    Alignment and Uniformity on the Hypersphere" (ICML). Pulls the two modalities of a pair
    together; with :func:`uniformity_loss` it closes the "modality gap" CLIP leaves.
    """
    _check_pair(za, zb)
    return (za - zb).norm(dim=1).pow(alpha).mean()


def uniformity_loss(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity term: ``log mean_{i<j} exp(-t ||z_i - z_j||^2)`` (Wang & Isola 2020).

    Lower is more uniform on the hypersphere; needs at least two rows.
    """
    sq = torch.pdist(z, p=2).pow(2)
    return sq.mul(-t).exp().mean().log()


def _cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    xn = F.normalize(x, dim=1)
    return xn @ xn.T


def cwcl_loss(za: torch.Tensor, zb: torch.Tensor, xa: torch.Tensor, xb: torch.Tensor,
              temperature=1.0) -> torch.Tensor:
    """Continuously weighted contrastive loss (CWCL), symmetric.

    Srinivasa et al. 2023, "CWCL: Cross-Modal Transfer with Continuously Weighted
    Contrastive Loss" (NeurIPS). Instead of one positive per row, row ``i`` of the a->b
    logits has soft targets ``w_ij = (1 + cos(xa_i, xa_j)) / 2`` from the similarity of the
    *frozen* features of modality a (and b->a uses ``xb``), normalised per row.
    """
    _check_pair(za, zb)
    _check_pair(xa, xb)
    logits = za @ zb.T / temperature
    wa = 0.5 * (1.0 + _cosine_matrix(xa.detach()))
    wb = 0.5 * (1.0 + _cosine_matrix(xb.detach()))
    return 0.5 * (_soft_target_ce(logits, wa) + _soft_target_ce(logits.T, wb))


def structure_loss(z: torch.Tensor, x: torch.Tensor, temperature: float = 0.1,
                   levels: int = 1) -> torch.Tensor:
    """Structure-preserving regulariser: keep each sample's neighbourhood distribution.

    After Gröger et al. 2025, "With Limited Data for Multimodal Alignment, Let the
    STRUCTURE Guide You" (arXiv 2506.16895): the row-softmax of cosine similarities in the
    frozen feature space ``x`` (``P``) and in the embedding ``z`` (``Q``), self-similarity
    excluded, are matched by the Jensen-Shannon divergence, averaged over rows. ``levels``
    > 1 adds coarser scales (temperature doubled per level), averaged, as their multi-scale
    variant does.
    """
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim_x = _cosine_matrix(x.detach()).masked_fill(eye, float("-inf"))
    sim_z = _cosine_matrix(z).masked_fill(eye, float("-inf"))
    total = z.new_zeros(())
    for level in range(levels):
        tau = temperature * (2.0 ** level)
        p = F.softmax(sim_x / tau, dim=1)
        q = F.softmax(sim_z / tau, dim=1)
        m = 0.5 * (p + q)
        logm = m.clamp_min(1e-12).log()
        kl_p = (p * (p.clamp_min(1e-12).log() - logm)).sum(1)
        kl_q = (q * (q.clamp_min(1e-12).log() - logm)).sum(1)
        total = total + 0.5 * (kl_p + kl_q).mean()
    return total / levels
