"""Projection heads: one per modality, mapping frozen reservoir features to a shared space."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from rram_lsm.errors import ConfigError

__all__ = ["feature_scale", "ProjectionHead", "DualEncoder", "HEAD_KINDS", "StackedHead",
           "stack_heads", "stacked_head_forward", "stacked_head_apply"]

HEAD_KINDS = ("linear", "fc_gelu", "mlp")
"""``linear``: one affine map; ``fc_gelu``: one affine map then GELU (the paper's head);
``mlp``: affine -> GELU -> affine."""


def feature_scale(std, scale_floor: float = 0.0):
    """The divisors that standardise features whose training-set std is ``std`` ``(F,)``.

    A feature that (almost) never varied on the training samples, a neuron silent for every
    seen class, has no scale to learn; dividing an unseen sample's value by its std of
    ~0 would make that one feature the whole of the sample's (unit) vector. With
    ``scale_floor`` > 0 no divisor is below that fraction of the median positive std (no
    feature is amplified more than ``1 / scale_floor`` times a typical one); 0 keeps the
    absolute floor of 1e-6 that recipes before round 14 used (their records rerun bit for
    bit). Returns a float array like ``std``.
    """
    std = np.asarray(std)
    if not 0.0 <= scale_floor < 1.0:
        raise ConfigError(f"scale_floor must be in [0, 1), got {scale_floor}")
    if scale_floor == 0.0:
        return np.maximum(std, 1e-6).astype(std.dtype)
    positive = std[std > 0]
    typical = float(np.median(positive)) if positive.size else 1.0
    return np.maximum(std, max(scale_floor * typical, 1e-6)).astype(std.dtype)


def _init_linear(layer: nn.Linear, gen: torch.Generator) -> None:
    # torch's default Linear init, but drawn from our generator so runs are reproducible
    # without touching the global RNG.
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
    bound = 1.0 / math.sqrt(layer.in_features)
    nn.init.uniform_(layer.bias, -bound, bound, generator=gen)


class StackedHead(NamedTuple):
    """The parameters and fixed standardisation of R heads of one kind, stacked on dim 0.

    Shapes follow :class:`ProjectionHead` with a leading R: ``w1`` ``(R, out1, in)``,
    ``b1`` ``(R, out1)``, ``mean``/``std`` ``(R, in)``; ``w2``/``b2`` only for ``mlp``.
    """

    mean: torch.Tensor
    """(R, in) input shift (a fixed buffer)."""
    std: torch.Tensor
    """(R, in) input scale (a fixed buffer)."""
    w1: torch.Tensor
    """(R, out1, in) first layer weight (``fc1.weight``)."""
    b1: torch.Tensor
    """(R, out1) first layer bias."""
    w2: torch.Tensor | None = None
    """(R, out, hidden) second layer weight of the ``mlp`` head, else None."""
    b2: torch.Tensor | None = None
    """(R, out) second layer bias of the ``mlp`` head, else None."""


def stack_heads(heads) -> StackedHead:
    """The parameters of several :class:`ProjectionHead` of one kind, stacked (copies)."""
    heads = list(heads)
    kinds = {h.kind for h in heads}
    if len(kinds) != 1:
        raise ConfigError(f"heads to stack must be of one kind, got {sorted(kinds)}")

    def st(get):
        return torch.stack([get(h).detach() for h in heads]).clone()

    mlp = heads[0].kind == "mlp"
    return StackedHead(st(lambda h: h.mean), st(lambda h: h.std), st(lambda h: h.fc1.weight),
                       st(lambda h: h.fc1.bias),
                       st(lambda h: h.fc2.weight) if mlp else None,
                       st(lambda h: h.fc2.bias) if mlp else None)


def stacked_head_forward(p: StackedHead, x: torch.Tensor, kind: str,
                         normalize: bool = True) -> torch.Tensor:
    """Embed ``(R, n, in)`` with R heads at once -> ``(R, n, out)``.

    Slice ``r`` is :meth:`ProjectionHead.forward` of head ``r`` on ``x[r]``, the same
    operations in the same order (a batched matrix product per layer), bit for bit.
    """
    return stacked_head_apply(p, (x - p.mean.unsqueeze(1)) / p.std.unsqueeze(1), kind,
                              normalize)


def stacked_head_apply(p: StackedHead, xs: torch.Tensor, kind: str,
                       normalize: bool = True) -> torch.Tensor:
    """:func:`stacked_head_forward` of inputs already standardised (``(x - mean) / std``,
    which a caller embedding the same rows many times computes once)."""
    h = _StackedLinear.apply(xs, p.w1, p.b1)
    if kind == "fc_gelu":
        h = F.gelu(h)
    elif kind == "mlp":
        h = _StackedLinear.apply(F.gelu(h), p.w2, p.b2)
    return F.normalize(h, dim=-1) if normalize else h


class _StackedLinear(torch.autograd.Function):
    """``F.linear`` of R layers on ``(R, n, in)``; backward as ``F.linear``'s on 2-D input.

    2-D ``F.linear`` is ``addmm(b, x, w.t())``, whose backward forms the weight gradient
    as ``g.t() @ x`` and the input gradient as ``g @ w``; the autograd of ``baddbmm``
    would multiply in the other order (``x.t() @ g``), the same sums accumulated in
    another order. Here each slice takes the 2-D operations, so the gradients agree bit
    for bit with a :class:`ProjectionHead`'s.
    """

    @staticmethod
    def forward(x, w, b):
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, _ = inputs
        ctx.save_for_backward(x, w)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gx = torch.bmm(g, w) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        gb = g.sum(1) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class ProjectionHead(nn.Module):
    """Feature standardisation (optional) followed by a linear, FC+GELU or MLP map.

    ``mean``/``std`` are fixed buffers computed from training features by the caller (a
    constant shift and scale, not learned); ``normalize`` L2-normalises the output.
    """

    def __init__(self, in_dim: int, out_dim: int = 64, kind: str = "fc_gelu",
                 hidden: int = 256, normalize: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ConfigError(f"unknown head kind {kind!r}; expected one of {HEAD_KINDS}")
        if in_dim < 1 or out_dim < 1 or hidden < 1:
            raise ConfigError(f"head sizes must be positive (in {in_dim}, out {out_dim}, "
                              f"hidden {hidden})")
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.kind = kind
        self.normalize = normalize
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        if kind == "mlp":
            self.fc1 = nn.Linear(in_dim, hidden)
            self.fc2 = nn.Linear(hidden, out_dim)
            _init_linear(self.fc2, gen)
        else:
            self.fc1 = nn.Linear(in_dim, out_dim)
        _init_linear(self.fc1, gen)

    def set_standardisation(self, features: torch.Tensor, scale_floor: float = 0.0) -> None:
        """Fix the input shift/scale to the per-feature mean and std of ``features``
        (divisors floored by :func:`feature_scale`)."""
        self.mean.copy_(features.mean(0))
        std = features.detach().std(0).cpu().numpy()
        self.std.copy_(torch.as_tensor(feature_scale(std, scale_floor)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch ``(n, in_dim)`` -> ``(n, out_dim)``."""
        h = self.fc1((x - self.mean) / self.std)
        if self.kind == "fc_gelu":
            h = F.gelu(h)
        elif self.kind == "mlp":
            h = self.fc2(F.gelu(h))
        return F.normalize(h, dim=1) if self.normalize else h

    def flops_per_sample(self) -> int:
        """Forward floating-point operations for one sample (MAC = 2 FLOPs)."""
        n = 2 * self.fc1.in_features * self.fc1.out_features + 2 * self.fc1.in_features
        if self.kind == "mlp":
            n += 2 * self.fc2.in_features * self.fc2.out_features
        n += 8 * self.fc1.out_features  # GELU and normalisation, a few ops per unit
        return n


class DualEncoder(nn.Module):
    """One head per modality (``image``, ``audio``) and a temperature (fixed or learned)."""

    def __init__(self, image_dim: int, audio_dim: int, out_dim: int = 64,
                 kind: str = "fc_gelu", hidden: int = 256, normalize: bool = True,
                 temperature: float = 1.0, learn_temperature: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.image = ProjectionHead(image_dim, out_dim, kind, hidden, normalize, gen)
        self.audio = ProjectionHead(audio_dim, out_dim, kind, hidden, normalize, gen)
        log_t = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    @property
    def temperature(self) -> torch.Tensor:
        """Current temperature (a scalar tensor)."""
        return self.log_temperature.exp()

    def forward(self, x_image: torch.Tensor, x_audio: torch.Tensor):
        """Embed both modalities; returns ``(z_image, z_audio)``."""
        return self.image(x_image), self.audio(x_audio)
