"""The README's text-only chat example is a real transcript of the shipped default (issue #26, session
10): every line it shows is in the recorded chat log, and the README no longer offers the photosynthesis
question the default answered wrong in that log."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LOG = (ROOT / "docs" / "results" / "default_v2_s10_chat.log").read_text(encoding="utf-8")


def test_the_text_transcript_is_in_the_recorded_log() -> None:
    block = re.search(r'```text\n(\$ lhama chat "[^"]+"\n(?:.+\n)+?)```', README).group(1)
    question = re.match(r'\$ lhama chat "([^"]+)"', block).group(1)
    recorded = LOG.split(f'$ lhama chat "{question}"\n', 1)[1].split("$ lhama chat", 1)[0]
    assert [line for line in block.splitlines()[1:] if line not in recorded] == []
    assert f'lhama chat "{question}"' in README.split("## Chat", 1)[1]


def test_the_wrong_photosynthesis_example_is_not_offered() -> None:
    answer = LOG.split('$ lhama chat "Explique o que é fotossíntese."\n', 1)[1].splitlines()[1]
    assert "luz artificial" in answer  # the wrong answer the log holds
    assert not re.search(r'^lhama chat "Explique o que é fotossíntese\."', README, re.M)
