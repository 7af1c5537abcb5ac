"""Projection heads in RRAM: the analogue forward pass and hardware-aware training.

A head's ``nn.Linear`` (weight ``out x in``) is mapped as differential column pairs,
``G+ = g_min + k max(w, 0)``, ``G- = g_min + k max(-w, 0)`` with ``k = (g_max - g_min) /
max|w|`` (µS per weight unit), cut into row tiles of at most ``tile_rows`` rows. Inputs
(the head's standardised features, signed reals) are applied **bit-serially**: split into
their positive and negative parts, each clipped to ``x_max`` and quantised to
``input_bits`` unsigned bits; every bit plane is one binary read (one ``mvm``) of every
tile, each column digitised by its tile's ADC, and the planes are added digitally with
weights ``2^b x_max / L`` (``L = 2^input_bits - 1``), the negative pass subtracted.
Partial sums of row tiles are added digitally after each tile's ADC. The result divided
by ``V_read k`` is ``x w^T``; the bias, GELU and L2 normalisation stay digital.

:func:`analog_linear` is that forward in torch with the device's non-idealities drawn from
a ``torch.Generator`` (programming error, drift at ``age_s`` with per-cell exponents, read
noise per column, the ADC and the input quantisation, rounding by a straight-through
estimator), so heads can be trained with them in the loop (:func:`train_heads_analog`),
as aihwkit's ``InferenceRPUConfig`` does. The app layer fills :class:`AnalogDeviceConfig`
from the simulator's fitted profile (``rram_lsm.app.experiments.analog_heads``) and
programs the trained weights onto real macro tiles; this module opens no chip.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from rram_lsm.errors import ConfigError

from .heads import DualEncoder, ProjectionHead
from .train import MethodConfig, TrainResult, train_heads

__all__ = ["AnalogDeviceConfig", "noise_generator", "input_range", "input_planes",
           "analog_linear", "analog_head_forward", "train_heads_analog"]


@dataclass(frozen=True)
class AnalogDeviceConfig:
    """The device as an analogue head sees it. Defaults: an ideal device (no noise, no
    drift, ideal ADC and inputs), under which :func:`analog_linear` equals ``F.linear``."""

    g_min_us: float = 1.0
    """Lowest programmable conductance (µS): the idle cell of a pair."""
    g_max_us: float = 40.0
    """Highest programmable conductance (µS): the largest |w| maps here."""
    read_voltage_v: float = 0.2
    """Read pulse amplitude (V) of an active row."""
    prog_noise_us: float = 0.0
    """Std of a cell's programmed conductance about its target (µS, absolute)."""
    read_noise_rel: float = 0.0
    """Std of one cell read, relative to its conductance (drawn per column, analytically)."""
    adc_bits: int | None = None
    """Column ADC resolution (unipolar, round half up, clipped); None: ideal."""
    adc_full_scale_ua: float = 200.0
    """ADC full-scale current (µA); one code is ``adc_full_scale_ua / 2**adc_bits``."""
    input_bits: int | None = None
    """Bits per sign of a bit-serial input; None: ideal analogue inputs (no planes)."""
    input_quantile: float = 0.999
    """Quantile of |standardised input| on training data taken as the clip ``x_max``."""
    tile_rows: int = 512
    """Rows per tile: a whole 512-row array by default; fewer keep a column's current
    further from the ADC's full scale but multiply the conversions."""
    drift_nu_mean: float = 0.0
    """Mean drift exponent: ``G(t) = G0 (t / drift_t0_s) ** -nu`` (dimensionless)."""
    drift_nu_std: float = 0.0
    """Std of the per-cell drift exponent (clipped at 0)."""
    drift_t0_s: float = 1.0
    """Drift reference time after writing (s); no drift before it."""
    age_s: float = 1.0
    """Time since programming (s) at which the forward pass reads the heads."""
    drift_compensation: bool = False
    """Divide outputs by a global drift factor read from a reference column."""
    reference_rows: int = 32
    """Rows of the reference column pair used by ``drift_compensation``."""

    def __post_init__(self):
        if not 0 <= self.g_min_us < self.g_max_us:
            raise ConfigError(f"need 0 <= g_min_us < g_max_us, got {self.g_min_us}, "
                              f"{self.g_max_us}")
        if self.read_voltage_v <= 0 or self.adc_full_scale_ua <= 0:
            raise ConfigError("read_voltage_v and adc_full_scale_ua must be positive")
        if self.prog_noise_us < 0 or self.read_noise_rel < 0 or self.drift_nu_std < 0:
            raise ConfigError("noise levels and drift_nu_std must be >= 0")
        for name in ("adc_bits", "input_bits"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, np.integer)) and 1 <= v <= 24):
                raise ConfigError(f"{name} must be None or an integer in 1..24, got {v!r}")
        if not 0.5 <= self.input_quantile <= 1.0:
            raise ConfigError(f"input_quantile must be in [0.5, 1], got {self.input_quantile}")
        if self.tile_rows < 1 or self.reference_rows < 1:
            raise ConfigError("tile_rows and reference_rows must be >= 1")
        if self.drift_t0_s <= 0 or self.age_s < 0:
            raise ConfigError("drift_t0_s must be > 0 and age_s >= 0")

    def at_age(self, age_s: float) -> "AnalogDeviceConfig":
        """A copy read at ``age_s`` seconds after programming."""
        return replace(self, age_s=float(age_s))

    @property
    def adc_lsb_ua(self) -> float:
        """Current of one ADC code (µA); 0.0 for an ideal ADC."""
        return 0.0 if self.adc_bits is None else self.adc_full_scale_ua / 2 ** int(self.adc_bits)


def noise_generator(seed: int, stream: str) -> torch.Generator:
    """A torch generator for the named ``stream`` of chip ``seed`` (streams independent:
    changing one never changes another)."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(stream.encode())]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def input_range(xs: np.ndarray | torch.Tensor, quantile: float) -> float:
    """The clip ``x_max`` of bit-serial inputs: a quantile of |xs| (training rows)."""
    a = np.abs(np.asarray(xs, np.float64)).ravel()
    v = float(np.quantile(a, quantile)) if a.size else 1.0
    return v if v > 0 else 1.0


def input_planes(xs: torch.Tensor, bits: int | None, x_max: float):
    """The binary read planes of signed inputs ``xs`` (n, in): a list of ``(plane,
    weight)`` so that ``sum(weight * plane) == xs`` up to the quantisation (bits None:
    the two analogue parts themselves, weights +1 and -1)."""
    pos, neg = xs.clamp_min(0), (-xs).clamp_min(0)
    if bits is None:
        return [(pos, 1.0), (neg, -1.0)]
    levels = 2 ** int(bits) - 1
    out = []
    for part, sign in ((pos, 1.0), (neg, -1.0)):
        q = torch.round(part.clamp(max=x_max) * (levels / x_max)).to(torch.int64)
        for b in range(int(bits)):
            out.append((((q >> b) & 1).to(xs.dtype), sign * (2 ** b) * x_max / levels))
    return out


def _adc(i: torch.Tensor, cfg: AnalogDeviceConfig) -> torch.Tensor:
    if cfg.adc_bits is None:
        return i
    lsb = cfg.adc_lsb_ua
    q = torch.clamp(torch.floor(i / lsb + 0.5), 0, 2 ** int(cfg.adc_bits) - 1) * lsb
    return i + (q - i).detach()  # straight through


def _drift(shape, cfg: AnalogDeviceConfig, gen, dtype) -> torch.Tensor | None:
    if cfg.age_s <= cfg.drift_t0_s or (cfg.drift_nu_mean == 0 and cfg.drift_nu_std == 0):
        return None
    nu = (cfg.drift_nu_mean + cfg.drift_nu_std * torch.randn(shape, generator=gen,
                                                               dtype=dtype)).clamp_min(0)
    return torch.exp(-nu * math.log(cfg.age_s / cfg.drift_t0_s))


def analog_linear(xs: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                  cfg: AnalogDeviceConfig, x_max: float = 1.0,
                  gen: torch.Generator | None = None) -> torch.Tensor:
    """``xs @ w.T + b`` as the macro computes it (module docstring), differentiable in
    ``w`` and ``b``. ``gen`` draws every noise (required when ``cfg`` has any).

    Every bit plane of every row tile is one slice of a single batched product (planes x
    samples x tiles against the tiles' stacked ``G+ | G-`` columns), so a hardware-aware
    training step costs a few large matmuls, not one small one per plane and tile."""
    noisy = cfg.prog_noise_us > 0 or cfg.read_noise_rel > 0 or cfg.drift_nu_std > 0 \
        or cfg.drift_nu_mean > 0
    if noisy and gen is None:
        raise ConfigError("a noisy analogue forward needs a torch.Generator (gen)")
    v = cfg.read_voltage_v
    n_out, n_in = w.shape
    w_max = w.detach().abs().max().clamp_min(1e-12)
    k = (cfg.g_max_us - cfg.g_min_us) / w_max
    gp = cfg.g_min_us + k * w.clamp_min(0)
    gn = cfg.g_min_us + k * (-w).clamp_min(0)
    if cfg.prog_noise_us > 0:
        gp = gp + cfg.prog_noise_us * torch.randn(gp.shape, generator=gen, dtype=gp.dtype)
        gn = gn + cfg.prog_noise_us * torch.randn(gn.shape, generator=gen, dtype=gn.dtype)
        gp, gn = gp.clamp(0, cfg.g_max_us), gn.clamp(0, cfg.g_max_us)
    dp = _drift(gp.shape, cfg, gen, gp.dtype)
    if dp is not None:
        gp, gn = gp * dp, gn * _drift(gn.shape, cfg, gen, gn.dtype)
    planes = input_planes(xs, cfg.input_bits, x_max)
    weights = torch.tensor([wt for _, wt in planes], dtype=xs.dtype)
    rows = cfg.tile_rows
    n_tiles = -(-n_in // rows)
    pad = n_tiles * rows - n_in
    # (P, n, T, R): zero inputs on the padding rows draw no current
    x = F.pad(torch.stack([p for p, _ in planes]), (0, pad)).reshape(
        len(planes), xs.shape[0], n_tiles, rows)
    g = F.pad(torch.cat([gp, gn]), (0, pad)).reshape(2 * n_out, n_tiles, rows)
    i = v * torch.einsum("pntr,otr->pnto", x, g)
    if cfg.read_noise_rel > 0:
        x2 = x if cfg.input_bits is not None else x * x  # bit planes: x * x == x
        var = torch.einsum("pntr,otr->pnto", x2, g.detach() ** 2)
        i = i + (cfg.read_noise_rel * v) * torch.sqrt(var) * torch.randn(
            i.shape, generator=gen, dtype=i.dtype)
    i = _adc(i, cfg)
    # tiles' digitised differential columns, added digitally, planes weighted by 2^b
    y = torch.einsum("p,pno->no", weights, (i[..., :n_out] - i[..., n_out:]).sum(2))
    y = y / (v * k)
    if cfg.drift_compensation:
        ref = _drift((cfg.reference_rows,), cfg, gen, xs.dtype)
        if ref is not None:
            y = y / ref.mean()
    return y if b is None else y + b


def analog_head_forward(head: ProjectionHead, x: torch.Tensor, cfg: AnalogDeviceConfig,
                        x_max, gen: torch.Generator | None = None) -> torch.Tensor:
    """:meth:`ProjectionHead.forward` with every ``nn.Linear`` analogue (``x_max``: one
    input clip per linear layer); standardisation, bias, GELU, normalisation digital."""
    x_max = [x_max] if np.isscalar(x_max) else list(x_max)
    h = analog_linear((x - head.mean) / head.std, head.fc1.weight, head.fc1.bias, cfg,
                      x_max[0], gen)
    if head.kind == "fc_gelu":
        h = F.gelu(h)
    elif head.kind == "mlp":
        h = analog_linear(F.gelu(h), head.fc2.weight, head.fc2.bias, cfg, x_max[1], gen)
    return F.normalize(h, dim=1) if head.normalize else h


def _ranges(head: ProjectionHead, x: torch.Tensor, cfg: AnalogDeviceConfig) -> list:
    with torch.no_grad():
        xs = (x - head.mean) / head.std
        out = [input_range(xs, cfg.input_quantile)]
        if head.kind == "mlp":
            out.append(input_range(F.gelu(head.fc1(xs)), cfg.input_quantile))
    return out


def train_heads_analog(cfg: MethodConfig, device: AnalogDeviceConfig,
                       image_values: np.ndarray, audio_values: np.ndarray, train_pairs,
                       val_pairs, image_labels, audio_labels, *, seed: int = 0,
                       noise: torch.Generator | None = None, init: DualEncoder | None = None,
                       epochs: int | None = None, progress: bool = False) -> TrainResult:
    """Hardware-aware training: :func:`projections.train.train_heads`'s recipe (same
    loss, initialisation and batch order from ``seed``, validation checkpoint selection)
    with each head's forward :func:`analog_head_forward` under ``device``, fresh noise per
    batch drawn from ``noise`` (default: the ``hwa_train`` stream of chip ``seed``). The
    returned model's ``input_ranges`` attribute holds each head's input clips (fixed on
    the training rows before the first epoch).

    ``init``: start from these (digitally trained) heads instead of a fresh initialisation
    and fine-tune them with the device in the loop, as hardware-aware training usually
    does; ``epochs`` overrides ``cfg.epochs`` (e.g. a short fine-tune)."""
    gen_noise = noise if noise is not None else noise_generator(seed, "hwa_train")
    ranges = {}

    def prepare(model, xi_train, xa_train):
        ranges["image"] = _ranges(model.image, xi_train, device)
        ranges["audio"] = _ranges(model.audio, xa_train, device)

    def forward(model, xi, xa):
        return (analog_head_forward(model.image, xi, device, ranges["image"], gen_noise),
                analog_head_forward(model.audio, xa, device, ranges["audio"], gen_noise))

    result = train_heads(cfg, image_values, audio_values, train_pairs, val_pairs,
                         image_labels, audio_labels, seed=seed, progress=progress,
                         forward=forward, init=init, epochs=epochs, prepare=prepare)
    result.model.input_ranges = ranges
    return result
