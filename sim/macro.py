"""``SimMacro``: the stochastic crossbar simulator behind the ``rram_lsm.macro.Macro`` interface.

The pipeline is written once: per-chip cell properties (``sim.cells``) -> forming and
write-verify (state: formed flag, conductance at write, write time) -> drift at the clock and
stuck override (the noise-free *effective* conductance) -> read noise on every read and MVM
-> ADC. The numba kernels in ``sim.kernels`` do the array work.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from rram_lsm.errors import ConfigError, MacroError, RegionError, ShapeError
from rram_lsm.records import source_digest
from rram_lsm.reservoir import ReservoirSpec, check_rasters, check_tile
from rram_lsm.macro import (
    RESERVOIR_MEMBRANE,
    RUN_RESERVOIR,
    FormResult,
    MacroInfo,
    ProgramResult,
    Region,
    check_form_request,
    check_program_request,
    check_region,
)

from . import __version__
from .cells import draw_cells
from .kernels import forming as kforming
from .kernels import programming as kprogramming
from .kernels import read as kread
from .presets import load_profile
from .profile import DeviceProfile
from .reservoir import ReservoirRunner
from .streams import check_seed, stream

__all__ = ["SimMacro", "ProgramTargetError"]

MODEL = "rram-40nm-256kb-sim"

# Regions whose contiguous conductance copy is kept between calls (a run uses one or two).
_MAX_CACHED_TILES = 8
# Cap on the per-cell noise tensor of one chunk in the exact (validation) MVM mode.
_PER_CELL_CHUNK_ELEMENTS = 16_000_000


class ProgramTargetError(MacroError, ValueError):
    """A programming target is not finite or lies outside [0, program.g_max_us]."""


class SimMacro:
    """A virtual RRAM macro: a chip is its ``seed`` plus its ``profile``.

    Implements :class:`rram_lsm.macro.Macro`. ``stuck_open`` / ``stuck_high`` (bool maps of
    the full array) replace the random stuck cells of the profile. Same seed and profile give
    a bit-identical chip and, for the same sequence of calls, identical reads.

    The noise-free effective conductance lies on the grid ``conductance_step_us``
    (``sim.kernels.read.CONDUCTANCE_STEP_US``), so its column sums are exact in any order.
    """

    conductance_step_us: float = kread.CONDUCTANCE_STEP_US
    """Grid of the noise-free effective conductance (µS); see CONDUCTANCE_STEP_US."""

    def __init__(self, seed: int = 0, profile=None, *, macro_index: int = 0,
                 stuck_open: np.ndarray | None = None, stuck_high: np.ndarray | None = None):
        self.seed = check_seed(seed)
        self.macro_index = check_seed(macro_index)
        self.profile: DeviceProfile = load_profile(profile)
        shape = (self.profile.array.rows, self.profile.array.cols)
        self._stuck_given = stuck_open is not None or stuck_high is not None
        self._cells = draw_cells(self.profile, self.seed,
                                 _stuck_map(shape, stuck_open, stuck_high), self.macro_index)
        self._formed = np.zeros(shape, dtype=np.bool_)
        self._g0_us = self._cells.pristine_us.copy()
        self._written_s = np.zeros(shape)
        self._clock_s = 0.0
        self._read_rng = stream(self.seed, "read", self.macro_index)
        self._program_rng = stream(self.seed, "programming", self.macro_index)
        self._effective: np.ndarray | None = None
        self._tiles: dict[Region, np.ndarray] = {}
        self._runners: dict[tuple[Region, ReservoirSpec], ReservoirRunner] = {}
        self._reservoir_rngs: dict[Region, np.random.Generator] = {}
        self._tiled_runners: dict = {}
        self._generation = 0
        """Counts the chip's state changes (tiled runners made over several macros check
        it on each of them)."""
        self._closed = False

    # -- interface -------------------------------------------------------------------------
    def info(self) -> MacroInfo:
        """Geometry, versions, ADC and safety limits of this virtual chip."""
        p = self.profile
        return MacroInfo(
            rows=p.array.rows, cols=p.array.cols, model=MODEL,
            firmware_version=f"sim-{__version__}", protocol_version=1,
            read_voltage_v=p.array.read_voltage_v, adc_bits=p.adc.bits,
            adc_lsb_ua=p.adc.lsb_ua, limits=p.limits, capabilities=(RUN_RESERVOIR, RESERVOIR_MEMBRANE),
        )

    def identity(self) -> dict:
        """What makes this chip this chip, for cache keys and records: backend, seed, macro
        index, the whole profile and a digest of the simulator's code (an edit to the
        physics is a different chip)."""
        return {"backend": "sim", "model": MODEL, "seed": self.seed,
                "macro_index": self.macro_index, "profile": self.profile.to_dict(),
                "stuck_override": self._stuck_given, "code": code_digest()}

    def form(self, region, voltage_v: float, pulse_width_s: float = 1e-6,
             compliance_ua: float = 100.0) -> FormResult:
        """One forming pulse: every unformed cell with breakdown voltage <= |voltage_v| forms.

        The compliance current only gates forming: below ``forming.min_compliance_ua`` no
        filament survives and nothing forms; above it the formed conductance is the cell's
        per-chip draw. Returns the formed mask (stuck-high counts as formed, stuck-open never
        does) and a read of the tile (read noise included).
        """
        r = self._region(region)
        check_form_request(self.profile.limits, voltage_v, pulse_width_s, compliance_ua)
        if compliance_ua >= self.profile.forming.min_compliance_ua:
            kforming.form_region(self._cells.breakdown_v, self._cells.formed_us,
                                 self._cells.stuck, self._formed, self._g0_us, self._written_s,
                                 r.row0, r.col0, r.rows, r.cols, float(voltage_v), self._clock_s)
            self._invalidate()
        stuck = self._cells.stuck[r.slices]
        formed = (self._formed[r.slices] | (stuck == kread.STUCK_HIGH)) & (stuck != kread.STUCK_OPEN)
        return FormResult(formed=formed, conductance_us=self.read_conductance(r))

    def program(self, region, target_us: np.ndarray, tolerance_us: float,
                max_pulses: int) -> ProgramResult:
        """Write-verify toward ``target_us``: verify, pulse, verify... up to ``max_pulses``.

        Unformed, stuck and stalled cells do not respond to pulses and converge only if
        already within tolerance. Programmed cells restart their drift clock.
        """
        r = self._region(region)
        pc = self.profile.program
        check_program_request(self.profile.limits, pc.voltage_v, pc.pulse_width_s)
        target = np.asarray(target_us)
        if target.shape != r.shape:
            raise ShapeError(f"target_us has shape {target.shape}; the region needs {r.shape}")
        target = np.ascontiguousarray(target, dtype=np.float64)
        if not np.all(np.isfinite(target)) or target.min() < 0 or target.max() > pc.g_max_us:
            raise ProgramTargetError(
                f"targets must be finite and within [0, {pc.g_max_us:g}] µS "
                f"(program.g_max_us); got [{target.min():g}, {target.max():g}]")
        if not (math.isfinite(tolerance_us) and tolerance_us > 0):
            raise ConfigError(f"tolerance_us must be a positive number, got {tolerance_us!r}")
        if isinstance(max_pulses, bool) or not isinstance(max_pulses, (int, np.integer)) \
                or max_pulses < 0:
            raise ConfigError(f"max_pulses must be a non-negative integer, got {max_pulses!r}")
        sl = r.slices
        programmable = self._formed[sl] & ~self._cells.stall[sl] & (self._cells.stuck[sl] == 0)
        g_out = np.empty(r.shape)
        verified = np.empty(r.shape)
        pulses = np.empty(r.shape, dtype=np.int32)
        converged = np.empty(r.shape, dtype=np.bool_)
        key = self._program_rng.integers(0, 2**64, dtype=np.uint64)
        kprogramming.write_verify(
            self._tile(r), target, programmable, float(tolerance_us), int(max_pulses),
            pc.step_fraction, pc.noise_us, self.profile.read.noise_rel, pc.g_min_us,
            pc.g_max_us, kread.CONDUCTANCE_STEP_US, key, g_out, verified, pulses, converged)
        written = programmable & (pulses > 0)
        self._g0_us[sl][written] = g_out[written]
        self._written_s[sl][written] = self._clock_s
        self._invalidate()
        return ProgramResult(conductance_us=verified, pulses=pulses, converged=converged)

    def read_conductance(self, region) -> np.ndarray:
        """Conductances (µS) with fresh relative read noise ``N(0, (noise_rel * G)**2)``."""
        r = self._region(region)
        g = self._tile(r)
        rel = self.profile.read.noise_rel
        if rel == 0:
            return g.copy()
        return g * (1.0 + rel * self._read_rng.standard_normal(r.shape))

    def mvm(self, region, inputs: np.ndarray, differential: bool = False) -> np.ndarray:
        """Binary MVM (µA after the ADC); see ``rram_lsm.macro`` for the exact convention."""
        r = self._region(region)
        if differential and r.cols % 2:
            raise RegionError(f"differential mvm needs an even number of columns, got {r.cols}")
        x = _binary_inputs(inputs, r.rows)
        g = self._tile(r)
        out = np.empty((x.shape[0], r.cols))
        adc = self.profile.adc
        bits = 0 if adc.bits is None else int(adc.bits)
        v_read = self.profile.array.read_voltage_v
        rel = self.profile.read.noise_rel
        if rel == 0:
            kread.mvm_clean(x, g, v_read, bits, adc.lsb_ua, out)
        elif self.profile.read.per_cell:
            chunk = max(1, _PER_CELL_CHUNK_ELEMENTS // g.size)
            for b0 in range(0, x.shape[0], chunk):
                xb = x[b0:b0 + chunk]
                z = self._read_rng.standard_normal((xb.shape[0], *g.shape))
                kread.mvm_cell_noise(xb, g, v_read, rel, z, bits, adc.lsb_ua, out[b0:b0 + chunk])
        else:
            key = self._read_rng.integers(0, 2**64, dtype=np.uint64)
            kread.mvm_column_noise(x, g, v_read, rel, key, bits, adc.lsb_ua, out)
        if differential:
            return out[:, 0::2] - out[:, 1::2]
        return out

    def run_reservoir(self, region, rasters, spec: ReservoirSpec, *,
                      return_membrane: bool = False):
        """The reservoir of ``spec`` on ``region`` (``RUN_RESERVOIR``), by the fused kernel.

        Spikes uint8 (batch, T, n), bit-identical to ``rram_lsm.reservoir.run_reference``
        with read noise off; with ``return_membrane`` also the final membrane (batch, n).
        Read noise is added per column with the variance the profile gives each cell, from
        the chip's ``reservoir_read`` stream of this tile, so a tile's runs do not depend on
        what other tiles did.
        """
        runner = self.reservoir_runner(region, spec)
        spikes, v_final = runner.run(check_rasters(rasters, spec.n_inputs))
        return (spikes, v_final) if return_membrane else spikes

    def reservoir_runner(self, region, spec: ReservoirSpec) -> ReservoirRunner:
        """The fused kernel's snapshot of ``region`` for ``spec`` (cached until the chip
        changes), for callers that stream one sample at a time."""
        self._check_open()
        if not isinstance(spec, ReservoirSpec):
            raise ConfigError(f"spec must be a ReservoirSpec, got {type(spec).__name__}")
        r = check_tile(region, spec, self.profile.array.rows, self.profile.array.cols)
        runner = self._runners.get((r, spec))
        if runner is None:
            g = self._tile(r)
            rel = float(self.profile.read.noise_rel)
            rng = self._reservoir_rngs.get(r)
            if rng is None:
                rng = self._reservoir_rngs[r] = stream(
                    self.seed, "reservoir_read", self.macro_index,
                    key=(r.row0, r.col0, r.rows, r.cols))
            a = self.profile.adc
            runner = ReservoirRunner(g, (rel * g) ** 2 if rel > 0 else None, spec,
                                     self.profile.array.read_voltage_v, a.bits, a.lsb_ua, rng)
            self._runners[(r, spec)] = runner
        return runner

    def tiled_reservoir_runner(self, macros, tilemap, spec: ReservoirSpec
                               ) -> ReservoirRunner | None:
        """One fused runner for a reservoir split over tiles (``rram_lsm.mapping.TileMap``)
        of ``macros`` (index -> macro; this macro among them), bit-identical to
        ``rram_lsm.reservoir.run_tiled_reference``; or None where the kernel cannot be
        exact: a macro of the map that is not an open SimMacro, macros that differ in read
        voltage, ADC or read noise, per-cell read noise, or (with read noise) a tile off the
        conductance grid. With column read noise each run draws its keys from the macros'
        ``read`` streams as the tiled loop's ``mvm`` calls would, so the two give the same
        spikes and leave the streams in the same state. Cached until any of the macros
        changes state."""
        self._check_open()
        if not isinstance(spec, ReservoirSpec):
            raise ConfigError(f"spec must be a ReservoirSpec, got {type(spec).__name__}")
        if (tilemap.n_rows, tilemap.n_neurons) != (spec.n_inputs + spec.n_neurons,
                                                   spec.n_neurons):
            raise ShapeError(f"the tile map covers {tilemap.n_rows} rows x "
                             f"{tilemap.n_neurons} neurons; the spec needs "
                             f"{spec.n_inputs + spec.n_neurons} x {spec.n_neurons}")
        chips = [macros[k] for k in tilemap.macros]
        if not all(isinstance(m, SimMacro) and not m._closed for m in chips):
            return None
        setup = {(float(m.profile.read.noise_rel), bool(m.profile.read.per_cell),
                  float(m.profile.array.read_voltage_v), m.profile.adc.bits,
                  float(m.profile.adc.lsb_ua)) for m in chips}
        if len(setup) != 1:
            return None
        rel, per_cell, v_read, bits, lsb = setup.pop()
        if rel != 0 and per_cell:
            return None
        key = (tilemap, spec)
        state = tuple((id(m), m._generation) for m in chips)
        cached = self._tiled_runners.get(key)
        if cached is not None and cached[0] == state:
            return cached[1]
        g = tilemap.matrix(lambda p: macros[p.placement.macro]._tile(
            macros[p.placement.macro]._region(p.placement.region)))
        starts = sorted({p.row0 for p in tilemap.parts})
        tile_noise = None
        if rel != 0:
            parts = [(p.row_block, p.pair0, p.n_pairs) for p in tilemap.parts]
            rngs = [macros[p.placement.macro]._read_rng for p in tilemap.parts]
            tile_noise = (rel, np.asarray(parts, np.int64).reshape(-1, 3), rngs)
        try:
            runner = ReservoirRunner(g, None, spec, v_read, bits, lsb,
                                     np.random.default_rng(0), row_blocks=starts,
                                     tile_noise=tile_noise)
        except ValueError:  # noise on a tile off the grid: no exact fused run
            return None
        self._tiled_runners[key] = (state, runner)
        return runner

    def advance_time(self, seconds: float) -> float:
        """Move the drift clock forward by ``seconds`` (>= 0); return the new clock (s)."""
        self._check_open()
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"advance_time needs a finite, non-negative duration, got {seconds!r}")
        if seconds > 0:
            self._clock_s += float(seconds)
            self._invalidate()
        return self._clock_s

    def clock_s(self) -> float:
        """Seconds on the drift clock."""
        return self._clock_s

    def reset(self) -> None:
        """Power-cycle: cells keep their state and the clock runs on; caches are dropped."""
        self._check_open()
        self._invalidate()

    def close(self) -> None:
        """Release the chip; later calls raise MacroError. Idempotent."""
        self._closed = True
        self._invalidate()

    def __enter__(self) -> "SimMacro":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- simulator-only extras ---------------------------------------------------------------
    def effective_conductance_us(self, region) -> np.ndarray:
        """Noise-free conductance now (µS): forming, programming, drift at the clock, stuck;
        a multiple of ``conductance_step_us``."""
        return self._tile(self._region(region)).copy()

    def stuck_map(self, region) -> np.ndarray:
        """int8 codes of the region: 0 healthy, 1 stuck open, 2 stuck high."""
        return self._cells.stuck[self._region(region).slices].copy()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{int(self._formed.sum())} cells formed"
        index = f", macro_index={self.macro_index}" if self.macro_index else ""
        return (f"SimMacro(seed={self.seed}{index}, profile={self.profile.name!r}, "
                f"{self.profile.array.rows}x{self.profile.array.cols}, {state}, "
                f"clock={self._clock_s:g} s)")

    def _repr_html_(self) -> str:
        return (f"<b>SimMacro</b> seed {self.seed}, {self.profile.array.rows} x "
                f"{self.profile.array.cols}, {int(self._formed.sum())} cells formed, clock "
                f"{self._clock_s:g} s<br>{self.profile._repr_html_()}")

    # -- internals ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise MacroError("this SimMacro is closed; open a new one")

    def _region(self, region) -> Region:
        self._check_open()
        return check_region(region, self.profile.array.rows, self.profile.array.cols)

    def _invalidate(self) -> None:
        self._effective = None
        self._tiles.clear()
        self._runners.clear()
        self._tiled_runners.clear()
        self._generation += 1

    def _tile(self, r: Region) -> np.ndarray:
        """Contiguous noise-free conductance of the region, cached until the state changes."""
        tile = self._tiles.get(r)
        if tile is None:
            if self._effective is None:
                self._effective = np.empty_like(self._g0_us)
                c = self._cells
                kread.effective_conductance(
                    self._g0_us, self._formed, self._written_s, c.nu, c.stuck, c.stuck_us,
                    self._clock_s, self.profile.drift.t0_s, self._effective)
            tile = np.ascontiguousarray(self._effective[r.slices])
            if len(self._tiles) >= _MAX_CACHED_TILES:
                self._tiles.clear()
            self._tiles[r] = tile
        return tile


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """Digest of the simulator's Python sources (``rram_lsm.records.source_digest``)."""
    return source_digest(Path(__file__).parent)


def _stuck_map(shape, stuck_open, stuck_high) -> np.ndarray | None:
    if stuck_open is None and stuck_high is None:
        return None
    codes = np.zeros(shape, dtype=np.int8)
    for name, m, code in (("stuck_open", stuck_open, kread.STUCK_OPEN),
                          ("stuck_high", stuck_high, kread.STUCK_HIGH)):
        if m is None:
            continue
        m = np.asarray(m)
        if m.shape != shape or m.dtype != np.bool_:
            raise ShapeError(f"{name} must be a bool array of the full array's shape {shape}, "
                             f"got {m.dtype} {m.shape}")
        if np.any(codes[m] != 0):
            raise ConfigError("a cell cannot be both stuck open and stuck high")
        codes[m] = code
    return codes


def _binary_inputs(inputs, rows: int) -> np.ndarray:
    """Validate ``inputs`` as 0/1 of shape (batch, rows); return contiguous uint8."""
    x = np.asarray(inputs)
    if x.ndim != 2 or x.shape[1] != rows:
        raise ShapeError(f"inputs must have shape (batch, {rows}) for this region, got {x.shape}")
    if x.dtype == np.bool_:
        return np.ascontiguousarray(x, dtype=np.uint8)
    if x.dtype.kind not in "uif":
        raise ShapeError(f"inputs must be binary numbers (0/1), got dtype {x.dtype}")
    if x.dtype == np.uint8:
        if x.size and x.max() > 1:
            raise ShapeError("inputs must be 0 or 1 (binary read pulses)")
        return np.ascontiguousarray(x)
    if x.size and not np.all((x == 0) | (x == 1)):
        raise ShapeError("inputs must be 0 or 1 (binary read pulses)")
    return np.ascontiguousarray(x, dtype=np.uint8)
