"""Composite methods (``auto``) that choose among the registered ones."""
