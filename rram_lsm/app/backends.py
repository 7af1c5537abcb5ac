"""Open a macro backend from a short spec, as the ``--backend`` option gives it.

* ``sim``                 the numba crossbar simulator (``sim.SimMacro``)
* ``emulator``            a device emulator started for the run, spoken to over a real
                          pseudo-terminal by the serial driver (``hardware.open_emulated``)
* ``serial:<port|url>``   a physical macro (``/dev/ttyUSB0``, ``socket://host:port``, ``loop://``);
                          ``serial:<url>,<url>...`` a chip of several macros, one port each

The simulator and the emulator built from the same chip seed and profile hold the same
conductances, so the same experiment gives the same features on either.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..macro import Macro

__all__ = ["BACKEND_HELP", "open_backend", "parse_backend", "serial_urls"]

BACKEND_HELP = "sim (default), emulator, or serial:<port or url>[,<port or url>...]"


def parse_backend(spec: str) -> tuple[str, str | None]:
    """Split a backend spec into ``(kind, url)``; raise ConfigError for unknown kinds."""
    spec = (spec or "sim").strip()
    if spec in ("sim", "emulator"):
        return spec, None
    if spec.startswith("serial:") and len(spec) > len("serial:"):
        return "serial", spec[len("serial:"):]
    raise ConfigError(f"unknown backend {spec!r}; expected {BACKEND_HELP}")


def serial_urls(url: str) -> list[str]:
    """The ports of a ``serial:`` spec's URL part, one per macro of the chip."""
    urls = [u.strip() for u in url.split(",")]
    if not all(urls):
        raise ConfigError(f"empty port in serial:{url}; expected serial:<url>[,<url>...]")
    return urls


def open_backend(spec: str = "sim", *, seed: int = 0, profile=None, noise: bool = True,
                 macro_index: int = 0) -> Macro:
    """Open macro ``macro_index`` of the chip named by ``spec``. Use it as a context manager.

    ``seed`` and ``profile`` (preset name, JSON path or ``sim.DeviceProfile``) define the
    virtual chip for ``sim`` and ``emulator``; ``noise=False`` switches read and programming
    noise off there (a physical chip ignores both and keeps its own physics). On
    ``serial:a,b`` macro ``k`` is the k-th port.
    """
    kind, url = parse_backend(spec)
    if kind in ("sim", "emulator"):
        from sim import load_profile

        prof = load_profile(profile)
        if not noise:
            prof = prof.noise_free()
        if kind == "sim":
            from sim import SimMacro

            return SimMacro(seed=seed, profile=prof, macro_index=macro_index)
        from hardware import open_emulated

        return open_emulated(seed=seed, profile=prof, macro_index=macro_index)
    from hardware import SerialMacro

    urls = serial_urls(url)
    if not 0 <= macro_index < len(urls):
        raise ConfigError(f"macro {macro_index} needs port number {macro_index + 1}; "
                          f"serial:{url} names {len(urls)}")
    return SerialMacro(urls[macro_index])
