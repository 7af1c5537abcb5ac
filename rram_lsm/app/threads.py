"""Thread settings of a run: the app layer pins them, the libraries never do."""
from __future__ import annotations

import contextlib

__all__ = ["torch_threads", "repin_torch_threads"]

_PINNED: list[int] = []
"""The torch thread counts of the open :func:`torch_threads` blocks, innermost last."""


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` threads inside the block, then restore the caller's setting.

    The projection heads and readouts are tiny: with two threads on a busy 2-core machine,
    thread hand-off costs 10-40x the arithmetic; one thread is also the same arithmetic on
    every machine. Simulator work inside the block can undo the pin (see
    :func:`repin_torch_threads`).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    _PINNED.append(int(n))
    try:
        yield
    finally:
        _PINNED.pop()
        torch.set_num_threads(before)


def repin_torch_threads() -> None:
    """Re-apply the innermost :func:`torch_threads` pin (nothing outside one).

    numba's OpenMP threading layer sets the calling thread's OpenMP thread count before
    every parallel kernel (the simulator's forming and LIF kernels), and torch reads its
    own count from the same OpenMP runtime: after a reservoir encode torch ran on every
    core again, and the zero-shot protocol's worker processes, which copy the caller's
    count, each spun a second thread on a 2-core machine (twice the CPU time).
    """
    if _PINNED:
        import torch

        torch.set_num_threads(_PINNED[-1])
