"""Forming procedures that work on any macro through the interface.

The sweep itself lives with the interface (``rram_lsm.macro.form_to_sparsity``) so that the
LSM, the simulator's CLI and hardware runs all form tiles the same way; it is re-exported here.
"""
from rram_lsm.macro import form_to_sparsity

__all__ = ["form_to_sparsity"]
