"""Typed errors of the serial link, the driver and the device.

All subclass :class:`rram_lsm.errors.MacroError`. Errors the device reports about a
request that the simulator would also refuse (bad region, bad shape, safety limit) also
subclass the shared error, so code that catches ``RegionError`` works on every backend.
"""
from __future__ import annotations

from rram_lsm.errors import MacroError, RegionError, SafetyLimitError, ShapeError

__all__ = [
    "HardwareError", "LinkTimeoutError", "LinkLostError", "CorruptFrameError", "ChunkError",
    "ProtocolError", "DeviceBusyError", "DeviceResetError", "FirmwareMismatchError",
    "DeviceError", "DeviceRegionError", "DeviceShapeError", "DeviceSafetyLimitError",
    "DeviceArgumentError",
]


class HardwareError(MacroError):
    """Base class of serial-link and device errors."""


class LinkTimeoutError(HardwareError, TimeoutError):
    """No (complete) reply within the bounded wait, after every allowed retry.

    ``received_bytes`` counts what did arrive during the last wait: 0 means a silent line,
    more means something answered in a way that never formed a valid frame (wrong baud rate,
    another kind of device).
    """

    def __init__(self, message: str, received_bytes: int = 0):
        super().__init__(message)
        self.received_bytes = received_bytes


class LinkLostError(HardwareError, ConnectionError):
    """The port itself failed (the device or its adapter went away, the emulator died).

    The link is unusable from then on: every later command raises this error at once until
    :meth:`hardware.SerialMacro.reconnect` opens the port again. A state-changing command
    that was outstanding is remembered, so repeating the same call after the reconnect
    retransmits it with its sequence number and the device's exactly-once record answers.
    """


class CorruptFrameError(HardwareError, ValueError):
    """A frame failed its CRC or framing checks.

    ``header`` holds the decoded header fields (dict) when the header CRC was good, else None.
    """

    def __init__(self, message: str, header: dict | None = None):
        super().__init__(message)
        self.header = header


class ChunkError(HardwareError, ValueError):
    """A chunked message broke the chunking rules (order, size bound)."""


class ProtocolError(HardwareError, ValueError):
    """A frame was intact but its content violates the protocol (bad payload layout)."""


class DeviceBusyError(HardwareError):
    """The device kept answering BUSY after every allowed retry."""


class DeviceResetError(HardwareError):
    """The device rebooted while a state-changing command was outstanding, and its
    exactly-once record does not hold that command: it may never have arrived or may have
    been cut short part-way (a FORM or PROGRAM partly applied), so the driver does not
    repeat it on its own. Read the region back before forming or programming it again.

    ``command`` and ``seq`` name the command; ``boot_count`` is ``(before, after)``.
    """

    def __init__(self, message: str, command: str | None = None, seq: int | None = None,
                 boot_count: tuple[int, int] | None = None):
        super().__init__(message)
        self.command = command
        self.seq = seq
        self.boot_count = boot_count


class FirmwareMismatchError(HardwareError):
    """The device speaks an incompatible protocol version or did not identify itself."""


class DeviceError(HardwareError):
    """The device refused a request; ``status`` is the status code it returned."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class DeviceRegionError(DeviceError, RegionError):
    """The device rejected the region."""


class DeviceShapeError(DeviceError, ShapeError):
    """The device rejected an array's shape or values."""


class DeviceSafetyLimitError(DeviceError, SafetyLimitError):
    """The device refused a request beyond its electrical safety limits."""


class DeviceArgumentError(DeviceError, ValueError):
    """The device rejected an argument's value (a target out of range, a bad duration)."""
