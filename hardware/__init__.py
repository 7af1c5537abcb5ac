"""Serial driver, wire protocol and pseudo-terminal emulator of the RRAM macro.

Layers, bottom up: ``protocol`` (framing: bytes <-> frames and messages), ``codec`` (each
command's payload layout), ``link`` (``Link``: a port, sequence numbers, retries, wire log),
``driver`` (``SerialMacro``: ``rram_lsm.macro.Macro`` on a ``Link``) and, on the device side,
``emulator`` (``Emulator``: the firmware around any macro). ``open_emulated`` starts an
``Emulator`` around ``sim.SimMacro`` in its own process behind a pseudo-terminal and returns
a ``SerialMacro`` on it.
"""
from .driver import SerialMacro
from .emulator import FIRMWARE_VERSION, Emulator, Faults, ReferenceFirmware
from .errors import (ChunkError, CorruptFrameError, DeviceArgumentError, DeviceBusyError,
                     DeviceError, DeviceRegionError, DeviceResetError, DeviceSafetyLimitError,
                     DeviceShapeError, FirmwareMismatchError, HardwareError, LinkLostError,
                     LinkTimeoutError, ProtocolError)
from .link import Link, LinkStats
from .protocol import (Command, Frame, FrameDecoder, Message, MessageAssembler, Status, crc16,
                       crc32, encode_frame, encode_message)
from .spawn import open_emulated

__all__ = [
    "SerialMacro", "open_emulated", "Emulator", "Faults", "ReferenceFirmware",
    "FIRMWARE_VERSION", "Link", "LinkStats",
    "encode_frame", "encode_message", "FrameDecoder", "MessageAssembler", "Frame", "Message",
    "Command", "Status", "crc16", "crc32",
    "HardwareError", "LinkTimeoutError", "LinkLostError", "CorruptFrameError", "ChunkError",
    "ProtocolError", "DeviceBusyError", "DeviceResetError", "FirmwareMismatchError",
    "DeviceError", "DeviceRegionError", "DeviceShapeError", "DeviceSafetyLimitError",
    "DeviceArgumentError",
]
