"""``lhama models``: find, prepare and list local model weights."""

from __future__ import annotations

import typer

app = typer.Typer(help="Find, prepare and list local model weights.", no_args_is_help=True)
