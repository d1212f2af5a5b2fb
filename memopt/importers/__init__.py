"""Importers: other formats turned into memopt instances."""
