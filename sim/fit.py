"""Calibration: estimate a DeviceProfile from conductance maps read back from a chip.

Input is a forming sweep: after each forming voltage, one or more reads of the same tile.
From it the fit takes

* stuck-high fraction: cells far above the formed range at every voltage;
* breakdown mean/std and stuck-open fraction: least squares of the formed fraction
  ``f(V) = (1 - p_open - p_high) * Phi((V - mean) / std)`` over the sweep (with fewer than
  three voltages the stuck-open fraction, and with one voltage also the std, come from
  ``base``);
* formed-conductance law: the mean and std of the untruncated law whose truncated moments
  match those of the formed cells (read-noise variance removed), bounds from the extremes;
* read noise: the mean relative variance of repeated reads of the same cell;
* pristine conductance: median and log-spread of the unformed cells at the first voltage.

Drift and programming are not identifiable from maps at one time and keep ``base`` values.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

from rram_lsm.errors import ConfigError, ShapeError
from rram_lsm.macro import Macro, check_region

from .cells import formed_law
from .presets import load_profile
from .profile import ArrayConfig, DeviceProfile

__all__ = ["fit_device_profile", "measure_forming_sweep"]

# Breakdown-law quantile the top voltage must pass before the unformed cells left there are
# read as stuck open (beyond it, fewer than 1 % of healthy cells are still unformed).
_TOP_FORMED_QUANTILE = 0.99


class _State(NamedTuple):
    voltage_v: float | None
    reads: np.ndarray  # (n_reads, rows, cols)


def measure_forming_sweep(macro: Macro, voltages_v: Sequence[float], *, region=None,
                          n_reads: int = 4, pulse_width_s: float = 1e-6,
                          compliance_ua: float = 100.0, progress: bool = False
                          ) -> list[np.ndarray]:
    """Form ``region`` at each voltage in turn and read it ``n_reads`` times after each.

    Returns one ``(n_reads, rows, cols)`` array per voltage, the input ``fit_device_profile``
    takes with ``forming_voltage_v=voltages_v``. Forming is irreversible: use a
    calibration region (or chip) that is not needed pristine afterwards.
    """
    from tqdm.auto import tqdm

    _check_n_reads(n_reads)
    voltages_v = list(voltages_v)
    if not voltages_v:
        raise ConfigError("a forming sweep needs at least one voltage (check --v-start "
                          "<= --v-stop)")
    info = macro.info()
    r = check_region(region if region is not None else (0, 0, info.rows, info.cols),
                     info.rows, info.cols)
    maps = []
    for v in tqdm(voltages_v, desc="forming sweep", unit="V", disable=not progress):
        macro.form(r, float(v), pulse_width_s, compliance_ua)
        maps.append(np.stack([macro.read_conductance(r) for _ in range(n_reads)]))
    return maps


def fit_device_profile(conductance_maps, *, forming_voltage_v=None, base=None,
                       region=None, n_reads: int = 4, formed_threshold_us: float | None = None,
                       stuck_high_threshold_us: float | None = None, name: str = "fitted",
                       progress: bool = False) -> DeviceProfile:
    """Fit a DeviceProfile to conductance maps (µS) of one chip.

    ``conductance_maps``: a 2-D map (one read), a 3-D stack ``(n_reads, rows, cols)`` of
    repeated reads of the same state, a list of either (one per forming voltage, ascending),
    or a Macro. ``forming_voltage_v``: the voltage (or list of voltages) that produced the
    states; None leaves the breakdown law at ``base``. With a Macro and a list of voltages the
    sweep is run on ``region`` (see :func:`measure_forming_sweep`); with a Macro and one or no
    voltage its current state is read ``n_reads`` times. ``base`` (profile or name, default
    macro40nm) supplies everything the maps cannot tell and the classification thresholds:
    formed above ``formed_threshold_us`` (default: geometric mean of the pristine and lowest
    formed conductance), stuck high above ``stuck_high_threshold_us`` (default: midway between
    the highest formed conductance and ``program.g_max_us``).
    """
    base = load_profile(base)
    states = _states(conductance_maps, forming_voltage_v, region, n_reads, progress)
    f = base.forming
    lo_thr = formed_threshold_us or float(np.sqrt(f.pristine_us * f.formed_min_us))
    hi_thr = stuck_high_threshold_us or (f.formed_max_us + base.program.g_max_us) / 2
    means = [s.reads.mean(axis=0) for s in states]
    last = states[-1]
    n_cells = means[-1].size

    high = np.logical_and.reduce([m > hi_thr for m in means])
    p_high = float(high.mean())
    formed = [(m > lo_thr) & ~high for m in means]
    cells = means[-1][formed[-1]]
    if cells.size < 10:
        raise ConfigError("fewer than 10 formed cells in the maps: form the chip (or pass a "
                          "higher forming voltage) before fitting")

    read_noise = base.read.noise_rel
    n_last = last.reads.shape[0]
    if n_last >= 2:
        rel_var = last.reads[:, formed[-1]].var(axis=0, ddof=1) / cells ** 2
        read_noise = float(np.sqrt(rel_var.mean()))

    forming = _fit_formed_law(f, cells, read_noise, n_last)
    first_unformed = means[0][means[0] <= lo_thr]
    if first_unformed.size >= 10:
        logs = np.log(first_unformed)
        spread2 = logs.var() - read_noise ** 2 / states[0].reads.shape[0]
        forming = replace(forming, pristine_us=float(np.exp(np.median(logs))),
                          pristine_spread_rel=float(np.sqrt(max(spread2, 0.0))))

    p_open = base.stuck.open_fraction
    voltages = [s.voltage_v for s in states]
    if all(v is not None for v in voltages):
        fractions = np.array([fm.sum() / n_cells for fm in formed])
        mean_v, std_v, p_open = _fit_breakdown(np.array(voltages, float), fractions, p_high,
                                               forming.breakdown_std_v, p_open)
        forming = replace(forming, breakdown_mean_v=mean_v, breakdown_std_v=std_v)

    return replace(
        base, name=name, forming=forming, read=replace(base.read, noise_rel=read_noise),
        stuck=replace(base.stuck, open_fraction=float(p_open), high_fraction=p_high),
        array=_array_of(conductance_maps, base.array))


def _check_n_reads(n_reads) -> None:
    if isinstance(n_reads, bool) or not isinstance(n_reads, (int, np.integer)) or n_reads < 1:
        raise ConfigError(f"n_reads must be a positive integer, got {n_reads!r}")


def _states(source, voltages, region, n_reads, progress) -> list[_State]:
    if isinstance(source, Macro):
        _check_n_reads(n_reads)
        if voltages is not None and np.ndim(voltages) == 1:
            maps = measure_forming_sweep(source, voltages, region=region, n_reads=n_reads,
                                         progress=progress)
            return [_State(float(v), m) for v, m in zip(voltages, maps)]
        info = source.info()
        r = region if region is not None else (0, 0, info.rows, info.cols)
        reads = np.stack([source.read_conductance(r) for _ in range(n_reads)])
        return [_State(None if voltages is None else float(voltages), reads)]
    if isinstance(source, np.ndarray) and source.ndim in (2, 3):
        source = [source]
        if voltages is not None and np.ndim(voltages) == 0:
            voltages = [voltages]
    if not isinstance(source, (list, tuple)) or not source:
        raise ShapeError("conductance_maps must be a 2-D map, a 3-D stack of reads, a "
                         "non-empty list of those, or a Macro")
    if voltages is None:
        voltages = [None] * len(source)
    elif np.ndim(voltages) == 0 or len(voltages) != len(source):
        raise ShapeError(f"forming_voltage_v needs one voltage per map ({len(source)}), "
                         f"got {voltages!r}")
    states = []
    for v, m in zip(voltages, source):
        m = np.asarray(m, dtype=np.float64)
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3 or m.shape[0] == 0 or m.shape[1:] != np.shape(source[0])[-2:]:
            raise ShapeError(f"every map must be (rows, cols) or (n_reads >= 1, rows, cols) of "
                             f"one tile; got {m.shape}")
        states.append(_State(None if v is None else float(v), m))
    return states


def _array_of(source, array: ArrayConfig) -> ArrayConfig:
    if isinstance(source, Macro):
        info = source.info()
        return replace(array, rows=info.rows, cols=info.cols, read_voltage_v=info.read_voltage_v)
    return array


def _fit_formed_law(f, cells: np.ndarray, read_noise: float, n_reads: int):
    """Match the truncated law's mean and variance to the formed cells' (noise removed)."""
    log = f.formed_distribution == "lognormal"
    x = np.log(cells) if log else cells
    low, high = float(x.min()), float(x.max())
    mean = float(x.mean())
    # read noise of a cell's mean over n reads: relative (log scale) or rel * G (linear)
    noise_var = read_noise ** 2 / n_reads * (1.0 if log else float(np.mean(cells ** 2)))
    var = max(float(x.var()) - noise_var, 1e-12)
    loc0, scale0, *_ = formed_law(f)

    def residual(p):
        loc, scale = p[0], abs(p[1])
        m, v = stats.truncnorm.stats((low - loc) / scale, (high - loc) / scale,
                                     loc=loc, scale=scale, moments="mv")
        return [(m - mean) / np.sqrt(var), (v - var) / var]

    sol = optimize.least_squares(residual, [mean, np.sqrt(var)], x_scale="jac")
    loc, scale = float(sol.x[0]), float(abs(sol.x[1]))
    if log:
        mean_us = float(np.exp(loc + scale ** 2 / 2))
        std_us = float(mean_us * np.sqrt(np.expm1(scale ** 2)))
        return replace(f, formed_mean_us=mean_us, formed_std_us=std_us,
                       formed_min_us=float(np.exp(low)), formed_max_us=float(np.exp(high)))
    return replace(f, formed_mean_us=loc, formed_std_us=scale, formed_min_us=low,
                   formed_max_us=high)


def _fit_breakdown(voltages, fractions, p_high, std_default, p_open_default):
    """Least squares of the formed fraction vs voltage -> (mean_v, std_v, p_open)."""
    order = np.argsort(voltages)
    v, fr = voltages[order], fractions[order]
    if len(np.unique(v)) == 1:
        top = 1.0 - p_open_default - p_high
        q = np.clip(fr.mean() / top, 1e-6, 1 - 1e-6)
        return float(v[0] - std_default * stats.norm.ppf(q)), std_default, p_open_default
    fit_open = len(np.unique(v)) >= 3

    def model(p):
        mean_v, std_v = p[0], abs(p[1])
        p_open = p[2] if fit_open else p_open_default
        return (1.0 - p_open - p_high) * stats.norm.cdf((v - mean_v) / std_v)

    mid = v[np.argmin(np.abs(fr - fr.max() / 2))]
    p0 = [mid, std_default] + ([max(1.0 - p_high - fr.max(), 0.0)] if fit_open else [])
    sol = optimize.least_squares(lambda p: model(p) - fr, p0, x_scale="jac")
    mean_v, std_v = float(sol.x[0]), float(abs(sol.x[1]))
    if not fit_open:
        return mean_v, std_v, p_open_default
    p_open = float(np.clip(sol.x[2], 0.0, 1.0))
    # Least squares weighs the steep middle of the curve, whose sampling scatter (~1e-3) is
    # as large as a realistic stuck-open fraction; once the top voltage is far past the
    # breakdown law, the cells still unformed there measure p_open directly.
    top = float(stats.norm.cdf((v[-1] - mean_v) / std_v))
    if top > _TOP_FORMED_QUANTILE:
        p_open = float(np.clip(1.0 - p_high - fr[-1] / top, 0.0, 1.0))
    return mean_v, std_v, p_open
