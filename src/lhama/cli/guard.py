"""``lhama guard``: moderate a message (or a file of messages) with the S1-S14 guard."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import Progress

from lhama.cli.options import command
from lhama.guard.load import SPEC_HELP
from lhama.guard.messages import BATCH, GuardRun


@dataclass(frozen=True)
class GuardOptions:
    text: Annotated[Optional[str], typer.Argument(help="The message to check (omit when using --input).")] = None
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Check every line of this UTF-8 file as one message ('-' reads stdin).")] = None
    jsonl: Annotated[bool, typer.Option("--jsonl", help='Print one JSON object per message: {"verdict": "safe"|"unsafe", "categories": [...]}.')] = False
    role: Annotated[str, typer.Option("--role", help="Whose message it is: 'user' (input) or 'assistant' (model output).")] = "user"
    spec: Annotated[Optional[str], typer.Option("--guard", help=f"Backend: {SPEC_HELP}.")] = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.input is None):
            raise ValueError("give either a TEXT argument or --input FILE, not both or neither")
        if self.role not in ("user", "assistant"):
            raise ValueError(f"--role must be 'user' or 'assistant', got {self.role!r}")

    def run(self) -> GuardRun:
        """The options as the library's GuardRun."""
        return GuardRun(self.text, self.input, self.role, self.spec)


@command(GuardOptions)
def guard(options: GuardOptions) -> None:
    """Say whether a message is safe, Llama Guard 3 style: prints `safe`, or `unsafe` and the
    violated categories (S1-S14) on the next line. Exit code 0 when everything is safe, 1 when
    something is unsafe, 2 on a usage error.

    Examples:

        lhama guard "Como matar um processo no Linux?"

        lhama guard --input mensagens.txt --jsonl > vereditos.jsonl
    """
    from lhama.guard.messages import check_messages

    bar = Progress(transient=True, console=Console(stderr=True))
    task = bar.add_task("checking", total=None)

    def show(done: int, total: int) -> None:
        if total > BATCH and not bar.live.is_started:  # a bar only for more than one batch
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        verdicts = check_messages(options.run(), show)
    finally:
        if bar.live.is_started:
            bar.stop()
    for verdict in verdicts:
        typer.echo(json.dumps(verdict.to_dict(), ensure_ascii=False) if options.jsonl else str(verdict))
    raise typer.Exit(0 if all(v.safe for v in verdicts) else 1)

