"""Event-data front end: event dtypes, file formats, rasters and the silicon cochlea.

Time unit everywhere: integer microseconds (µs) from the start of the recording.
"""
from .cochlea import (CALIBRATED_GAINS, CochleaConfig, centre_frequencies_hz, cochlea_events,
                      read_wav, speech_event_rate)
from .formats import (AUDIO_EVENT_DTYPE, NTIDIGITS_CLASSES, VISION_EVENT_DTYPE,
                      NTidigitsFile, ntidigits_class, read_bs1, read_nmnist, write_bs1,
                      write_nmnist, write_ntidigits_hdf5)
from .frames import AudioRasterConfig, VisionRasterConfig, audio_raster, vision_raster

__all__ = [
    "VISION_EVENT_DTYPE", "AUDIO_EVENT_DTYPE", "NTIDIGITS_CLASSES",
    "read_nmnist", "write_nmnist", "read_bs1", "write_bs1", "NTidigitsFile",
    "write_ntidigits_hdf5", "ntidigits_class",
    "VisionRasterConfig", "AudioRasterConfig", "vision_raster", "audio_raster",
    "CochleaConfig", "CALIBRATED_GAINS", "cochlea_events", "centre_frequencies_hz",
    "read_wav", "speech_event_rate",
]
