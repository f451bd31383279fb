"""``lhama chat``: talk to a model in the terminal."""

from __future__ import annotations


def chat() -> None:
    """Chat with a model (not yet implemented)."""
    raise NotImplementedError
