"""Many runs of :func:`projections.train.train_heads` trained at once, as one batched program.

A protocol trains one pair of heads per (split, seed): 30 to 108 runs of a few hundred
thousand parameters each, every one too small to keep a core busy. Here the runs' heads
are stacked on a leading dimension (:class:`projections.heads.StackedHead`), every step
embeds all their batches with one batched matrix product per layer, the recipe's loss
(:func:`projections.train.method_loss`, whose losses take stacks) gives one loss per run,
one backward pass gives every run's gradient, and one Adam update over the stack moves
every run (Adam's state is per parameter element, so a stacked Adam *is* R Adams).

Each run keeps everything that is its own, exactly as :func:`~projections.train.train_heads`
has it: its seeded ``torch.Generator`` (initialisation, then one ``randperm`` per epoch),
its batch size and number of batches, its Adam step count (bias correction), its
validation score each epoch, its best epoch and, with ``patience``, its early stop. Runs
whose batch at a step has another size (the last, shorter batch of an epoch) form their
own sub-stack, so no batch is ever padded. A run's standardised feature rows and its
frozen features' cosine matrix (:class:`~projections.train.FeatureSimilarity`, shared by
the seeds of a split) sit in tables that one gather per step reads for the whole stack.

The result is the per-run loop's, bit for bit: the same weights, best epochs and curves
(``tests/projections/test_batched.py``), because every slice of a stacked operation runs
the 2-D operation's arithmetic in the same order (batched products per slice, gradients
formed as 2-D autograd forms them, Adam's update operation for operation). That holds on
one torch thread, as the app runs the heads; only ``wall_s`` differs, the stack's wall
time shared evenly among its runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from rram_lsm.errors import ConfigError

from .heads import DualEncoder, StackedHead, stack_heads, stacked_head_apply
from .train import (FeatureSimilarity, MethodConfig, TrainResult, method_loss,
                    needs_similarity)

__all__ = ["TrainJob", "train_heads_batched"]

_BETAS = (0.9, 0.999)
"""torch.optim.Adam's defaults, which :func:`~projections.train.train_heads` uses."""
_EPS = 1e-8


@dataclass(frozen=True)
class TrainJob:
    """One run of a batch: its pairs (index arrays into the shared features) and seed."""

    train_pairs: tuple
    """``(image_idx, audio_idx)`` of the training pairs."""
    val_pairs: tuple
    """``(image_idx, audio_idx)`` of the validation pairs."""
    seed: int = 0
    """Seed of the run's ``torch.Generator`` (initialisation and batch order)."""


class _Run:
    """The per-run state the stack does not share."""

    def __init__(self, cfg: MethodConfig, job: TrainJob, xi: torch.Tensor, xa: torch.Tensor,
                 image_labels: np.ndarray, audio_labels: np.ndarray):
        ti, ta = (np.asarray(a, np.int64) for a in job.train_pairs)
        vi, va = (np.asarray(a, np.int64) for a in job.val_pairs)
        if len(ti) < 2 or len(vi) < 1:
            raise ConfigError(f"need at least 2 training pairs and 1 validation pair; got "
                              f"{len(ti)} and {len(vi)}")
        if len(ti) != len(ta) or len(vi) != len(va):
            raise ConfigError("image and audio indices of the pairs differ in length")
        if np.any(image_labels[ti] != audio_labels[ta]):
            raise ConfigError("training pairs must join samples of the same class")
        self.pairs = {"image": (ti, vi), "audio": (ta, va)}
        self.y = torch.as_tensor(image_labels[ti])
        self.y_vp = torch.as_tensor(image_labels[vi])
        self.y_val = {"image": torch.as_tensor(image_labels[np.unique(vi)]),
                      "audio": torch.as_tensor(audio_labels[np.unique(va)])}
        self.gen = torch.Generator().manual_seed(int(job.seed))
        self.model = DualEncoder(xi.shape[1], xa.shape[1], cfg.dim, cfg.head, cfg.hidden,
                                 True, cfg.temperature, cfg.learn_temperature, self.gen)
        if cfg.standardize:
            self.model.image.set_standardisation(xi[torch.as_tensor(np.unique(ti))],
                                                 cfg.scale_floor)
            self.model.audio.set_standardisation(xa[torch.as_tensor(np.unique(ta))],
                                                 cfg.scale_floor)
        self.n = len(ti)
        self.bs = min(cfg.batch_size, self.n)
        self.steps = 0          # samples seen (for the FLOP count)
        self.adam_steps = 0     # optimiser steps (Adam's bias correction)
        self.best_score, self.best_epoch = -1.0, 0
        self.active = True
        self.curves = {"train_loss": [], "val_loss": [], "val_top1": []}
        self.perm: dict = {}    # this epoch's training pairs in batch order (_Tables rows)


class _Tables:
    """What every step reads, per modality, for all runs of the stack at once.

    A run reads the rows of its training and validation pairs only. Those rows,
    standardised with the run's statistics (``(x - mean) / std``, as its head computes
    it), sit in one table per modality, run after run; for recipes that read them, the
    frozen features' cosine similarities among those rows
    (:class:`~projections.train.FeatureSimilarity`, one per distinct row set: the seeds
    of a split share theirs) sit in one flat buffer. Pairs are kept as global rows of
    the tables, so a step gathers a whole stack's batch with one index per tensor.
    """

    def __init__(self, runs: list[_Run], values: dict, similarity: bool):
        self.x, self.flat = {}, {}
        self.val_inputs: dict = {}  # see _val_top1
        self.train, self.val, self.uval, self.sim_at = {}, {}, {}, {}
        for m in ("image", "audio"):
            blocks, parts, table, at, row0 = {}, [], [], 0, 0
            self.train[m], self.val[m], self.uval[m], self.sim_at[m] = [], [], [], []
            for run in runs:
                t, v = run.pairs[m]
                rows = np.unique(np.concatenate([t, v]))
                head = getattr(run.model, m)
                table.append((torch.as_tensor(values[m][rows]) - head.mean) / head.std)
                local = np.searchsorted(rows, np.concatenate([t, v]))
                self.train[m].append(torch.as_tensor(row0 + local[:len(t)]))
                self.val[m].append(torch.as_tensor(row0 + local[len(t):]))
                self.uval[m].append(torch.as_tensor(row0 + np.searchsorted(rows,
                                                                           np.unique(v))))
                if similarity:
                    key = rows.tobytes()
                    if key not in blocks:
                        sim = FeatureSimilarity(values[m], rows)
                        blocks[key] = (at, len(rows))
                        parts.append(sim.gram.reshape(-1))
                        at += len(rows) ** 2
                    self.sim_at[m].append((blocks[key][0], len(rows), row0))
                row0 += len(rows)
            self.x[m] = torch.cat(table)
            if similarity:
                self.flat[m] = torch.cat(parts)

    def rows(self, m: str, idx: torch.Tensor) -> torch.Tensor:
        """Table rows ``idx`` (``(k, n)``) as ``(k, n, features)``."""
        return self.x[m].index_select(0, idx.reshape(-1)).view(*idx.shape, -1)

    def similarity(self, m: str, group: list[int], rows: torch.Tensor) -> torch.Tensor:
        """``(k, n, n)`` similarities among each run's batch ``rows[j]`` (table rows)."""
        out, keys = [], [self.sim_at[m][r] for r in group]
        # runs that share a matrix (one split's seeds) gather together: rows, then columns
        for j0, j1 in _spans(keys):
            off, n, row0 = keys[j0]
            gram = self.flat[m][off:off + n * n].view(n, n)
            p = rows[j0:j1] - row0
            sel = gram.index_select(0, p.reshape(-1)).view(j1 - j0, p.shape[1], n)
            out.append(torch.gather(sel, 2, p[:, None, :].expand(-1, p.shape[1], -1)))
        return out[0] if len(out) == 1 else torch.cat(out)


def _spans(keys: list) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of equal consecutive ``keys``."""
    spans, start = [], 0
    for j in range(1, len(keys) + 1):
        if j == len(keys) or keys[j] != keys[start]:
            spans.append((start, j))
            start = j
    return spans


class _Stack:
    """The stacked, trainable parameters of all runs, their Adam state and best copies."""

    def __init__(self, runs: list[_Run], cfg: MethodConfig):
        self.kind = cfg.head
        self.cfg = cfg
        self.heads = {m: stack_heads([getattr(r.model, m) for r in runs])
                      for m in ("image", "audio")}
        self.log_t = torch.stack([r.model.log_temperature.detach() for r in runs]).clone()
        self.params = [t for h in self.heads.values() for t in (h.w1, h.b1, h.w2, h.b2)
                       if t is not None]
        if cfg.learn_temperature:
            self.params.append(self.log_t)
        for p in self.params:
            p.requires_grad_(True)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.best = [p.detach().clone() for p in self._all()]

    def _all(self):
        return [t for h in self.heads.values() for t in (h.w1, h.b1, h.w2, h.b2)
                if t is not None] + [self.log_t]

    def select(self, rows: torch.Tensor | None):
        """(image head, audio head, temperature (k, 1, 1)) of the runs ``rows`` (None: all)."""
        def pick(t):
            return t if t is None or rows is None else t.index_select(0, rows)

        heads = {m: StackedHead(*(pick(t) for t in h)) for m, h in self.heads.items()}
        return heads["image"], heads["audio"], pick(self.log_t).exp().view(-1, 1, 1)

    def adam_step(self, rows: torch.Tensor | None, adam_steps: list[int]) -> None:
        """One Adam step (torch.optim.Adam's single-tensor update, operation for
        operation) of the runs ``rows`` (None: all), whose step counts are
        ``adam_steps``."""
        beta1, beta2 = _BETAS
        lr, wd = self.cfg.lr, self.cfg.weight_decay
        step_size = [lr / (1 - beta1 ** float(s)) for s in adam_steps]
        bc2_sqrt = [(1 - beta2 ** float(s)) ** 0.5 for s in adam_steps]
        neg_ss = torch.tensor([-s for s in step_size], dtype=torch.float32)
        bc2 = torch.tensor(bc2_sqrt, dtype=torch.float32)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
                shape = (-1,) + (1,) * (p.ndim - 1)
                if rows is None:
                    g, pp, mm, vv = p.grad, p, m, v
                else:
                    g, pp = p.grad.index_select(0, rows), p.index_select(0, rows)
                    mm, vv = m.index_select(0, rows), v.index_select(0, rows)
                if wd != 0:
                    g = g.add(pp, alpha=wd)
                mm.lerp_(g, 1 - beta1)
                vv.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (vv.sqrt() / bc2.view(shape)).add_(_EPS)
                pp.add_((neg_ss.view(shape) * mm).div_(denom))
                if rows is not None:
                    p.index_copy_(0, rows, pp)
                    m.index_copy_(0, rows, mm)
                    v.index_copy_(0, rows, vv)
                p.grad = None

    def keep_best(self, rows: list[int]) -> None:
        """Copy the current parameters of runs ``rows`` to their best checkpoint."""
        idx = torch.as_tensor(rows, dtype=torch.int64)
        with torch.no_grad():
            for b, p in zip(self.best, self._all()):
                b.index_copy_(0, idx, p.detach().index_select(0, idx))

    def load_best(self, runs: list[_Run]) -> None:
        """Write every run's best checkpoint into its own :class:`DualEncoder`."""
        names = [(m, n) for m in ("image", "audio") for n in ("w1", "b1", "w2", "b2")
                 if getattr(self.heads[m], n) is not None]
        where = {"w1": "fc1.weight", "b1": "fc1.bias", "w2": "fc2.weight", "b2": "fc2.bias"}
        with torch.no_grad():
            for r, run in enumerate(runs):
                state = {f"{m}.{where[n]}": b[r].clone()
                         for (m, n), b in zip(names, self.best[:-1])}
                state["log_temperature"] = self.best[-1][r].clone()
                run.model.load_state_dict(state, strict=False)
                run.model.eval()


def _groups(runs: list[_Run], key) -> dict:
    """Run positions grouped by ``key(run)`` (skipping None), in run order."""
    out: dict = {}
    for r, run in enumerate(runs):
        k = key(run)
        if k is not None:
            out.setdefault(k, []).append(r)
    return out


def _rows(group: list[int], n_runs: int) -> torch.Tensor | None:
    return None if len(group) == n_runs and group == list(range(n_runs)) else \
        torch.as_tensor(group, dtype=torch.int64)


def _val_inputs(tables: _Tables, group: list[int], runs) -> tuple:
    """Per modality, the runs ``group``'s distinct validation rows (standardised) padded
    to the longest run, which of them are real, and their labels."""
    def padded(m):
        idx = [tables.uval[m][r] for r in group]
        n = max(len(i) for i in idx)
        rows = torch.stack([torch.cat([i, i.new_zeros(n - len(i))]) for i in idx])
        ok = torch.stack([torch.arange(n) < len(i) for i in idx])
        y = torch.stack([torch.cat([runs[r].y_val[m], runs[r].y_val[m].new_zeros(
            n - len(i))]) for r, i in zip(group, idx)])
        return tables.x[m][rows], ok, y

    return padded("image"), padded("audio")


def _val_top1(stack: _Stack, tables: _Tables, group: list[int], runs) -> list[float]:
    """:func:`projections.train._val_top1` of the runs ``group``, stacked (distinct
    validation samples padded to the longest run; padding never wins an argmax)."""
    # the live runs change only at an early stop: their padded inputs are built once
    key = tuple(group)
    if key not in tables.val_inputs:
        tables.val_inputs = {key: _val_inputs(tables, group, runs)}
    (xi, ok_i, yi), (xa, ok_a, ya) = tables.val_inputs[key]
    with torch.no_grad():
        img, aud, _ = stack.select(_rows(group, len(runs)))
        zi = stacked_head_apply(img, xi, stack.kind)
        za = stacked_head_apply(aud, xa, stack.kind)
        sim = za @ zi.transpose(1, 2)
        a2i_idx = sim.masked_fill(~ok_i[:, None, :], float("-inf")).argmax(2)
        i2a_idx = sim.masked_fill(~ok_a[:, :, None], float("-inf")).argmax(1)
        hit_a = (torch.gather(yi, 1, a2i_idx) == ya) & ok_a
        hit_i = (torch.gather(ya, 1, i2a_idx) == yi) & ok_i
        a2i = hit_a.sum(1).float() / ok_a.sum(1).float()
        i2a = hit_i.sum(1).float() / ok_i.sum(1).float()
        return (0.5 * (a2i + i2a)).tolist()


def _val_loss(stack: _Stack, tables: _Tables, group: list[int], runs,
              similarity: bool) -> list[float]:
    """The loss on all validation pairs of runs ``group`` (all of one pair count)."""
    bi = torch.stack([tables.val["image"][r] for r in group])
    ba = torch.stack([tables.val["audio"][r] for r in group])
    s = (tables.similarity("image", group, bi), tables.similarity("audio", group, ba)) \
        if similarity else (None, None)
    with torch.no_grad():
        img, aud, t = stack.select(_rows(group, len(runs)))
        zi = stacked_head_apply(img, tables.x["image"][bi], stack.kind)
        za = stacked_head_apply(aud, tables.x["audio"][ba], stack.kind)
        return method_loss(stack.cfg, zi, za, torch.stack([runs[r].y_vp for r in group]),
                           t, *s).tolist()


def train_heads_batched(cfg: MethodConfig, image_values: np.ndarray,
                        audio_values: np.ndarray, jobs, image_labels, audio_labels, *,
                        val_loss: bool = True, progress: bool = False) -> list[TrainResult]:
    """Train one pair of heads per job, all at once; the i-th result is
    ``train_heads(cfg, image_values, audio_values, *jobs[i] pairs, seed=jobs[i].seed)``.

    ``val_loss=False`` skips the validation loss curve (``curves["val_loss"]`` is left
    empty), which nothing in the selection reads: it saves a forward pass over every
    run's validation pairs each epoch.
    """
    from tqdm.auto import tqdm

    if not cfg.trained:
        raise ConfigError(f"method {cfg.name!r} has no training step")
    jobs = list(jobs)
    if not jobs:
        return []
    image_labels = np.asarray(image_labels)
    audio_labels = np.asarray(audio_labels)
    values = {"image": np.asarray(image_values, np.float32),
              "audio": np.asarray(audio_values, np.float32)}
    xi, xa = torch.as_tensor(values["image"]), torch.as_tensor(values["audio"])
    runs = [_Run(cfg, job, xi, xa, image_labels, audio_labels) for job in jobs]
    stack = _Stack(runs, cfg)
    similarity = needs_similarity(cfg)
    tables = _Tables(runs, values, similarity)
    start = time.perf_counter()
    for epoch in tqdm(range(1, cfg.epochs + 1), desc=f"train {cfg.name} x{len(runs)}",
                      disable=not progress, leave=False):
        live = [r for r, run in enumerate(runs) if run.active]
        if not live:
            break
        n_batches, totals = {}, {}
        for r in live:
            run = runs[r]
            order = torch.randperm(run.n, generator=run.gen)
            run.perm = {"image": tables.train["image"][r][order],
                        "audio": tables.train["audio"][r][order], "y": run.y[order]}
            # drop a last batch of one pair: a one-element batch has no negatives
            n_batches[r] = len([s for s in range(0, run.n - 1, run.bs)
                                if min(run.bs, run.n - s) >= 2])
            totals[r] = 0.0
        for k in range(max(n_batches.values())):
            sizes: dict = {}
            for r in live:
                if k < n_batches[r]:
                    run = runs[r]
                    sizes.setdefault(min(run.bs, run.n - k * run.bs), []).append(r)
            for size, group in sizes.items():
                rows = _rows(group, len(runs))
                img, aud, t = stack.select(rows)

                def take(key):
                    return torch.stack([runs[r].perm[key][k * runs[r].bs:
                                                          k * runs[r].bs + size]
                                        for r in group])

                bi, ba, y = take("image"), take("audio"), take("y")
                s = (tables.similarity("image", group, bi),
                     tables.similarity("audio", group, ba)) if similarity else (None, None)
                zi = stacked_head_apply(img, tables.rows("image", bi), stack.kind)
                za = stacked_head_apply(aud, tables.rows("audio", ba), stack.kind)
                loss = method_loss(cfg, zi, za, y, t, *s)
                loss.sum().backward()
                for r in group:
                    runs[r].adam_steps += 1
                    runs[r].steps += size
                stack.adam_step(rows, [runs[r].adam_steps for r in group])
                for r, v in zip(group, loss.detach().tolist()):
                    totals[r] += v
        if val_loss:
            for group in _groups([runs[r] for r in live],
                                 lambda run: len(run.y_vp)).values():
                group = [live[g] for g in group]
                for r, v in zip(group, _val_loss(stack, tables, group, runs, similarity)):
                    runs[r].curves["val_loss"].append(v)
        scores = _val_top1(stack, tables, live, runs)
        improved = []
        for r, score in zip(live, scores):
            run = runs[r]
            run.curves["train_loss"].append(totals[r] / max(n_batches[r], 1))
            run.curves["val_top1"].append(score)
            if score > run.best_score:
                run.best_score, run.best_epoch = score, epoch
                improved.append(r)
            elif cfg.patience is not None and epoch - run.best_epoch >= cfg.patience:
                run.active = False
        if improved:
            stack.keep_best(improved)
    wall = time.perf_counter() - start
    stack.load_best(runs)
    out = []
    for run in runs:
        per_sample = run.model.image.flops_per_sample() + run.model.audio.flops_per_sample()
        flops = 3 * run.steps * (per_sample + 2 * run.bs * cfg.dim)
        out.append(TrainResult(model=run.model, best_epoch=run.best_epoch, curves=run.curves,
                               train_flops=int(flops), wall_s=wall / len(runs)))
    return out
