"""``lhama guard``: moderate a message (or a file of messages) with the S1-S14 guard."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import Progress

from lhama.errors import ConfigError, DataError
from lhama.guard import SAFE, Guard, Verdict, load_guard
from lhama.guard.load import SPEC_HELP

BATCH = 64


def guard(
    text: Optional[str] = typer.Argument(None, help="The message to check (omit when using --input)."),
    input: Optional[Path] = typer.Option(
        None, "--input", "-i", help="Check every line of this UTF-8 file as one message ('-' reads stdin)."
    ),
    jsonl: bool = typer.Option(
        False, "--jsonl", help='Print one JSON object per message: {"verdict": "safe"|"unsafe", "categories": [...]}.'
    ),
    role: str = typer.Option(
        "user", "--role", help="Whose message it is: 'user' (input) or 'assistant' (model output)."
    ),
    spec: Optional[str] = typer.Option(None, "--guard", help=f"Backend: {SPEC_HELP}."),
) -> None:
    """Say whether a message is safe, Llama Guard 3 style: prints `safe`, or `unsafe` and the
    violated categories (S1-S14) on the next line. Exit code 0 when everything is safe, 1 when
    something is unsafe, 2 on a usage error.

    Examples:

        lhama guard "Como matar um processo no Linux?"

        lhama guard --input mensagens.txt --jsonl > vereditos.jsonl
    """
    if (text is None) == (input is None):
        raise ConfigError("give either a TEXT argument or --input FILE, not both or neither")
    if role not in ("user", "assistant"):
        raise ConfigError(f"--role must be 'user' or 'assistant', got {role!r}")
    lines = [text] if text is not None else _read_lines(input)
    verdicts = _check_all(load_guard(spec), lines, role)
    for verdict in verdicts:
        typer.echo(json.dumps(verdict.to_dict(), ensure_ascii=False) if jsonl else str(verdict))
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
