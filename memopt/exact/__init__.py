"""Exact combinatorial algorithms (trees, series-parallel graphs, search)."""
