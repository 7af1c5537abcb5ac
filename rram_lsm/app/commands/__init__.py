"""Subcommands of the ``rram-lsm`` CLI; each module exposes ``register(subparsers)``."""
