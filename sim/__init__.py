"""Stochastic RRAM crossbar simulator: a virtual 40 nm macro behind ``rram_lsm.macro.Macro``.

``SimMacro(seed, profile)`` is a chip; ``DeviceProfile`` holds its physics (``macro40nm``
preset by default); ``fit_device_profile`` estimates a profile from conductance maps read
back from any macro; ``form_to_sparsity`` forms a region the way the real chip is formed.
See docs/device-model.md.
"""
__version__ = "0.1.0"

from .profile import DeviceProfile  # noqa: E402
from .presets import load_profile  # noqa: E402
from .presets import macro40nm  # noqa: E402
from .macro import ProgramTargetError, SimMacro  # noqa: E402
from .forming import form_to_sparsity  # noqa: E402
from .fit import fit_device_profile  # noqa: E402

__all__ = [
    "SimMacro",
    "DeviceProfile",
    "load_profile",
    "macro40nm",
    "fit_device_profile",
    "form_to_sparsity",
    "ProgramTargetError",
]
