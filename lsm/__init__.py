"""The liquid state machine: reservoir on any macro, features, and event data."""
from .encode import encode_dataset
from .features import Features
from .reservoir import LsmConfig, Reservoir, preset, run_on_macro

__all__ = ["run_on_macro", "LsmConfig", "preset", "Reservoir", "Features", "encode_dataset"]
