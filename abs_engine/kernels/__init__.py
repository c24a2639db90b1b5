"""Numba kernels. Nothing here imports ``schema``; arguments are arrays and scalars only."""
