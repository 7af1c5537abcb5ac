"""Paired differences between two recipes' protocol records."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from projections import run_protocol
from projections.evaluate import paired_difference
from rram_lsm.errors import ConfigError

KEY = "fewshot.2.unseen.audio_to_image.top1"


def _rows(values):
    return [{"seen": [], "unseen": list(u), "seeds": list(range(len(v))), KEY: list(v)}
            for u, v in values.items()]


def test_paired_difference_pairs_runs_and_uses_splits_as_units():
    a = _rows({(1, 2): [0.9, 0.8], (3, 4): [0.7, 0.75], (5, 6): [0.6, 0.65]})
    b = _rows({(1, 2): [0.85, 0.8], (3, 4): [0.7, 0.7], (5, 6): [0.7, 0.6]})
    out = paired_difference(a, b, KEY)
    per_split = np.array([0.025, 0.025, -0.025])
    assert out["per_split"] == pytest.approx(dict(zip(["1,2", "3,4", "5,6"], per_split)))
    assert out["mean"] == pytest.approx(per_split.mean())
    half = stats.t.ppf(0.975, 2) * per_split.std(ddof=1) / np.sqrt(3)
    assert out["ci95"] == pytest.approx([per_split.mean() - half, per_split.mean() + half])
    assert (out["n_splits"], out["n_runs"]) == (3, 6)
    sub = paired_difference(a, b, KEY, unseen_sets=[(1, 2), (3, 4)])
    assert sub["n_splits"] == 2 and sub["mean"] == pytest.approx(0.025)
    assert paired_difference(a, a, KEY)["mean"] == 0.0
    with pytest.raises(ConfigError, match="missing"):
        paired_difference(a, b, KEY, unseen_sets=[(7, 8)])
    with pytest.raises(ConfigError, match="lacks"):
        paired_difference(a, b, "unseen.audio_to_image.top1")


def test_paired_difference_of_real_protocol_records(synthetic):
    kw = dict(splits=3, seeds=2, shots=(2,), episodes=4, progress=False)
    a = run_protocol(synthetic, "raw", **kw).to_dict()
    b = run_protocol(synthetic, "raw", **kw).to_dict()
    out = paired_difference(a["per_split"], b["per_split"], KEY)
    assert out["mean"] == 0.0 and out["n_splits"] == 3 and out["n_runs"] == 6
