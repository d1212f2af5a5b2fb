"""Composite methods: strategies that run other methods of the catalog (``auto``, ``auto-peak``, ``auto-time``)."""
