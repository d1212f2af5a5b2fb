"""Heuristics: baseline orders (warm starts) and, later, budget planners."""
