"""The batched engine: many runs trained as one program give the per-run results, bit for bit.

Tolerance: none. Each check below is an exact equality (``torch.equal``, ``==`` on the
JSON records): a stacked slice is computed with the same operations in the same order as
the 2-D call (projections.functional, projections.heads, projections.batched). The
equality holds at one torch thread, the setting the app runs the heads on (with a thread
pool, BLAS may split one 2-D product differently from the slices of a batched one);
``conftest.py`` pins it for every test here.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from projections import METHODS, functional as Fn, run_protocol, train_heads
from projections.batched import TrainJob, train_heads_batched
from projections.protocol import batched_is_exact
from projections.splits import split_cross_modal
from rram_lsm.errors import ConfigError

DEFAULT = METHODS["default"].replace(features="counts", epochs=6, batch_size=50)
"""The default recipe (supcon + structure, standardised) on the test data, short."""


def _jobs(data, plan):
    out = []
    for (seen, unseen), seed in plan:
        sp = split_cross_modal(data.image_labels, data.image_is_test, data.audio_labels,
                               data.audio_is_test, seen=seen, unseen=unseen, seed=seed)
        out.append(TrainJob(sp.pairs("train", data.image_labels, data.audio_labels),
                            sp.pairs("val", data.image_labels, data.audio_labels), seed))
    return out


# runs of different sizes: the (1, 2, 3) split has short last batches of its own
PLAN = [(((1, 2, 3, 4, 5, 6, 7), (8, 9)), 0), (((1, 2, 3, 4, 5, 6, 7), (8, 9)), 1),
        (((1, 2, 3), (8, 9)), 2), (((0, 1, 2, 3, 4, 5), (8, 9)), 3)]


def _stacks(seed, r=3, n=37, d=8):
    g = torch.Generator().manual_seed(seed)
    za = F.normalize(torch.randn(r, n, d, generator=g, dtype=torch.float32), dim=-1)
    zb = F.normalize(torch.randn(r, n, d, generator=g, dtype=torch.float32), dim=-1)
    x = torch.randn(r, n, 12, generator=g).abs()
    y = torch.randint(0, 4, (r, n), generator=g)
    t = torch.tensor([0.1, 0.3, 1.0]).view(r, 1, 1)
    return za, zb, x, y, t


LOSSES = {
    "clip": lambda a, b, x, y, t: Fn.clip_loss(a, b, t),
    "supcon": lambda a, b, x, y, t: Fn.supcon_loss(a, b, y, t),
    "joint": lambda a, b, x, y, t: Fn.joint_supcon_loss(a, b, y, t),
    "proto": lambda a, b, x, y, t: Fn.prototype_loss(a, b, y, t),
    "align": lambda a, b, x, y, t: Fn.alignment_loss(a, b),
    "uniform": lambda a, b, x, y, t: Fn.uniformity_loss(a),
    "cwcl": lambda a, b, x, y, t: Fn.cwcl_loss(a, b, x, x, t),
    "structure": lambda a, b, x, y, t: Fn.structure_loss(a, x, 0.1),
    "structure2": lambda a, b, x, y, t: Fn.structure_loss(
        a, None, 0.2, levels=2, x_similarity=Fn.cosine_matrix(x)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_on_a_stack_equals_it_on_each_slice(name):
    loss = LOSSES[name]
    za, zb, x, y, t = _stacks(1)
    a3, b3 = za.clone().requires_grad_(), zb.clone().requires_grad_()
    out3 = loss(a3, b3, x, y, t)
    assert out3.shape == (3,)
    out3.sum().backward()
    for r in range(3):
        a, b = za[r].clone().requires_grad_(), zb[r].clone().requires_grad_()
        out = loss(a, b, x[r], y[r], t[r].reshape(()))
        assert out.shape == ()
        out.backward()
        assert torch.equal(out3[r], out.detach())
        assert torch.equal(a3.grad[r], a.grad)
        if b.grad is not None:
            assert torch.equal(b3.grad[r], b.grad)


def _literal_supcon(za, zb, y, t):
    logits = za @ zb.T / t
    same = (y[:, None] == y[None, :]).to(logits.dtype)

    def ce(lg, w):
        w = w / w.sum(1, keepdim=True)
        return -(w * F.log_softmax(lg, 1)).sum(1).mean()

    return 0.5 * (ce(logits, same) + ce(logits.T, same))


def _literal_structure(z, x, tau):
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool)

    def cos(v):
        v = F.normalize(v, dim=1)
        return v @ v.T

    p = F.softmax(cos(x).masked_fill(eye, float("-inf")) / tau, 1)
    q = F.softmax(cos(z).masked_fill(eye, float("-inf")) / tau, 1)
    m = 0.5 * (p + q)
    kl = lambda a: (a * (a.clamp_min(1e-12).log() - m.clamp_min(1e-12).log())).sum(1)  # noqa
    return 0.5 * (kl(p) + kl(q)).mean()


def test_closed_form_gradients_equal_autograd_of_the_literal_formulas():
    """supcon and structure form their gradients by hand; in float64 they agree with
    autograd of the papers' formulas to rounding, and pass torch's gradcheck."""
    g = torch.Generator().manual_seed(0)
    for n in (2, 9, 33):
        za = torch.randn(n, 6, generator=g, dtype=torch.float64)
        zb = torch.randn(n, 6, generator=g, dtype=torch.float64)
        x = torch.randn(n, 10, generator=g, dtype=torch.float64).abs()
        y = torch.randint(0, 3, (n,), generator=g)
        for ours, literal in ((lambda a, b, t: Fn.supcon_loss(a, b, y, t),
                               lambda a, b, t: _literal_supcon(a, b, y, t)),
                              (lambda a, b, t: Fn.structure_loss(a, x, 0.1) + 0 * t,
                               lambda a, b, t: _literal_structure(a, x, 0.1) + 0 * t)):
            grads = []
            for f in (ours, literal):
                a, b = za.clone().requires_grad_(), zb.clone().requires_grad_()
                t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
                value = f(a, b, t)
                value.backward()
                grads.append([value.detach()] + [v.grad if v.grad is not None else
                                                 torch.zeros(()) for v in (a, b, t)])
            for u, v in zip(*grads):
                torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)
    a = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.2, 0.5], dtype=torch.float64).view(2, 1, 1).requires_grad_()
    y = torch.tensor([[0, 1, 0, 2, 1], [1, 1, 0, 0, 2]])
    sim = Fn.cosine_matrix(torch.rand(2, 5, 7, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda a, b, t: Fn.supcon_loss(a, b, y, t), (a, b, t))
    assert torch.autograd.gradcheck(
        lambda a: Fn.structure_loss(a, None, 0.2, x_similarity=sim), (a,))


@pytest.mark.parametrize("cfg", [
    DEFAULT,
    METHODS["paper"].replace(epochs=4, batch_size=40),
    METHODS["protonet"].replace(epochs=3, batch_size=64),
    METHODS["paper"].replace(name="mixed", epochs=4, batch_size=40, head="mlp",
                             learn_temperature=True, weight_decay=1e-4, joint_weight=1.0,
                             cwcl_weight=0.5, align_weight=0.3, uniform_weight=0.2,
                             structure_weight=0.5, patience=2),
], ids=["default", "paper", "protonet", "mixed"])
def test_batched_training_equals_train_heads_bit_for_bit(synthetic, cfg):
    d = synthetic
    jobs = _jobs(d, PLAN)
    ref = [train_heads(cfg, d.image_values, d.audio_values, j.train_pairs, j.val_pairs,
                       d.image_labels, d.audio_labels, seed=j.seed) for j in jobs]
    got = train_heads_batched(cfg, d.image_values, d.audio_values, jobs, d.image_labels,
                              d.audio_labels)
    assert len({len(j.train_pairs[0]) for j in jobs}) > 1  # stacks of unequal runs
    for a, b in zip(ref, got):
        sa, sb = a.model.state_dict(), b.model.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert a.best_epoch == b.best_epoch and a.train_flops == b.train_flops
        assert a.curves == b.curves


def test_batched_training_rejects_bad_jobs(synthetic):
    d = synthetic
    bad = TrainJob((np.array([0, 1]), np.array([0, 200])), (np.array([2]), np.array([2])))
    with pytest.raises(ConfigError):
        train_heads_batched(DEFAULT, d.image_values, d.audio_values, [bad], d.image_labels,
                            d.audio_labels)
    with pytest.raises(ConfigError):
        train_heads_batched(METHODS["raw"], d.image_values, d.audio_values, [], d.image_labels,
                            d.audio_labels)
    assert train_heads_batched(DEFAULT, d.image_values, d.audio_values, [], d.image_labels,
                               d.audio_labels) == []


def _records(res):
    out = [r.to_dict() for r in res.runs]
    for r in out:
        r.pop("train_wall_s", None)
    agg = res.to_dict()
    agg.pop("training", None)
    agg.pop("engine")
    return out, agg


@pytest.mark.parametrize("method", [
    DEFAULT.replace(fewshot_raw_weight=0.5, fewshot_em_steps=0),
    DEFAULT,
    METHODS["paper"].replace(epochs=5, ensemble=2),
    "raw",
], ids=["default-mixed", "default", "paper-ensemble", "raw"])
def test_protocol_engines_give_the_same_results(kinded, method):
    """The stated tolerance of the fast protocol is zero: every run's record is equal,
    however the runs are stacked and on however many worker threads."""
    kw = dict(splits=3, seeds=2, shots=(1, 3), episodes=6, progress=False)
    ref = run_protocol(kinded, method, engine="per-run", **kw)
    assert ref.engine == "per-run"
    for workers, stack_size in ((1, None), (2, None), (2, 4)):
        fast = run_protocol(kinded, method, engine="batched", workers=workers,
                            stack_size=stack_size, **kw)
        assert fast.engine == "batched" and fast.to_dict()["engine"] == "batched"
        assert _records(fast) == _records(ref)


def test_auto_engine_and_kept_models(kinded):
    assert batched_is_exact(METHODS["default"]) and batched_is_exact(METHODS["protonet"])
    odd = METHODS["protonet"].replace(structure_weight=1.0, epochs=2)
    assert not batched_is_exact(odd)
    kw = dict(seeds=1, shots=(2,), episodes=2, progress=False)
    assert run_protocol(kinded, odd, **kw).engine == "per-run"
    assert run_protocol(kinded, DEFAULT, **kw).engine == "batched"
    kept = run_protocol(kinded, DEFAULT, keep_models=True, **kw).runs[0]
    alone = run_protocol(kinded, DEFAULT, engine="per-run", keep_models=True, **kw).runs[0]
    assert kept.train.curves == alone.train.curves  # the val loss curve included
    for m in ("image", "audio"):
        np.testing.assert_array_equal(kept.embeddings[m], alone.embeddings[m])
        for part in ("train", "val", "test", "unseen"):
            np.testing.assert_array_equal(kept.parts[m][part], alone.parts[m][part])
    with pytest.raises(ConfigError, match="engine"):
        run_protocol(kinded, DEFAULT, engine="fast", **kw)
    with pytest.raises(ConfigError, match="workers"):
        run_protocol(kinded, DEFAULT, workers=0, **kw)


def test_split_result_record(kinded):
    from projections import SplitResult, evaluate_split

    r = evaluate_split(kinded, range(1, 8), (8, 9), DEFAULT, seed=0, shots=(2,),
                       episodes=3)
    assert isinstance(r, SplitResult) and r.train is None and r.embeddings is None
    rec = r.to_dict()
    assert list(rec) == ["seen_classes", "unseen_classes", "seed", "method", "best_epoch",
                         "train_wall_s", "train_flops", "seen_test", "unseen", "fewshot"]
    assert set(rec["unseen"]) == {"audio_to_image", "image_to_audio"}
    few = rec["fewshot"]["2"]["unseen"]["audio_to_image"]
    assert set(few) == {"top1", "n_queries", "n_episodes", "chance_top1"}
    rec["unseen"]["audio_to_image"]["top1"] = -1.0  # a copy: the result is unchanged
    assert r.unseen["audio_to_image"]["top1"] >= 0
    raw = evaluate_split(kinded, range(1, 8), (8, 9), "raw", shots=(2,), episodes=2)
    assert set(raw.to_dict()) == {"seen_classes", "unseen_classes", "seed", "method",
                                  "fewshot"}
