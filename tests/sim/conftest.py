"""Shared helpers of the simulator tests."""
from __future__ import annotations

import dataclasses

import pytest

from sim import macro40nm


def with_changes(profile=macro40nm, **sections):
    """Profile with ``section={field: value}`` changes applied."""
    updates = {k: dataclasses.replace(getattr(profile, k), **v) for k, v in sections.items()}
    return dataclasses.replace(profile, **updates)


@pytest.fixture
def tile():
    """The reservoir tile of the LSM: 456 x 400 at the origin."""
    return (0, 0, 456, 400)
