"""Numba kernels of the simulator: plain functions over arrays, no state.

``forming`` (electroforming), ``programming`` (write-verify), ``read`` (drift, reads, MVM
and the ADC), ``rng`` (a counter-based normal generator for kernels that need noise inside
a variable-length loop). Run them in pure Python with ``NUMBA_DISABLE_JIT=1``.
"""
__all__: list[str] = []
