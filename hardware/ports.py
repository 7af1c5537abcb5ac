"""Opening ports by URL, with errors that say what to do (``hardware.discovery`` finds
macros among them)."""
from __future__ import annotations

import errno

from .errors import HardwareError

__all__ = ["open_port", "explain_open_error"]

_POLL_S = 0.005


def explain_open_error(port: str, exc: BaseException) -> str:
    """One sentence on why ``port`` could not be opened and what to do about it."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return (f"{port}: permission denied; add your user to the port's group (often "
                "'dialout': sudo usermod -aG dialout $USER, then log in again)")
    if err == errno.EBUSY or "busy" in text.lower() or "exclusively lock" in text:
        return f"{port}: busy; another program holds it (close it, or check `fuser {port}`)"
    if err == errno.ENOENT or "No such file" in text or "could not open port" in text:
        return f"{port}: no such device; is it plugged in? (`rram-lsm devices` lists ports)"
    return f"{port}: cannot open: {text}"


def open_port(url: str, baudrate: int = 921600):
    """``serial.serial_for_url`` with a short read timeout; HardwareError explains failures."""
    import serial

    try:
        port = serial.serial_for_url(url, baudrate=baudrate, timeout=_POLL_S,
                                     write_timeout=10.0, do_not_open=True)
        if hasattr(port, "exclusive") and url.startswith("/"):
            port.exclusive = True
        port.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise HardwareError(explain_open_error(url, exc)) from exc
    return port
