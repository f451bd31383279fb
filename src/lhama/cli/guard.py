"""``lhama guard``: moderate a message (or a file of messages) with the S1-S14 guard."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import Progress

from lhama.cli.options import command
from lhama.errors import DataError
from lhama.guard import SAFE, Guard, Verdict, load_guard
from lhama.guard.load import SPEC_HELP

BATCH = 64


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


@command(GuardOptions)
def guard(options: GuardOptions) -> None:
    """Say whether a message is safe, Llama Guard 3 style: prints `safe`, or `unsafe` and the
    violated categories (S1-S14) on the next line. Exit code 0 when everything is safe, 1 when
    something is unsafe, 2 on a usage error.

    Examples:

        lhama guard "Como matar um processo no Linux?"

        lhama guard --input mensagens.txt --jsonl > vereditos.jsonl
    """
    lines = [options.text] if options.text is not None else _read_lines(options.input)
    verdicts = _check_all(load_guard(options.spec), lines, options.role)
    for verdict in verdicts:
        typer.echo(json.dumps(verdict.to_dict(), ensure_ascii=False) if options.jsonl else str(verdict))
    raise typer.Exit(0 if all(v.safe for v in verdicts) else 1)


def _read_lines(path: Path) -> list[str]:
    try:
        raw = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"input file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory; give a file with one message per line") from None
    return raw.splitlines()


def _check_all(g: Guard, lines: list[str], role: str) -> list[Verdict]:
    """Verdicts in input order; blank lines are trivially safe (kept so output lines match)."""
    todo = [i for i, line in enumerate(lines) if line.strip()]
    verdicts = [SAFE] * len(lines)
    with Progress(transient=True, disable=len(todo) <= BATCH, console=Console(stderr=True)) as bar:
        task = bar.add_task("checking", total=len(todo))
        for start in range(0, len(todo), BATCH):
            idx = todo[start : start + BATCH]
            for i, v in zip(idx, g.check_batch([lines[i] for i in idx], role)):
                verdicts[i] = v
            bar.advance(task, len(idx))
    return verdicts
