"""Cross-modal split and pairing: nothing unseen or official-test reaches train/val."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsm.data import open_dataset
from projections.splits import PARTS, split_cross_modal
from rram_lsm.errors import ConfigError


def _labels(draw_list):
    labels = np.array([lab for lab, _ in draw_list], dtype=np.int64)
    is_test = np.array([t for _, t in draw_list], dtype=bool)
    return labels, is_test


samples = st.lists(st.tuples(st.integers(0, 10), st.booleans()), min_size=1, max_size=120)


def _check_no_leak(split, labels, is_test):
    parts = {p: set(split_part.tolist()) for p, split_part in split.items()}
    for a in PARTS:  # disjoint parts
        for b in PARTS:
            if a < b:
                assert not parts[a] & parts[b], (a, b)
    for p in ("train", "val", "test"):
        assert set(labels[list(parts[p])].tolist()) <= set(SEEN)
    for p in ("train", "val"):
        assert not is_test[list(parts[p])].any()  # no official test file for model selection
    assert is_test[list(parts["test"])].all()
    assert set(labels[list(parts["unseen"])].tolist()) <= set(UNSEEN)
    covered = set().union(*parts.values())
    expected = {i for i, c in enumerate(labels) if c in SEEN or c in UNSEEN}
    assert covered == expected  # every seen/unseen sample has exactly one part


SEEN, UNSEEN = (1, 2, 3, 4, 5, 6, 7), (8, 9)


@given(samples, samples, st.integers(0, 2**16), st.floats(0.0, 0.9))
def test_split_never_leaks(img, aud, seed, val_fraction):
    il, it = _labels(img)
    al, at = _labels(aud)
    s = split_cross_modal(il, it, al, at, SEEN, UNSEEN, val_fraction=val_fraction, seed=seed)
    _check_no_leak(s.image, il, it)
    _check_no_leak(s.audio, al, at)
    for part in PARTS:
        a, b = s.pairs(part, il, al)
        assert len(a) == len(b)
        np.testing.assert_array_equal(il[a], al[b])  # pairs share the class
        assert set(a.tolist()) <= set(s.image[part].tolist())
        assert set(b.tolist()) <= set(s.audio[part].tolist())


def test_split_on_synthetic_datasets_is_seeded_and_leak_free():
    img = open_dataset("nmnist", None, synthetic_per_class=(10, 3))
    aud = open_dataset("fsdd", None, synthetic_per_class=(12, 3))
    s = split_cross_modal(img.labels, img.is_test, aud.labels, aud.is_test, seed=4)
    again = split_cross_modal(img.labels, img.is_test, aud.labels, aud.is_test, seed=4)
    for part in PARTS:
        np.testing.assert_array_equal(s.image[part], again.image[part])
    _check_no_leak(s.image, img.labels, img.is_test)
    _check_no_leak(s.audio, aud.labels, aud.is_test)
    # every audio sample of the larger modality is used once per part
    a, b = s.pairs("train", img.labels, aud.labels)
    assert sorted(b.tolist()) == sorted(s.audio["train"].tolist())
    assert len(s.image["unseen"]) == 2 * 13 and len(s.audio["unseen"]) == 2 * 15


def test_overlapping_classes_rejected():
    with pytest.raises(ConfigError):
        split_cross_modal([1], [False], [1], [False], seen=(1, 8), unseen=(8, 9))
