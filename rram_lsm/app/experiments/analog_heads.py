"""Projection heads on the macro: program, age, evaluate (``rram-lsm zeroshot --heads
analogue``). See docs/analog-heads.md.

Each ``nn.Linear`` of a head is cut into row tiles (``rram_lsm.mapping.plan_tiles``) of a
:class:`~rram_lsm.app.session.ChipSession`'s macros and written by write-verify as
differential pairs (``projections.analog`` gives the scheme); inputs are applied as
bit-serial planes, every plane one ``mvm`` per tile through the tile's ADC, planes and row
tiles added digitally; bias, GELU and L2 normalisation are digital. Three kinds of heads
are compared on the same split and training seed: ``digital`` (float, the baseline),
``plain`` (the digital weights programmed as they are) and ``hw_aware`` (trained with the
device in the forward pass, noise from the chip's ``hwa_train`` stream), each analogue one
on every chip seed, read at each age after programming.
"""
from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from rram_lsm.errors import ConfigError, SafetyLimitError
from rram_lsm.macro import form_to_sparsity
from rram_lsm.mapping import TileMap, plan_tiles, tiled_mvm

__all__ = ["AGES_S", "AGE_LABELS", "device_config", "MappedLinear", "program_linear",
           "MappedHeads", "map_heads",
           "run_analog_study", "plot_accuracy_vs_age"]

AGES_S = (1.0, 3600.0, 86400.0, 2.6e6, 3.15e7, 3.15e8)
"""Default read-out ages after programming (s): 1 s, 1 h, 1 day, 1 month, 1 y, 10 y."""
AGE_LABELS = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 d", 2.6e6: "1 mo", 3.15e7: "1 y",
              3.15e8: "10 y"}
"""Axis labels of :data:`AGES_S`."""

TOLERANCE_US = 0.05
"""Write-verify tolerance (µS) of the heads' cells (as ``lsm.nir.program_network``)."""
MAX_PULSES = 200
"""Write-verify pulse budget per cell."""


def device_config(profile=None, *, noise: bool = True, input_bits: int | None = 6,
                  tile_rows: int = 512, age_s: float = 1.0,
                  drift_compensation: bool = False):
    """:class:`projections.analog.AnalogDeviceConfig` of the simulator's ``profile``
    (preset name, path or DeviceProfile). The programming error of write-verify is
    modelled as ``sqrt(tol^2 / 3 + (read_noise_rel * g_max / 2)^2)``: uniform within the
    tolerance about a verify read that is itself noisy."""
    from projections.analog import AnalogDeviceConfig
    from sim import load_profile

    p = load_profile(profile)
    if not noise:
        p = p.noise_free()
    pc, rel = p.program, p.read.noise_rel
    prog = math.sqrt(TOLERANCE_US ** 2 / 3 + (rel * pc.g_max_us / 2) ** 2) if noise else 0.0
    return AnalogDeviceConfig(
        g_min_us=pc.g_min_us, g_max_us=pc.g_max_us, read_voltage_v=p.array.read_voltage_v,
        prog_noise_us=prog, read_noise_rel=rel, adc_bits=p.adc.bits,
        adc_full_scale_ua=p.adc.full_scale_ua, input_bits=input_bits, tile_rows=tile_rows,
        drift_nu_mean=p.drift.nu_mean, drift_nu_std=p.drift.nu_std,
        drift_t0_s=p.drift.t0_s, age_s=age_s, drift_compensation=drift_compensation)


def _write_verify(macro, region, target, device, tolerance_us=TOLERANCE_US):
    """Program ``target`` (µS) into ``region`` by write-verify; return (result, failed)."""
    try:
        form_to_sparsity(macro, region, 0.0)
    except SafetyLimitError:
        pass  # cells that cannot form show up in the programming error
    res = macro.program(region, target, tolerance_us, MAX_PULSES)
    got, bad = np.asarray(res.conductance_us), ~np.asarray(res.converged)
    # defect-aware second pass (as lsm.nir.program_network): re-aim the partner of a
    # failed cell so the pair's difference still reads its weight
    pos_bad, neg_bad = bad[:, 0::2] & ~bad[:, 1::2], bad[:, 1::2] & ~bad[:, 0::2]
    diff = target[:, 0::2] - target[:, 1::2]
    re = target.copy()
    re[:, 1::2] = np.where(pos_bad, got[:, 0::2] - diff, target[:, 1::2])
    re[:, 0::2] = np.where(neg_bad, got[:, 1::2] + diff, target[:, 0::2])
    re = np.clip(re, device.g_min_us, device.g_max_us)
    if np.any(re != target):
        res = macro.program(region, np.where(bad, np.clip(got, 0, device.g_max_us), re),
                            tolerance_us, MAX_PULSES)
    return res, bad


class MappedLinear:
    """One ``nn.Linear`` (``weight`` in x out, ``bias``) on macro tiles: made by
    :func:`program_linear`, applied by :meth:`apply` (bit-serial planes, one ``mvm`` per
    plane and tile through its ADC, planes and row tiles added digitally, bias digital)."""

    def __init__(self, tilemap: TileMap, k_us: float, bias, x_max: float, device,
                 macros: dict, programming: dict):
        self.tilemap, self.k_us, self.x_max, self.device = tilemap, k_us, x_max, device
        self.bias = np.zeros(tilemap.n_neurons) if bias is None else np.asarray(bias)
        self.macros, self.programming = macros, programming

    def apply(self, xs: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """``xs @ weight + bias`` read from the macro (float64 (n, out)); ``scale``
        divides the analogue part (drift compensation)."""
        import torch

        from projections.analog import input_planes

        # ideal-input devices still feed binary rows: 24-bit planes, float32 resolution
        planes = input_planes(torch.as_tensor(np.asarray(xs, np.float64)),
                              self.device.input_bits or 24, self.x_max)
        # every plane of every sample in one batch: one mvm per tile, not one per plane
        stacked = np.concatenate([p.numpy().astype(np.uint8) for p, _ in planes])
        weights = np.repeat([w for _, w in planes], len(xs))[:, None]
        acc = (weights * tiled_mvm(self.macros, self.tilemap, stacked)).reshape(
            len(planes), len(xs), -1).sum(0)
        return acc / (self.device.read_voltage_v * self.k_us) / scale + self.bias


def program_linear(macro_for, allocator, name: str, weight, bias, device,
                   x_max: float, *, tolerance_us: float = TOLERANCE_US) -> MappedLinear:
    """Place ``weight`` (in x out) as differential pairs on tiles of at most
    ``device.tile_rows`` rows (``rram_lsm.mapping.plan_tiles``) and write it by
    write-verify to ``tolerance_us`` per cell; ``macro_for(index)`` opens macro
    ``index`` of the chip."""
    w = np.asarray(weight, np.float64)
    w_max = float(np.abs(w).max()) if w.size else 0.0
    if w_max == 0:
        raise ConfigError(f"{name}: every weight is zero")
    d = device
    k = (d.g_max_us - d.g_min_us) / w_max
    tm = plan_tiles(name, w.shape[0], w.shape[1], allocator, tile_rows=d.tile_rows)
    err, failed = [], 0
    for p in tm.parts:
        part = w[p.row0:p.row0 + p.n_rows, p.pair0:p.pair0 + p.n_pairs]
        target = np.empty((p.n_rows, 2 * p.n_pairs))
        target[:, 0::2] = d.g_min_us + k * np.maximum(part, 0)
        target[:, 1::2] = d.g_min_us + k * np.maximum(-part, 0)
        res, bad = _write_verify(macro_for(p.placement.macro), p.placement.region, target, d,
                                 tolerance_us)
        got = np.asarray(res.conductance_us)
        err.append(((got[:, 0::2] - got[:, 1::2]) / k - part).ravel())
        failed += int(bad.sum())
    err = np.concatenate(err)
    prog = {"tiles": len(tm.parts), "placement": [p.placement.name for p in tm.parts],
            "macros": sorted(tm.macros), "failed_cells_first_pass": failed,
            "weight_rms_error": float(np.sqrt(np.mean(err ** 2))),
            "weight_rms": float(np.sqrt(np.mean(w ** 2))), "us_per_weight": k}
    return MappedLinear(tm, k, bias, float(x_max), d, {i: macro_for(i) for i in tm.macros},
                        prog)


class MappedHeads:
    """The image and audio heads of a trained model, programmed onto a session's macros;
    :meth:`embed` runs them there (duck-types :class:`projections.train.TrainResult` for
    ``projections.protocol``'s scoring)."""

    def __init__(self, session, model, device, ranges, *, best_epoch=0, wall_s=0.0,
                 train_flops=0, prefix="head", tolerance_us: float = TOLERANCE_US):
        self.session, self.device = session, device
        self.best_epoch, self.wall_s, self.train_flops = best_epoch, wall_s, train_flops
        self.heads = {}
        for m in ("image", "audio"):
            head = getattr(model, m)
            layers = [head.fc1] + ([head.fc2] if head.kind == "mlp" else [])
            self.heads[m] = (head, [
                program_linear(session.macro, session.allocator, f"{prefix}/{m}/fc{j + 1}",
                               lin.weight.detach().double().numpy().T,
                               lin.bias.detach().double().numpy(), device, ranges[m][j],
                               tolerance_us=tolerance_us)
                for j, lin in enumerate(layers)])
        self.reference = self._program_reference(f"{prefix}/ref") \
            if device.drift_compensation else None

    def _program_reference(self, name):
        d = self.device
        tm = plan_tiles(name, d.reference_rows, 1, self.session.allocator)
        p = tm.parts[0]
        g_ref = d.g_min_us + 0.5 * (d.g_max_us - d.g_min_us)
        target = np.empty((p.n_rows, 2))
        target[:, 0], target[:, 1] = g_ref, d.g_min_us
        _write_verify(self.session.macro(p.placement.macro), p.placement.region, target, d)
        return tm, self._read_reference(tm)

    def _read_reference(self, tm) -> float:
        ones = np.ones((8, tm.n_rows), np.uint8)
        macros = {k: self.session.macro(k) for k in tm.macros}
        return float(tiled_mvm(macros, tm, ones).mean())

    @property
    def programming(self) -> dict:
        """Per layer: tiles, placement, first-pass failures, weight RMS error."""
        return {f"{m}/fc{j + 1}": lay.programming for m, (_, ls) in self.heads.items()
                for j, lay in enumerate(ls)}

    def tile_count(self) -> int:
        """Tiles the heads use (reference column included)."""
        n = sum(len(lay.tilemap.parts) for _, ls in self.heads.values() for lay in ls)
        return n + (1 if self.reference is not None else 0)

    def drift_scale(self) -> float:
        """The global drift factor now (reference column read / its read after
        programming); 1.0 without drift compensation."""
        if self.reference is None:
            return 1.0
        tm, fresh = self.reference
        return self._read_reference(tm) / fresh

    def embed(self, values: np.ndarray, modality: str) -> np.ndarray:
        """Embed raw features with the heads on the macro (float32 (n, dim))."""
        import torch
        import torch.nn.functional as F

        head, layers = self.heads[modality]
        scale = self.drift_scale()
        x = np.asarray(values, np.float64)
        h = layers[0].apply((x - head.mean.double().numpy()) / head.std.double().numpy(),
                            scale)
        if head.kind in ("fc_gelu", "mlp"):
            h = F.gelu(torch.as_tensor(h)).numpy()
        if head.kind == "mlp":
            h = layers[1].apply(h, scale)
        h = torch.as_tensor(h)
        if head.normalize:
            h = F.normalize(h, dim=1)
        return h.float().numpy()


def map_heads(session, model, device, ranges, **kw) -> MappedHeads:
    """Program ``model``'s heads onto ``session`` (see :class:`MappedHeads`)."""
    return MappedHeads(session, model, device, ranges, **kw)


def _digital_ranges(model, x_i, x_a, train_i, train_a, device) -> dict:
    from projections.analog import _ranges
    import torch

    return {"image": _ranges(model.image, torch.as_tensor(np.asarray(x_i, np.float32)[
                np.unique(train_i)]), device),
            "audio": _ranges(model.audio, torch.as_tensor(np.asarray(x_a, np.float32)[
                np.unique(train_a)]), device)}


def _metrics(split_result) -> dict:
    r = split_result.to_dict()
    out = {"seen_a2i_top1": r["seen_test"]["audio_to_image"]["top1"],
           "seen_i2a_top1": r["seen_test"]["image_to_audio"]["top1"],
           "unseen_a2i_top1": r["unseen"]["audio_to_image"]["top1"]}
    for k, v in r.get("fewshot", {}).items():
        out[f"fewshot{k}_a2i_top1"] = v["unseen"]["audio_to_image"]["top1"]
        out[f"fewshot{k}_i2a_top1"] = v["unseen"]["image_to_audio"]["top1"]
    return out


def run_analog_study(data, method, *, seen, unseen, seeds=(0,), chip_seeds=(0, 1, 2),
                     ages_s=AGES_S, shots=(5,), episodes=50, profile=None,
                     hw_aware=True, plain=True, input_bits=6, tile_rows=512,
                     drift_compensation=False, hwa_age_s=86400.0, hwa_epochs=20,
                     backend="sim", progress=False) -> dict:
    """Digital vs plain vs hardware-aware analogue heads on one split (module docstring).

    Hardware-aware heads start from the digital heads of the same seed and are fine-tuned
    for ``hwa_epochs`` epochs with the device (at age ``hwa_age_s``) in the forward pass
    (None: trained from scratch for the method's epochs). Few-shot prototypes are formed in the learned embedding (``fewshot_raw_weight`` 0,
    no whitening), so the few-shot numbers measure the heads. Returns a JSON-ready dict:
    ``runs`` (one row per seed, head kind, chip seed and age) and ``summary`` (mean/std
    per head kind and age over seeds x chip seeds)."""
    from tqdm.auto import tqdm

    from projections import train_heads
    from projections.analog import noise_generator, train_heads_analog
    from projections.protocol import _method, _prepare, _score, _select

    from ..session import ChipSession

    if not (hw_aware or plain):
        raise ConfigError("nothing to compare: enable plain and/or hw-aware analogue heads")
    if any(a < 0 for a in ages_s) or not ages_s:
        raise ConfigError(f"ages must be non-negative seconds, got {ages_s}")
    if backend.split(":")[0] == "serial" and max(ages_s) > 1.0:
        # a physical chip ages in real time; the simulator and the emulator age on request
        raise ConfigError("ageing a chip on a serial port takes real time: use --ages 1 "
                          "there, or age the heads on the sim or emulator backend")
    cfg = _method(method)
    if not cfg.trained:
        raise ConfigError(f"method {cfg.name!r} has no heads to map")
    # prototypes in the heads' own embedding, each query on its own: the numbers are the
    # heads', not the raw features' or the query set's
    # few-shot here reads the learned embedding only: no raw features of their own
    cfg = cfg.replace(fewshot_raw_weight=0.0, fewshot_whiten=None, fewshot_transductive=0,
                      fewshot_em_steps=0, fewshot_features=None, fewshot_transform=None)
    data = _select(data, cfg)
    ages_s = tuple(sorted(float(a) for a in ages_s))
    base_device = device_config(profile, input_bits=input_bits, tile_rows=tile_rows,
                                drift_compensation=drift_compensation)
    train_device = base_device.at_age(hwa_age_s)
    runs, programming = [], []
    kinds = (["plain"] if plain else []) + (["hw_aware"] if hw_aware else [])
    total = len(seeds) * (1 + len(chip_seeds) * len(kinds))
    bar = tqdm(total=total, desc="analogue heads", disable=not progress)
    for seed in seeds:
        plan = _prepare(data, seen, unseen, cfg, seed, 0.2)
        d, sp = plan.data, plan.sp
        train = sp.pairs("train", d.image_labels, d.audio_labels)
        val = sp.pairs("val", d.image_labels, d.audio_labels)
        digital = train_heads(cfg, plan.x_i, plan.x_a, train, val, d.image_labels,
                              d.audio_labels, seed=seed, progress=False)
        m = _metrics(_score(plan, [digital], shots, episodes, False))
        runs.append({"seed": seed, "heads": "digital", "chip_seed": None, "age_s": None, **m})
        bar.update(1)
        for chip_seed in chip_seeds:
            for kind in kinds:
                if kind == "plain":
                    tr = digital
                    ranges = _digital_ranges(tr.model, plan.x_i, plan.x_a, train[0], train[1],
                                             base_device)
                else:
                    gen = noise_generator(chip_seed, f"hwa_train/{seed}")
                    # the fine-tune runs its hwa_epochs in full: the default's early
                    # stop was chosen for the digital heads' training (selection round 8)
                    tr = train_heads_analog(
                        cfg.replace(patience=None), train_device, plan.x_i, plan.x_a, train,
                        val, d.image_labels, d.audio_labels, seed=seed, noise=gen,
                        progress=False,
                        init=None if hwa_epochs is None else digital.model,
                        epochs=hwa_epochs)
                    ranges = tr.model.input_ranges
                with ChipSession(backend, chip_seed=chip_seed, profile=profile) as session:
                    mapped = map_heads(session, tr.model, base_device, ranges,
                                       best_epoch=tr.best_epoch, wall_s=tr.wall_s,
                                       train_flops=tr.train_flops)
                    programming.append({"seed": seed, "chip_seed": chip_seed, "heads": kind,
                                        "tiles": mapped.tile_count(),
                                        "layers": mapped.programming,
                                        "chip": session.record()})
                    for age in ages_s:
                        session.age(age)
                        m = _metrics(_score(plan, [mapped], shots, episodes, False))
                        runs.append({"seed": seed, "heads": kind, "chip_seed": chip_seed,
                                     "age_s": age, "drift_scale": mapped.drift_scale(),
                                     "best_epoch": tr.best_epoch, **m})
                bar.update(1)
    bar.close()
    return {"method": cfg.name, "method_config": asdict(cfg), "seen": list(seen),
            "unseen": list(unseen), "seeds": list(seeds), "chip_seeds": list(chip_seeds),
            "ages_s": list(ages_s), "shots": list(shots), "episodes": episodes,
            "device": asdict(base_device), "hwa_train_age_s": hwa_age_s,
            "hwa_epochs": hwa_epochs,
            "runs": runs, "programming": programming, "summary": summarise(runs)}


def summarise(runs) -> dict:
    """Mean and std of every metric per head kind (and age) over seeds and chip seeds."""
    groups: dict = {}
    for r in runs:
        key = r["heads"] if r["age_s"] is None else f"{r['heads']}@{r['age_s']:g}"
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rows in groups.items():
        metrics = [k for k in rows[0] if k.endswith("_top1")]
        out[key] = {k: {"mean": float(np.mean([r[k] for r in rows])),
                        "std": float(np.std([r[k] for r in rows])), "n": len(rows)}
                    for k in metrics}
    return out


def plot_accuracy_vs_age(record: dict, path, metrics=("seen_a2i_top1",
                                                      "fewshot5_a2i_top1")) -> list:
    """Accuracy against age after programming, one panel per metric: digital heads as a
    line, plain and hardware-aware analogue heads as mean ± std over seeds x chips."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    s, ages = record["summary"], record["ages_s"]
    metrics = [m for m in metrics if m in s.get("digital", {})]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, met in zip(axes[0], metrics):
        dig = s["digital"][met]["mean"]
        ax.axhline(dig, color="k", lw=1.2, label="digital heads")
        ax.axhspan(dig - 0.02, dig, color="0.85", label="digital - 2 pt")
        for kind, colour in (("plain", "tab:orange"), ("hw_aware", "tab:blue")):
            keys = [f"{kind}@{a:g}" for a in ages]
            if keys[0] not in s:
                continue
            mu = np.array([s[k][met]["mean"] for k in keys])
            sd = np.array([s[k][met]["std"] for k in keys])
            ax.errorbar(ages, mu, yerr=sd, marker="o", capsize=3, color=colour,
                        label=f"analogue, {kind.replace('_', '-')}")
        ax.set_xscale("log")
        ax.set_xticks(ages)
        ax.set_xticklabels([AGE_LABELS.get(a, f"{a:g} s") for a in ages])
        ax.set_xlabel("age after programming")
        ax.set_ylabel(met.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"heads in RRAM: {record['method']}, seen {record['seen']} / unseen "
                 f"{record['unseen']}, {len(record['seeds'])} seed(s) x "
                 f"{len(record['chip_seeds'])} chip(s)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
