"""How far could choosing among everything already tried go on the everyday dev sets? (#26, s13; no model run)

Reads answers saved by earlier sessions and grades them again with today's patterns
(:func:`lhama.eval.questions.is_right`). For each set, prints each run's score and the "oracle": the questions
right in at least one run, which no per-question choice among these runs (a selector, a vote, a mix of
settings) can beat.

- the old dev half (``everyday_ptbr.jsonl``, 60 questions): every ``docs/results/everyday_v2_dev_*.json``;
- session 10's fresh set, dev since (``everyday_fresh_s10.jsonl``, 135): the shipped read re-scored in session 12
  and the all-int8 run; on its even half also session 12's English pivot
  (``docs/results/everyday_fresh_s10_pivot_even_s12.json``: the probe's saved answers, committed in session 13;
  items with "id", "answer" and "en", the English answer, graded by the same patterns).

    PYTHONPATH=src python benchmarks/everyday_oracle_s13.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lhama.eval.questions import is_right, read_questions

ROOT = Path(__file__).resolve().parents[1]
DATA, RESULTS = ROOT / "benchmarks" / "data", ROOT / "docs" / "results"


def graded(path: Path, questions: dict, field: str = "answer") -> dict[str, bool]:
    return {item["id"]: is_right(item[field], questions[item["id"]]) for item in json.loads(path.read_text())["items"]
            if item["id"] in questions}


def report(title: str, runs: dict[str, dict[str, bool]]) -> None:
    ids = set.intersection(*(set(run) for run in runs.values()))
    print(f"{title}: {len(ids)} questions")
    for name, run in runs.items():
        print(f"  {sum(run[i] for i in ids):4d}  {name}")
    oracle = sum(any(run[i] for run in runs.values()) for i in ids)
    print(f"  {oracle:4d}  right in any run: {oracle / len(ids):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pivot", type=Path, default=RESULTS / "everyday_fresh_s10_pivot_even_s12.json",
                        help="session 12's pivot probe answers (even half)")
    args = parser.parse_args()
    old = {q.id: q for q in read_questions(DATA / "everyday_ptbr.jsonl")}
    report("old dev half, every saved run", {p.stem: graded(p, old) for p in sorted(RESULTS.glob("everyday_v2_dev_*.json"))})
    fresh = {q.id: q for q in read_questions(DATA / "everyday_fresh_s10.jsonl")}
    runs = {"shipped int4 (s10 read)": graded(RESULTS / "everyday_fresh_s10_shipped_rescored_s12.json", fresh),
            "all int8 (s12)": graded(RESULTS / "everyday_fresh_s10_int8_s12.json", fresh)}
    report("session 10 fresh set (dev)", runs)
    if args.pivot.is_file():
        runs["English pivot (s12)"] = graded(args.pivot, fresh)
        runs["its English answer"] = graded(args.pivot, fresh, "en")
        report("session 10 fresh set, the pivot's even half", runs)


if __name__ == "__main__":
    main()
