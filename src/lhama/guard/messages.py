"""``lhama guard``'s one call: messages (one text, or every line of a file or stdin) checked by a
guard in batches, the verdicts in input order.

:class:`GuardRun` is plain data; :func:`check_messages` reads the messages (bad input fails before
the guard loads), loads the guard (:func:`lhama.guard.load_guard`) and checks them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import ConfigError, DataError
from lhama.guard.base import Guard, Role
from lhama.guard.load import load_guard
from lhama.guard.verdict import SAFE, Verdict

BATCH = 64  # messages checked together

Progress = Callable[[int, int], None]  # (messages checked, messages to check)


@dataclass(frozen=True)
class GuardRun:
    text: str | None = None  # one message
    input: Path | None = None  # or every line of this UTF-8 file ("-": stdin), one message each
    role: Role = "user"  # whose messages: "user" (input) or "assistant" (model output)
    spec: str | None = None  # the backend (lhama.guard.load_guard); None: lhama's trained classifier

    def __post_init__(self) -> None:
        if (self.text is None) == (self.input is None):
            raise ConfigError("give either a TEXT argument or --input FILE, not both or neither")
        if self.role not in ("user", "assistant"):
            raise ConfigError(f"--role must be 'user' or 'assistant', got {self.role!r}")


def check_messages(run: GuardRun, progress: Progress | None = None) -> list[Verdict]:
    """The verdict of each message, in order; ``progress(done, total)`` before the first batch
    and after each (blank lines are trivially safe and not counted).

    Raises:
        DataError: the input file is missing, a directory, or not UTF-8 (before the guard loads).
        LhamaError: from :func:`load_guard` (an unknown spec, missing files).
    """
    lines = [run.text] if run.text is not None else read_lines(run.input)
    return check_all(load_guard(run.spec), lines, run.role, progress)


def read_lines(path: Path) -> list[str]:
    """The lines of the UTF-8 file ``path`` ("-": stdin). Raises DataError."""
    try:
        raw = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"input file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory; give a file with one message per line") from None
    return raw.splitlines()


def check_all(guard: Guard, lines: list[str], role: Role, progress: Progress | None = None) -> list[Verdict]:
    """Verdicts in input order; blank lines are trivially safe (kept so output lines match)."""
    todo = [i for i, line in enumerate(lines) if line.strip()]
    verdicts = [SAFE] * len(lines)
    for start in range(0, len(todo), BATCH):
        if progress and start == 0:
            progress(0, len(todo))
        idx = todo[start : start + BATCH]
        for i, v in zip(idx, guard.check_batch([lines[i] for i in idx], role)):
            verdicts[i] = v
        if progress:
            progress(start + len(idx), len(todo))
    return verdicts
