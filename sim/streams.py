"""Named random streams of a chip, derived from its seed.

Each noise source draws from its own ``np.random.Generator``: ``SeedSequence(seed,
spawn_key=(index,))`` with the index fixed by name in :data:`STREAMS`. The table only ever
grows, so adding a source never changes an existing one, and changing one source's
parameters never changes another's draws.
"""
from __future__ import annotations

import numpy as np

from rram_lsm.errors import ConfigError

STREAMS = {
    "forming": 0,             # per-cell breakdown voltages
    "formed_conductance": 1,  # per-cell conductance after forming
    "programming": 2,         # write-verify keys (pulse noise and verify reads)
    "read": 3,                # read noise of read_conductance and mvm
    "drift": 4,               # per-cell drift exponents
    "stuck": 5,               # which cells are stuck, and how
    "pristine": 6,            # per-cell pristine conductance
    "stall": 7,               # which formed cells never respond to programming pulses
}


def check_seed(seed) -> int:
    """The chip seed as a non-negative int, or ConfigError."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"a chip seed is a non-negative integer, got {seed!r}")
    return int(seed)


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator of source ``name`` for chip ``seed``."""
    if name not in STREAMS:
        raise ConfigError(f"unknown random stream {name!r}; known: {sorted(STREAMS)}")
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(check_seed(seed), spawn_key=(STREAMS[name],))))
