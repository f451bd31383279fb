"""Score saved everyday answers again with the current accepted patterns (after a grader fix),
so every system is judged by the same grader: rewrites each file's verdicts and summary.

    python benchmarks/everyday_rescore.py docs/results/everyday_*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lhama.eval.questions import is_right, read_questions, score

QUESTIONS = Path(__file__).with_name("data") / "everyday_ptbr.jsonl"


def rescore(path: Path, questions: dict) -> tuple[int, int, list[str]]:
    """Re-judge one result file in place -> (right before, right now, ids whose verdict changed)."""
    result = json.loads(path.read_text(encoding="utf-8"))
    items = result["items"]
    before, changed = sum(r["right"] for r in items), []
    for row in items:
        verdict = is_right(row["answer"], questions[row["id"]])
        if verdict != row["right"]:
            changed.append(f"{row['id']} {'->right' if verdict else '->wrong'}")
        row["right"] = verdict
    result["summary"] = score([questions[r["id"]] for r in items], [r["answer"] for r in items])
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return before, sum(r["right"] for r in items), changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args()
    questions = {q.id: q for q in read_questions(args.questions)}
    for path in args.files:
        before, now, changed = rescore(path, questions)
        print(f"{path}: {before} -> {now} right {' '.join(changed)}")


if __name__ == "__main__":
    main()
