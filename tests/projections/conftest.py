"""Fixtures of the projections tests."""
from __future__ import annotations

import pytest
from projections_synth import make_features


@pytest.fixture(scope="session")
def synthetic():
    """A small structured feature set (10 classes, 32 samples per class per modality)."""
    return make_features()
