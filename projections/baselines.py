"""Trainable spiking-RNN contrastive baseline (snntorch) and the training-cost comparison.

The paper compares its training cost with a recurrent spiking network trained end to end
(152.83x more expensive, by their count). Here both models train on the *same* pairs of the
same split: ours updates two small heads on frozen reservoir features; the baseline runs a
recurrent LIF encoder per modality over every time step of the rasters and back-propagates
through time. FLOPs are counted analytically (MAC = 2 FLOPs, backward = 2x forward) and wall
time is measured; both are reported per epoch and for the epochs actually run.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from rram_lsm.errors import ConfigError

from . import functional as Fn

__all__ = ["SpikingConfig", "SpikingEncoder", "SpikingResult", "train_spiking",
           "training_cost", "compare_training_cost"]


@dataclass(frozen=True)
class SpikingConfig:
    """The spiking-RNN contrastive baseline."""

    hidden: int = 200
    """Recurrent LIF neurons per modality (as many as the reservoir has)."""
    dim: int = 64
    """Embedding dimension (same as our heads)."""
    beta: float = 0.9
    """Membrane decay per step."""
    temperature: float = 0.1
    """CLIP temperature (1.0 does not train this model in a few epochs)."""
    epochs: int = 3
    """Training epochs (BPTT over the full rasters)."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 64
    """Pairs per batch."""


class SpikingEncoder(nn.Module):
    """Linear input -> recurrent LIF layer (snntorch ``RLeaky``) -> spike rate -> linear."""

    def __init__(self, n_inputs: int, cfg: SpikingConfig):
        super().__init__()
        import snntorch as snn

        self.fc_in = nn.Linear(n_inputs, cfg.hidden)
        self.lif = snn.RLeaky(beta=cfg.beta, linear_features=cfg.hidden,
                              spike_grad=snn.surrogate.fast_sigmoid())
        self.fc_out = nn.Linear(cfg.hidden, cfg.dim)

    def forward(self, rasters: torch.Tensor) -> torch.Tensor:
        """``(batch, T, n_inputs)`` -> L2-normalised ``(batch, dim)`` embeddings."""
        spk, mem = self.lif.init_rleaky()
        current = self.fc_in(rasters)  # all steps at once; recurrence stays per step
        total = 0.0
        for t in range(rasters.shape[1]):
            spk, mem = self.lif(current[:, t], spk, mem)
            total = total + spk
        return F.normalize(self.fc_out(total / rasters.shape[1]), dim=1)

    def flops_per_sample(self, n_steps: int) -> int:
        """Forward FLOPs of one sample: input and recurrent MACs and LIF update per step."""
        n_in, h = self.fc_in.in_features, self.fc_in.out_features
        per_step = 2 * n_in * h + 2 * h * h + 5 * h
        return n_steps * per_step + 2 * h * self.fc_out.out_features


@dataclass
class SpikingResult:
    """The trained baseline with its cost and learning curve."""

    image: SpikingEncoder
    """Vision encoder."""
    audio: SpikingEncoder
    """Audio encoder."""
    epochs: int
    """Epochs run."""
    wall_s: float
    """Training wall time (s)."""
    flops: int
    """Counted training FLOPs."""
    curves: dict = field(default_factory=dict)
    """``train_loss`` and ``val_top1`` per epoch."""

    def embed(self, rasters: np.ndarray, modality: str, batch: int = 256) -> np.ndarray:
        """Embed rasters of one modality in batches."""
        enc = {"image": self.image, "audio": self.audio}[modality]
        out = []
        with torch.no_grad():
            for s in range(0, len(rasters), batch):
                out.append(enc(torch.as_tensor(rasters[s:s + batch], dtype=torch.float32)))
        return torch.cat(out).numpy()


def train_spiking(cfg: SpikingConfig, image_rasters, audio_rasters, train_pairs, val_pairs,
                  image_labels, audio_labels, *, seed: int = 0,
                  progress: bool = False) -> SpikingResult:
    """Train the baseline by BPTT on ``train_pairs``; keep the best epoch on ``val_pairs``."""
    from tqdm.auto import tqdm

    ti, ta = (np.asarray(a, np.int64) for a in train_pairs)
    vi, va = (np.asarray(a, np.int64) for a in val_pairs)
    if len(ti) < 2 or len(vi) < 1:
        raise ConfigError("the spiking baseline needs >= 2 training and >= 1 validation pair")
    if image_rasters.ndim != 3 or audio_rasters.ndim != 3:
        raise ConfigError("rasters must be (samples, T, inputs)")
    torch.manual_seed(seed)  # snntorch layers initialise from the global generator
    gen = torch.Generator().manual_seed(seed)
    model = nn.ModuleDict({"image": SpikingEncoder(image_rasters.shape[2], cfg),
                           "audio": SpikingEncoder(audio_rasters.shape[2], cfg)})
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    per_pair = (model["image"].flops_per_sample(image_rasters.shape[1])
                + model["audio"].flops_per_sample(audio_rasters.shape[1]))
    xi = torch.as_tensor(np.asarray(image_rasters), dtype=torch.float32)
    xa = torch.as_tensor(np.asarray(audio_rasters), dtype=torch.float32)
    yi, ya = np.asarray(image_labels), np.asarray(audio_labels)
    ui, ua = np.unique(vi), np.unique(va)
    curves = {"train_loss": [], "val_top1": []}
    best = (-1.0, None)
    steps = 0
    start = time.perf_counter()
    for _ in tqdm(range(cfg.epochs), desc="train spiking RNN", disable=not progress,
                  leave=False):
        order = torch.randperm(len(ti), generator=gen).numpy()
        total, batches = 0.0, 0
        for s in range(0, len(ti) - 1, cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            if len(idx) < 2:
                continue
            zi = model["image"](xi[ti[idx]])
            za = model["audio"](xa[ta[idx]])
            loss = Fn.clip_loss(za, zi, cfg.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
            steps += len(idx)
        with torch.no_grad():
            sim = model["audio"](xa[ua]) @ model["image"](xi[ui]).T
            score = float((yi[ui][sim.argmax(1).numpy()] == ya[ua]).mean())
        curves["train_loss"].append(total / max(batches, 1))
        curves["val_top1"].append(score)
        if score > best[0]:
            best = (score, copy.deepcopy(model.state_dict()))
    wall = time.perf_counter() - start
    model.load_state_dict(best[1])
    flops = 3 * steps * per_pair + 3 * steps * 2 * cfg.batch_size * cfg.dim
    return SpikingResult(model["image"], model["audio"], cfg.epochs, wall, int(flops), curves)


def training_cost(ours, spiking: SpikingResult, ours_epochs: int) -> dict:
    """Cost of our head training (a :class:`TrainResult`) vs the spiking baseline.

    ``ratio_*`` = baseline / ours, per epoch and in total for the epochs each ran.
    """
    ours_epochs = max(int(ours_epochs), 1)
    out = {
        "ours": {"flops": ours.train_flops, "wall_s": ours.wall_s, "epochs": ours_epochs},
        "spiking_rnn": {"flops": spiking.flops, "wall_s": spiking.wall_s,
                        "epochs": spiking.epochs},
    }
    for unit in ("flops", "wall_s"):
        a, b = out["spiking_rnn"][unit], out["ours"][unit]
        out[f"ratio_{unit}_total"] = a / b if b else None
        out[f"ratio_{unit}_per_epoch"] = ((a / spiking.epochs) / (b / ours_epochs)
                                          if b else None)
    return out


def compare_training_cost(data, image_rasters, audio_rasters, method, *, seen=None,
                          unseen=None, spiking: SpikingConfig | None = None, seed: int = 0,
                          progress: bool = False) -> dict:
    """Train ``method`` and the spiking baseline on the same pairs of one split; compare.

    ``image_rasters``/``audio_rasters`` are the inputs the features were made from, in the
    same sample order (checked by count). Returns :func:`training_cost` plus both models'
    top-1 audio->image retrieval on the seen test and unseen parts.
    """
    from .splits import split_cross_modal

    from .evaluate import retrieval_metrics
    from .protocol import PAPER_SPLIT
    from .recipes import get_method
    from .train import train_heads, transform_features

    cfg = get_method(method) if isinstance(method, str) else method
    data = data.select_kind(cfg.features)
    spiking = spiking or SpikingConfig()
    if len(image_rasters) != len(data.image_labels) or \
            len(audio_rasters) != len(data.audio_labels):
        raise ConfigError("rasters and features must hold the same samples in the same order")
    sp = split_cross_modal(data.image_labels, data.image_is_test, data.audio_labels,
                           data.audio_is_test, seen=seen or PAPER_SPLIT[0],
                           unseen=unseen or PAPER_SPLIT[1], seed=seed)
    tr = sp.pairs("train", data.image_labels, data.audio_labels)
    va = sp.pairs("val", data.image_labels, data.audio_labels)
    # the same inputs the protocol gives the heads (evaluate_split transforms first)
    x_i = transform_features(data.image_values, cfg.feature_transform)
    x_a = transform_features(data.audio_values, cfg.feature_transform)
    ours = train_heads(cfg, x_i, x_a, tr, va, data.image_labels,
                       data.audio_labels, seed=seed, progress=progress)
    base = train_spiking(spiking, image_rasters, audio_rasters, tr, va, data.image_labels,
                         data.audio_labels, seed=seed, progress=progress)
    out = training_cost(ours, base, len(ours.curves["train_loss"]))
    out["n_train_pairs"] = int(len(tr[0]))
    for name, zi, za in (
            ("ours", ours.embed(x_i, "image"), ours.embed(x_a, "audio")),
            ("spiking_rnn", base.embed(image_rasters, "image"),
             base.embed(audio_rasters, "audio"))):
        for part, key in (("test", "seen_test"), ("unseen", "unseen")):
            ii, ia = sp.image[part], sp.audio[part]
            out[name][f"{key}_audio_to_image_top1"] = retrieval_metrics(
                za[ia], data.audio_labels[ia], zi[ii], data.image_labels[ii])["top1"]
    return out
