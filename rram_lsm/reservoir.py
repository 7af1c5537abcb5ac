"""The reservoir contract: what a LIF reservoir on a macro tile computes, defined once.

:class:`ReservoirSpec` describes the network; :func:`lif_step` is one step of its neurons
(state and parameters as named tuples, after norse's functional style); and
:func:`run_reference` is the **normative** per-step loop through ``Macro.mvm``, in plain
numpy. Every other implementation (the simulator's fused kernel, a device's firmware behind
``RUN_RESERVOIR``, the emulator's) is tested against it for bit-identical spikes with the
read noise off.

Tile layout: ``n_inputs + n_neurons`` rows (inputs first, then the neurons' recurrent rows)
and ``2 * n_neurons`` columns of interleaved differential pairs (column ``2k`` is G+ and
``2k+1`` is G- of neuron ``k``).

Per step ``t``, for every sample (all arithmetic float64, in exactly this order)::

    diff_ua = mvm(tile, concat(x_t, s_prev), differential=True)
    drive   = diff_ua * (weight_scale / (read_voltage_v * g_ref_us))
    v       = decay * v * (1 - s_prev) + drive            # reset "zero" (the paper)
    v       = decay * v + drive - threshold * s_prev      # reset "subtract"
    s       = (v > threshold) and refractory == 0
    refractory = refractory_steps if s else max(refractory - 1, 0)

The membrane starts at 0, no neuron has spiked before step 0, and the recurrent input of
step ``t`` is the spikes of step ``t - 1`` (one step of synaptic delay).
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import ConfigError, MacroError, ShapeError
from .macro import Region, check_region

__all__ = ["RESETS", "ReservoirSpec", "LifState", "drive_factor", "check_rasters",
           "check_tile", "lif_step", "run_reference", "run_tiled_reference"]

RESETS = ("zero", "subtract")
"""Reset rules: ``"zero"`` (hard reset, the paper's) and ``"subtract"`` (``v -= threshold``)."""


@dataclass(frozen=True)
class ReservoirSpec:
    """A LIF reservoir laid on a tile, as every implementation runs it (module docstring).

    Validated on construction: a spec that exists is one every backend can run.
    """

    n_inputs: int
    """Input rows (e.g. 256 for a 16 x 16 crop)."""
    n_neurons: int
    """Reservoir neurons (recurrent rows; output pairs)."""
    decay: float
    """Membrane decay per step (dimensionless, in (0, 1]; 0.9 vision, 0.97 audio)."""
    threshold: float
    """Spike threshold (membrane units, > 0; 5.0 vision, 5.3 audio)."""
    weight_scale: float
    """Scale constant of the weights (dimensionless, > 0)."""
    g_ref_us: float
    """Reference conductance (µS, > 0) that maps a conductance difference to weight 1 * scale."""
    reset: str = "zero"
    """``"zero"`` (hard reset, as in the paper) or ``"subtract"``."""
    refractory_steps: int = 0
    """Steps a neuron stays silent after a spike (>= 0)."""

    def __post_init__(self):
        for name in ("n_inputs", "n_neurons", "refractory_steps"):
            value = getattr(self, name)
            try:
                as_int = operator.index(value)
            except TypeError:
                raise ConfigError(f"{name} must be an integer, got {value!r}") from None
            if as_int < (0 if name == "refractory_steps" else 1):
                raise ConfigError(f"{name} must be >= "
                                  f"{0 if name == 'refractory_steps' else 1}, got {value}")
            object.__setattr__(self, name, int(as_int))
        for name in ("decay", "threshold", "weight_scale", "g_ref_us"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                                  np.integer)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise ConfigError(f"{name} must be finite, got {value}")
            object.__setattr__(self, name, float(value))
        if not 0.0 < self.decay <= 1.0:
            raise ConfigError(f"decay must be in (0, 1], got {self.decay}")
        for name in ("threshold", "weight_scale", "g_ref_us"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.reset not in RESETS:
            raise ConfigError(f"reset must be one of {RESETS}, got {self.reset!r}")

    @property
    def tile_shape(self) -> tuple[int, int]:
        """``(n_inputs + n_neurons, 2 * n_neurons)``: rows and columns of the tile."""
        return (self.n_inputs + self.n_neurons, 2 * self.n_neurons)


class LifState(NamedTuple):
    """State of a batch of LIF neurons between steps (arrays of shape (batch, n))."""

    v: np.ndarray
    """Membrane, float64."""
    s: np.ndarray
    """Spikes of the last step, uint8 0/1."""
    refractory: np.ndarray
    """Steps each neuron must still stay silent, int32."""

    @classmethod
    def zeros(cls, batch: int, n: int) -> "LifState":
        """The state before step 0."""
        return cls(np.zeros((batch, n)), np.zeros((batch, n), np.uint8),
                   np.zeros((batch, n), np.int32))


def drive_factor(spec: ReservoirSpec, read_voltage_v: float) -> float:
    """µA of differential current -> membrane units: ``weight_scale / (V_read * g_ref)``."""
    return spec.weight_scale / (read_voltage_v * spec.g_ref_us)


def lif_step(drive: np.ndarray, state: LifState, spec: ReservoirSpec
             ) -> tuple[np.ndarray, LifState]:
    """One step of every neuron: ``drive`` float64 (batch, n) -> (spikes uint8, new state)."""
    s_prev = state.s.astype(np.float64)
    if spec.reset == "zero":
        v = spec.decay * state.v * (1.0 - s_prev) + drive
    else:
        v = spec.decay * state.v + drive - spec.threshold * s_prev
    fire = (v > spec.threshold) & (state.refractory == 0)
    refractory = np.where(fire, spec.refractory_steps,
                          np.maximum(state.refractory - 1, 0)).astype(np.int32)
    spikes = fire.astype(np.uint8)
    return spikes, LifState(v, spikes, refractory)


def check_rasters(rasters, n_inputs: int) -> np.ndarray:
    """``rasters`` as C-contiguous uint8 (batch, T, n_inputs) of 0/1, or ShapeError."""
    arr = np.asarray(rasters)
    if arr.ndim == 2:
        raise ShapeError(
            f"rasters must be (batch, T, n_inputs); got a 2-D array {arr.shape}: "
            "add a batch axis with rasters[None]")
    if arr.ndim != 3 or arr.shape[2] != n_inputs:
        raise ShapeError(
            f"rasters must be (batch, T, {n_inputs}) binary, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype != np.bool_ and not np.isin(arr, (0, 1)).all():
            raise ShapeError("rasters must be binary (0/1); binarise them first")
        arr = arr.astype(np.uint8)
    elif arr.size and arr.max() > 1:
        raise ShapeError("rasters must be binary (0/1); binarise them first")
    return np.ascontiguousarray(arr)


def check_tile(region, spec: ReservoirSpec, rows: int, cols: int) -> Region:
    """``region`` as a Region of an array of ``rows x cols`` that fits ``spec`` exactly."""
    r = check_region(region, rows, cols)
    if r.shape != spec.tile_shape:
        raise ShapeError(
            f"a reservoir of {spec.n_inputs} inputs and {spec.n_neurons} neurons needs a "
            f"{spec.tile_shape[0]} x {spec.tile_shape[1]} tile, got region "
            f"{r.shape[0]} x {r.shape[1]}")
    return r


def run_reference(macro, region, rasters, spec: ReservoirSpec, *,
                  history: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The reservoir of ``spec`` on ``region`` of ``macro``: one batched ``mvm`` per step.

    ``rasters``: binary (batch, T, n_inputs). Returns spikes uint8 (batch, T, n_neurons) and
    the final membrane float64 (batch, n_neurons). ``history`` (batch, T, n) float64, when
    given, receives the membrane after every step. Works on any macro; this is the
    definition the fast paths are held to.
    """
    info = macro.info()
    r = check_tile(region, spec, info.rows, info.cols)
    return _run_loop(lambda rows: macro.mvm(r, rows, differential=True),
                     info.read_voltage_v, rasters, spec, history)


def run_tiled_reference(macros, tilemap, rasters, spec: ReservoirSpec, *,
                        history: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`run_reference` for a reservoir split over tiles (``rram_lsm.mapping``): each
    step's MVM is :func:`rram_lsm.mapping.tiled_mvm` (per-tile ADC, partial sums in
    ascending row-block order). ``macros``: macro index -> Macro; every macro of the map
    must share one read voltage."""
    from .mapping import tiled_mvm

    if (tilemap.n_rows, tilemap.n_neurons) != (spec.n_inputs + spec.n_neurons,
                                               spec.n_neurons):
        raise ShapeError(f"the tile map covers {tilemap.n_rows} rows x {tilemap.n_neurons} "
                         f"neurons; the spec needs {spec.n_inputs + spec.n_neurons} x "
                         f"{spec.n_neurons}")
    volts = {float(macros[k].info().read_voltage_v) for k in tilemap.macros}
    if len(volts) != 1:
        raise ConfigError(f"the macros of one reservoir read at different voltages {volts}")
    return _run_loop(lambda rows: tiled_mvm(macros, tilemap, rows), volts.pop(), rasters,
                     spec, history)


def _run_loop(mvm, read_voltage_v: float, rasters, spec: ReservoirSpec,
              history: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The step loop of the module docstring over a differential ``mvm(rows)``."""
    arr = check_rasters(rasters, spec.n_inputs)
    factor = drive_factor(spec, read_voltage_v)
    batch, n_steps, n_in = arr.shape
    n = spec.n_neurons
    state = LifState.zeros(batch, n)
    spikes = np.zeros((batch, n_steps, n), np.uint8)
    rows = np.zeros((batch, n_in + n), np.uint8)
    for t in range(n_steps):
        rows[:, :n_in] = arr[:, t]
        rows[:, n_in:] = state.s
        diff_ua = np.asarray(mvm(rows), dtype=np.float64)
        if diff_ua.shape != (batch, n):
            raise MacroError(
                f"mvm returned shape {diff_ua.shape}, expected {(batch, n)} for a "
                "differential read of the reservoir tile")
        spikes[:, t], state = lif_step(diff_ua * factor, state, spec)
        if history is not None:
            history[:, t] = state.v
    return spikes, state.v
