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
    "reservoir_read": 8,      # read noise of run_reservoir, one child per tile
}


def check_seed(seed) -> int:
    """The chip seed as a non-negative int, or ConfigError."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"a chip seed is a non-negative integer, got {seed!r}")
    return int(seed)


def stream(seed: int, name: str, macro_index: int = 0, key: tuple = ()) -> np.random.Generator:
    """The generator of source ``name`` for macro ``macro_index`` of chip ``seed``.

    Macro 0 keeps the keys of a one-macro chip, so adding macros to a chip changes none of
    the first one's draws. ``key`` (non-negative ints) names a child of the source, e.g. a
    tile's coordinates.
    """
    if name not in STREAMS:
        raise ConfigError(f"unknown random stream {name!r}; known: {sorted(STREAMS)}")
    index = check_seed(macro_index)
    spawn_key = (STREAMS[name],) + ((index,) if index else ()) + tuple(int(k) for k in key)
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(check_seed(seed), spawn_key=spawn_key)))
