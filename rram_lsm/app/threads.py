"""Thread settings of a run: the app layer pins them, the libraries never do."""
from __future__ import annotations

import contextlib

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` threads inside the block, then restore the caller's setting.

    The projection heads and readouts are tiny: with two threads on a busy 2-core machine,
    thread hand-off costs 10-40x the arithmetic; one thread is also the same arithmetic on
    every machine.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
