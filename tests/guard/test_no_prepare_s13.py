"""Issue #29, session 13: guard benchmark scripts load models from a directory and never prepare one (``located``
re-prepared the shared lhama-default copy in session 12 when it was out of date for the checkout)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
import guard_judge_self_s11 as gs  # noqa: E402


def test_no_guard_benchmark_calls_located_or_prepare():
    offenders = [p.name for p in sorted(BENCH.glob("guard_*.py"))
                 if re.search(r"\blocated\(|import located|weights\.prepare import|\bprepare\(", p.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.mark.parametrize("argv", [["--ask", "--log", "x.jsonl"], ["--ask", "--log", "x.jsonl", "--model-dir", "/nonexistent"]])
def test_the_judge_probe_needs_a_prepared_model_directory(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["guard_judge_self_s11.py", *argv])
    with pytest.raises(SystemExit) as exc:
        gs.main()
    assert exc.value.code == 2
    assert "--model-dir must name a prepared model directory" in capsys.readouterr().err
