"""Shared helpers of the simulator tests."""
from __future__ import annotations

import dataclasses

import pytest

from sim import macro40nm


def with_changes(profile=macro40nm, **sections):
    """Profile with ``section={field: value}`` changes applied (``name="x"`` as is)."""
    updates = {k: dataclasses.replace(getattr(profile, k), **v) if isinstance(v, dict) else v
               for k, v in sections.items()}
    return dataclasses.replace(profile, **updates)


@pytest.fixture
def tile():
    """The reservoir tile of the LSM: 456 x 400 at the origin."""
    return (0, 0, 456, 400)
