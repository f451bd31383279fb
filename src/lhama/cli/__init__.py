"""The ``lhama`` command line.

Each command group lives in its own module of this package and only parses options, calls one
public function of a lower layer and prints the result. :func:`main` is the only place that
turns a :class:`~lhama.errors.LhamaError` into a red one-line message and exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from lhama.cli import chat, data, guard, models, serve, train
from lhama.cli import distill as distill_cli
from lhama.cli import prune as prune_cli
from lhama.cli import eval as eval_cli
from lhama.cli import bench as bench_cli
from lhama.errors import LhamaError

app = typer.Typer(
    name="lhama",
    help="Build, train, evaluate and serve multimodal LLMs that speak Brazilian Portuguese.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

# Command groups register here, one line each.
app.command("chat")(chat.chat)
app.add_typer(models.app, name="models")
app.command("serve")(serve.serve)
app.command("train")(train.train)
app.add_typer(data.app, name="data")
app.command("guard")(guard.guard)
app.add_typer(eval_cli.app, name="eval")
app.add_typer(bench_cli.app, name="bench")
app.command("prune")(prune_cli.prune)
app.command("distill")(distill_cli.distill)


def main() -> None:
    """Console entry point: run the app, print user errors as one red line, exit 2."""
    try:
        app()  # standalone mode: typer handles --help, usage errors and exit codes
    except LhamaError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
