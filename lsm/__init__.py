"""The liquid state machine: a LIF reservoir on any macro, its features, and event data.

Reservoir side: :func:`preset` / :class:`LsmConfig`, :class:`Reservoir` (forms a tile of a
macro and runs rasters through it: the macro's ``run_reservoir`` where offered, else the
reference loop of ``rram_lsm.reservoir``), :class:`Features`, :func:`encode_dataset` with
:class:`EncodeOptions` and a :class:`FeatureCache`. Data side (``lsm.data``, ``lsm.events``):
:func:`open_dataset`, :class:`EventDataset` and the event dtypes. Nothing here opens a chip
or reads the environment: that is ``rram_lsm.app``'s job.
"""
from .cache import FeatureCache
from .data import EventDataset, open_dataset
from .encode import EncodeOptions, encode_dataset, encode_inputs
from .events import AUDIO_EVENT_DTYPE, VISION_EVENT_DTYPE
from .features import Features
from .reservoir import LsmConfig, Reservoir, preset

__all__ = [
    "LsmConfig", "preset", "Reservoir", "Features", "EncodeOptions", "encode_dataset",
    "encode_inputs", "FeatureCache", "open_dataset", "EventDataset", "VISION_EVENT_DTYPE",
    "AUDIO_EVENT_DTYPE",
]
