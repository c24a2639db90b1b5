"""Metrics on simulation results: Monte Carlo reductions (means with standard errors,
quantiles, LGD, modified duration) in :mod:`.montecarlo`, the rating mapping in :mod:`.rating`."""

from .rating import DEFAULT_TABLE, RatingTable, load_rating_table

__all__ = ["DEFAULT_TABLE", "RatingTable", "load_rating_table"]
