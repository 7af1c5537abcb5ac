"""RRAM-LSM's bottom layer: the contract every other package builds on.

It imports nothing of ours. ``rram_lsm.macro`` is the macro interface, ``rram_lsm.reservoir``
the reservoir's definition and its normative reference loop, ``rram_lsm.placement`` the
allocation of tiles on chips, ``rram_lsm.errors`` the typed errors and ``rram_lsm.records``
the JSON records. ``sim`` and ``hardware`` implement the macro; ``lsm`` runs reservoirs on any
macro; ``projections`` consumes feature arrays; ``rram_lsm.app`` (CLI, commands, experiments,
backends, settings) is the only layer that reads settings and opens chips
(docs/architecture.md).
"""
from .errors import (ConfigError, DataError, DataNotFoundError, EventFileError, MacroError,
                     PlacementError, RegionError, RramLsmError, SafetyLimitError, ShapeError)
from .macro import RUN_RESERVOIR, FormResult, Macro, MacroInfo, ProgramResult, Region, SafetyLimits
from .placement import Placement, TileAllocator
from .reservoir import LifState, ReservoirSpec, lif_step, run_reference

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Macro", "MacroInfo", "Region", "SafetyLimits", "FormResult", "ProgramResult",
    "RUN_RESERVOIR", "ReservoirSpec", "LifState", "lif_step", "run_reference",
    "TileAllocator", "Placement",
    "RramLsmError", "ConfigError", "DataError", "DataNotFoundError", "EventFileError",
    "MacroError", "RegionError", "PlacementError", "ShapeError", "SafetyLimitError",
]
