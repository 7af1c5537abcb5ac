"""Numba kernels of the event front end (plain functions over arrays)."""
