"""Parity of a chip and its digital twin: the simulator fitted to the chip's own conductances.

The twin is a ``SimMacro`` whose profile is ``sim.fit_device_profile`` of the chip's formed
reservoir tile (read noise, formed-conductance law, breakdown, pristine cells), with the chip's
geometry and ADC. It holds the chip's own map: the cells the chip left unformed are stuck open
in the twin, the others are formed and written to the chip's measured conductances by
write-verify. The same inputs then go through both: per-column current error (µA) from random
binary MVMs, per-neuron spike-count error from the reservoir.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["ParityConfig", "ParityResult", "run_parity", "plot_parity"]


@dataclass(frozen=True)
class ParityConfig:
    """What the parity run sends through chip and twin."""

    lsm_preset: str = "nmnist"
    """LSM preset whose tile is formed and run (lsm.preset)."""
    n_inputs: int | None = None
    """Override of the preset's input rows (smaller tiles for quick checks)."""
    n_neurons: int | None = None
    """Override of the preset's neuron count."""
    n_steps: int | None = None
    """Override of the preset's time steps."""
    n_vectors: int = 256
    """Random binary input vectors for the column-current comparison."""
    input_activity: float = 0.1
    """Fraction of active rows in those vectors (a reservoir step is sparse)."""
    n_samples: int = 32
    """Random input rasters for the spike-count comparison."""
    raster_rate: float = 0.05
    """Probability of an input spike per input and step in those rasters."""
    n_reads: int = 4
    """Repeated reads of the chip's tile for the fit (read noise needs >= 2)."""
    tolerance_us: float = 0.05
    """Write-verify tolerance (µS) when the twin is written to the chip's map."""
    max_pulses: int = 200
    """Write-verify pulse budget per cell for the twin."""
    seed: int = 0
    """Seed of the inputs and of the twin's own random streams."""


@dataclass(frozen=True)
class ParityResult:
    """Numbers of a parity run (``summary`` is the JSON record) and arrays for the plot."""

    summary: dict
    """JSON-able figures: forming, fit, twin write-verify, current and spike-count errors."""
    currents_chip_ua: np.ndarray
    """(n_vectors, cols) column currents of the chip (µA)."""
    currents_twin_ua: np.ndarray
    """Same inputs through the twin (µA)."""
    counts_chip: np.ndarray
    """(n_samples, n_neurons) spike counts on the chip."""
    counts_twin: np.ndarray
    """Same rasters through the twin."""
    g_chip_us: np.ndarray
    """Mean of the chip's reads of the tile (µS)."""
    g_twin_us: np.ndarray
    """The twin's noise-free tile after writing (µS)."""


def _run_reservoir(macro, region, rasters, spec) -> np.ndarray:
    from rram_lsm.macro import RUN_RESERVOIR

    if RUN_RESERVOIR in tuple(macro.info().capabilities):
        return np.asarray(macro.run_reservoir(region, rasters, spec), np.uint8)
    from rram_lsm.reservoir import run_reference

    return run_reference(macro, region, rasters, spec)[0]


def build_twin(chip_info, reads: np.ndarray, region, forming_voltage_v: float,
               cfg: ParityConfig):
    """The fitted SimMacro holding the chip's map: ``(twin, profile, g_twin_us, write stats)``."""
    from sim import SimMacro, fit_device_profile
    from sim.profile import AdcConfig

    profile = fit_device_profile(reads, forming_voltage_v=forming_voltage_v,
                                 name="fitted-from-chip")
    adc = (AdcConfig(bits=None) if chip_info.adc_bits is None else
           AdcConfig(bits=chip_info.adc_bits,
                     full_scale_ua=chip_info.adc_lsb_ua * 2 ** chip_info.adc_bits))
    profile = replace(profile, array=replace(profile.array, rows=chip_info.rows,
                                             cols=chip_info.cols,
                                             read_voltage_v=chip_info.read_voltage_v),
                      adc=adc, limits=chip_info.limits)
    f = profile.forming
    g_chip = reads.mean(axis=0)
    formed = g_chip > np.sqrt(f.pristine_us * f.formed_min_us)
    stuck_open = np.zeros((chip_info.rows, chip_info.cols), bool)
    stuck_open[region.slices] = ~formed
    twin = SimMacro(seed=cfg.seed, profile=profile, stuck_open=stuck_open,
                    stuck_high=np.zeros_like(stuck_open))
    twin.form(region, chip_info.limits.max_form_voltage_v, 1e-6, 100.0)
    now = twin.effective_conductance_us(region)
    target = np.where(formed, np.clip(g_chip, profile.program.g_min_us,
                                      profile.program.g_max_us), now)
    res = twin.program(region, target, cfg.tolerance_us, cfg.max_pulses)
    g_twin = twin.effective_conductance_us(region)
    stats = {
        "formed_cells": int(formed.sum()),
        "converged_fraction": float(res.converged[formed].mean()) if formed.any() else 1.0,
        "rms_error_us": float(np.sqrt(np.mean((g_twin - g_chip)[formed] ** 2))),
    }
    return twin, profile, g_twin, stats


def run_parity(chip, cfg: ParityConfig = ParityConfig()) -> ParityResult:
    """Form a reservoir tile on ``chip``, build its twin, and compare them (module docstring)."""
    from lsm import Reservoir, preset

    overrides = {k: getattr(cfg, k) for k in ("n_inputs", "n_neurons", "n_steps")
                 if getattr(cfg, k) is not None}
    lsm_cfg = preset(cfg.lsm_preset, **overrides)
    res = Reservoir.setup(chip, lsm_cfg)
    region, spec = res.region, res.spec
    reads = np.stack([np.asarray(chip.read_conductance(region), np.float64)
                      for _ in range(max(2, cfg.n_reads))])
    info = chip.info()
    twin, profile, g_twin, write = build_twin(info, reads, region, res.forming.voltage_v, cfg)

    rng = np.random.default_rng(cfg.seed)
    x = (rng.random((cfg.n_vectors, region.rows)) < cfg.input_activity).astype(np.uint8)
    i_chip = np.asarray(chip.mvm(region, x), np.float64)
    i_twin = twin.mvm(region, x)
    err = i_twin - i_chip
    col_mae = np.abs(err).mean(axis=0)
    rasters = (rng.random((cfg.n_samples, lsm_cfg.n_steps, lsm_cfg.n_inputs))
               < cfg.raster_rate).astype(np.uint8)
    c_chip = _run_reservoir(chip, region, rasters, spec).sum(axis=1).astype(np.int64)
    c_twin = _run_reservoir(twin, region, rasters, spec).sum(axis=1).astype(np.int64)
    neuron_mae = np.abs(c_twin - c_chip).mean(axis=0)
    scale = float(np.abs(i_chip).mean()) or 1.0
    summary = {
        "chip": {"model": info.model, "firmware": info.firmware_version,
                 "rows": info.rows, "cols": info.cols, "adc_bits": info.adc_bits},
        "tile": {"region": [region.row0, region.col0, region.rows, region.cols],
                 "forming_voltage_v": res.forming.voltage_v,
                 "unformed_fraction": res.forming.unformed_fraction,
                 "g_ref_us": spec.g_ref_us},
        "fitted_profile": profile.to_dict(),
        "twin_write": write,
        "column_current": {
            "mae_ua": float(np.abs(err).mean()),
            "rmse_ua": float(np.sqrt(np.mean(err ** 2))),
            "relative_mae": float(np.abs(err).mean()) / scale,
            "max_column_mae_ua": float(col_mae.max()),
            "per_column_mae_ua": col_mae,
        },
        "spike_count": {
            "mae_per_neuron": float(neuron_mae.mean()),
            "max_neuron_mae": float(neuron_mae.max()),
            "per_neuron_mae": neuron_mae,
            "mean_count_chip": float(c_chip.mean()),
            "mean_count_twin": float(c_twin.mean()),
            "identical_fraction": float(np.mean(c_chip == c_twin)),
        },
        "inputs": {"n_vectors": cfg.n_vectors, "n_samples": cfg.n_samples, "seed": cfg.seed},
    }
    twin.close()
    return ParityResult(summary, i_chip, i_twin, c_chip, c_twin, reads.mean(axis=0), g_twin)


def plot_parity(result: ParityResult):
    """Four panels: current scatter, per-column error, per-neuron count error, G histograms."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7.5), layout="constrained")
    ax = fig.subplots(2, 2)
    a, b = result.currents_chip_ua.ravel(), result.currents_twin_ua.ravel()
    ax[0, 0].scatter(a, b, s=2, alpha=0.3)
    lim = [min(a.min(), b.min()), max(a.max(), b.max())]
    ax[0, 0].plot(lim, lim, "k--", lw=0.8)
    ax[0, 0].set(xlabel="chip column current (µA)", ylabel="twin column current (µA)",
                 title="same inputs, chip vs fitted simulator")
    cc = result.summary["column_current"]
    ax[0, 1].plot(cc["per_column_mae_ua"], lw=0.8)
    ax[0, 1].set(xlabel="column", ylabel="mean |ΔI| (µA)",
                 title=f"per-column current error (mean {cc['mae_ua']:.3g} µA)")
    sc = result.summary["spike_count"]
    ax[1, 0].bar(np.arange(len(sc["per_neuron_mae"])), sc["per_neuron_mae"], width=1.0)
    ax[1, 0].set(xlabel="neuron", ylabel="mean |Δ spike count|",
                 title=f"per-neuron spike-count error (mean {sc['mae_per_neuron']:.3g})")
    bins = np.linspace(0, max(result.g_chip_us.max(), result.g_twin_us.max()), 60)
    ax[1, 1].hist(result.g_chip_us.ravel(), bins=bins, alpha=0.6, label="chip (mean of reads)")
    ax[1, 1].hist(result.g_twin_us.ravel(), bins=bins, alpha=0.6, label="twin")
    ax[1, 1].set(xlabel="conductance (µS)", ylabel="cells", yscale="log",
                 title="tile conductances")
    ax[1, 1].legend()
    return fig
