"""The LIF reservoir on a macro tile: configuration, forming set-up and the two run paths.

Weight mapping (see docs/lsm.md): the tile has ``n_inputs + n_neurons`` rows (inputs first,
then the neurons' recurrent rows) and ``2 * n_neurons`` columns, column ``2k`` holding G+ and
``2k+1`` G- of neuron ``k``. The weight from row ``i`` to neuron ``k`` is
``weight_scale * (G+[i, k] - G-[i, k]) / g_ref_us``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rram_lsm.errors import ConfigError, MacroError, ShapeError
from rram_lsm.macro import (RESERVOIR_MEMBRANE, RUN_RESERVOIR, Region, check_region,
                            form_to_sparsity)
from rram_lsm.reservoir import (ReservoirSpec, check_rasters, run_reference,
                                run_tiled_reference)

__all__ = ["LsmConfig", "PRESETS", "preset", "preset_input", "preset_for", "RESERVOIR_SIZES",
           "FormingRecord", "Reservoir", "TiledReservoir"]

PATHS = ("auto", "fast", "generic")
"""``fast``: the macro runs the loop (``RUN_RESERVOIR``); ``generic``: the reference loop,
one ``mvm`` per step; ``auto``: fast where the macro offers it."""


@dataclass(frozen=True)
class LsmConfig:
    """A LIF reservoir and how its tile is formed. Build one with :func:`preset`."""

    name: str = "custom"
    """Label stored with features (the preset name, or ``"custom"``)."""
    n_inputs: int = 256
    """Input rows: 256 for a 16 x 16 N-MNIST crop, 64 for cochlea channels."""
    n_neurons: int = 200
    """Reservoir LIF neurons (paper: 200)."""
    n_steps: int = 50
    """Time steps of a raster (50 vision, 129 audio); rasters must match."""
    decay: float = 0.9
    """Membrane decay per step (dimensionless, in (0, 1])."""
    threshold: float = 5.0
    """Spike threshold (membrane units); spike when ``v > threshold``."""
    weight_scale: float = 0.3
    """Scale constant ``s`` of ``w = s * (G+ - G-) / g_ref_us`` (dimensionless)."""
    reset: str = "zero"
    """``"zero"``: hard reset to 0 after a spike (paper); ``"subtract"``: ``v -= threshold``."""
    refractory_steps: int = 0
    """Steps a neuron cannot spike after spiking (0: none, as in the paper)."""
    sparsity: float = 0.5
    """Target fraction of unformed (zero-weight) cells of the tile after forming."""
    form_start_v: float = 3.0
    """First voltage of the forming sweep (V; related work: 3 V)."""
    form_step_v: float = 0.05
    """Voltage increment of the forming sweep (V; related work: 0.05 V)."""
    form_pulse_width_s: float = 1e-4
    """Width of each forming pulse (s; assumed, within the macro's limits)."""
    form_compliance_ua: float = 100.0
    """Compliance current during forming (µA; assumed)."""
    g_ref_us: float | None = None
    """Reference conductance (µS). None: the std of (G+ - G-) over the tile, read back at
    set-up, so the weights have unit std times ``weight_scale`` like the paper's Gaussian
    software weights."""

    def __post_init__(self):
        if int(self.n_steps) < 1:
            raise ConfigError(f"n_steps must be >= 1, got {self.n_steps}")
        self.spec(1.0)  # the reservoir's own fields are validated by ReservoirSpec
        if not 0.0 <= self.sparsity < 1.0:
            raise ConfigError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.form_step_v <= 0:
            raise ConfigError(f"form_step_v must be > 0, got {self.form_step_v}")
        if self.g_ref_us is not None and not self.g_ref_us > 0:
            raise ConfigError(f"g_ref_us must be > 0 or None, got {self.g_ref_us}")

    @property
    def tile_shape(self) -> tuple[int, int]:
        """``(n_inputs + n_neurons, 2 * n_neurons)``: rows and columns of the tile."""
        return (self.n_inputs + self.n_neurons, 2 * self.n_neurons)

    def replace(self, **changes) -> "LsmConfig":
        """A copy with ``changes``; unknown keys raise ConfigError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown LsmConfig keys {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def spec(self, g_ref_us: float) -> ReservoirSpec:
        """The :class:`ReservoirSpec` a backend runs, with the measured ``g_ref_us``."""
        return ReservoirSpec(n_inputs=self.n_inputs, n_neurons=self.n_neurons,
                             decay=self.decay, threshold=self.threshold,
                             weight_scale=self.weight_scale, g_ref_us=float(g_ref_us),
                             reset=self.reset, refractory_steps=self.refractory_steps)


# Paper settings (Lin et al. 2025, see /work/shared/paper-facts.md). The scale constant
# depends on the regime: the paper's "supervised" (0.07 / 0.08) and "zeroshot" (0.3 / 0.1)
# values, and "tuned" (the default): 0.3 for both modalities, the paper's largest constant,
# because with unit-std weights the smaller ones leave the reservoir nearly silent on real
# data (measurements in docs/lsm.md). ``input`` names the raster front end the preset
# expects (``lsm.data.datasets.INPUTS``); ``source`` says where the sizes come from.
PRESETS: dict[str, dict] = {
    "nmnist": dict(n_inputs=256, n_neurons=200, n_steps=50, decay=0.9, threshold=5.0,
                   scales={"supervised": 0.07, "zeroshot": 0.3, "tuned": 0.3},
                   input="crop", source="paper: 16 x 16 ON crop, 200 neurons"),
    # The whole sensor, both polarities: 2,312 input rows; with 1,000 neurons the matrix
    # (3,312 x 2,000) is split over 28 tiles of 512 x 512 arrays (docs/many-tiles.md).
    # Neuron constants as the crop's (assumed: the paper has no full-resolution reservoir).
    "nmnist-full": dict(n_inputs=2312, n_neurons=1000, n_steps=50, decay=0.9,
                        threshold=5.0,
                        scales={"supervised": 0.07, "zeroshot": 0.3, "tuned": 0.3},
                        input="full", source="assumed: paper neuron constants, full sensor"),
    "ntidigits": dict(n_inputs=64, n_neurons=200, n_steps=129, decay=0.97, threshold=5.3,
                      scales={"supervised": 0.08, "zeroshot": 0.1, "tuned": 0.3},
                      input="cochlea", source="paper: 64 cochlea channels, 200 neurons"),
}
PRESETS["fsdd"] = PRESETS["ntidigits"]
# Larger audio reservoirs on the same 64 channels (264 x 400 cells at 200 neurons; 1,000
# neurons need 1,064 x 2,000 cells: 12 tiles). Neuron constants as the paper's (assumed).
PRESETS["ntidigits-large"] = {**PRESETS["ntidigits"], "n_neurons": 1000,
                              "source": "assumed: paper neuron constants, 1,000 neurons"}
PRESETS["fsdd-large"] = PRESETS["ntidigits-large"]
DEFAULT_REGIME = "tuned"
RESERVOIR_SIZES = (200, 500, 1000, 2000)
"""Reservoir sizes of the accuracy study (``rram-lsm classify --cv``)."""
PRESET_DATASET = {"nmnist": "nmnist", "nmnist-full": "nmnist", "ntidigits": "ntidigits",
                  "fsdd": "fsdd", "ntidigits-large": "ntidigits", "fsdd-large": "fsdd"}
"""The dataset each preset is for."""


def preset(name: str, regime: str = DEFAULT_REGIME, **overrides) -> LsmConfig:
    """The reservoir for ``name`` (a key of :data:`PRESETS`), with ``overrides`` (any
    :class:`LsmConfig` field, e.g. ``n_neurons=2000``).

    ``regime`` picks the scale constant: ``"tuned"`` (default; 0.3 for both modalities),
    ``"zeroshot"`` (paper: 0.3 vision / 0.1 audio) or ``"supervised"`` (paper: 0.07 / 0.08).
    fsdd uses the ntidigits reservoir (64 cochlea channels); ``nmnist-full`` reads the whole
    sensor (2,312 inputs, :func:`preset_input` ``"full"``).
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown LSM preset {name!r}; choose one of {sorted(PRESETS)}")
    base = dict(PRESETS[name])
    scales = base.pop("scales")
    base.pop("input")
    base.pop("source")
    if regime not in scales:
        raise ConfigError(f"unknown regime {regime!r}; choose one of {sorted(scales)}")
    cfg = LsmConfig(name=f"{name}-{regime}", weight_scale=scales[regime], **base)
    return cfg.replace(**overrides) if overrides else cfg


def preset_input(name: str) -> str:
    """The raster front end preset ``name`` expects (a key of ``lsm.data.datasets.INPUTS``
    for its dataset: ``crop``, ``full`` or ``cochlea``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown LSM preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]["input"]


def preset_for(dataset: str, input: str | None = None) -> str:
    """The preset name of ``dataset`` read through front end ``input`` (None: the dataset's
    own preset): ``("nmnist", "full") -> "nmnist-full"``."""
    names = [k for k, d in PRESET_DATASET.items() if d == dataset]
    if not names:
        raise ConfigError(f"no LSM preset for dataset {dataset!r}; datasets: "
                          f"{sorted(set(PRESET_DATASET.values()))}")
    if input is None:
        return dataset if dataset in names else names[0]
    for k in names:
        if PRESETS[k]["input"] == input and (k == dataset or k.endswith("-full")):
            return k
    inputs = sorted({PRESETS[k]["input"] for k in names})
    raise ConfigError(f"{dataset} has no input {input!r}; choose one of {inputs}")


@dataclass(frozen=True)
class FormingRecord:
    """What the forming sweep did to the tile."""

    voltage_v: float
    """Last forming voltage applied (V); NaN when the tile was attached without forming."""
    pulses: int
    """Forming pulses applied (one per sweep step)."""
    unformed_fraction: float
    """Fraction of the tile's cells left unformed at the end (the reached sparsity)."""
    g_ref_us: float
    """Reference conductance used (µS)."""
    g_diff_std_us: float
    """Std of (G+ - G-) over the tile as read back after forming (µS)."""


def form_tile(macro, region: Region, cfg: LsmConfig, sparsity: float):
    """Form ``region`` with the interface's forming sweep from ``cfg.form_start_v``.

    Returns ``(voltage_v, pulses, unformed_fraction)``.
    """
    voltage, result = form_to_sparsity(
        macro, region, sparsity, v_start=cfg.form_start_v, v_step=cfg.form_step_v,
        pulse_width_s=cfg.form_pulse_width_s, compliance_ua=cfg.form_compliance_ua)
    pulses = int(round((voltage - cfg.form_start_v) / cfg.form_step_v)) + 1
    return voltage, pulses, float(1.0 - np.mean(result.formed))


class Reservoir:
    """A reservoir laid on a formed tile of ``macro``; runs rasters into spikes and features.

    Build it with :meth:`setup` (forms the tile) or :meth:`attach` (already-formed tile).
    """

    def __init__(self, macro, config: LsmConfig, region: Region, forming: FormingRecord):
        self.macro = macro
        self.config = config
        self.region = region
        self.forming = forming
        self.spec = config.spec(forming.g_ref_us)
        self.runs = 0
        """Batches run so far (read noise makes a tile's later runs differ from its first)."""

    def __repr__(self) -> str:
        return (f"Reservoir({self.config.name}: {self.config.n_inputs}->"
                f"{self.config.n_neurons}, T={self.config.n_steps}, region={tuple(vars(self.region).values())}, "
                f"g_ref={self.forming.g_ref_us:.3g} µS, formed at {self.forming.voltage_v:g} V)")

    @staticmethod
    def _region(macro, config: LsmConfig, region) -> Region:
        info = macro.info()
        if region is None:
            region = Region(0, 0, *config.tile_shape)
        r = check_region(region, info.rows, info.cols)
        if r.shape != config.tile_shape:
            raise ShapeError(f"{config.name} needs a {config.tile_shape[0]} x "
                             f"{config.tile_shape[1]} tile, got {r.shape[0]} x {r.shape[1]}")
        return r

    @classmethod
    def setup(cls, macro, config: LsmConfig, region=None,
              sparsity: float | None = None) -> "Reservoir":
        """Form the tile (sweep from ``config.form_start_v``) and measure ``g_ref_us``.

        ``region`` defaults to the tile at (0, 0) (for one reservoir on a macro; a chip
        session places several without overlap); ``sparsity`` overrides ``config.sparsity``.
        """
        r = cls._region(macro, config, region)
        target = config.sparsity if sparsity is None else float(sparsity)
        if not 0.0 <= target < 1.0:
            raise ConfigError(f"sparsity must be in [0, 1), got {target}")
        voltage, pulses, unformed = form_tile(macro, r, config, target)
        return cls._finish(macro, config, r, voltage, pulses, unformed)

    @classmethod
    def attach(cls, macro, config: LsmConfig, region=None) -> "Reservoir":
        """Use an already-formed tile as it is (no forming pulses)."""
        r = cls._region(macro, config, region)
        return cls._finish(macro, config, r, float("nan"), 0, float("nan"))

    @classmethod
    def _finish(cls, macro, config, region, voltage, pulses, unformed):
        g = np.asarray(macro.read_conductance(region), dtype=np.float64)
        diff_std = float(np.std(g[:, 0::2] - g[:, 1::2]))
        g_ref = config.g_ref_us if config.g_ref_us is not None else diff_std
        if not g_ref > 0:
            raise MacroError(
                f"the tile reads back with no conductance contrast (std of G+ - G- is "
                f"{diff_std:g} µS): was it formed? Use Reservoir.setup, or set g_ref_us")
        record = FormingRecord(voltage_v=voltage, pulses=pulses, unformed_fraction=unformed,
                               g_ref_us=float(g_ref), g_diff_std_us=diff_std)
        return cls(macro, config, region, record)

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Read back ``(W_in (n_inputs, n), W_rec (n, n))`` as the macro holds them now."""
        g = np.asarray(self.macro.read_conductance(self.region), dtype=np.float64)
        w = self.spec.weight_scale * (g[:, 0::2] - g[:, 1::2]) / self.spec.g_ref_us
        return w[: self.spec.n_inputs], w[self.spec.n_inputs:]

    def identity(self) -> dict:
        """What the features of this reservoir depend on besides its config: the chip's
        identity and the tile (cache keys)."""
        return {"chip": self.macro.identity(), "region": dataclasses.asdict(self.region)}

    def clock_s(self) -> float:
        """The chip's clock (s since forming started): drift age."""
        return float(self.macro.clock_s())

    def placement(self) -> dict:
        """Where the reservoir lives, JSON-ready."""
        return {"region": dataclasses.asdict(self.region)}

    def _capabilities(self) -> tuple[str, ...]:
        return tuple(self.macro.info().capabilities)

    def _choose_path(self, path: str, return_membrane: bool = False) -> str:
        if path not in PATHS:
            raise ConfigError(f"path must be one of {PATHS}, got {path!r}")
        caps = self._capabilities()
        offered = RUN_RESERVOIR in caps and (not return_membrane or RESERVOIR_MEMBRANE in caps)
        if path == "fast" and not offered:
            what = ("run_reservoir with the final membrane" if RUN_RESERVOIR in caps
                    else "run_reservoir")
            raise ConfigError(f"the fast path needs a macro that offers {what}; this one "
                              f"({self.macro.info().model}) does not: use path='generic'")
        if path == "auto":
            return "fast" if offered else "generic"
        return path

    def run(self, rasters, path: str = "auto", *, batch_size: int = 256,
            progress: bool = False, return_membrane: bool = False):
        """Spikes uint8 (N, T, n_neurons) for binary ``rasters`` (N, T, n_inputs).

        ``path``: ``"fast"`` (the macro's ``run_reservoir``: the simulator's fused kernel, a
        device's firmware), ``"generic"`` (the reference loop, one ``mvm`` per step, any
        macro) or ``"auto"`` (fast where offered). With ``return_membrane`` also the final
        membrane float64 (N, n_neurons).
        """
        arr = check_rasters(rasters, self.spec.n_inputs)
        if arr.shape[1] != self.config.n_steps:
            raise ShapeError(f"{self.config.name} expects T = {self.config.n_steps} steps, "
                             f"got rasters with T = {arr.shape[1]}")
        chosen = self._choose_path(path, return_membrane)
        from tqdm.auto import tqdm

        spikes = np.zeros((arr.shape[0], arr.shape[1], self.spec.n_neurons), np.uint8)
        v_final = np.zeros((arr.shape[0], self.spec.n_neurons))
        starts = range(0, arr.shape[0], max(1, int(batch_size)))
        for b0 in tqdm(starts, disable=not progress, desc=f"LSM ({chosen})", unit="batch"):
            chunk = arr[b0:b0 + batch_size]
            sl = slice(b0, b0 + chunk.shape[0])
            if chosen == "generic":
                spikes[sl], v_final[sl] = run_reference(self.macro, self.region, chunk,
                                                        self.spec)
            elif return_membrane:
                spikes[sl], v_final[sl] = self.macro.run_reservoir(
                    self.region, chunk, self.spec, return_membrane=True)
            else:
                spikes[sl] = np.asarray(self.macro.run_reservoir(self.region, chunk, self.spec),
                                        dtype=np.uint8)
            self.runs += 1
        return (spikes, v_final) if return_membrane else spikes

    def trace(self, raster) -> tuple[np.ndarray, np.ndarray]:
        """Spikes uint8 (T, n) and membrane float64 (T, n) after every step, for one raster
        (T, n_inputs), run through ``mvm`` step by step (any macro)."""
        arr = check_rasters(np.asarray(raster)[None], self.spec.n_inputs)
        history = np.zeros((1, arr.shape[1], self.spec.n_neurons))
        spikes, _ = run_reference(self.macro, self.region, arr, self.spec, history=history)
        self.runs += 1
        return spikes[0], history[0]

    def features(self, rasters, kind: str = "counts", path: str = "auto", progress: bool = True,
                 *, labels=None, is_test=None, n_windows: int = 5, batch_size: int = 256,
                 meta: dict | None = None):
        """Run ``rasters`` and return :class:`lsm.features.Features` of ``kind``.

        ``labels`` / ``is_test`` default to -1 / False (unknown). ``meta`` is merged into the
        provenance this reservoir records (config, forming, path, kind, firing rate).
        """
        from .features import FEATURE_KINDS, WINDOWED_KINDS, Features, active_span, spike_features

        if kind not in FEATURE_KINDS:
            raise ConfigError(f"feature kind must be one of {FEATURE_KINDS}, got {kind!r}")
        chosen = self._choose_path(path, kind == "membrane")
        out = self.run(rasters, chosen, batch_size=batch_size, progress=progress,
                       return_membrane=kind == "membrane")
        spikes, v_final = out if kind == "membrane" else (out, None)
        values = spike_features(spikes, kind, v_final=v_final, n_windows=n_windows,
                                span=active_span(rasters) if kind == "span" else None)
        n = len(values)
        labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
        is_test = np.zeros(n, bool) if is_test is None else np.asarray(is_test, bool)
        info = {
            "lsm_config": dataclasses.asdict(self.config),
            "g_ref_us": self.spec.g_ref_us,
            "forming": dataclasses.asdict(self.forming),
            **self.placement(),
            "path": chosen,
            "kind": kind,
            "n_windows": n_windows if kind in WINDOWED_KINDS else None,
            "firing_rate_per_step": float(spikes.mean()) if spikes.size else 0.0,
            "silent_fraction": float((spikes.sum(axis=(0, 1)) == 0).mean()) if n else 0.0,
        }
        info.update(meta or {})
        return Features(values, labels, is_test, info)


class TiledReservoir(Reservoir):
    """A reservoir too large for one array, split over tiles of one or more macros by
    ``rram_lsm.mapping.plan_tiles``. Every tile is formed on its own; each step's MVM reads
    every tile (its own ADC) and adds the partial sums digitally in the documented order
    (``rram_lsm.reservoir.run_tiled_reference``). Same API as :class:`Reservoir`.

    Paths: ``"generic"`` is the tiled reference loop (any macros); ``"fast"`` is one fused
    kernel over every tile, offered where the first tile's macro has a
    ``tiled_reservoir_runner`` that accepts the map (the simulator: all tiles on open
    SimMacros with one ADC, read voltage and read noise, the noise per column as the
    default profile has it), bit-identical to the generic path, read noise included (it
    draws from the macros' streams as the generic path does); ``"auto"`` takes the fast
    one where offered.
    """

    def __init__(self, macros: dict, config: LsmConfig, tilemap, forming: FormingRecord):
        first = tilemap.parts[0].placement
        super().__init__(macros[first.macro], config, first.region, forming)
        self.macros = dict(macros)
        self.tilemap = tilemap

    def __repr__(self) -> str:
        return (f"TiledReservoir({self.config.name}: {self.config.n_inputs}->"
                f"{self.config.n_neurons}, T={self.config.n_steps}, "
                f"{len(self.tilemap.parts)} tiles on macros {list(self.tilemap.macros)}, "
                f"g_ref={self.forming.g_ref_us:.3g} µS)")

    @classmethod
    def setup_tiled(cls, macros: dict, config: LsmConfig, tilemap,
                    sparsity: float | None = None) -> "TiledReservoir":
        """Form every tile of ``tilemap`` (on ``macros``: index -> Macro) and measure
        ``g_ref_us`` over the whole matrix."""
        if (tilemap.n_rows, tilemap.n_neurons) != (config.tile_shape[0], config.n_neurons):
            raise ShapeError(f"the tile map covers {tilemap.n_rows} x {tilemap.n_neurons} "
                             f"neurons; {config.name} needs {config.tile_shape[0]} rows and "
                             f"{config.n_neurons} neurons")
        target = config.sparsity if sparsity is None else float(sparsity)
        volts, pulses, unformed_cells = [], 0, 0.0
        for part in tilemap.parts:
            p = part.placement
            voltage, n_pulses, unformed = form_tile(macros[p.macro], p.region, config, target)
            volts.append(voltage)
            pulses += n_pulses
            unformed_cells += unformed * p.region.rows * p.region.cols
        g = tilemap.matrix(lambda part: macros[part.placement.macro].read_conductance(
            part.placement.region))
        diff_std = float(np.std(g[:, 0::2] - g[:, 1::2]))
        g_ref = config.g_ref_us if config.g_ref_us is not None else diff_std
        if not g_ref > 0:
            raise MacroError("the tiles read back with no conductance contrast: were they "
                             "formed?")
        cells = tilemap.n_rows * 2 * tilemap.n_neurons
        record = FormingRecord(voltage_v=max(volts), pulses=pulses,
                               unformed_fraction=unformed_cells / cells,
                               g_ref_us=float(g_ref), g_diff_std_us=diff_std)
        return cls(macros, config, tilemap, record)

    def identity(self) -> dict:
        return {"chips": {str(k): self.macros[k].identity() for k in self.tilemap.macros},
                "tiles": self.tilemap.to_dict()}

    def placement(self) -> dict:
        return {"tiles": self.tilemap.to_dict()}

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        g = self.tilemap.matrix(lambda part: self.macros[part.placement.macro]
                                .read_conductance(part.placement.region))
        w = self.spec.weight_scale * (g[:, 0::2] - g[:, 1::2]) / self.spec.g_ref_us
        return w[: self.spec.n_inputs], w[self.spec.n_inputs:]

    def _tiled_runner(self):
        """The backend's fused multi-tile runner for this map, or None (duck-typed: the
        ``lsm`` layer imports no backend)."""
        make = getattr(self.macros[self.tilemap.parts[0].placement.macro],
                       "tiled_reservoir_runner", None)
        return None if make is None else make(self.macros, self.tilemap, self.spec)

    def _choose_path(self, path: str, return_membrane: bool = False) -> str:
        if path not in PATHS:
            raise ConfigError(f"path must be one of {PATHS}, got {path!r}")
        if path == "generic":
            return path
        offered = self._tiled_runner() is not None
        if path == "fast" and not offered:
            raise ConfigError("no fused kernel for these tiles (it needs every tile on a "
                              "simulated macro, one ADC, read voltage and read noise, no "
                              "per-cell noise): use path='generic' or 'auto'")
        return "fast" if offered else "generic"

    def run(self, rasters, path: str = "auto", *, batch_size: int = 256,
            progress: bool = False, return_membrane: bool = False):
        arr = check_rasters(rasters, self.spec.n_inputs)
        if arr.shape[1] != self.config.n_steps:
            raise ShapeError(f"{self.config.name} expects T = {self.config.n_steps} steps, "
                             f"got rasters with T = {arr.shape[1]}")
        chosen = self._choose_path(path)
        from tqdm.auto import tqdm

        spikes = np.zeros((arr.shape[0], arr.shape[1], self.spec.n_neurons), np.uint8)
        v_final = np.zeros((arr.shape[0], self.spec.n_neurons))
        starts = range(0, arr.shape[0], max(1, int(batch_size)))
        for b0 in tqdm(starts, disable=not progress, desc=f"LSM (tiled, {chosen})",
                       unit="batch"):
            sl = slice(b0, b0 + batch_size)
            if chosen == "fast":  # fetched per batch: the chips may change in between
                spikes[sl], v_final[sl] = self._tiled_runner().run(arr[sl])
            else:
                spikes[sl], v_final[sl] = run_tiled_reference(self.macros, self.tilemap,
                                                              arr[sl], self.spec)
            self.runs += 1
        return (spikes, v_final) if return_membrane else spikes

    def trace(self, raster) -> tuple[np.ndarray, np.ndarray]:
        arr = check_rasters(np.asarray(raster)[None], self.spec.n_inputs)
        history = np.zeros((1, arr.shape[1], self.spec.n_neurons))
        spikes, _ = run_tiled_reference(self.macros, self.tilemap, arr, self.spec,
                                        history=history)
        self.runs += 1
        return spikes[0], history[0]
