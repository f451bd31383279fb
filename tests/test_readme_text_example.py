"""The README's text-only chat example shows the answer the shipped weights really gave (issue #26,
session 10): its quoted answer is the one every recorded everyday run of the default gave to that
question, and the README's own text example is no longer one the default answers wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RUNS = ["everyday_v2_dev_s7_int4-g32-grid-k+lossy6", "everyday_v2_dev_s5_fp32", "everyday_v2_dev_s5_shipped",
        "everyday_v2_dev_s5_int4-g32-grid+lossy"]


def recorded(question: str) -> set[str]:
    answers = set()
    for run in RUNS:
        items = json.loads((ROOT / "docs" / "results" / f"{run}.json").read_text(encoding="utf-8"))["items"]
        answers |= {r["answer"] for r in items if r["question"] == question}
    return answers


def test_the_text_example_quotes_what_the_default_answered() -> None:
    question, answer = re.search(r'```text\n\$ lhama chat "([^"]+)"\n(.+)\n```', README).groups()
    assert recorded(question) == {answer}
    assert f'lhama chat "{question}"' in README.split("## Chat", 1)[1]


def test_the_wrong_photosynthesis_example_is_not_offered() -> None:
    assert recorded("O que é fotossíntese?") >= {"Fotossíntese é a transformação de luz solar em energia elétrica."}
    assert "```bash\nlhama chat \"Explique o que é fotossíntese.\"" not in README
