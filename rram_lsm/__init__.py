"""RRAM-LSM: shared interface, settings and CLI of the co-design tool.

The working packages sit beside this one: ``sim`` (crossbar simulator), ``hardware``
(serial driver and emulator), ``lsm`` (reservoir and event data) and ``projections``
(contrastive heads and zero-shot evaluation).
"""
from .errors import (ConfigError, DataError, DataNotFoundError, EventFileError, MacroError,
                     RegionError, RramLsmError, SafetyLimitError, ShapeError)
from .macro import (RUN_RESERVOIR, FormResult, Macro, MacroInfo, ProgramResult, Region,
                    ReservoirSpec, SafetyLimits)
from .backends import open_backend

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Macro", "MacroInfo", "Region", "SafetyLimits", "FormResult", "ProgramResult",
    "ReservoirSpec", "RUN_RESERVOIR",
    "open_backend",
    "RramLsmError", "ConfigError", "DataError", "DataNotFoundError", "EventFileError",
    "MacroError", "RegionError", "ShapeError", "SafetyLimitError",
]
