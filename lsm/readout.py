"""Supervised readouts (linear and a small MLP, torch) with train/validation/test discipline.

Model type and training epoch are selected on a validation split carved out of the official
training set (stratified, seeded); the test split is touched once, by the selected model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rram_lsm.errors import ConfigError, DataError

__all__ = ["ReadoutConfig", "ReadoutResult", "stratified_split", "fit_readout"]

MODELS = ("linear", "mlp")


@dataclass(frozen=True)
class ReadoutConfig:
    """Training settings of the readouts."""

    models: tuple[str, ...] = MODELS
    """Candidate models, chosen between on validation accuracy."""
    val_fraction: float = 0.2
    """Fraction of each class of the official training set held out for validation."""
    epochs: int = 60
    """Training epochs; the epoch with the best validation accuracy is kept."""
    batch_size: int = 64
    """Minibatch size."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam L2 penalty."""
    hidden: int = 128
    """Hidden units of the MLP (one hidden layer, ReLU)."""

    def __post_init__(self):
        unknown = set(self.models) - set(MODELS)
        if unknown or not self.models:
            raise ConfigError(f"readout models must be among {MODELS}, got {self.models}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.epochs < 1 or self.batch_size < 1 or self.hidden < 1:
            raise ConfigError("epochs, batch_size and hidden must be >= 1")


@dataclass(frozen=True)
class ReadoutResult:
    """Accuracies of one readout fit (fractions in [0, 1])."""

    model: str
    """The model selected on validation."""
    val_accuracy: float
    """Best validation accuracy of the selected model."""
    test_accuracy: float
    """Test accuracy of the selected model at its best validation epoch."""
    per_model: dict
    """``{model: {"val_accuracy", "test_accuracy", "epoch"}}`` for every candidate."""


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int):
    """Boolean mask of validation samples: ``val_fraction`` of every class (at least one
    when a class has two or more samples), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    val = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(val_fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        val[rng.choice(idx, size=k, replace=False)] = True
    return val


def _build(model: str, n_in: int, n_out: int, hidden: int):
    import torch

    if model == "linear":
        return torch.nn.Linear(n_in, n_out)
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, n_out))


def _train_one(model_name, xs, ys, n_classes, cfg: ReadoutConfig, seed: int):
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_tr, x_va, x_te = xs
    y_tr, y_va, y_te = ys
    net = _build(model_name, x_tr.shape[1], n_classes, cfg.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    best = (-1.0, float("nan"), 0)
    for epoch in range(cfg.epochs):
        net.train()
        order = torch.randperm(len(x_tr), generator=gen)
        for b0 in range(0, len(order), cfg.batch_size):
            idx = order[b0:b0 + cfg.batch_size]
            opt.zero_grad()
            loss_fn(net(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val_acc = (net(x_va).argmax(1) == y_va).float().mean().item()
            if val_acc > best[0]:
                # The test set is scored alongside so that no model state must be copied;
                # only the validation accuracy decides which epoch counts.
                test_acc = (net(x_te).argmax(1) == y_te).float().mean().item()
                best = (val_acc, test_acc, epoch)
    return {"val_accuracy": best[0], "test_accuracy": best[1], "epoch": best[2]}


def fit_readout(values: np.ndarray, labels: np.ndarray, is_test: np.ndarray, *, seed: int = 0,
                config: ReadoutConfig | None = None) -> ReadoutResult:
    """Train the candidate readouts on the official training split minus a stratified
    validation part (``seed``), pick model and epoch on validation, report test accuracy.

    Features are standardised with the training part's mean and std.
    """
    import torch

    cfg = config or ReadoutConfig()
    x = np.asarray(values, np.float32)
    y = np.asarray(labels, np.int64)
    test = np.asarray(is_test, bool)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(test):
        raise DataError(f"values (N, F), labels (N,), is_test (N,) disagree: {x.shape}, "
                        f"{y.shape}, {test.shape}")
    if test.all() or not test.any():
        raise DataError("need both official training and test samples to fit a readout")
    train_pool = np.flatnonzero(~test)
    val_mask = stratified_split(y[train_pool], cfg.val_fraction, seed)
    tr, va, te = train_pool[~val_mask], train_pool[val_mask], np.flatnonzero(test)
    mean = x[tr].mean(axis=0)
    std = x[tr].std(axis=0)
    std[std == 0] = 1.0
    xs = [torch.from_numpy((x[i] - mean) / std) for i in (tr, va, te)]
    ys = [torch.from_numpy(y[i]) for i in (tr, va, te)]
    n_classes = int(y.max()) + 1
    per_model = {m: _train_one(m, xs, ys, n_classes, cfg, seed) for m in cfg.models}
    chosen = max(cfg.models, key=lambda m: per_model[m]["val_accuracy"])
    return ReadoutResult(model=chosen, val_accuracy=per_model[chosen]["val_accuracy"],
                         test_accuracy=per_model[chosen]["test_accuracy"], per_model=per_model)
