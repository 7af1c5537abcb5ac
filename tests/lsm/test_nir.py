"""NIR export and import: exact round trips through snnTorch, programming onto a macro,
clear errors for what the macro cannot hold, and NeuroBench's metrics."""
from __future__ import annotations

import dataclasses
import json

import nir
import numpy as np
import pytest
import torch

from lsm import Reservoir, preset
from lsm.nir import (UnsupportedGraphError, first_divergence, from_nir, program_network,
                     to_nir)
from rram_lsm.app.exchange import (neurobench_metrics, run_snntorch, sample_rasters,
                                   snntorch_mirror)
from sim import SimMacro, load_profile
from sim.profile import AdcConfig


def _ideal(noise: bool = False):
    prof = load_profile(None)
    prof = prof if noise else prof.noise_free()
    return dataclasses.replace(prof, adc=AdcConfig(bits=None))


@pytest.fixture(scope="module")
def nmnist_reservoir():
    chip = SimMacro(0, _ideal())
    return Reservoir.setup(chip, preset("nmnist"))


def _rasters(n, t, n_in, p, seed):
    return (np.random.default_rng(seed).random((n, t, n_in)) < p).astype(np.uint8)


def test_export_reads_back_type_checked_and_snntorch_reproduces_it_on_real_data(
        nmnist_reservoir, shared_data_dir, tmp_path):
    """100 real N-MNIST rasters: snnTorch's import of our file gives our spikes exactly on
    every neuron of every sample in float64; float32 agreement is stated."""
    res = nmnist_reservoir
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(*res.weights(), res.spec))
    graph = nir.read(path, type_check=True)
    rasters, _, synthetic = sample_rasters("nmnist", shared_data_dir, 100)
    assert not synthetic
    ours = res.run(rasters)
    theirs = run_snntorch(snntorch_mirror(graph), rasters)
    assert first_divergence(ours, theirs) is None
    assert ours.mean() > 0.01  # the reservoir is active: equality is not trivial
    f32 = run_snntorch(snntorch_mirror(graph, torch.float32), rasters, torch.float32)
    assert np.mean(f32.sum(1) == ours.sum(1)) > 0.9  # float32 differs only near threshold
    # our own importer reads the file back to the same network
    np.testing.assert_array_equal(from_nir(graph).run(rasters), ours)


def test_the_direct_two_node_cycle_is_read_by_our_importer(nmnist_reservoir):
    res = nmnist_reservoir
    x = _rasters(8, 50, 256, 0.08, 1)
    direct = to_nir(*res.weights(), res.spec, recurrence="direct")
    assert ("w_rec", "lif") in direct.edges and "rec" not in direct.nodes
    np.testing.assert_array_equal(from_nir(direct).run(x), res.run(x))


def test_parameter_mapping_of_the_export():
    spec = preset("nmnist").spec(1.0)
    g = to_nir(np.ones((256, 200)), np.zeros((200, 200)), spec, dt=1e-3)
    lif = g.nodes["lif"]
    np.testing.assert_allclose(lif.tau, 1e-3 / (1 - 0.9))
    np.testing.assert_allclose(lif.r, 1 / (1 - 0.9))
    assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0)
    assert np.all(lif.v_threshold == 5.0)
    assert isinstance(to_nir(np.ones((256, 200)), np.zeros((200, 200)),
                             dataclasses.replace(spec, decay=1.0)).nodes["lif"], nir.IF)
    with pytest.raises(UnsupportedGraphError, match="reset"):
        to_nir(np.ones((256, 200)), np.zeros((200, 200)),
               dataclasses.replace(spec, reset="subtract"))


def _snntorch_rnn(n_in=64, n=40, seed=0):
    import snntorch as snn

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(n_in, n, bias=False)
            self.lif = snn.RLeaky(beta=torch.tensor(0.9), threshold=1.0, linear_features=n,
                                  reset_mechanism="zero", init_hidden=True, reset_delay=False)

        def forward(self, x):
            return self.lif(self.fc(x))

    net = Net().double()
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    for m in net.modules():
        if isinstance(m, snn.SpikingNeuron):
            m.spike_grad = lambda u: (u > 0).to(u.dtype)
    return net


def _run_native(net, x):
    out = []
    for b in range(x.shape[0]):
        net.lif.reset_hidden()
        with torch.no_grad():
            out.append(np.stack([net(torch.tensor(x[b, t], dtype=torch.float64)).numpy()
                                 for t in range(x.shape[1])]))
    return np.stack(out).astype(np.uint8)


def test_a_snntorch_recurrent_network_runs_on_the_macro():
    """snnTorch's own RLeaky (recurrent weights with a bias) through snnTorch's exporter:
    our importer runs it exactly as snnTorch does; programmed on a noise-free virtual macro
    it gives exactly snnTorch's spikes for the weights the chip holds, and nearly the
    original's."""
    from snntorch.export_nir import export_to_nir

    net = _snntorch_rnn()
    graph = export_to_nir(net, torch.zeros(64, dtype=torch.float64))
    x = _rasters(20, 60, 64, 0.1, 1)
    native = _run_native(net, x)
    imported = from_nir(graph)
    assert np.any(imported.bias != 0)  # RLeaky's recurrent Linear has a bias
    np.testing.assert_array_equal(imported.run(x), native)
    mapped = program_network(imported, SimMacro(0, _ideal()))
    assert mapped.bias_row and mapped.spec.n_inputs == 65
    on_chip = mapped.run(x)
    held = run_snntorch(snntorch_mirror(mapped.to_nir()), x)
    assert first_divergence(held, on_chip) is None
    np.testing.assert_array_equal(mapped.run(x, path="generic"), on_chip)
    p = mapped.programming
    assert p["weight_rms_error"] < 0.1 * p["weight_rms"]
    assert np.mean(on_chip == native) > 0.95


def test_unsupported_graphs_name_the_node():
    n = 4
    lif = dict(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
               v_threshold=np.ones(n))
    base = {"input": nir.Input(np.array([3])), "w": nir.Linear(np.ones((n, 3))),
            "output": nir.Output(np.array([n]))}
    edges = [("input", "w"), ("w", "neurons"), ("neurons", "output")]

    def graph(neurons):
        return nir.NIRGraph(nodes={**base, "neurons": neurons}, edges=edges)

    with pytest.raises(UnsupportedGraphError, match="'neurons' is a CubaLIF"):
        from_nir(graph(nir.CubaLIF(tau_syn=np.full(n, 1e-3), tau_mem=np.full(n, 1e-3),
                                   r=np.ones(n), v_leak=np.zeros(n),
                                   v_threshold=np.ones(n))))
    with pytest.raises(UnsupportedGraphError, match="'neurons': per-neuron thresholds"):
        from_nir(graph(nir.LIF(**{**lif, "v_threshold": np.arange(1.0, n + 1)})))
    with pytest.raises(UnsupportedGraphError, match="v_leak"):
        from_nir(graph(nir.LIF(**{**lif, "v_leak": np.ones(n)})))
    with pytest.raises(UnsupportedGraphError, match="decay"):
        from_nir(graph(nir.LIF(**lif)), dt=1.0)
    ok = from_nir(graph(nir.LIF(**lif)))
    assert ok.decay == pytest.approx(0.9) and ok.n_inputs == 3


def test_first_divergence_names_sample_step_and_neurons():
    a = np.zeros((3, 5, 4), np.uint8)
    b = a.copy()
    assert first_divergence(a, b) is None
    b[1, 3, [0, 2]] = 1
    b[2, 0, 1] = 1
    assert first_divergence(a, b) == {"sample": 1, "step": 3, "neurons": [0, 2]}


def test_neurobench_counts_match_our_operation_count(nmnist_reservoir):
    res = nmnist_reservoir
    x = _rasters(16, 50, 256, 0.08, 3)
    metrics = neurobench_metrics(to_nir(*res.weights(), res.spec), x)
    spikes = res.run(x)
    w_in, w_rec = res.weights()
    # every input event drives its row and every spike its recurrent row: the crossbar adds
    # all n columns (our energy model), NeuroBench counts the non-zero weights among them
    rows = x.sum(axis=1) @ (w_in != 0).sum(1) + spikes.sum(axis=1) @ (w_rec != 0).sum(1)
    acs = metrics["SynapticOperations"]["Effective_ACs"]
    assert acs == pytest.approx(rows.mean(), rel=1e-9)
    all_columns = np.mean(x.sum(axis=(1, 2)) + spikes.sum(axis=(1, 2))) * res.spec.n_neurons
    assert acs / all_columns == pytest.approx(1 - metrics["ConnectionSparsity"], abs=2e-3)
    assert metrics["SynapticOperations"]["Effective_MACs"] == 0  # binary inputs only
    assert metrics["ParameterCount"] == 256 * 200 + 200 * 200  # the identity is not counted
    assert metrics["ActivationSparsity"] == pytest.approx(1 - spikes.mean(), abs=1e-3)


def test_nir_cli_export_then_run(tmp_path, monkeypatch):
    from rram_lsm.app.cli import main

    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)
    net, exp, run = tmp_path / "net.nir", tmp_path / "e.json", tmp_path / "r.json"
    assert main(["nir", "export", "--dataset", "fsdd", "--out", str(net), "--ideal-adc",
                 "--no-noise", "--reference-samples", "4", "--json", str(exp)]) == 0
    ref = np.load(str(net) + ".spikes.npz")
    assert ref["spikes"].shape == (4, 129, 200)
    assert main(["nir", "run", str(net), "--dataset", "fsdd", "--samples", "8",
                 "--ideal-adc", "--json", str(run)]) == 0
    out = json.loads(run.read_text())
    assert out["software_equals_snntorch"] is True
    assert out["noise_free"]["equals_snntorch_on_held_weights"] is True
    assert 0 < out["noise_free"]["spike_agreement_with_source"] <= 1
    assert "SynapticOperations" in out["neurobench"]


@pytest.mark.parametrize("recurrence", ["split", "direct"])
def test_norse_reproduces_the_export_with_the_gain_in_the_weights(nmnist_reservoir,
                                                                   shared_data_dir,
                                                                   recurrence):
    """Norse 1.1's importer takes r = 1 (it ignores r), so the unit input gain goes into the
    weights; it handles the two-node cycle too."""
    norse = pytest.importorskip("norse.torch")
    res = nmnist_reservoir
    graph = to_nir(*res.weights(), res.spec, recurrence=recurrence, input_gain="weights")
    module = norse.from_nir(graph, dt=1e-4, ignore_warnings=True)
    rasters, _, _ = sample_rasters("nmnist", shared_data_dir, 100)
    x = torch.as_tensor(rasters, dtype=torch.float32)
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            spikes, state = module(x[:, t], state)
            out.append(spikes.numpy())
    theirs = np.stack(out, axis=1).astype(np.uint8)
    ours = res.run(rasters)
    assert np.mean(theirs.sum(1) == ours.sum(1)) > 0.99  # Norse runs in float32
    assert np.mean(theirs == ours) > 0.999


def test_a_missing_or_foreign_file_is_a_typed_error(tmp_path):
    from lsm.nir import read_graph
    from rram_lsm.errors import DataNotFoundError, EventFileError

    with pytest.raises(DataNotFoundError, match="nir export"):
        read_graph(tmp_path / "none.nir")
    junk = tmp_path / "junk.nir"
    junk.write_text("not hdf5")
    with pytest.raises(EventFileError, match="not a readable NIR graph"):
        from_nir(junk)
