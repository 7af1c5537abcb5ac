"""Reservoirs to and from NIR, the Neuromorphic Intermediate Representation.

**Export** (:func:`to_nir`): a reservoir as the weights its chip holds now (read back, device
variation included) in a NIR graph ``input -> w_in -> lif -> w_rec -> rec -> lif``, plus
``lif -> output``. The discrete rule of ``rram_lsm.reservoir`` maps to NIR's continuous LIF
``tau dv/dt = (v_leak - v) + r I`` through a time step ``dt`` (forward Euler, the convention
of snnTorch, Norse and nirtorch):

* ``decay = 1 - dt / tau``  ->  ``tau = dt / (1 - decay)``
* input gain ``dt * r / tau = 1``  ->  ``r = tau / dt = 1 / (1 - decay)``
* ``v_leak = 0``, ``v_reset = 0`` (reset "zero"), ``v_threshold = threshold`` (spike when
  ``v > threshold``); ``decay == 1`` is exported as ``nir.IF`` with ``r = 1 / dt``.

The default ``dt`` is 1e-4 s because snnTorch's importer assumes it. The reset rules agree
exactly: our ``v = decay * v * (1 - s_prev) + drive`` multiplies the pre-reset membrane by
0, snnTorch and NIR multiply the post-reset membrane (0), and both feed the recurrent
weights the previous step's spikes.

Why the recurrent weights go through an identity node ``rec``: snnTorch 1.0's importer
rewrites every two-node ``LIF <-> Linear`` cycle into a sub-graph whose input enters the
recurrent Linear, not the LIF (``_create_rnn_subgraph``), so the input current is multiplied
by ``W_rec`` as well; a graph with the reservoir as a nested sub-graph does not import at
all. A three-node cycle is executed by nirtorch's generic interpreter, which uses the
previous step's output on the back edge: exactly our one-step synaptic delay. The identity
is exact in float64. ``recurrence="direct"`` writes the plain two-node cycle for importers
that handle it.

**Import** (:func:`from_nir`): a graph of one LIF or IF layer with Linear (or zero-bias
Affine) input weights and optional recurrent weights becomes a :class:`NirNetwork`;
:func:`program_network` forms a tile of a macro, programs the signed weights as differential
conductance pairs by write-verify through the macro interface (sim, emulator, serial) and
returns a :class:`MappedNetwork` that runs through the macro like any reservoir.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from rram_lsm.errors import ConfigError, SafetyLimitError, ShapeError
from rram_lsm.macro import RUN_RESERVOIR, Region, check_region, form_to_sparsity
from rram_lsm.reservoir import ReservoirSpec, check_rasters, run_reference

__all__ = ["read_graph", "SNNTORCH_DT", "NirNetwork", "MappedNetwork", "UnsupportedGraphError", "to_nir",
           "from_nir", "program_network", "reference_spikes", "first_divergence"]

SNNTORCH_DT = 1e-4
"""The time step (s) snnTorch's NIR importer assumes; the default of export and import."""


class UnsupportedGraphError(ConfigError):
    """A NIR graph uses a primitive or parameter the macro cannot hold; the message names
    the node and what is supported."""


@dataclass(frozen=True)
class NirNetwork:
    """One layer of LIF neurons, in the discrete form every backend here runs."""

    w_in: np.ndarray
    """float64 (n_inputs, n_neurons): input weights, input gain folded in."""
    w_rec: np.ndarray
    """float64 (n_neurons, n_neurons): recurrent weights (zeros for a feed-forward layer)."""
    bias: np.ndarray
    """float64 (n_neurons,): constant current every step (the Affine biases on the way in);
    on a macro it is one more input row that is always on."""
    decay: float
    """Membrane decay per step, ``1 - dt / tau`` (1.0 for IF)."""
    threshold: float
    """Spike threshold (spike when ``v > threshold``)."""
    dt: float
    """Time step (s) the continuous parameters were discretised with."""
    source: dict = field(default_factory=dict)
    """Node names and types of the graph it came from."""

    @property
    def n_inputs(self) -> int:
        """Input rows."""
        return int(self.w_in.shape[0])

    @property
    def n_neurons(self) -> int:
        """Neurons."""
        return int(self.w_in.shape[1])

    def run(self, rasters: np.ndarray) -> np.ndarray:
        """Spikes uint8 (batch, T, n) of binary ``rasters`` in float64, weights as given (the
        software reference of the network, no device)."""
        x = check_rasters(rasters, self.n_inputs)
        batch, n_steps, _ = x.shape
        v = np.zeros((batch, self.n_neurons))
        s = np.zeros((batch, self.n_neurons))
        out = np.zeros((batch, n_steps, self.n_neurons), np.uint8)
        for t in range(n_steps):
            v = self.decay * v * (1.0 - s) + (x[:, t] @ self.w_in + s @ self.w_rec + self.bias)
            s = (v > self.threshold).astype(np.float64)
            out[:, t] = s
        return out


def to_nir(w_in: np.ndarray, w_rec: np.ndarray, spec: ReservoirSpec, *,
           dt: float = SNNTORCH_DT, recurrence: str = "split", bias=None,
           input_gain: str = "r"):
    """A ``nir.NIRGraph`` of the reservoir with input weights ``w_in`` (n_inputs, n) and
    recurrent weights ``w_rec`` (n, n), in the units of ``spec`` (module docstring);
    ``bias`` (n,), when given, makes ``w_in`` an Affine.

    ``input_gain``: where the discrete rule's unit input gain goes. ``"r"`` (snnTorch's
    convention: its importer requires ``r dt / tau = 1``) sets ``r = tau / dt``; ``"weights"``
    (Norse's: its importer takes ``r = 1``) keeps ``r = 1`` and scales every weight by
    ``tau / dt``. Both are the same NIR dynamics.
    """
    import nir

    if spec.reset != "zero":
        raise UnsupportedGraphError(
            f"reset {spec.reset!r} has no NIR form: NIR's LIF resets to v_reset; use 'zero'")
    if spec.refractory_steps:
        raise UnsupportedGraphError("NIR has no refractory period: use refractory_steps=0")
    if recurrence not in ("split", "direct"):
        raise ConfigError(f"recurrence must be 'split' or 'direct', got {recurrence!r}")
    w_in = np.asarray(w_in, np.float64)
    w_rec = np.asarray(w_rec, np.float64)
    n = spec.n_neurons
    if bias is not None and np.shape(bias) != (n,):
        raise ShapeError(f"bias must have shape ({n},), got {np.shape(bias)}")
    if w_in.shape != (spec.n_inputs, n) or w_rec.shape != (n, n):
        raise ShapeError(f"weights must be ({spec.n_inputs}, {n}) and ({n}, {n}), got "
                         f"{w_in.shape} and {w_rec.shape}")
    if input_gain not in ("r", "weights"):
        raise ConfigError(f"input_gain must be 'r' or 'weights', got {input_gain!r}")
    ones = np.ones(n)
    if input_gain == "weights":
        scale = 1.0 / dt if spec.decay == 1.0 else 1.0 / (1.0 - spec.decay)
        w_in, w_rec = w_in * scale, w_rec * scale
        bias = None if bias is None else np.asarray(bias, np.float64) * scale
    r_of = (lambda r: ones) if input_gain == "weights" else (lambda r: ones * r)
    if spec.decay == 1.0:
        neuron = nir.IF(r=r_of(1.0 / dt), v_threshold=ones * spec.threshold,
                        v_reset=0.0 * ones)
    else:
        tau = dt / (1.0 - spec.decay)
        neuron = nir.LIF(tau=ones * tau, r=r_of(tau / dt), v_leak=0.0 * ones,
                         v_threshold=ones * spec.threshold, v_reset=0.0 * ones)
    nodes = {"input": nir.Input(input_type=np.array([spec.n_inputs])),
             "w_in": (nir.Linear(weight=w_in.T.copy()) if bias is None else
                      nir.Affine(weight=w_in.T.copy(), bias=np.asarray(bias, np.float64))),
             "lif": neuron,
             "w_rec": nir.Linear(weight=w_rec.T.copy()),
             "output": nir.Output(output_type=np.array([n]))}
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("lif", "output")]
    if recurrence == "split":
        nodes["rec"] = nir.Linear(weight=np.eye(n))
        edges += [("w_rec", "rec"), ("rec", "lif")]
    else:
        edges += [("w_rec", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _uniform(node_name: str, what: str, values) -> float:
    arr = np.atleast_1d(np.asarray(values, np.float64))
    if arr.size == 0 or not np.all(arr == arr.flat[0]):
        raise UnsupportedGraphError(
            f"node {node_name!r}: per-neuron {what} ({np.unique(arr)[:4]}...) cannot be held "
            "by the macro's reservoir loop, which has one value per tile; supported: the "
            "same value for every neuron")
    return float(arr.flat[0])


def _weight(name: str, node) -> tuple[np.ndarray, np.ndarray]:
    """``(weight (out, in), bias (out,))`` of a Linear or Affine node."""
    import nir

    if not isinstance(node, (nir.Linear, nir.Affine)):
        raise UnsupportedGraphError(
            f"node {name!r} is a {type(node).__name__}; supported weight nodes: Linear, Affine")
    w = np.asarray(node.weight, np.float64)
    b = (np.asarray(node.bias, np.float64).reshape(-1) if isinstance(node, nir.Affine)
         else np.zeros(w.shape[0]))
    if w.ndim != 2 or b.shape != (w.shape[0],) or not (np.all(np.isfinite(w))
                                                      and np.all(np.isfinite(b))):
        raise UnsupportedGraphError(f"node {name!r}: weights must be a finite 2-D matrix "
                                    "with one bias per output")
    return w, b


def read_graph(path):
    """``nir.read(path)`` with typed errors: DataNotFoundError when the file is missing,
    EventFileError when it is not a NIR file."""
    import nir

    from rram_lsm.errors import DataNotFoundError, EventFileError

    if not os.path.isfile(path):
        raise DataNotFoundError(f"NIR file {path} does not exist; write one with "
                                "`rram-lsm nir export --dataset D --out FILE`")
    try:
        return nir.read(path)
    except Exception as exc:  # h5py and nir raise many kinds for a foreign or damaged file
        raise EventFileError(f"not a readable NIR graph ({type(exc).__name__}: {exc})",
                             path=path) from exc


def from_nir(graph, *, dt: float = SNNTORCH_DT) -> NirNetwork:
    """The :class:`NirNetwork` of a one-layer LIF / IF graph (module docstring).

    Accepts ``input -> W -> neurons -> output`` with an optional recurrent loop from the
    neurons back to themselves through one Linear, or a Linear followed by identity-like
    Linears (as :func:`to_nir` writes). Anything else raises UnsupportedGraphError naming
    the node: CubaLIF (a second state per neuron), per-neuron thresholds or time constants,
    delays, convolutions, several layers.
    """
    import nir

    if isinstance(graph, (str, bytes)) or hasattr(graph, "__fspath__"):
        graph = read_graph(graph)
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise UnsupportedGraphError(
                f"node {name!r} is a nested sub-graph; flatten it (one LIF layer is supported)")
        if not isinstance(node, (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.LIF,
                                 nir.IF)):
            raise UnsupportedGraphError(
                f"node {name!r} is a {type(node).__name__}; supported: Input, Linear, Affine, "
                "LIF, IF (CubaLIF needs a synaptic state per neuron; Delay, Conv and pooling "
                "are not supported)")
    neurons = [k for k, v in nodes.items() if isinstance(v, (nir.LIF, nir.IF))]
    if len(neurons) != 1:
        raise UnsupportedGraphError(
            f"the graph has {len(neurons)} neuron layers {neurons}; one is supported "
            "(several layers need a multi-tile mapping)")
    lif_name = neurons[0]
    lif = nodes[lif_name]
    preds = {k: [a for a, b in edges if b == k] for k in nodes}
    succs = {k: [b for a, b in edges if a == k] for k in nodes}
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise UnsupportedGraphError(f"the graph has {len(inputs)} Input nodes; one is supported")
    w_in = w_rec = None
    bias = 0.0
    for start in preds[lif_name]:
        if start == inputs[0]:
            raise UnsupportedGraphError(
                f"the Input feeds {lif_name!r} directly; put a Linear between them")
        chain, node = [], start
        # walk back from the neuron layer through weight nodes to the input or to itself
        while True:
            chain.append(node)
            if len(preds[node]) != 1:
                raise UnsupportedGraphError(f"node {node!r} has {len(preds[node])} inputs; "
                                            "a chain of weight nodes is supported")
            node = preds[node][0]
            if node in (inputs[0], lif_name):
                break
            if not isinstance(nodes[node], (nir.Linear, nir.Affine)):
                raise UnsupportedGraphError(f"node {node!r} between weights is a "
                                            f"{type(nodes[node]).__name__}")
        w, b = _weight(chain[0], nodes[chain[0]])
        for name in chain[1:]:  # from the neuron backwards: W0 (W1 x + b1) + b0 ...
            w_k, b_k = _weight(name, nodes[name])
            b = b + w @ b_k
            w = w @ w_k
        bias = bias + b
        if node == inputs[0]:
            if w_in is not None:
                raise UnsupportedGraphError("several input paths into the neuron layer")
            w_in = w
        else:
            if w_rec is not None:
                raise UnsupportedGraphError("several recurrent paths into the neuron layer")
            w_rec = w
    if w_in is None:
        raise UnsupportedGraphError(f"no path from the Input to {lif_name!r}")
    n = w_in.shape[0]
    w_rec = np.zeros((n, n)) if w_rec is None else w_rec
    if w_rec.shape != (n, n):
        raise UnsupportedGraphError(f"recurrent weights {w_rec.shape} do not match {n} neurons")
    threshold = _uniform(lif_name, "thresholds", lif.v_threshold)
    if isinstance(lif, nir.LIF):
        if np.any(np.asarray(lif.v_leak) != 0):
            raise UnsupportedGraphError(f"node {lif_name!r}: v_leak must be 0")
        tau = _uniform(lif_name, "time constants", lif.tau)
        r = _uniform(lif_name, "resistances", lif.r)
        decay, gain = 1.0 - dt / tau, dt * r / tau
        if not 0.0 < decay <= 1.0:
            raise UnsupportedGraphError(
                f"node {lif_name!r}: tau = {tau:g} s gives a decay of {decay:g} per step of "
                f"dt = {dt:g} s; it must be in (0, 1]: choose another dt")
    else:
        decay, gain = 1.0, dt * _uniform(lif_name, "resistances", lif.r)
    reset = getattr(lif, "v_reset", None)
    if reset is not None and np.any(np.asarray(reset) != 0):
        raise UnsupportedGraphError(f"node {lif_name!r}: v_reset must be 0 (reset to zero)")
    source = {"neuron_node": lif_name, "neuron_type": type(lif).__name__,
              "nodes": {k: type(v).__name__ for k, v in nodes.items()}, "edges": edges}
    # NIR weights are (out, in); ours are (in, out). The gain scales what enters the neuron.
    bias = np.broadcast_to(np.asarray(bias, np.float64), (n,)) * gain
    return NirNetwork(w_in=(w_in * gain).T.copy(), w_rec=(w_rec * gain).T.copy(),
                      bias=bias.copy(), decay=float(decay), threshold=threshold, dt=float(dt),
                      source=source)


@dataclass
class MappedNetwork:
    """A :class:`NirNetwork` programmed onto a tile of a macro."""

    macro: object
    """The macro holding it."""
    region: Region
    """Its tile: inputs then neurons as rows, interleaved differential columns."""
    spec: ReservoirSpec
    """How the macro runs it."""
    target_us: np.ndarray
    """Conductances asked for (µS), shape of the tile."""
    programming: dict
    """Write-verify outcome: converged fraction, pulses, weight errors."""
    bias_row: bool = False
    """True when the tile's last input row is an always-on bias row."""

    def to_nir(self, dt: float = SNNTORCH_DT, recurrence: str = "split"):
        """The network as the macro holds it now, as a NIR graph."""
        held = self.held()
        spec = ReservoirSpec(held.n_inputs, held.n_neurons, held.decay, held.threshold,
                             1.0, 1.0)
        return to_nir(held.w_in, held.w_rec, spec, dt=dt, recurrence=recurrence,
                      bias=held.bias if self.bias_row else None)

    def held(self) -> NirNetwork:
        """The network as the macro holds it now (weights read back)."""
        g = np.asarray(self.macro.read_conductance(self.region), np.float64)
        w = self.spec.weight_scale * (g[:, 0::2] - g[:, 1::2]) / self.spec.g_ref_us
        n_in = self.spec.n_inputs - int(self.bias_row)
        bias = w[n_in] if self.bias_row else np.zeros(self.spec.n_neurons)
        return NirNetwork(w_in=w[:n_in], w_rec=w[self.spec.n_inputs:], bias=bias,
                          decay=self.spec.decay, threshold=self.spec.threshold,
                          dt=float("nan"), source={"read_back_from": self.macro.info().model})

    def run(self, rasters, path: str = "auto") -> np.ndarray:
        """Spikes uint8 (batch, T, n): the macro's ``run_reservoir`` where offered (and
        ``path`` is not ``"generic"``), else the reference loop through ``mvm``."""
        arr = check_rasters(rasters, self.spec.n_inputs - int(self.bias_row))
        if self.bias_row:
            arr = np.concatenate([arr, np.ones(arr.shape[:2] + (1,), np.uint8)], axis=2)
        if path != "generic" and RUN_RESERVOIR in tuple(self.macro.info().capabilities):
            return np.asarray(self.macro.run_reservoir(self.region, arr, self.spec), np.uint8)
        return run_reference(self.macro, self.region, arr, self.spec)[0]


def program_network(net: NirNetwork, macro, origin: tuple[int, int] = (0, 0), *,
                    tolerance_us: float = 0.05, max_pulses: int = 200,
                    form_sparsity: float = 0.0) -> MappedNetwork:
    """Form a tile of ``macro`` and program ``net``'s weights into it by write-verify.

    Signed weights become pairs ``G+ = g_lo + k max(w, 0)``, ``G- = g_lo + k max(-w, 0)``
    with ``g_lo`` the device's lowest programmable conductance and ``k`` scaling the largest
    |w| to its highest, so the differential reads ``k w``; the spec's ``g_ref_us = k``
    turns it back into ``w``. Forming sweeps up to ``form_sparsity`` unformed cells (default:
    every cell that forms below the macro's voltage limit). ``origin``: (row0, col0) of the tile, sized
    ``(n_inputs + n_neurons) x 2 n_neurons``, plus one always-on input row when the
    network has biases.
    """
    info = macro.info()
    bias_row = bool(np.any(net.bias != 0))
    n_in = net.n_inputs + int(bias_row)
    rows, cols = n_in + net.n_neurons, 2 * net.n_neurons
    r = check_region((origin[0], origin[1], rows, cols), info.rows, info.cols)
    w = np.concatenate([net.w_in] + ([net.bias[None]] if bias_row else []) + [net.w_rec])
    w_max = float(np.max(np.abs(w)))
    if w_max == 0:
        raise UnsupportedGraphError("every weight is zero: nothing to program")
    g_lo, g_hi = _program_window(macro)
    k = (g_hi - g_lo) / w_max
    target = np.empty((rows, cols))
    target[:, 0::2] = g_lo + k * np.maximum(w, 0.0)
    target[:, 1::2] = g_lo + k * np.maximum(-w, 0.0)
    try:
        form_to_sparsity(macro, r, form_sparsity)
    except SafetyLimitError:
        pass  # every cell that can form has formed; the rest show in the programming error
    result = macro.program(r, target, tolerance_us, max_pulses)
    # Defect-aware second pass: where one cell of a pair did not reach its target (stuck,
    # stalled, unformed), re-aim its partner so that the difference still reads k * w.
    got = np.asarray(result.conductance_us, np.float64)
    bad = ~np.asarray(result.converged)
    retarget = target.copy()
    pos_bad, neg_bad = bad[:, 0::2] & ~bad[:, 1::2], bad[:, 1::2] & ~bad[:, 0::2]
    retarget[:, 1::2] = np.where(pos_bad, got[:, 0::2] - k * w, target[:, 1::2])
    retarget[:, 0::2] = np.where(neg_bad, got[:, 1::2] + k * w, target[:, 0::2])
    retarget = np.clip(retarget, g_lo, g_hi)
    first_converged = float(np.mean(~bad))
    if np.any(retarget != target):
        # cells that did not respond keep a target they already sit at (within the window)
        result = macro.program(r, np.where(bad, np.clip(got, 0.0, g_hi), retarget),
                               tolerance_us, max_pulses)
    spec = ReservoirSpec(n_inputs=n_in, n_neurons=net.n_neurons, decay=net.decay,
                         threshold=net.threshold, weight_scale=1.0, g_ref_us=k,
                         reset="zero")
    got = np.asarray(result.conductance_us, np.float64)
    w_got = (got[:, 0::2] - got[:, 1::2]) / k
    err = w_got - w
    programming = {
        "converged_fraction": first_converged,
        "failed_cells": int(bad.sum()),
        "weight_rms_error": float(np.sqrt(np.mean(err ** 2))),
        "weight_max_abs_error": float(np.max(np.abs(err))),
        "weight_rms": float(np.sqrt(np.mean(w ** 2))),
        "g_window_us": [g_lo, g_hi], "us_per_weight": k, "tolerance_us": tolerance_us,
        "compensated_pairs": int((pos_bad | neg_bad).sum()),
    }
    return MappedNetwork(macro, r, spec, target, programming, bias_row)


def _program_window(macro) -> tuple[float, float]:
    """The conductance window (µS) write-verify can reach on ``macro``."""
    profile = getattr(macro, "profile", None)
    program = getattr(profile, "program", None)
    if program is not None:
        return float(program.g_min_us), float(program.g_max_us)
    return 1.0, 40.0  # the 40 nm macro's documented window (docs/device-model.md)


def reference_spikes(rasters: np.ndarray, spikes: np.ndarray, path) -> None:
    """Save ``rasters`` and the ``spikes`` they gave next to a graph, for importers to check
    themselves against (:func:`first_divergence`)."""
    np.savez_compressed(path, rasters=np.asarray(rasters, np.uint8),
                        spikes=np.asarray(spikes, np.uint8))


def first_divergence(expected: np.ndarray, got: np.ndarray) -> dict | None:
    """The first (sample, step) where two spike arrays (batch, T, n) differ and the neurons
    that differ there; None when they are equal."""
    expected, got = np.asarray(expected), np.asarray(got)
    if expected.shape != got.shape:
        raise ShapeError(f"spike arrays differ in shape: {expected.shape} vs {got.shape}")
    diff = expected != got
    if not diff.any():
        return None
    sample = int(np.flatnonzero(diff.any(axis=(1, 2)))[0])
    step = int(np.flatnonzero(diff[sample].any(axis=1))[0])
    return {"sample": sample, "step": step,
            "neurons": np.flatnonzero(diff[sample, step]).tolist()}
