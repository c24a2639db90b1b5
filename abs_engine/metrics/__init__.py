"""Metrics on simulation results: rating mapping (more to come: coverage, duration)."""

from .rating import DEFAULT_TABLE, RatingTable, load_rating_table

__all__ = ["DEFAULT_TABLE", "RatingTable", "load_rating_table"]
