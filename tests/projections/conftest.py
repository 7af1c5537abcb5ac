"""Synthetic class-cluster features with a cross-modal structure shared by every class."""
from __future__ import annotations

import numpy as np
import pytest

from projections import PairedFeatures


KINDED_WIDTHS = {"counts": 20, "input": 6, "input_span": 6}


def make_features(n_train=24, n_test=8, classes=range(10), dim=20, latent=4, noise=0.3,
                  seed=0, kinds=False) -> PairedFeatures:
    """Each class has a latent code; both modalities are fixed linear maps of it + noise.

    A map learned on seen classes therefore transfers to unseen ones (zero-shot works here
    by construction), which is what the protocol tests need to tell method from chance.
    ``kinds``: the columns are recorded as ``counts+input+input_span`` blocks
    (:data:`KINDED_WIDTHS`), as ``encode_pair`` records them, so that a recipe whose
    few-shot reads another kind than its heads (the default) can run.
    """
    if kinds:
        dim = sum(KINDED_WIDTHS.values())
    rng = np.random.default_rng(seed)
    codes = {c: rng.normal(size=latent) for c in classes}
    maps = {m: rng.normal(size=(latent, dim)) for m in ("image", "audio")}
    out = {}
    for m in ("image", "audio"):
        labels = np.repeat(list(classes), n_train + n_test)
        is_test = np.tile(np.r_[np.zeros(n_train, bool), np.ones(n_test, bool)],
                          len(list(classes)))
        values = np.stack([codes[c] for c in labels]) @ maps[m]
        values = values + noise * rng.normal(size=values.shape) * values.std()
        out[m] = (values.astype(np.float32), labels.astype(np.int64), is_test)
    meta = {"synthetic": True}
    if kinds:
        edges = np.cumsum([0, *KINDED_WIDTHS.values()]).tolist()
        blocks = {k: [a, b] for k, a, b in zip(KINDED_WIDTHS, edges, edges[1:])}
        meta.update(feature_kind="+".join(KINDED_WIDTHS),
                    feature_blocks={"image": blocks, "audio": blocks})
    return PairedFeatures(*out["image"], *out["audio"], meta=meta)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The heads on one torch thread, as the app runs them (rram_lsm.app.threads): the
    batched engine equals the per-run loop bit for bit at this setting, and on a busy
    2-core machine a thread pool only slows the tiny products down."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def kinded():
    """:func:`make_features` with a feature-kind record (``counts+input+input_span``)."""
    return make_features(kinds=True)


@pytest.fixture(scope="session")
def make_synthetic():
    """The :func:`make_features` factory, for tests that need variants."""
    return make_features


@pytest.fixture(scope="session")
def synthetic():
    """A small structured feature set (10 classes, 32 samples per class per modality)."""
    return make_features()
