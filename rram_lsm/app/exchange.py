"""NIR in practice: export a chip's reservoir, run other simulators' networks on a macro,
compare with snnTorch, and measure with NeuroBench.

The format work is ``lsm.nir``; this module adds what needs a chip session, the data, or
the other simulators (snnTorch, NeuroBench), which is why it lives in the app layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lsm import preset
from lsm.nir import (SNNTORCH_DT, first_divergence, from_nir, program_network, read_graph,
                     reference_spikes, to_nir)

from ..errors import ConfigError
from .features import open_data
from .session import ChipSession

__all__ = ["export_reservoir", "snntorch_mirror", "run_snntorch", "run_graph",
           "neurobench_metrics", "sample_rasters"]


def sample_rasters(name: str, data_dir=None, n: int = 100, seed: int = 0):
    """``n`` rasters of dataset ``name`` (spread over classes, seeded), their labels, and
    whether the data is synthetic."""
    from .experiments.pipeline import pick_samples, subset_rasters

    ds = open_data(name, data_dir, progress=False)
    idx = pick_samples(ds.labels, n, seed)
    return subset_rasters(ds, idx), np.asarray(ds.labels)[idx], bool(ds.synthetic)


def export_reservoir(session: ChipSession, name: str, out, *, dt: float = SNNTORCH_DT,
                     recurrence: str = "split", reference_samples: int = 0,
                     data_dir=None) -> dict:
    """Write the reservoir of dataset ``name`` on ``session`` as a NIR file ``out`` (weights
    read back from the chip). With ``reference_samples``, ``<out>.spikes.npz`` holds that
    many rasters and the chip's spikes for them. Returns what was written."""
    import nir

    res = session.reservoir(name, preset(name))
    info = res.macro.info()
    w_in, w_rec = res.weights()
    graph = to_nir(w_in, w_rec, res.spec, dt=dt, recurrence=recurrence)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nir.write(out, graph)
    nir.read(out)  # written files are readable by the reference reader
    record = {"path": str(out), "dataset": name, "dt_s": dt, "recurrence": recurrence,
              "n_inputs": res.spec.n_inputs, "n_neurons": res.spec.n_neurons,
              "decay": res.spec.decay, "threshold": res.spec.threshold,
              "adc_bits": info.adc_bits, "placement": session.allocator.get(name).to_dict(),
              "exact": info.adc_bits is None,
              "note": ("NIR carries no ADC: with a finite ADC the chip's spikes differ from "
                       "any importer's") if info.adc_bits is not None else ""}
    if reference_samples:
        rasters, _, synthetic = sample_rasters(name, data_dir, reference_samples)
        spikes = res.run(rasters)
        ref = out.with_suffix(out.suffix + ".spikes.npz")
        reference_spikes(rasters, spikes, ref)
        record.update({"reference": str(ref), "reference_samples": int(len(rasters)),
                       "synthetic": synthetic})
    return record


def snntorch_mirror(graph, dtype=None):
    """snnTorch's import of ``graph`` (``snntorch.import_nir.import_from_nir``), in
    ``dtype`` (float64 by default).

    snnTorch's surrogate spike function returns float32 whatever its input; for a float64
    run it is replaced by a dtype-preserving Heaviside with the same forward values."""
    import contextlib
    import io

    import snntorch as snn
    import torch
    from snntorch.import_nir import import_from_nir

    dtype = torch.float64 if dtype is None else dtype
    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints progress
        module = import_from_nir(graph)
    module = module.to(dtype)
    if dtype != torch.float32:
        for m in module.modules():
            if isinstance(m, snn.SpikingNeuron):
                m.spike_grad = _heaviside
    return module


def _heaviside(u):
    return (u > 0).to(u.dtype)


def run_snntorch(module, rasters, dtype=None) -> np.ndarray:
    """Spikes uint8 (batch, T, n) of the imported module on binary ``rasters``, carrying the
    interpreter's state (recurrent edges use the previous step's output) across steps."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    x = torch.as_tensor(np.asarray(rasters), dtype=dtype)
    state, out = None, []
    with torch.no_grad():
        for m in module.modules():
            if hasattr(m, "reset_hidden"):
                m.reset_hidden()
        for t in range(x.shape[1]):
            spikes, state = module(x[:, t], state)
            out.append(spikes.numpy())
    return np.stack(out, axis=1).astype(np.uint8)


def run_graph(path, name: str, *, backend: str = "sim", chip_seed: int = 0, profile=None,
              data_dir=None, samples: int = 100, dt: float = SNNTORCH_DT,
              tolerance_us: float = 0.05, neurobench: bool = False) -> dict:
    """Run the NIR graph at ``path`` on a macro (programmed by write-verify onto a tile the
    session places) and in snnTorch, on ``samples`` rasters of dataset ``name``; with noise
    off and with the profile's noise. Returns programming error and spike agreement, and
    with ``neurobench`` NeuroBench's metrics on the same rasters beside our operation
    count (every input event and every spike drives one row of n neurons)."""
    graph = read_graph(path)
    net = from_nir(graph, dt=dt)
    rasters, _, synthetic = sample_rasters(name, data_dir, samples)
    if rasters.shape[2] != net.n_inputs:
        raise ConfigError(f"{path} takes {net.n_inputs} inputs but {name} rasters have "
                          f"{rasters.shape[2]}: export it from that dataset's reservoir")
    source = run_snntorch(snntorch_mirror(graph), rasters)
    out = {"graph": str(path), "dataset": name, "synthetic": synthetic,
           "samples": int(len(rasters)), "n_inputs": net.n_inputs,
           "n_neurons": net.n_neurons, "decay": net.decay, "threshold": net.threshold,
           "dt_s": dt, "source": net.source, "backend": backend, "chip_seed": chip_seed,
           "software_equals_snntorch": bool(np.array_equal(net.run(rasters), source))}
    for noise in (False, True):
        with ChipSession(backend, chip_seed=chip_seed, profile=profile, noise=noise) as chip:
            shape = (net.n_inputs + int(np.any(net.bias != 0)) + net.n_neurons,
                     2 * net.n_neurons)
            tile = chip.allocator.place("nir", shape)
            macro = chip.macro(tile.macro)
            mapped = program_network(net, macro, (tile.region.row0, tile.region.col0),
                                     tolerance_us=tolerance_us)
            spikes = mapped.run(rasters)
            held = run_snntorch(snntorch_mirror(mapped.to_nir(dt=dt)), rasters)
            info = macro.info()
        key = "noisy" if noise else "noise_free"
        out[key] = {
            "programming": mapped.programming,
            "spike_agreement_with_source": float(np.mean(spikes == source)),
            "count_agreement_with_source": float(np.mean(spikes.sum(1) == source.sum(1))),
            "firing_rate": float(spikes.mean()), "source_firing_rate": float(source.mean()),
            "equals_snntorch_on_held_weights": bool(np.array_equal(spikes, held)),
            "first_divergence_from_held": first_divergence(held, spikes),
            "adc_bits": info.adc_bits, "tile": tile.to_dict(),
        }
    if neurobench:
        metrics = neurobench_metrics(graph, rasters)
        ours = float(np.mean(rasters.sum(axis=(1, 2)) + source.sum(axis=(1, 2)))
                     * net.n_neurons)
        metrics["our_row_additions_x_neurons"] = ours
        metrics["effective_acs_ratio_to_ours"] = (
            metrics["SynapticOperations"]["Effective_ACs"] / ours if ours else None)
        out["neurobench"] = metrics
    return out


def neurobench_metrics(graph, rasters) -> dict:
    """NeuroBench 2.3's own metric classes on the snnTorch mirror of ``graph``: footprint,
    connection sparsity, activation sparsity and synaptic operations (effective MACs and
    ACs, dense)."""
    import torch
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel

    # float64, so that the counted spikes are the chip's exactly (float32 flips a few
    # near-threshold spikes)
    module = _fuse_identities(snntorch_mirror(graph, torch.float64))
    wrapper = _time_loop(module)
    model = SNNTorchModel(wrapper, custom_forward=True)
    x = torch.as_tensor(np.asarray(rasters), dtype=torch.float64)
    y = torch.zeros(len(x), dtype=torch.long)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=len(x))
    bench = Benchmark(model, loader, [], [], [[Footprint, ConnectionSparsity, ParameterCount],
                                             [ActivationSparsity, SynapticOperations]])
    results = bench.run(quiet=True)
    return {k: (dict(v) if isinstance(v, dict) else float(v)) for k, v in results.items()}


def _fuse_identities(module):
    """Replace identity Linears (the ``rec`` node of a split recurrence) by ``Identity``:
    the same numbers, and NeuroBench then counts no parameters or operations for them."""
    import torch

    for name, child in list(module.named_children()):
        w = getattr(child, "weight", None)
        if (isinstance(child, torch.nn.Linear) and w.shape[0] == w.shape[1]
                and torch.equal(w, torch.eye(w.shape[0], dtype=w.dtype))
                and (child.bias is None or not torch.any(child.bias))):
            setattr(module, name, torch.nn.Identity())
        else:
            _fuse_identities(child)
    return module


def _time_loop(module):
    import torch

    class TimeLoop(torch.nn.Module):
        """(batch, T, inputs) -> spikes (T, batch, n), the interpreter's state carried."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, data):
            state, out = None, []
            for t in range(data.shape[1]):
                spikes, state = self.inner(data[:, t], state)
                out.append(spikes)
            return torch.stack(out)

    return TimeLoop(module)

