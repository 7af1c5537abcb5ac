"""The liquid state machine: reservoir on any macro, features, and event data.

Reservoir side: :func:`preset` / :class:`LsmConfig`, :class:`Reservoir` (forms a tile and
runs rasters, fast on the simulator), :func:`run_on_macro` (the per-step loop on any macro),
:class:`Features` and :func:`encode_dataset` (cached). Data side (``lsm.data``,
``lsm.events``): :func:`open_dataset`, :class:`EventDataset` and the event dtypes.
"""
from .data import EventDataset, open_dataset
from .encode import encode_dataset
from .events import AUDIO_EVENT_DTYPE, VISION_EVENT_DTYPE
from .features import Features
from .reservoir import LsmConfig, Reservoir, preset, run_on_macro

__all__ = [
    "run_on_macro", "LsmConfig", "preset", "Reservoir", "Features", "encode_dataset",
    "open_dataset", "EventDataset", "VISION_EVENT_DTYPE", "AUDIO_EVENT_DTYPE",
]
