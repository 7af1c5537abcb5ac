"""Subcommands: placeholder until its issue lands (registers nothing yet)."""
from __future__ import annotations


def register(sub) -> None:
    """Register this module's subcommands on sub."""
