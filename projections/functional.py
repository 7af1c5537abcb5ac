"""Pure loss functions for cross-modal alignment (torch tensors in, scalar tensor out).

Conventions: ``za`` and ``zb`` are embeddings of the two modalities, row ``i`` of each
being a pair (same class); the losses do *not* normalise them, so the caller decides
(the heads in :mod:`projections.heads` L2-normalise by default, as CLIP does).
``xa``/``xb`` are the frozen encoder features the embeddings were computed from.

Stacks: every loss also takes a stack of independent batches, ``(R, n, d)`` embeddings
with ``(R, n)`` labels and a temperature that is a float or an ``(R, 1, 1)`` tensor, and
then returns the ``(R,)`` losses, one per batch (:mod:`projections.batched` trains R runs
at once this way). Slice ``r`` of a stack is computed with the same operations, in the
same order, as the 2-D call on that slice: the values agree bit for bit
(``tests/projections/test_batched.py``).
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
    "cosine_matrix",
]


def _check_pair(za: torch.Tensor, zb: torch.Tensor) -> None:
    from rram_lsm.errors import ConfigError

    if za.ndim not in (2, 3) or zb.ndim != za.ndim or za.shape[:-1] != zb.shape[:-1]:
        raise ConfigError(
            f"paired embeddings must be 2-D (or stacks of them, 3-D) with equal rows; got "
            f"{tuple(za.shape)} and {tuple(zb.shape)}"
        )


def _t(x: torch.Tensor) -> torch.Tensor:
    """The transpose of the last two dimensions (``x.T`` of a 2-D tensor)."""
    return x.transpose(-1, -2)


class _MatmulNT(torch.autograd.Function):
    """``a @ b.transpose(1, 2)`` of stacks, with 2-D ``a @ b.T``'s backward per slice.

    2-D autograd forms the gradients as ``g @ b`` and ``g.t() @ a``, both contiguous;
    the autograd of ``bmm`` would return ``b``'s gradient as a transposed view, and the
    reductions after it (normalisation, GELU) would then sum in another order.
    """

    @staticmethod
    def forward(a, b):
        return torch.bmm(a, b.transpose(1, 2))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = torch.bmm(g, b) if ctx.needs_input_grad[0] else None
        gb = torch.bmm(g.transpose(1, 2), a) if ctx.needs_input_grad[1] else None
        return ga, gb


def _mm_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` of 2-D tensors, or slice by slice of stacks (see :class:`_MatmulNT`)."""
    return a @ b.T if a.ndim == 2 else _MatmulNT.apply(a, b)


def clip_loss(za: torch.Tensor, zb: torch.Tensor, temperature=1.0) -> torch.Tensor:
    """Symmetric InfoNCE over the batch (CLIP).

    Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
    Supervision" (ICML); van den Oord et al. 2018, "Representation Learning with
    Contrastive Predictive Coding". ``logits = za @ zb.T / temperature``; the target of row
    ``i`` is column ``i``; the loss is the mean of the a->b and b->a cross-entropies.
    ``temperature`` may be a float or a (learned) scalar tensor.
    """
    _check_pair(za, zb)
    logits = _mm_t(za, zb) / temperature
    if za.ndim == 2:
        target = torch.arange(za.shape[0], device=za.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    target = torch.arange(za.shape[1], device=za.device)

    def ce(lg):  # F.cross_entropy is log_softmax + nll_loss; nll_loss sums in its order
        return torch.stack([F.nll_loss(lp, target) for lp in F.log_softmax(lg, dim=-1)])

    return 0.5 * (ce(logits) + ce(_t(logits)))


def _soft_target_ce(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_j w_ij log softmax(logits)_ij with rows of w summing to 1."""
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return -(weights * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean(-1)


def supcon_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor,
                temperature=0.1) -> torch.Tensor:
    """Cross-modal supervised-contrastive loss (label-aware InfoNCE), symmetric.

    Khosla et al. 2020, "Supervised Contrastive Learning" (NeurIPS), applied across
    modalities: every ``b`` sample of the same class as ``a_i`` is a positive of ``a_i``
    (uniform soft target over the positives), and vice versa. With all labels distinct
    this equals :func:`clip_loss`. With ``L = za zb^T / T`` and ``W`` the row-normalised
    same-class matrix, the loss is ``0.5 * (CE_rows(L, W) + CE_rows(L^T, W))``; its
    gradient is formed in closed form (:class:`_SupCon`), one pass instead of autograd's.
    """
    _check_pair(za, zb)
    t = temperature if torch.is_tensor(temperature) else za.new_tensor(float(temperature))
    return _SupCon.apply(za, zb, labels, t)


class _SupCon(torch.autograd.Function):
    """Forward and closed-form backward of :func:`supcon_loss` (2-D or stacks).

    ``dL/dlogits = 0.5 / n * (softmax_rows(L) - W + softmax_cols(L) - W^T)``; the
    embeddings' gradients follow through ``L = za zb^T / T`` (and ``T``'s, if learned).
    """

    @staticmethod
    def forward(ctx, za, zb, labels, t):
        logits = (za @ _t(zb)) / t
        same = (labels[..., :, None] == labels[..., None, :]).to(logits.dtype)
        w = same / same.sum(-1, keepdim=True).clamp_min(1e-12)
        rows = F.log_softmax(logits, dim=-1)
        cols = F.log_softmax(logits, dim=-2)
        n = logits.shape[-1]
        loss = -0.5 / n * ((w * rows).sum((-1, -2)) + (_t(w) * cols).sum((-1, -2)))
        ctx.save_for_backward(za, zb, t, logits, rows, cols, w + _t(w))
        return loss

    @staticmethod
    def backward(ctx, g):
        za, zb, t, logits, rows, cols, w_sym = ctx.saved_tensors
        n = logits.shape[-1]
        d = rows.exp().add_(cols.exp()).sub_(w_sym)
        d.mul_((0.5 / n) * g.reshape(g.shape + (1, 1)))
        dl = d / t
        ga = dl @ zb if ctx.needs_input_grad[0] else None
        gb = _t(dl) @ za if ctx.needs_input_grad[1] else None
        gt = None
        if ctx.needs_input_grad[3]:
            gt = -(d * logits).sum((-1, -2), keepdim=t.ndim > 0) / t
            gt = gt.reshape(t.shape)
        return ga, gb, None, gt


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
    z = torch.cat([za, zb], dim=-2)
    y = torch.cat([labels, labels], dim=-1)
    n = z.shape[-2]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (_mm_t(z, z) / temperature).masked_fill(eye, float("-inf"))
    pos = ((y[..., :, None] == y[..., None, :]) & ~eye).to(z.dtype)
    logp = F.log_softmax(logits, dim=-1).masked_fill(eye, 0.0)
    per_anchor = -(pos * logp).sum(-1) / pos.sum(-1).clamp_min(1.0)
    if z.ndim == 2:
        return per_anchor[pos.sum(1) > 0].mean()
    return torch.stack([a[k].mean() for a, k in zip(per_anchor, pos.sum(-1) > 0)])


def prototype_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor,
                   temperature=0.1) -> torch.Tensor:
    """Cross-modal prototypical loss, symmetric.

    Snell et al. 2017, "Prototypical Networks for Few-shot Learning" (NeurIPS), with the
    prototypes taken from the *other* modality: class means of ``zb`` in the batch
    (L2-normalised) classify each ``za`` by cosine similarity / temperature (Euclidean
    distance on the unit sphere up to a constant), and vice versa.
    """
    _check_pair(za, zb)
    if za.ndim == 3:  # the classes present differ from slice to slice
        ts = temperature.reshape(-1) if torch.is_tensor(temperature) and \
            temperature.ndim else [temperature] * za.shape[0]
        return torch.stack([prototype_loss(a, b, y, t)
                            for a, b, y, t in zip(za, zb, labels, ts)])
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
    return (za - zb).norm(dim=-1).pow(alpha).mean(-1)


def uniformity_loss(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity term: ``log mean_{i<j} exp(-t ||z_i - z_j||^2)`` (Wang & Isola 2020).

    Lower is more uniform on the hypersphere; needs at least two rows.
    """
    if z.ndim == 3:
        return torch.stack([uniformity_loss(x, t) for x in z])
    sq = torch.pdist(z, p=2).pow(2)
    return sq.mul(-t).exp().mean().log()


def cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``x`` with every other (``(n, n)``, or a stack)."""
    xn = F.normalize(x, dim=-1)
    return _mm_t(xn, xn)


def cwcl_loss(za: torch.Tensor, zb: torch.Tensor, xa: torch.Tensor | None,
              xb: torch.Tensor | None, temperature=1.0, *,
              xa_similarity: torch.Tensor | None = None,
              xb_similarity: torch.Tensor | None = None) -> torch.Tensor:
    """Continuously weighted contrastive loss (CWCL), symmetric.

    Srinivasa et al. 2023, "CWCL: Cross-Modal Transfer with Continuously Weighted
    Contrastive Loss" (NeurIPS). Instead of one positive per row, row ``i`` of the a->b
    logits has soft targets ``w_ij = (1 + cos(xa_i, xa_j)) / 2`` from the similarity of the
    *frozen* features of modality a (and b->a uses ``xb``), normalised per row.
    ``xa_similarity``/``xb_similarity``: those cosine matrices, if the caller has them
    (:func:`cosine_matrix` of the features; ``xa``/``xb`` are then not read).
    """
    _check_pair(za, zb)
    if xa_similarity is None or xb_similarity is None:
        _check_pair(xa, xb)
    logits = _mm_t(za, zb) / temperature
    wa = 0.5 * (1.0 + (cosine_matrix(xa.detach()) if xa_similarity is None
                       else xa_similarity))
    wb = 0.5 * (1.0 + (cosine_matrix(xb.detach()) if xb_similarity is None
                       else xb_similarity))
    return 0.5 * (_soft_target_ce(logits, wa) + _soft_target_ce(_t(logits), wb))


def structure_loss(z: torch.Tensor, x: torch.Tensor | None, temperature: float = 0.1,
                   levels: int = 1, *,
                   x_similarity: torch.Tensor | None = None) -> torch.Tensor:
    """Structure-preserving regulariser: keep each sample's neighbourhood distribution.

    After Gröger et al. 2025, "With Limited Data for Multimodal Alignment, Let the
    STRUCTURE Guide You" (arXiv 2506.16895): the row-softmax of cosine similarities in the
    frozen feature space ``x`` (``P``) and in the embedding ``z`` (``Q``), self-similarity
    excluded, are matched by the Jensen-Shannon divergence, averaged over rows. ``levels``
    > 1 adds coarser scales (temperature doubled per level), averaged, as their multi-scale
    variant does. ``x_similarity``: :func:`cosine_matrix` of ``x``, if the caller has it
    (``x`` is then not read). The gradient is formed in closed form
    (:class:`_Structure`).
    """
    sim_x = (cosine_matrix(x.detach()) if x_similarity is None else x_similarity).detach()
    zn = F.normalize(z, dim=-1)
    total = None
    for level in range(levels):
        js = _Structure.apply(zn, sim_x, float(temperature * (2.0 ** level)))
        total = js if total is None else total + js
    return total / levels


class _Structure(torch.autograd.Function):
    """Forward and closed-form backward of one level of :func:`structure_loss`.

    With ``Q = softmax_rows(zn zn^T / tau)`` (diagonal excluded), ``P`` likewise of the
    frozen similarities and ``M = (P + Q) / 2``, the loss is the row mean of
    ``0.5 * sum_j P log(P/M) + Q log(Q/M)``, whose derivative in ``Q`` is
    ``0.5 * log(Q/M)`` (the other terms cancel), then through the softmax and the
    symmetric product. Entries of ``P`` and ``Q`` under 1e-12 are not clamped, unlike a
    literal ``log(max(., 1e-12))``; they add nothing to the sums either way.
    """

    @staticmethod
    def forward(ctx, zn, sim_x, tau):
        a = (zn @ _t(zn)).div_(tau)
        _diagonal(a).fill_(float("-inf"))
        log_q = F.log_softmax(a, dim=-1)
        b = sim_x / tau
        _diagonal(b).fill_(float("-inf"))
        log_p = F.log_softmax(b, dim=-1)
        q, p = log_q.exp(), log_p.exp()
        log_m = (p + q).mul_(0.5).clamp_min_(1e-12).log_()
        _diagonal(log_q).fill_(0.0)
        _diagonal(log_p).fill_(0.0)
        ratio_q, ratio_p = log_q.sub_(log_m), log_p.sub_(log_m)   # log(Q/M), log(P/M)
        kl = (p.mul_(ratio_p)).add_(q * ratio_q)
        ctx.save_for_backward(zn, q, ratio_q)
        ctx.tau = tau
        return kl.sum(-1).mean(-1).mul_(0.5)

    @staticmethod
    def backward(ctx, g):
        zn, q, ratio_q = ctx.saved_tensors
        n = zn.shape[-2]
        da = q * ratio_q
        da = q * (ratio_q - da.sum(-1, keepdim=True))
        da.mul_((0.5 / n / ctx.tau) * g.reshape(g.shape + (1, 1)))
        return (da + _t(da)) @ zn, None, None


def _diagonal(x: torch.Tensor) -> torch.Tensor:
    """The diagonal of each matrix of ``x``, as a view."""
    return x.diagonal(dim1=-2, dim2=-1)
