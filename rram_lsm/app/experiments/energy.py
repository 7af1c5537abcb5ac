"""Energy and latency per inference: the RRAM co-design against the same network in digital.

The method is the one of the group's related work (paper-facts): count operations, multiply
by an energy per operation. Operation counts come from the run itself (input rasters and
reservoir spikes), so sparse activity is credited to the RRAM macro exactly as it happened:

* RRAM cell reads: per step, (active input rows + neurons that spiked at the previous step)
  x columns (two per neuron: differential pairs G+ and G-).
* Row drives: the same active rows, one word-line drive each.
* ADC conversions: every column of every step that has at least one active row (the
  controller skips a step with no active row: its currents are zero).
* Digital neuron updates: every neuron at every step (leak happens without input).
* Projection MACs: features x embedding dimension (one fully connected head).

The digital baseline runs the same network densely, as the related work counts it:
``(n_inputs + n_neurons) x n_neurons`` multiply-accumulates per step, each with a weight
read from SRAM, plus the same neuron updates and projection.

Latency assumes the phases of a step run one after the other (read, ADC conversions shared
by ``n_adcs`` converters, neuron update in ``neuron_lanes`` lanes); no pipelining is
credited to either design. All per-operation values live in ``energy_params.toml`` with a
source and a status (literature / related work / assumed) each.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ...errors import ConfigError, ShapeError

__all__ = [
    "EnergyParams",
    "OpCounts",
    "EnergyReport",
    "load_energy_params",
    "count_operations",
    "sum_passes",
    "estimate_energy",
    "measure_energy",
]

_SECTIONS = ("rram", "adc", "digital")


@dataclass(frozen=True)
class EnergyParams:
    """Per-operation energies (J) and latencies (s); defaults in ``energy_params.toml``."""

    read_voltage_v: float
    """Read pulse amplitude on the active rows (V)."""
    read_pulse_s: float
    """Duration of one array read (s); all rows and columns are read in parallel."""
    mean_cell_conductance_us: float
    """Mean conductance of the tile's cells (µS, formed and pristine together)."""
    row_driver_energy_j: float
    """Energy to drive one active word line for one read (J)."""
    adc_bits: int
    """ADC resolution (bits)."""
    walden_fom_j_per_step: float
    """ADC Walden figure of merit (J per conversion step); one conversion = FOM x 2**bits."""
    conversion_s: float
    """Time of one ADC conversion (s)."""
    n_adcs: int
    """ADCs working in parallel; the columns share them."""
    scale_45_to_40nm: float
    """Factor applied to the 45 nm digital energies (dimensionless)."""
    mac_int8_j: float
    """One 8-bit multiply-accumulate at 45 nm (J)."""
    weight_read_int8_j: float
    """Reading one 8-bit weight from SRAM at 45 nm (J)."""
    neuron_update_j: float
    """One LIF membrane update at 45 nm (J)."""
    clock_s: float
    """Digital clock period (s)."""
    mac_units: int
    """Parallel MAC units (digital baseline, and the co-design's projection engine)."""
    neuron_lanes: int
    """Neuron updates per clock cycle (both designs)."""
    add_int_j: float = 0.1e-12
    """One integer addition of digitised partial sums (J): tiles' columns, bit planes."""
    sources: tuple = ()
    """``(name, status, source)`` per parameter, as written in the parameter file."""

    def replace(self, **changes) -> "EnergyParams":
        """A copy with some values changed (their source becomes "set by the caller")."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown energy parameters {sorted(unknown)}")
        note = {name: ("set by the caller", f"value {changes[name]!r}") for name in changes}
        sources = tuple((n, *note[n]) if n in note else (n, st, src)
                        for n, st, src in self.sources)
        return dataclasses.replace(self, sources=sources, **changes)

    @property
    def adc_conversion_j(self) -> float:
        """Energy of one ADC conversion (J)."""
        return self.walden_fom_j_per_step * 2.0 ** self.adc_bits

    @property
    def cell_read_j(self) -> float:
        """Energy of reading one cell once: V_read² x G_mean x t_read (J)."""
        return self.read_voltage_v ** 2 * self.mean_cell_conductance_us * 1e-6 * self.read_pulse_s


# TOML key (section, key) -> EnergyParams field, where the names differ.
_RENAMES = {("adc", "bits"): "adc_bits"}


def load_energy_params(path: str | Path | None = None) -> EnergyParams:
    """Read a parameter file (default: the packaged ``energy_params.toml``).

    Every value needs ``<name>_source`` and ``<name>_status`` beside it; unknown or missing
    keys raise ConfigError, so a typo never silently falls back to a default.
    """
    if path is None:
        text = resources.files(__package__).joinpath("energy_params.toml").read_text()
        where = "energy_params.toml (packaged)"
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"energy parameter file {path} does not exist")
        text, where = path.read_text(), str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    fields = {f.name: f for f in dataclasses.fields(EnergyParams) if f.name != "sources"}
    extra_top = set(raw) - set(_SECTIONS) - {"schema_version"}
    if extra_top:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(extra_top)}; "
                          f"expected sections {list(_SECTIONS)}")
    values, sources = {}, []
    for section in _SECTIONS:
        table = raw.get(section, {})
        for key, value in table.items():
            if key.endswith(("_source", "_status")):
                continue
            name = _RENAMES.get((section, key), key)
            if name not in fields:
                raise ConfigError(f"{where}: unknown key [{section}] {key}; known: "
                                  f"{sorted(fields)}")
            for suffix in ("_source", "_status"):
                if key + suffix not in table:
                    raise ConfigError(f"{where}: [{section}] {key} needs {key}{suffix}")
            values[name] = value
            sources.append((name, table[key + "_status"], table[key + "_source"]))
    missing = {n for n, f in fields.items()
               if f.default is dataclasses.MISSING} - set(values)
    if missing:
        raise ConfigError(f"{where}: missing parameters {sorted(missing)}")
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{where}: {name} must be a positive number, got {value!r}")
    for name in ("adc_bits", "n_adcs", "mac_units", "neuron_lanes"):
        values[name] = int(values[name])
    return EnergyParams(**values, sources=tuple(sources))


@dataclass(frozen=True)
class OpCounts:
    """Operations of one inference (mean over the samples counted)."""

    n_inputs: int
    """Input rows of the reservoir tile."""
    n_neurons: int
    """Reservoir neurons."""
    steps: int
    """Time steps per sample (over all passes: :func:`sum_passes`)."""
    projection_in: int
    """Features entering the projection head."""
    projection_dim: int
    """Embedding dimension of the projection head (0: no head counted)."""
    input_events: float
    """Active input rows summed over steps."""
    recurrent_rows: float
    """Spikes fed back as active rows (spikes of every step but the last)."""
    spikes: float
    """Reservoir spikes over all steps."""
    active_steps: float
    """Steps with at least one active row."""
    samples: int
    """Samples the means are taken over."""
    tile_conversions: float | None = None
    """Column conversions summed over the tiles of a multi-tile reservoir (each tile's ADCs
    convert its own columns on the steps it has an active row); None: one tile."""
    partial_sum_adds: float = 0.0
    """Digital additions of tiles' partial column sums (multi-tile reservoirs)."""
    head: str = "digital"
    """Where the projection head runs: "digital" (the paper's split) or "analogue" (on
    macro tiles, bit-serial inputs, see docs/analog-heads.md)."""
    head_input_bits: int = 6
    """Bits per sign of an analogue head's bit-serial inputs."""
    head_tile_rows: int = 512
    """Rows per tile of an analogue head."""
    head_bit_density: float = 0.5
    """Fraction of an input's bits that are 1 (an assumption: uniform quantised values)."""
    passes: int = 1
    """Reservoir passes per inference: one per drive of FSDD's cochlea read side by side
    (the pairs' default reads two, docs/zeroshot.md round 17); the head reads them all."""

    def __post_init__(self):
        if self.head not in ("digital", "analogue"):
            raise ConfigError(f"head must be 'digital' or 'analogue', got {self.head!r}")
        if self.head_input_bits < 1 or self.head_tile_rows < 1 \
                or not 0 <= self.head_bit_density <= 1:
            raise ConfigError("head_input_bits and head_tile_rows must be >= 1 and "
                              "head_bit_density in [0, 1]")

    @property
    def columns(self) -> int:
        """Columns read per step: two per neuron (differential pairs)."""
        return 2 * self.n_neurons

    @property
    def row_activations(self) -> float:
        """Word-line drives: active input rows plus fed-back spikes."""
        return self.input_events + self.recurrent_rows

    @property
    def rram_cell_reads(self) -> float:
        """Cells read: active rows x columns."""
        return self.row_activations * self.columns

    @property
    def adc_conversions(self) -> float:
        """Column conversions on steps with an active row (per tile when tiled)."""
        if self.tile_conversions is not None:
            return self.tile_conversions
        return self.active_steps * self.columns

    @property
    def head_planes(self) -> int:
        """Binary read planes of an analogue head: bits x two signs."""
        return 2 * self.head_input_bits

    @property
    def head_row_tiles(self) -> int:
        """Row tiles an analogue head's inputs span."""
        return -(-self.projection_in // self.head_tile_rows)

    @property
    def head_row_activations(self) -> float:
        """Active rows over all planes: per bit, an input is in one sign's plane only."""
        return self.head_input_bits * self.projection_in * self.head_bit_density

    @property
    def head_cell_reads(self) -> float:
        """Cells an analogue head reads: active rows x two columns per output."""
        return self.head_row_activations * 2 * self.projection_dim

    @property
    def head_conversions(self) -> float:
        """An analogue head's conversions: every plane, every row tile, both columns."""
        return self.head_planes * self.head_row_tiles * 2 * self.projection_dim

    @property
    def head_digital_adds(self) -> float:
        """Shift-and-add of planes and row tiles per output, plus bias, GELU and
        normalisation (three operations per output), all digital."""
        return (self.head_planes * self.head_row_tiles + 3) * self.projection_dim

    @property
    def neuron_updates(self) -> int:
        """Membrane updates: every neuron at every step."""
        return self.steps * self.n_neurons

    @property
    def projection_macs(self) -> int:
        """MACs of the projection head."""
        return self.projection_in * self.projection_dim

    @property
    def digital_macs(self) -> int:
        """Dense MACs of the same reservoir in digital: (inputs + neurons) x neurons per step."""
        return self.steps * (self.n_inputs + self.n_neurons) * self.n_neurons

    def as_dict(self) -> dict:
        """The counts, base and derived, as plain numbers."""
        out = dataclasses.asdict(self)
        for name in ("row_activations", "rram_cell_reads", "adc_conversions", "neuron_updates",
                     "projection_macs", "digital_macs") + (
                         ("head_planes", "head_row_tiles", "head_row_activations",
                          "head_cell_reads", "head_conversions", "head_digital_adds")
                         if self.head == "analogue" else ()):
            out[name] = getattr(self, name)
        return out


def count_operations(rasters, spikes, *, projection_dim: int = 64,
                     projection_in: int | None = None, tiles=None, head: str = "digital",
                     head_input_bits: int = 6, head_tile_rows: int = 512) -> OpCounts:
    """Count the operations of running ``rasters`` through a reservoir that gave ``spikes``.

    ``rasters``: 0/1 ``(batch, T, n_inputs)``; ``spikes``: 0/1 ``(batch, T, n_neurons)``.
    ``projection_in`` defaults to ``n_neurons`` (spike-count features); ``projection_dim=0``
    leaves the head out. ``tiles``: the reservoir's parts as ``(row0, n_rows, pair0,
    n_pairs)`` over its rows (inputs, then fed-back neurons) when it spans several tiles
    (a ``rram_lsm.mapping.TileMap``'s parts): conversions are counted per tile and the
    digital additions of partial sums per column block. ``head``: "analogue" counts the
    projection head on macro tiles instead of digital MACs.
    """
    x = np.asarray(rasters)
    s = np.asarray(spikes)
    if x.ndim != 3 or s.ndim != 3:
        raise ShapeError(f"rasters and spikes must be (batch, T, n); got {x.shape} and {s.shape}")
    if x.shape[:2] != s.shape[:2] or x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"rasters {x.shape} and spikes {s.shape} need the same non-empty "
                         "batch and step axes")
    for name, arr in (("rasters", x), ("spikes", s)):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ShapeError(f"{name} must be binary (0/1)")
    if projection_dim < 0:
        raise ConfigError(f"projection_dim must be >= 0, got {projection_dim}")
    x_rows = x.sum(axis=2, dtype=np.int64)                 # (batch, T)
    s_rows = s.sum(axis=2, dtype=np.int64)
    fed_back = np.zeros_like(s_rows)
    fed_back[:, 1:] = s_rows[:, :-1]                        # spikes of step t-1 drive step t
    active = (x_rows + fed_back) > 0
    n_neurons = s.shape[2]
    tiled = _tile_counts(x, s, tiles) if tiles is not None and len(tiles) > 1 else {}
    return OpCounts(
        n_inputs=int(x.shape[2]), n_neurons=int(n_neurons), steps=int(x.shape[1]),
        projection_in=int(n_neurons if projection_in is None else projection_in),
        projection_dim=int(projection_dim),
        input_events=float(x_rows.sum(axis=1).mean()),
        recurrent_rows=float(fed_back.sum(axis=1).mean()),
        spikes=float(s_rows.sum(axis=1).mean()),
        active_steps=float(active.sum(axis=1).mean()),
        samples=int(x.shape[0]),
        head=head, head_input_bits=int(head_input_bits), head_tile_rows=int(head_tile_rows),
        **tiled,
    )


def sum_passes(passes) -> OpCounts:
    """One inference that runs the reservoir once per pass (the same samples through the
    same tile, e.g. FSDD's cochlea at two drives): the passes' reservoir operations and
    steps add, and the head runs once on every pass's features side by side (its inputs:
    the passes' widths added)."""
    passes = list(passes)
    if not passes:
        raise ConfigError("need at least one pass to count")
    first = passes[0]
    fixed = ("n_inputs", "n_neurons", "projection_dim", "samples", "head", "head_input_bits",
             "head_tile_rows", "head_bit_density")
    for c in passes[1:]:
        odd = [f for f in fixed if getattr(c, f) != getattr(first, f)]
        if odd or (c.tile_conversions is None) != (first.tile_conversions is None):
            raise ConfigError(f"passes of one inference need the same reservoir, samples "
                              f"and head; they differ in {odd or ['tiles']}")

    def total(name):
        return sum(getattr(c, name) for c in passes)

    return dataclasses.replace(
        first, steps=total("steps"), projection_in=total("projection_in"),
        input_events=total("input_events"), recurrent_rows=total("recurrent_rows"),
        spikes=total("spikes"), active_steps=total("active_steps"),
        tile_conversions=None if first.tile_conversions is None
        else total("tile_conversions"),
        partial_sum_adds=total("partial_sum_adds"), passes=total("passes"))


def _tile_counts(x, s, tiles) -> dict:
    """Per-tile conversions and partial-sum additions (means per sample)."""
    n_in = x.shape[2]
    fed = np.zeros_like(s)
    fed[:, 1:] = s[:, :-1]
    rows = np.concatenate([x, fed], axis=2).astype(bool)      # (batch, T, n_in + n)
    if max(r0 + nr for r0, nr, _, _ in tiles) > rows.shape[2]:
        raise ShapeError(f"tiles reach past the reservoir's {rows.shape[2]} rows "
                         f"({n_in} inputs + {s.shape[2]} neurons)")
    conversions, blocks = 0.0, {}
    for r0, nr, p0, npairs in tiles:
        on = rows[:, :, r0:r0 + nr].any(axis=2)                 # (batch, T)
        conversions += float(on.sum(axis=1).mean()) * 2 * npairs
        blocks.setdefault((p0, npairs), []).append(on)
    adds = 0.0
    for (_, npairs), ons in blocks.items():
        active_parts = np.sum(ons, axis=0)                      # tiles read per step
        adds += float(np.maximum(active_parts - 1, 0).sum(axis=1).mean()) * npairs
    return {"tile_conversions": conversions, "partial_sum_adds": adds}


@dataclass(frozen=True)
class EnergyReport:
    """Energy (J) and latency (s) per inference, broken down by operation, for both designs."""

    counts: OpCounts
    """The operation counts the estimate is based on."""
    params: EnergyParams
    """The per-operation values used."""
    rram_energy_j: dict
    """Co-design energy per inference by part: cell_reads, row_drivers, adc, neurons,
    projection."""
    digital_energy_j: dict
    """Digital-baseline energy per inference by part (macs, weight_reads, neurons, projection)."""
    rram_latency_s: dict
    """Co-design latency per inference by phase."""
    digital_latency_s: dict
    """Digital-baseline latency per inference by phase."""

    @property
    def rram_total_j(self) -> float:
        """Co-design energy per inference (J)."""
        return float(sum(self.rram_energy_j.values()))

    @property
    def digital_total_j(self) -> float:
        """Digital energy per inference (J)."""
        return float(sum(self.digital_energy_j.values()))

    @property
    def energy_ratio(self) -> float:
        """Digital energy / co-design energy (> 1: the co-design is more efficient)."""
        return self.digital_total_j / self.rram_total_j

    @property
    def latency_ratio(self) -> float:
        """Digital latency / co-design latency."""
        return sum(self.digital_latency_s.values()) / sum(self.rram_latency_s.values())

    def to_dict(self) -> dict:
        """Plain-JSON summary: totals, ratios, breakdowns, counts and assumptions."""
        return {
            "rram": {"energy_j": self.rram_total_j,
                     "latency_s": float(sum(self.rram_latency_s.values())),
                     "energy_breakdown_j": dict(self.rram_energy_j),
                     "latency_breakdown_s": dict(self.rram_latency_s)},
            "digital": {"energy_j": self.digital_total_j,
                        "latency_s": float(sum(self.digital_latency_s.values())),
                        "energy_breakdown_j": dict(self.digital_energy_j),
                        "latency_breakdown_s": dict(self.digital_latency_s)},
            "energy_ratio": self.energy_ratio,
            "latency_ratio": self.latency_ratio,
            "counts": self.counts.as_dict(),
            "assumptions": [f"{n} = {getattr(self.params, n)!r} [{st}] {src}"
                            for n, st, src in self.params.sources],
        }

    def _repr_html_(self) -> str:
        from .display import energy_html

        return energy_html({"": self})

    def plot(self):
        """Bar chart of the breakdown with the assumptions beside it (returns the Figure)."""
        from .plots import plot_energy

        return plot_energy({"inference": self})


def estimate_energy(counts: OpCounts, params: EnergyParams | None = None) -> EnergyReport:
    """Multiply ``counts`` by the per-operation values of ``params`` (default parameter file)."""
    p = load_energy_params() if params is None else params
    digital_scale = p.scale_45_to_40nm
    mac_j = (p.mac_int8_j + p.weight_read_int8_j) * digital_scale
    neurons_j = counts.neuron_updates * p.neuron_update_j * digital_scale
    projection_j = counts.projection_macs * mac_j
    rram_energy = {
        "cell_reads": counts.rram_cell_reads * p.cell_read_j,
        "row_drivers": counts.row_activations * p.row_driver_energy_j,
        "adc": counts.adc_conversions * p.adc_conversion_j,
        "neurons": neurons_j,
    }
    if counts.partial_sum_adds:
        rram_energy["partial_sums"] = counts.partial_sum_adds * p.add_int_j * digital_scale
    if counts.head == "analogue":
        rram_energy["projection_cells"] = (counts.head_cell_reads * p.cell_read_j
                                           + counts.head_row_activations
                                           * p.row_driver_energy_j)
        rram_energy["projection_adc"] = counts.head_conversions * p.adc_conversion_j
        rram_energy["projection_digital"] = (counts.head_digital_adds * p.add_int_j
                                             * digital_scale)
    else:
        rram_energy["projection"] = projection_j
    digital_energy = {
        "macs": counts.digital_macs * p.mac_int8_j * digital_scale,
        "weight_reads": counts.digital_macs * p.weight_read_int8_j * digital_scale,
        "neurons": neurons_j,
        "projection": projection_j,
    }
    neuron_s = counts.steps * math.ceil(counts.n_neurons / p.neuron_lanes) * p.clock_s
    projection_s = math.ceil(counts.projection_macs / p.mac_units) * p.clock_s
    rram_latency = {
        "array_reads": counts.active_steps * p.read_pulse_s,
        "adc": counts.active_steps * math.ceil(counts.columns / p.n_adcs) * p.conversion_s,
        "neurons": neuron_s,
        "projection": projection_s,
    }
    if counts.head == "analogue":
        # planes and row tiles one after another (tiles could overlap on separate ADCs)
        reads = counts.head_planes * counts.head_row_tiles
        rram_latency["projection"] = reads * (
            p.read_pulse_s + math.ceil(2 * counts.projection_dim / p.n_adcs) * p.conversion_s)
    per_step_macs = (counts.n_inputs + counts.n_neurons) * counts.n_neurons
    digital_latency = {
        "macs": counts.steps * math.ceil(per_step_macs / p.mac_units) * p.clock_s,
        "neurons": neuron_s,
        "projection": projection_s,
    }
    return EnergyReport(counts=counts, params=p, rram_energy_j=rram_energy,
                        digital_energy_j=digital_energy, rram_latency_s=rram_latency,
                        digital_latency_s=digital_latency)


def measure_energy(reservoir, rasters, *, projection_dim: int = 64,
                   params: EnergyParams | None = None, spikes=None,
                   head_features: str = "counts", head: str = "digital",
                   head_input_bits: int = 6, head_tile_rows: int = 512) -> EnergyReport:
    """Energy report of running ``rasters`` through an ``lsm.Reservoir`` (or a
    ``TiledReservoir``: conversions and partial sums per tile) on its macro(s).

    The chip's own read voltage, ADC resolution and mean tile conductance (read back
    through the interface) replace the parameter file's values, so the report describes
    the chip that ran. ``spikes`` skips the run when they are already at hand.
    ``head_features`` is the feature kind the projection head reads (its input width:
    :func:`head_inputs`, per pass); ``head="analogue"`` prices the head on macro tiles.
    ``rasters`` (and ``spikes``) may be a list: one batch of the same samples per pass of
    an inference (FSDD's cochlea at several drives), counted by :func:`sum_passes`.
    """
    p = load_energy_params() if params is None else params
    tilemap = getattr(reservoir, "tilemap", None)
    if tilemap is not None:
        parts = [(reservoir.macros[t.placement.macro], t.placement.region)
                 for t in tilemap.parts]
        tiles = [(t.row0, t.n_rows, t.pair0, t.n_pairs) for t in tilemap.parts]
    else:
        parts, tiles = [(reservoir.macro, reservoir.region)], None
    macro = parts[0][0]
    info = macro.info()
    g = np.concatenate([np.asarray(m.read_conductance(r), dtype=np.float64).ravel()
                        for m, r in parts])
    chip = {"read_voltage_v": float(info.read_voltage_v),
            "mean_cell_conductance_us": float(g.mean())}
    if info.adc_bits is not None:
        chip["adc_bits"] = int(info.adc_bits)
    p = p.replace(**chip)
    p = dataclasses.replace(p, sources=tuple(
        (n, "measured", f"read back from the chip that ran ({type(macro).__name__})")
        if n in chip else (n, st, src) for n, st, src in p.sources))
    several = isinstance(rasters, (list, tuple))
    batches = list(rasters) if several else [rasters]
    if spikes is None:
        runs = [reservoir.run(r) for r in batches]
    else:
        runs = list(spikes) if several else [spikes]
        if len(runs) != len(batches):
            raise ShapeError(f"{len(batches)} raster batches but {len(runs)} spike batches")
    spec = reservoir.spec
    width = head_inputs(head_features, spec.n_inputs, spec.n_neurons)
    counts = sum_passes(
        count_operations(r, s, projection_dim=projection_dim, projection_in=width,
                         tiles=tiles, head=head, head_input_bits=head_input_bits,
                         head_tile_rows=head_tile_rows)
        for r, s in zip(batches, runs))
    return estimate_energy(counts, p)


def head_inputs(features: str, n_inputs: int, n_neurons: int, n_windows: int = 5) -> int:
    """Input width of a projection head reading LSM features of kind ``features``
    (``counts``, ``windowed``, ``input``, or kinds joined by ``+``)."""
    widths = {"counts": n_neurons, "windowed": n_windows * n_neurons, "input": n_inputs}
    parts = features.split("+")
    unknown = [k for k in parts if k not in widths]
    if unknown:
        raise ConfigError(f"unknown feature kind(s) {unknown} in {features!r}; "
                          f"expected {sorted(widths)} joined by '+'")
    return sum(widths[k] for k in parts)
