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
from rram_lsm.macro import RUN_RESERVOIR, Region, ReservoirSpec, check_region, form_to_sparsity

from .kernels.lif import RESET_SUBTRACT, RESET_ZERO, lif_step_batch

__all__ = ["LsmConfig", "PRESETS", "preset", "run_on_macro", "FormingRecord", "Reservoir"]

_RESETS = {"zero": RESET_ZERO, "subtract": RESET_SUBTRACT}
PATHS = ("auto", "fast", "generic")


def _check_rasters(rasters, n_inputs: int) -> np.ndarray:
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


def _check_spec_region(region, spec: ReservoirSpec, info) -> Region:
    r = check_region(region, info.rows, info.cols)
    want = (spec.n_inputs + spec.n_neurons, 2 * spec.n_neurons)
    if r.shape != want:
        raise ShapeError(
            f"a reservoir of {spec.n_inputs} inputs and {spec.n_neurons} neurons needs a "
            f"{want[0]} x {want[1]} tile, got region {r.shape[0]} x {r.shape[1]}")
    if spec.reset not in _RESETS:
        raise ConfigError(f"reset must be 'zero' or 'subtract', got {spec.reset!r}")
    if not spec.g_ref_us > 0:
        raise ConfigError(f"g_ref_us must be > 0, got {spec.g_ref_us}")
    return r


def _drive_factor(spec: ReservoirSpec, read_voltage_v: float) -> float:
    """µA of differential current -> membrane units: scale / (V_read * g_ref)."""
    return spec.weight_scale / (read_voltage_v * spec.g_ref_us)


def _run_stepwise(macro, region: Region, rasters: np.ndarray, spec: ReservoirSpec,
                  history: np.ndarray | None = None):
    """The per-step loop of ReservoirSpec through ``mvm``; returns (spikes, final membrane).

    ``history`` (batch, T, n) float64, when given, receives the membrane after every step.
    """
    info = macro.info()
    factor = _drive_factor(spec, info.read_voltage_v)
    batch, n_steps, n_in = rasters.shape
    n = spec.n_neurons
    v = np.zeros((batch, n))
    s = np.zeros((batch, n), np.uint8)
    ref = np.zeros((batch, n), np.int32)
    spikes = np.zeros((batch, n_steps, n), np.uint8)
    rows = np.zeros((batch, n_in + n), np.uint8)
    for t in range(n_steps):
        rows[:, :n_in] = rasters[:, t]
        rows[:, n_in:] = s
        diff_ua = np.asarray(macro.mvm(region, rows, differential=True), dtype=np.float64)
        if diff_ua.shape != (batch, n):
            raise MacroError(
                f"mvm returned shape {diff_ua.shape}, expected {(batch, n)} for a "
                "differential read of the reservoir tile")
        drive = diff_ua * factor
        lif_step_batch(v, s, ref, drive, spec.decay, spec.threshold, _RESETS[spec.reset],
                       spec.refractory_steps)
        spikes[:, t] = s
        if history is not None:
            history[:, t] = v
    return spikes, v


def run_on_macro(macro, region, rasters, spec: ReservoirSpec) -> np.ndarray:
    """Run the reservoir of ``spec`` on ``region`` of ``macro``, one batched mvm per step.

    ``rasters``: binary (batch, T, n_inputs). Returns uint8 spikes (batch, T, n_neurons),
    exactly the per-step loop documented in :class:`rram_lsm.macro.ReservoirSpec`. Works on
    any macro; it never looks at ``info().capabilities`` (choosing ``run_reservoir`` is the
    caller's business).
    """
    info = macro.info()
    r = _check_spec_region(region, spec, info)
    arr = _check_rasters(rasters, spec.n_inputs)
    spikes, _ = _run_stepwise(macro, r, arr, spec)
    return spikes


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
        for field_name in ("n_inputs", "n_neurons", "n_steps"):
            if int(getattr(self, field_name)) < 1:
                raise ConfigError(f"{field_name} must be >= 1, got {getattr(self, field_name)}")
        if not 0.0 < self.decay <= 1.0:
            raise ConfigError(f"decay must be in (0, 1], got {self.decay}")
        if not np.isfinite(self.threshold) or self.threshold <= 0:
            raise ConfigError(f"threshold must be > 0, got {self.threshold}")
        if not np.isfinite(self.weight_scale) or self.weight_scale <= 0:
            raise ConfigError(f"weight_scale must be > 0, got {self.weight_scale}")
        if self.reset not in _RESETS:
            raise ConfigError(f"reset must be one of {sorted(_RESETS)}, got {self.reset!r}")
        if self.refractory_steps < 0:
            raise ConfigError(f"refractory_steps must be >= 0, got {self.refractory_steps}")
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
# data (measurements in docs/lsm.md).
PRESETS: dict[str, dict] = {
    "nmnist": dict(n_inputs=256, n_neurons=200, n_steps=50, decay=0.9, threshold=5.0,
                   scales={"supervised": 0.07, "zeroshot": 0.3, "tuned": 0.3}),
    "ntidigits": dict(n_inputs=64, n_neurons=200, n_steps=129, decay=0.97, threshold=5.3,
                      scales={"supervised": 0.08, "zeroshot": 0.1, "tuned": 0.3}),
}
PRESETS["fsdd"] = PRESETS["ntidigits"]
DEFAULT_REGIME = "tuned"


def preset(name: str, regime: str = DEFAULT_REGIME, **overrides) -> LsmConfig:
    """The paper's reservoir for ``name`` (nmnist | ntidigits | fsdd), with ``overrides``.

    ``regime`` picks the scale constant: ``"tuned"`` (default; 0.3 for both modalities),
    ``"zeroshot"`` (paper: 0.3 vision / 0.1 audio) or ``"supervised"`` (paper: 0.07 / 0.08).
    fsdd uses the ntidigits reservoir (64 cochlea channels).
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown LSM preset {name!r}; choose one of {sorted(PRESETS)}")
    base = dict(PRESETS[name])
    scales = base.pop("scales")
    if regime not in scales:
        raise ConfigError(f"unknown regime {regime!r}; choose one of {sorted(scales)}")
    cfg = LsmConfig(name=f"{name}-{regime}", weight_scale=scales[regime], **base)
    return cfg.replace(**overrides) if overrides else cfg


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


def _is_sim(macro) -> bool:
    try:
        from sim import SimMacro
    except ImportError:
        return False
    return isinstance(macro, SimMacro)


class Reservoir:
    """A reservoir laid on a formed tile of ``macro``; runs rasters into spikes and features.

    Build it with :meth:`setup` (forms the tile) or :meth:`attach` (already-formed tile).
    """

    def __init__(self, macro, config: LsmConfig, region: Region, forming: FormingRecord,
                 noise_seed: int = 0):
        self.macro = macro
        self.config = config
        self.region = region
        self.forming = forming
        self.spec = config.spec(forming.g_ref_us)
        self._noise_rng = np.random.default_rng(np.random.SeedSequence(noise_seed,
                                                                       spawn_key=(0x15A,)))

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
    def setup(cls, macro, config: LsmConfig, region=None, sparsity: float | None = None,
              noise_seed: int | None = None) -> "Reservoir":
        """Form the tile (sweep from ``config.form_start_v``) and measure ``g_ref_us``.

        ``region`` defaults to the tile at (0, 0); ``sparsity`` overrides
        ``config.sparsity``; ``noise_seed`` seeds the fast path's read-noise stream
        (default: the chip seed when the macro has one, else 0).
        """
        r = cls._region(macro, config, region)
        target = config.sparsity if sparsity is None else float(sparsity)
        if not 0.0 <= target < 1.0:
            raise ConfigError(f"sparsity must be in [0, 1), got {target}")
        voltage, pulses, unformed = form_tile(macro, r, config, target)
        return cls._finish(macro, config, r, voltage, pulses, unformed, noise_seed)

    @classmethod
    def attach(cls, macro, config: LsmConfig, region=None,
               noise_seed: int | None = None) -> "Reservoir":
        """Use an already-formed tile as it is (no forming pulses)."""
        r = cls._region(macro, config, region)
        return cls._finish(macro, config, r, float("nan"), 0, float("nan"), noise_seed)

    @classmethod
    def _finish(cls, macro, config, region, voltage, pulses, unformed, noise_seed):
        g = np.asarray(macro.read_conductance(region), dtype=np.float64)
        diff_std = float(np.std(g[:, 0::2] - g[:, 1::2]))
        g_ref = config.g_ref_us if config.g_ref_us is not None else diff_std
        if not g_ref > 0:
            raise MacroError(
                f"the tile reads back with no conductance contrast (std of G+ - G- is "
                f"{diff_std:g} µS): was it formed? Use Reservoir.setup, or set g_ref_us")
        record = FormingRecord(voltage_v=voltage, pulses=pulses, unformed_fraction=unformed,
                               g_ref_us=float(g_ref), g_diff_std_us=diff_std)
        if noise_seed is None:
            noise_seed = int(getattr(macro, "seed", 0) or 0)
        return cls(macro, config, region, record, noise_seed)

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Read back ``(W_in (n_inputs, n), W_rec (n, n))`` as the macro holds them now."""
        g = np.asarray(self.macro.read_conductance(self.region), dtype=np.float64)
        w = self.spec.weight_scale * (g[:, 0::2] - g[:, 1::2]) / self.spec.g_ref_us
        return w[: self.spec.n_inputs], w[self.spec.n_inputs:]

    def fast_runner(self):
        """A snapshot of the chip for the fused kernel (:class:`lsm.fast.FastRunner`).

        Its ``run(rasters)`` has no per-call set-up, for streaming one sample at a time;
        take a new snapshot after the chip changes (forming, programming, ``advance_time``).
        """
        from .fast import FastRunner

        if not _is_sim(self.macro):
            raise ConfigError("the fast path needs a sim.SimMacro; use path='generic'")
        return FastRunner.from_macro(self.macro, self.region, self.spec, self._noise_rng)

    def _choose_path(self, path: str) -> str:
        if path not in PATHS:
            raise ConfigError(f"path must be one of {PATHS}, got {path!r}")
        is_sim = _is_sim(self.macro)
        if path == "fast" and not is_sim:
            raise ConfigError("the fast path needs a sim.SimMacro; use path='generic'")
        if path == "auto":
            return "fast" if is_sim else "generic"
        return path

    def run(self, rasters, path: str = "auto", *, batch_size: int = 256,
            progress: bool = False, return_membrane: bool = False):
        """Spikes uint8 (N, T, n_neurons) for binary ``rasters`` (N, T, n_inputs).

        ``path``: ``"fast"`` (fused numba kernel, SimMacro only), ``"generic"`` (any macro:
        the backend's ``run_reservoir`` when it advertises it, else one mvm per step), or
        ``"auto"`` (fast on the simulator, else generic). With ``return_membrane`` also the
        final membrane float64 (N, n_neurons) (not available through ``run_reservoir``).
        """
        arr = _check_rasters(rasters, self.spec.n_inputs)
        if arr.shape[1] != self.config.n_steps:
            raise ShapeError(f"{self.config.name} expects T = {self.config.n_steps} steps, "
                             f"got rasters with T = {arr.shape[1]}")
        chosen = self._choose_path(path)
        use_backend = (chosen == "generic"
                       and RUN_RESERVOIR in tuple(self.macro.info().capabilities))
        if use_backend and return_membrane:
            raise ConfigError("the backend's run_reservoir returns spikes only; the final "
                              "membrane needs path='fast' on the simulator or a macro "
                              "without run_reservoir")
        from tqdm.auto import tqdm

        spikes = np.zeros((arr.shape[0], arr.shape[1], self.spec.n_neurons), np.uint8)
        v_final = np.zeros((arr.shape[0], self.spec.n_neurons))
        fast = self.fast_runner() if chosen == "fast" else None
        starts = range(0, arr.shape[0], max(1, int(batch_size)))
        for b0 in tqdm(starts, disable=not progress, desc=f"LSM ({chosen})", unit="batch"):
            chunk = arr[b0:b0 + batch_size]
            sl = slice(b0, b0 + chunk.shape[0])
            if fast is not None:
                spikes[sl], v_final[sl] = fast.run(chunk)
            elif use_backend:
                spikes[sl] = np.asarray(self.macro.run_reservoir(self.region, chunk, self.spec),
                                        dtype=np.uint8)
            else:
                spikes[sl], v_final[sl] = _run_stepwise(self.macro, self.region, chunk,
                                                        self.spec)
        return (spikes, v_final) if return_membrane else spikes

    def trace(self, raster) -> tuple[np.ndarray, np.ndarray]:
        """Spikes uint8 (T, n) and membrane float64 (T, n) after every step, for one raster
        (T, n_inputs), run through ``mvm`` step by step (any macro)."""
        arr = _check_rasters(np.asarray(raster)[None], self.spec.n_inputs)
        history = np.zeros((1, arr.shape[1], self.spec.n_neurons))
        spikes, _ = _run_stepwise(self.macro, self.region, arr, self.spec, history)
        return spikes[0], history[0]

    def features(self, rasters, kind: str = "counts", path: str = "auto", progress: bool = True,
                 *, labels=None, is_test=None, n_windows: int = 5, batch_size: int = 256,
                 meta: dict | None = None):
        """Run ``rasters`` and return :class:`lsm.features.Features` of ``kind``.

        ``labels`` / ``is_test`` default to -1 / False (unknown). ``meta`` is merged into the
        provenance this reservoir records (config, forming, path, kind, firing rate).
        """
        from .features import FEATURE_KINDS, Features, spike_features

        if kind not in FEATURE_KINDS:
            raise ConfigError(f"feature kind must be one of {FEATURE_KINDS}, got {kind!r}")
        chosen = self._choose_path(path)
        out = self.run(rasters, chosen, batch_size=batch_size, progress=progress,
                       return_membrane=kind == "membrane")
        spikes, v_final = out if kind == "membrane" else (out, None)
        values = spike_features(spikes, kind, v_final=v_final, n_windows=n_windows)
        n = len(values)
        labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
        is_test = np.zeros(n, bool) if is_test is None else np.asarray(is_test, bool)
        info = {
            "lsm_config": dataclasses.asdict(self.config),
            "g_ref_us": self.spec.g_ref_us,
            "forming": dataclasses.asdict(self.forming),
            "region": dataclasses.asdict(self.region),
            "path": chosen,
            "kind": kind,
            "n_windows": n_windows if kind == "windowed" else None,
            "firing_rate_per_step": float(spikes.mean()) if spikes.size else 0.0,
            "silent_fraction": float((spikes.sum(axis=(0, 1)) == 0).mean()) if n else 0.0,
        }
        info.update(meta or {})
        return Features(values, labels, is_test, info)
