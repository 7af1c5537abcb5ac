"""The macro interface: one definition, used by ``lsm``, implemented by ``sim`` and ``hardware``.

A *macro* is an RRAM in-memory-computing array (default 512 x 512 = 256 Kb, the 40 nm macro
of Lin et al. 2025; the geometry is an assumption, the backend reports its own in ``info()``).

Conventions (every implementation follows them exactly):

* A region is a rectangular tile ``Region(row0, col0, rows, cols)``; any 4-tuple is accepted
  where a region is expected. Regions outside the array raise :class:`RegionError`.
* Conductances are in microsiemens (µS), float64, shape ``(rows, cols)`` of the region.
* ``mvm(region, inputs)`` applies binary inputs (shape ``(batch, rows)``, values 0/1) to the
  rows as read pulses of ``info().read_voltage_v`` volts and returns the column currents in
  microamperes (µA) **after the ADC**, float64, shape ``(batch, cols)``: ``I_j = V_read *
  sum_i x_i G_ij``. With an ideal ADC (``adc_bits is None``) the analogue value is returned;
  otherwise the value is ``code * adc_lsb_ua`` with ``code = min(floor(I / lsb + 0.5),
  2**adc_bits - 1)`` (unipolar currents, saturating at full scale).
* Noise-free column sums are accumulated in float64 over the *active rows in ascending row
  order*, starting from 0.0, then multiplied by ``V_read``: any faster path that wants to be
  bit-identical with the generic path (the LSM's fused kernel) must accumulate in that order.
* ``mvm(..., differential=True)`` treats the region's columns as interleaved differential
  pairs (column ``2k`` is G+, ``2k+1`` is G- of output ``k``; ``cols`` must be even) and
  returns ``I[2k] - I[2k+1]`` (each side digitised by the ADC first), shape ``(batch, cols/2)``.
  It halves the data a serial link carries and gives the same numbers as subtracting by hand.
* Time: the macro has a clock (seconds since programming/forming) that drifts conductances;
  ``advance_time(dt)`` moves it forward and returns the new clock value.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ConfigError, RegionError, SafetyLimitError

__all__ = [
    "Region",
    "SafetyLimits",
    "MacroInfo",
    "FormResult",
    "ProgramResult",
    "Macro",
    "RUN_RESERVOIR",
    "RESERVOIR_MEMBRANE",
    "check_region",
    "check_form_request",
    "check_program_request",
    "form_to_sparsity",
]


@dataclass(frozen=True)
class Region:
    """A rectangular tile of the array: first row, first column, number of rows and columns."""

    row0: int
    col0: int
    rows: int
    cols: int

    @classmethod
    def of(cls, region: "Region | tuple[int, int, int, int]") -> "Region":
        """Accept a Region or a 4-tuple ``(row0, col0, rows, cols)``."""
        if isinstance(region, Region):
            return region
        try:
            # operator.index rejects 0.5 instead of silently truncating it to 0
            row0, col0, rows, cols = (operator.index(v) for v in region)
        except (TypeError, ValueError) as exc:
            raise RegionError(
                f"a region is (row0, col0, rows, cols) of integers, got {region!r}"
            ) from exc
        return cls(row0, col0, rows, cols)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return (self.rows, self.cols)

    @property
    def slices(self) -> tuple[slice, slice]:
        """Numpy slices that cut this region out of a full-array matrix."""
        return (slice(self.row0, self.row0 + self.rows), slice(self.col0, self.col0 + self.cols))


@dataclass(frozen=True)
class SafetyLimits:
    """Electrical limits a macro accepts; requests beyond them raise SafetyLimitError."""

    max_form_voltage_v: float = 5.0
    """Highest forming voltage (V, absolute) the macro allows."""
    max_program_voltage_v: float = 3.0
    """Highest set/reset programming voltage (V, absolute)."""
    max_compliance_ua: float = 500.0
    """Highest compliance current (µA) during forming or programming."""
    min_pulse_width_s: float = 1e-8
    """Shortest pulse (s)."""
    max_pulse_width_s: float = 1e-3
    """Longest pulse (s)."""


@dataclass(frozen=True)
class MacroInfo:
    """What a macro says about itself (the INFO handshake on hardware)."""

    rows: int
    """Number of word lines (inputs) of the array."""
    cols: int
    """Number of bit lines (outputs) of the array."""
    model: str
    """Model name, e.g. ``"rram-40nm-256kb"``."""
    firmware_version: str
    """Firmware (or simulator) version string."""
    protocol_version: int
    """Wire-protocol version (1 for the simulator, which has no wire)."""
    read_voltage_v: float
    """Read pulse amplitude (V) used by ``mvm`` and ``read_conductance``."""
    adc_bits: int | None
    """ADC resolution in bits; ``None`` means ideal (no quantisation)."""
    adc_lsb_ua: float
    """Current of one ADC code (µA); 0.0 when the ADC is ideal."""
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    """Electrical safety limits."""
    capabilities: tuple[str, ...] = ()
    """Optional features, e.g. ``("run_reservoir",)`` for firmware that runs the LIF loop."""


@dataclass(frozen=True)
class FormResult:
    """Outcome of electroforming a region."""

    formed: np.ndarray
    """bool ``(rows, cols)``: True where the cell formed (broke down)."""
    conductance_us: np.ndarray
    """float64 ``(rows, cols)``: conductance after forming (µS), pristine cells included."""


@dataclass(frozen=True)
class ProgramResult:
    """Outcome of a write-verify programming run."""

    conductance_us: np.ndarray
    """float64 ``(rows, cols)``: conductance reached (µS), as last verified."""
    pulses: np.ndarray
    """int32 ``(rows, cols)``: pulses applied per cell."""
    converged: np.ndarray
    """bool ``(rows, cols)``: True where the cell ended within tolerance."""


RUN_RESERVOIR = "run_reservoir"
"""Capability name: the backend runs the whole LIF loop itself, bit-identical to
``rram_lsm.reservoir.run_reference`` with read noise off."""

RESERVOIR_MEMBRANE = "reservoir_membrane"
"""Capability name: ``run_reservoir(..., return_membrane=True)`` also returns the final
membrane float64 (batch, n_neurons)."""


@runtime_checkable
class Macro(Protocol):
    """An RRAM in-memory-computing macro (simulated or real). See the module docstring."""

    def info(self) -> MacroInfo:
        """Geometry, versions, ADC and safety limits."""
        ...

    def form(
        self, region, voltage_v: float, pulse_width_s: float, compliance_ua: float
    ) -> FormResult:
        """Electroform every cell of ``region`` with one pulse of ``voltage_v``."""
        ...

    def program(
        self, region, target_us: np.ndarray, tolerance_us: float, max_pulses: int
    ) -> ProgramResult:
        """Write-verify the region toward ``target_us`` (µS, shape of the region)."""
        ...

    def read_conductance(self, region) -> np.ndarray:
        """Read the region's conductances (µS), read noise included."""
        ...

    def mvm(self, region, inputs: np.ndarray, differential: bool = False) -> np.ndarray:
        """Batched binary matrix-vector product; see the module docstring for units."""
        ...

    def advance_time(self, seconds: float) -> float:
        """Move the macro's clock forward by ``seconds``; return the new clock (s)."""
        ...

    def clock_s(self) -> float:
        """Seconds on the macro's clock (drift time)."""
        ...

    def identity(self) -> dict:
        """JSON-able description of what makes this chip this chip (backend, seed or
        serial URL, profile, code or firmware version); cache keys are built from it."""
        ...

    # Optional, only where info().capabilities contains RUN_RESERVOIR:
    # def run_reservoir(self, region, rasters, spec: ReservoirSpec) -> np.ndarray
    #     rasters: uint8 (batch, T, n_inputs); returns uint8 spikes (batch, T, n_neurons),
    #     bit-identical to rram_lsm.reservoir.run_reference with read noise off. Where
    #     RESERVOIR_MEMBRANE is offered too, return_membrane=True returns (spikes, v_final).

    def reset(self) -> None:
        """Return to the state after power-up (cells keep their conductance)."""
        ...

    def close(self) -> None:
        """Release the backend (port, process). Idempotent."""
        ...

    def __enter__(self): ...

    def __exit__(self, *exc) -> None: ...


def check_region(region, rows: int, cols: int) -> Region:
    """Validate ``region`` against an array of ``rows x cols``; return it as a Region."""
    r = Region.of(region)
    if r.rows <= 0 or r.cols <= 0:
        raise RegionError(f"region {r} has no cells: rows and cols must be positive")
    if r.row0 < 0 or r.col0 < 0 or r.row0 + r.rows > rows or r.col0 + r.cols > cols:
        raise RegionError(
            f"region {tuple((r.row0, r.col0, r.rows, r.cols))} lies outside the "
            f"{rows} x {cols} array"
        )
    return r


def _check_pulse(limits: SafetyLimits, pulse_width_s: float) -> None:
    if not (limits.min_pulse_width_s <= pulse_width_s <= limits.max_pulse_width_s):
        raise SafetyLimitError(
            f"pulse width {pulse_width_s:g} s is outside the allowed "
            f"[{limits.min_pulse_width_s:g}, {limits.max_pulse_width_s:g}] s"
        )


def check_form_request(
    limits: SafetyLimits, voltage_v: float, pulse_width_s: float, compliance_ua: float
) -> None:
    """Raise SafetyLimitError if a forming request exceeds ``limits``."""
    if not np.isfinite(voltage_v) or abs(voltage_v) > limits.max_form_voltage_v:
        raise SafetyLimitError(
            f"forming voltage {voltage_v:g} V exceeds the limit of "
            f"{limits.max_form_voltage_v:g} V"
        )
    if not np.isfinite(compliance_ua) or not 0 < compliance_ua <= limits.max_compliance_ua:
        raise SafetyLimitError(
            f"compliance {compliance_ua:g} µA must be in (0, {limits.max_compliance_ua:g}] µA"
        )
    _check_pulse(limits, pulse_width_s)


def check_program_request(limits: SafetyLimits, voltage_v: float, pulse_width_s: float) -> None:
    """Raise SafetyLimitError if a programming pulse exceeds ``limits``."""
    if not np.isfinite(voltage_v) or abs(voltage_v) > limits.max_program_voltage_v:
        raise SafetyLimitError(
            f"programming voltage {voltage_v:g} V exceeds the limit of "
            f"{limits.max_program_voltage_v:g} V"
        )
    _check_pulse(limits, pulse_width_s)


def form_to_sparsity(macro: "Macro", region, target_sparsity: float = 0.5, *,
                     v_start: float = 3.0, v_step: float = 0.05, pulse_width_s: float = 1e-6,
                     compliance_ua: float = 100.0) -> tuple[float, FormResult]:
    """Sweep the forming voltage upward from ``v_start`` in ``v_step`` steps until the
    unformed fraction of ``region`` is <= ``target_sparsity`` (as the real chip is formed).

    Returns the last voltage applied and its FormResult. Raises SafetyLimitError if the
    target is not reached below the macro's maximum forming voltage.
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise ConfigError(f"target_sparsity must be in [0, 1), got {target_sparsity}")
    if v_step <= 0:
        raise ConfigError(f"v_step must be positive, got {v_step}")
    v_max = macro.info().limits.max_form_voltage_v
    k = 0
    while True:
        # integer steps, rounded: no float creep in the voltages a log or a chip sees
        voltage = round(v_start + k * v_step, 6)
        if voltage > v_max:
            if k == 0:
                raise SafetyLimitError(
                    f"forming sweep starts at {v_start:g} V, above the macro's limit of "
                    f"{v_max:g} V; start lower")
            unformed = 1.0 - float(np.mean(result.formed))
            raise SafetyLimitError(
                f"forming reached the macro's limit of {v_max:g} V with {unformed:.3f} of the "
                f"region unformed (target sparsity {target_sparsity}); lower the target or "
                "use a fresh region")
        result = macro.form(region, voltage, pulse_width_s, compliance_ua)
        if 1.0 - float(np.mean(result.formed)) <= target_sparsity:
            return voltage, result
        k += 1
