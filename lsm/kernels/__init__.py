"""Numba kernels of the LSM: the LIF neuron update and the fused event-driven reservoir.

Plain functions over arrays; ``lsm.reservoir`` wraps them. For a pure-Python run, set
``NUMBA_DISABLE_JIT=1`` (the same kernels then run interpreted).
"""
from .lif import lif_step_batch, run_fused

__all__ = ["lif_step_batch", "run_fused"]
