"""Device profiles: every physical parameter of a virtual macro, as frozen dataclasses.

A chip is its seed plus its :class:`DeviceProfile`. Each field's default is the ``macro40nm``
value; :data:`sim.presets.MACRO40NM_SOURCES` says where each one comes from. Profiles are
saved as versioned JSON (``schema_version``); loading rejects unknown keys and fills missing
ones with the defaults, so a profile file only needs the values it changes.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from rram_lsm.errors import ConfigError
from rram_lsm.macro import SafetyLimits

__all__ = [
    "SCHEMA_VERSION",
    "ArrayConfig",
    "FormingConfig",
    "ReadConfig",
    "ProgramConfig",
    "DriftConfig",
    "StuckConfig",
    "AdcConfig",
    "DeviceProfile",
]

SCHEMA_VERSION = 1
"""Version of the profile JSON layout written by :meth:`DeviceProfile.to_json`."""

FORMED_DISTRIBUTIONS = ("truncnorm", "lognormal")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class ArrayConfig:
    """Geometry and read conditions of the array."""

    rows: int = 512
    """Word lines (inputs); 512 x 512 = 256 Kb is an assumption about the 40 nm macro."""
    cols: int = 512
    """Bit lines (outputs)."""
    read_voltage_v: float = 0.2
    """Read pulse amplitude (V) applied to active rows in ``mvm`` and ``read_conductance``."""

    def __post_init__(self):
        _require(self.rows > 0 and self.cols > 0, "array.rows and array.cols must be positive")
        _require(0 < self.read_voltage_v <= 1.0, "array.read_voltage_v must be in (0, 1] V")


@dataclass(frozen=True)
class FormingConfig:
    """Electroforming: per-cell breakdown voltage and formed conductance, both per chip."""

    breakdown_mean_v: float = 3.59
    """Mean breakdown voltage (V, absolute); a 0.05 V-step sweep first passes 50 % at 3.60 V."""
    breakdown_std_v: float = 0.25
    """Standard deviation of the breakdown voltage (V, absolute) across cells."""
    min_compliance_ua: float = 20.0
    """Below this compliance current (µA) breakdown does not leave a stable filament."""
    formed_distribution: str = "truncnorm"
    """``"truncnorm"`` or ``"lognormal"`` (truncated to [formed_min_us, formed_max_us])."""
    formed_mean_us: float = 13.0
    """Location of the formed-conductance distribution (µS): mean of the untruncated law."""
    formed_std_us: float = 2.0
    """Spread of the formed-conductance distribution (µS): std of the untruncated law."""
    formed_min_us: float = 7.6
    """Lowest formed conductance (µS); the distribution is truncated here."""
    formed_max_us: float = 18.8
    """Highest formed conductance (µS); the distribution is truncated here."""
    pristine_us: float = 0.1
    """Median conductance of an unformed (pristine) cell (µS): about 10 MΩ."""
    pristine_spread_rel: float = 0.2
    """Log-normal sigma of the pristine conductance across cells (relative)."""

    def __post_init__(self):
        _require(self.breakdown_std_v > 0, "forming.breakdown_std_v must be positive")
        _require(self.min_compliance_ua >= 0, "forming.min_compliance_ua must be >= 0")
        _require(self.formed_distribution in FORMED_DISTRIBUTIONS,
                 f"forming.formed_distribution must be one of {FORMED_DISTRIBUTIONS}, "
                 f"got {self.formed_distribution!r}")
        _require(self.formed_std_us > 0 and self.formed_mean_us > 0,
                 "forming.formed_mean_us and formed_std_us must be positive")
        _require(0 < self.formed_min_us < self.formed_max_us,
                 "forming.formed_min_us must be positive and below formed_max_us")
        _require(self.pristine_us > 0 and self.pristine_spread_rel >= 0,
                 "forming.pristine_us must be positive and pristine_spread_rel >= 0")


@dataclass(frozen=True)
class ReadConfig:
    """Read noise: Gaussian, relative to the cell's conductance, fresh on every read."""

    noise_rel: float = 0.02
    """Standard deviation of one cell read as a fraction of its conductance (relative)."""
    per_cell: bool = False
    """True: ``mvm`` draws noise per cell (exact, slow); False: analytically per column."""

    def __post_init__(self):
        _require(self.noise_rel >= 0, "read.noise_rel must be >= 0")


@dataclass(frozen=True)
class ProgramConfig:
    """Write-verify programming of formed cells."""

    voltage_v: float = 1.5
    """Set/reset pulse amplitude (V, absolute); checked against the safety limits."""
    pulse_width_s: float = 1e-7
    """Programming pulse width (s)."""
    step_fraction: float = 0.5
    """Fraction of the remaining error (target - G) one pulse removes, before noise."""
    noise_us: float = 0.3
    """Standard deviation of the conductance change noise per pulse (µS, absolute)."""
    g_min_us: float = 1.0
    """Lowest conductance a formed cell can be reset to (µS)."""
    g_max_us: float = 40.0
    """Highest conductance a cell can be set to (µS); stuck-high cells sit here."""
    stall_fraction: float = 0.01
    """Fraction of formed cells whose pulses have no effect, so they never converge."""

    def __post_init__(self):
        _require(0 < self.step_fraction <= 1, "program.step_fraction must be in (0, 1]")
        _require(self.noise_us >= 0, "program.noise_us must be >= 0")
        _require(0 < self.g_min_us < self.g_max_us, "program.g_min_us must be in (0, g_max_us)")
        _require(0 <= self.stall_fraction <= 1, "program.stall_fraction must be in [0, 1]")


@dataclass(frozen=True)
class DriftConfig:
    """Power-law drift ``G(t) = G0 * (t / t0_s) ** -nu`` for t > t0_s, per-cell nu."""

    nu_mean: float = 0.01
    """Mean drift exponent (dimensionless)."""
    nu_std: float = 0.005
    """Standard deviation of the drift exponent across cells; nu is clipped at 0."""
    t0_s: float = 1.0
    """Reference time (s) after a cell was written; no drift before it."""

    def __post_init__(self):
        _require(self.nu_std >= 0, "drift.nu_std must be >= 0")
        _require(self.t0_s > 0, "drift.t0_s must be positive")


@dataclass(frozen=True)
class StuckConfig:
    """Stuck cells: fixed conductance regardless of forming, programming and drift."""

    open_fraction: float = 0.001
    """Fraction of cells stuck open (at their pristine conductance)."""
    high_fraction: float = 0.0005
    """Fraction of cells stuck high (at ``program.g_max_us``)."""

    def __post_init__(self):
        _require(self.open_fraction >= 0 and self.high_fraction >= 0
                 and self.open_fraction + self.high_fraction <= 1,
                 "stuck.open_fraction and high_fraction must be >= 0 and sum to <= 1")


@dataclass(frozen=True)
class AdcConfig:
    """Column ADC: unipolar, ``code = clip(floor(I / lsb + 0.5), 0, 2**bits - 1)``."""

    bits: int | None = 8
    """Resolution in bits; None = ideal (the analogue current is returned)."""
    full_scale_ua: float = 200.0
    """Full-scale current (µA); one code is ``full_scale_ua / 2**bits``."""

    def __post_init__(self):
        _require(self.bits is None or 1 <= int(self.bits) <= 24, "adc.bits must be 1..24 or None")
        _require(self.full_scale_ua > 0, "adc.full_scale_ua must be positive")

    @property
    def lsb_ua(self) -> float:
        """Current of one code (µA); 0.0 for an ideal ADC."""
        return 0.0 if self.bits is None else self.full_scale_ua / 2 ** int(self.bits)


_SECTIONS = {
    "array": ArrayConfig,
    "forming": FormingConfig,
    "read": ReadConfig,
    "program": ProgramConfig,
    "drift": DriftConfig,
    "stuck": StuckConfig,
    "adc": AdcConfig,
    "limits": SafetyLimits,
}


def _check_types(name: str, klass, section: dict) -> None:
    """A value of a number field must be a number (JSON gives strings, lists, ...);
    ConfigError naming the key, before the dataclass compares it."""
    defaults = klass()
    for key, value in section.items():
        default = getattr(defaults, key)
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        # None stays allowed (optional fields such as an ideal ADC's bits); the dataclass
        # checks the ranges
        if numeric and isinstance(value, (str, list, dict, bool)):
            raise ConfigError(f"profile {name}.{key} must be a number, got {value!r}")
        if isinstance(default, bool) and isinstance(value, (str, list, dict)):
            raise ConfigError(f"profile {name}.{key} must be true or false, got {value!r}")


@dataclass(frozen=True)
class DeviceProfile:
    """All parameters of a virtual macro. Defaults are the ``macro40nm`` preset."""

    name: str = "macro40nm"
    """Profile name (a preset name, or where a fitted profile came from)."""
    array: ArrayConfig = field(default_factory=ArrayConfig)
    """Geometry and read voltage."""
    forming: FormingConfig = field(default_factory=FormingConfig)
    """Breakdown-voltage and formed-conductance distributions."""
    read: ReadConfig = field(default_factory=ReadConfig)
    """Read noise."""
    program: ProgramConfig = field(default_factory=ProgramConfig)
    """Write-verify programming."""
    drift: DriftConfig = field(default_factory=DriftConfig)
    """Conductance drift over the macro's clock."""
    stuck: StuckConfig = field(default_factory=StuckConfig)
    """Stuck-open and stuck-high cells."""
    adc: AdcConfig = field(default_factory=AdcConfig)
    """Column ADC."""
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    """Electrical safety limits the macro enforces."""

    def noise_free(self) -> "DeviceProfile":
        """A copy with read noise and programming noise switched off (defects kept)."""
        return replace(self, read=replace(self.read, noise_rel=0.0),
                       program=replace(self.program, noise_us=0.0))

    def to_dict(self) -> dict:
        """Plain-JSON dict with ``schema_version``."""
        out = {"schema_version": SCHEMA_VERSION, "name": self.name}
        for key in _SECTIONS:
            out[key] = dataclasses.asdict(getattr(self, key))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "DeviceProfile":
        """Build from :meth:`to_dict` output; unknown keys raise ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError(f"a device profile is a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ConfigError(f"profile schema_version {version!r} is not supported "
                              f"(this version reads {SCHEMA_VERSION})")
        unknown = set(data) - set(_SECTIONS) - {"schema_version", "name"}
        if unknown:
            raise ConfigError(f"unknown profile keys {sorted(unknown)}; "
                              f"known: {['name', *_SECTIONS]}")
        kwargs = {"name": str(data.get("name", "custom"))}
        for key, klass in _SECTIONS.items():
            section = data.get(key, {})
            if not isinstance(section, dict):
                raise ConfigError(f"profile section {key!r} must be an object")
            known = {f.name for f in fields(klass)}
            bad = set(section) - known
            if bad:
                raise ConfigError(f"unknown keys {sorted(bad)} in profile section {key!r}; "
                                  f"known: {sorted(known)}")
            _check_types(key, klass, section)
            kwargs[key] = klass(**section)
        return cls(**kwargs)

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the profile as versioned JSON; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "DeviceProfile":
        """Load a profile written by :meth:`to_json` (or a hand-written partial one)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"profile file {path} does not exist") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"profile file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def __repr__(self) -> str:
        f, r, d, s, a = self.forming, self.read, self.drift, self.stuck, self.adc
        adc = "ideal" if a.bits is None else f"{a.bits} bit/{a.full_scale_ua:g} µA"
        return (f"DeviceProfile({self.name!r}: {self.array.rows}x{self.array.cols}, "
                f"V_bd {f.breakdown_mean_v:g}±{f.breakdown_std_v:g} V, "
                f"G_formed {f.formed_mean_us:g}±{f.formed_std_us:g} µS "
                f"[{f.formed_min_us:g}, {f.formed_max_us:g}], read noise {r.noise_rel:.3g}, "
                f"prog noise {self.program.noise_us:g} µS, nu {d.nu_mean:g}±{d.nu_std:g}, "
                f"stuck open/high {s.open_fraction:g}/{s.high_fraction:g}, ADC {adc})")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{key}.{name}</td><td>{value}</td></tr>"
            for key in _SECTIONS
            for name, value in dataclasses.asdict(getattr(self, key)).items()
        )
        return (f"<b>DeviceProfile {self.name}</b><table><tr><th>parameter</th>"
                f"<th>value</th></tr>{rows}</table>")
