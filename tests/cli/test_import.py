"""``lhama --help``, every command's ``--help`` and usage errors answer without importing torch
or transformers (seconds of imports): the cli modules import library code where it runs.

Each check runs in a fresh interpreter, since this test process has torch loaded already."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "transformers")
# Runs `lhama ARGS` in-process, then reports its exit code and which heavy modules it loaded.
RUN = """import sys
sys.argv = ["lhama", *{args!r}]
from lhama.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\nRESULT", code, [m for m in {heavy!r} if m in sys.modules])
"""


def python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_importing_the_cli_loads_no_torch() -> None:
    done = python(f"import sys, lhama.cli; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("args, code, says", [
    (["--help"], 0, "Usage: lhama"),
    (["chat", "--help"], 0, "--repetition-penalty"),
    (["serve", "--help"], 0, "--max-tokens-cap"),
    (["eval", "admire", "--help"], 0, "--text-only"),
    (["models", "export-adapter", "--help"], 0, "--dtype"),
    (["chat", "--no-such-flag"], 2, "No such option"),
    (["chat", "--repetition-penalty", "0", "Oi"], 2, "--repetition-penalty must be > 0"),
    (["serve", "--threads", "0"], 2, "--threads must be >= 1"),
    (["serve", "--max-batch", "0"], 2, "--max-batch must be >= 1"),
    (["serve", "--timeout", "0"], 2, "--timeout must be > 0"),
    (["bench", "decode", "--tokens", "1"], 2, "--tokens must be >= 2"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_help_and_usage_errors_load_no_torch(args: list[str], code: int, says: str) -> None:
    done = python(RUN.format(args=args, heavy=HEAVY))
    *_, result = done.stdout.strip().splitlines()
    assert result == f"RESULT {code} []", done.stdout[-2000:] + done.stderr[-2000:]
    assert says in done.stdout + done.stderr
