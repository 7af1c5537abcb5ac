"""Serial driver, wire protocol and pseudo-terminal emulator of the RRAM macro.

``SerialMacro`` speaks docs/protocol.md over any ``serial.serial_for_url`` port and implements
``rram_lsm.macro.Macro``; ``open_emulated`` starts an ``Emulator`` (backed by ``sim.SimMacro``)
in its own process behind a pseudo-terminal and returns a ``SerialMacro`` on it.
"""
from .driver import LinkStats, SerialMacro
from .emulator import Emulator, Faults
from .errors import (ChunkError, CorruptFrameError, DeviceArgumentError, DeviceBusyError,
                     DeviceError, DeviceRegionError, DeviceSafetyLimitError, DeviceShapeError,
                     FirmwareMismatchError, HardwareError, LinkTimeoutError, ProtocolError)
from .protocol import (Command, Frame, FrameDecoder, Message, MessageAssembler, Status, crc16,
                       crc32, encode_frame, encode_message)
from .spawn import open_emulated

__all__ = [
    "SerialMacro", "open_emulated", "Emulator", "Faults", "LinkStats",
    "encode_frame", "encode_message", "FrameDecoder", "MessageAssembler", "Frame", "Message",
    "Command", "Status", "crc16", "crc32",
    "HardwareError", "LinkTimeoutError", "CorruptFrameError", "ChunkError", "ProtocolError",
    "DeviceBusyError", "FirmwareMismatchError", "DeviceError", "DeviceRegionError",
    "DeviceShapeError", "DeviceSafetyLimitError", "DeviceArgumentError",
]
