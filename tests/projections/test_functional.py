import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from projections import functional as Fn
from rram_lsm.errors import ConfigError


def _rand(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=1)


def test_clip_loss_hand_computed():
    z = torch.eye(2)
    # logits [[1, 0], [0, 1]]: each row's CE is log(1 + e^-1)
    assert Fn.clip_loss(z, z, 1.0).item() == pytest.approx(math.log1p(math.exp(-1)), abs=1e-6)
    # temperature 0.5 doubles the logits
    assert Fn.clip_loss(z, z, 0.5).item() == pytest.approx(math.log1p(math.exp(-2)), abs=1e-6)


def test_clip_loss_asymmetric_case_hand_computed():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zb = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # logits = za @ zb.T = [[1, 1], [0, 0]]: every row and column is uniform except
    # column 0 of logits.T = [1, 0] for row 0 and [1, 0] for row 1 (target 1)
    a_to_b = math.log(2)
    b_to_a = 0.5 * (math.log1p(math.exp(-1)) + math.log1p(math.exp(1)))
    assert Fn.clip_loss(za, zb).item() == pytest.approx(0.5 * (a_to_b + b_to_a), abs=1e-6)


@given(st.integers(2, 12), st.integers(2, 8), st.integers(0, 10_000),
       st.floats(0.05, 2.0))
def test_clip_symmetric_and_permutation_invariant(n, d, seed, t):
    za, zb = _rand(n, d, seed), _rand(n, d, seed + 1)
    base = Fn.clip_loss(za, zb, t)
    assert Fn.clip_loss(zb, za, t).item() == pytest.approx(base.item(), rel=1e-5)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    assert Fn.clip_loss(za[perm], zb[perm], t).item() == pytest.approx(base.item(), rel=1e-5)


@given(st.integers(2, 10), st.integers(0, 10_000))
def test_supcon_equals_clip_when_labels_distinct(n, seed):
    za, zb = _rand(n, 5, seed), _rand(n, 5, seed + 1)
    labels = torch.arange(n)
    assert Fn.supcon_loss(za, zb, labels, 0.3).item() == pytest.approx(
        Fn.clip_loss(za, zb, 0.3).item(), rel=1e-5)


def test_supcon_hand_computed_one_class():
    z = torch.eye(2)
    # one class: every column is a positive (weight 1/2); row CE = log(1+e) - 1/2
    expected = math.log(1 + math.e) - 0.5
    assert Fn.supcon_loss(z, z, torch.tensor([3, 3]), 1.0).item() == pytest.approx(
        expected, abs=1e-6)


def test_prototype_loss_hand_computed():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    # prototypes equal the class directions e0, e1; each row CE = log(1 + e^-1)
    assert Fn.prototype_loss(za, za, labels, 1.0).item() == pytest.approx(
        math.log1p(math.exp(-1)), abs=1e-6)


def test_alignment_and_uniformity_hand_computed():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zb = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # distances sqrt(2) and 0 -> mean squared distance 1
    assert Fn.alignment_loss(za, zb).item() == pytest.approx(1.0, abs=1e-6)
    # two points at squared distance 2: log exp(-2 * 2) = -4
    assert Fn.uniformity_loss(za).item() == pytest.approx(-4.0, abs=1e-5)


def test_cwcl_hand_computed_and_reduces_to_soft_targets():
    z = torch.eye(2)
    x = torch.eye(2)  # orthogonal features: weights 1 (self) and 0.5 (other), so 2/3 and 1/3
    logp_diag = -math.log1p(math.exp(-1))
    logp_off = -math.log1p(math.exp(1))
    expected = -(2 / 3 * logp_diag + 1 / 3 * logp_off)
    assert Fn.cwcl_loss(z, z, x, x, 1.0).item() == pytest.approx(expected, abs=1e-6)


def test_structure_loss_zero_when_geometry_kept_and_positive_otherwise():
    x = _rand(16, 6, 1)
    rot = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(2)))[0]
    assert Fn.structure_loss(x @ rot, x).item() == pytest.approx(0.0, abs=1e-6)
    assert Fn.structure_loss(_rand(16, 6, 3), x).item() > 1e-3
    # multi-scale is the mean of the single scales
    z = _rand(16, 6, 4)
    two = Fn.structure_loss(z, x, 0.1, levels=2).item()
    avg = 0.5 * (Fn.structure_loss(z, x, 0.1).item() + Fn.structure_loss(z, x, 0.2).item())
    assert two == pytest.approx(avg, rel=1e-5)


def test_losses_reject_unpaired_shapes():
    with pytest.raises(ConfigError):
        Fn.clip_loss(torch.zeros(3, 2), torch.zeros(4, 2))


def test_losses_have_gradients():
    za = _rand(8, 4, 5).requires_grad_(True)
    zb = _rand(8, 4, 6)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    for loss in (Fn.clip_loss(za, zb), Fn.supcon_loss(za, zb, labels),
                 Fn.prototype_loss(za, zb, labels), Fn.cwcl_loss(za, zb, zb, zb),
                 Fn.structure_loss(za, zb), Fn.alignment_loss(za, zb),
                 Fn.uniformity_loss(za)):
        (g,) = torch.autograd.grad(loss, za)
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_joint_supcon_hand_computed():
    za = torch.tensor([[1.0, 0.0]])
    zb = torch.tensor([[0.0, 1.0]])
    # two embeddings of one class: each has the other as its only candidate -> loss 0
    assert Fn.joint_supcon_loss(za, zb, torch.tensor([1]), 1.0).item() == pytest.approx(0.0)
    za = torch.eye(2)
    zb = torch.eye(2)
    # labels 0, 1: anchor a0 sees b0 (sim 1, positive), a1 (0), b1 (0)
    expected = -math.log(math.e / (math.e + 2))
    assert Fn.joint_supcon_loss(za, zb, torch.tensor([0, 1]), 1.0).item() == pytest.approx(
        expected, abs=1e-6)
