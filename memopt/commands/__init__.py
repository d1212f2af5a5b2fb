"""Subcommands of the ``memopt`` CLI, one module each (``register(subparsers)``)."""
