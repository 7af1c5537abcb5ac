"""Finding macros among the serial ports: ``rram-lsm devices``."""
from __future__ import annotations

from dataclasses import dataclass

from .driver import SerialMacro
from .errors import HardwareError, LinkTimeoutError
from .ports import open_port

__all__ = ["PortReport", "scan_ports"]


@dataclass(frozen=True)
class PortReport:
    """One line of ``rram-lsm devices``."""

    device: str
    """Port path."""
    description: str
    """What the OS says about it (USB product string...)."""
    hwid: str
    """Hardware id (USB VID:PID, serial number)."""
    status: str
    """``"macro"`` (answered the handshake), ``"incompatible"`` (answered, refused),
    ``"silent"``, ``"unavailable"`` (cannot be opened) or ``"unprobed"``."""
    detail: str
    """Model and firmware of a macro, or why the port is silent/unavailable."""


def scan_ports(probe: bool = True, baudrate: int = 921600, timeout_s: float = 0.5,
               extra: tuple[str, ...] = (), system: bool = True) -> list[PortReport]:
    """List the system's serial ports (if ``system``) and ``extra`` paths/URLs.

    With ``probe``, each one that opens gets the INFO handshake: ``status`` says whether a
    macro answered, stayed silent, or could not be opened (``detail`` says why).
    """
    from serial.tools import list_ports

    entries = ([(p.device, p.description or "", p.hwid or "") for p in list_ports.comports()]
               if system else [])
    entries += [(e, "given on the command line", "") for e in extra]
    reports = []
    for device, desc, hwid in entries:
        if not probe:
            reports.append(PortReport(device, desc, hwid, "unprobed", ""))
            continue
        try:
            port = open_port(device, baudrate)
        except HardwareError as exc:
            reports.append(PortReport(device, desc, hwid, "unavailable", str(exc)))
            continue
        try:
            with SerialMacro(port, timeout_s=timeout_s, retries=1) as m:
                i = m.info()
                detail = (f"{i.model} {i.rows}x{i.cols}, firmware {i.firmware_version}, "
                          f"protocol {i.protocol_version}, capabilities "
                          f"{','.join(i.capabilities) or '-'}")
                reports.append(PortReport(device, desc, hwid, "macro", detail))
        except LinkTimeoutError as exc:
            if exc.received_bytes:
                reports.append(PortReport(
                    device, desc, hwid, "incompatible",
                    f"sent {exc.received_bytes} bytes that are not protocol frames at "
                    f"{baudrate} baud (wrong baud rate, or another kind of device)"))
            else:
                reports.append(PortReport(
                    device, desc, hwid, "silent",
                    f"opened, but nothing answered the INFO handshake within {timeout_s:g} s "
                    f"at {baudrate} baud (not a macro, wrong baud rate, or firmware not running)"))
        except HardwareError as exc:  # answered, but not in a way this driver accepts
            reports.append(PortReport(device, desc, hwid, "incompatible", str(exc)))
        finally:
            port.close()
    return reports
