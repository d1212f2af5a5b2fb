"""Composite methods (``auto``) that choose among the registered ones.

(Not named ``methods``: ``memopt.methods()`` is the registry listing.)
"""
