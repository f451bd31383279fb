"""Everyday questions with accepted answers: reading the set and scoring free-form answers.

A question set is JSON Lines, one question per line::

    {"id": "q001", "category": "brasil", "question": "Qual é a capital do Brasil?",
     "accepted": ["brasilia"], "rejected": []}

``accepted`` and the optional ``rejected`` are regular expressions matched as whole words
against the *folded* answer (:func:`lhama.eval.metrics.fold_text`: lowercase, accents removed,
punctuation as spaces; "Brasília." -> "brasilia"). Patterns are folded the same way for accents
and case only, so write them plainly ("sao paulo", ``r"deslig\\w*"``, "56|cinquenta e seis").
An answer is right when some accepted pattern matches and no rejected one does.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError
from lhama.eval.metrics import fold_text


@dataclass(frozen=True)
class Question:
    """One question and the answers that count as right."""

    id: str
    category: str
    question: str
    accepted: tuple[str, ...]  # regexes over the folded answer, whole words; any may match
    rejected: tuple[str, ...] = ()  # regexes that make an answer wrong even if one accepted matches


def fold_pattern(pattern: str) -> str:
    """Lowercase and drop accents from a pattern, leaving regex syntax alone ("Brasília" -> "brasilia")."""
    decomposed = unicodedata.normalize("NFKD", pattern.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(rf"(?<!\w)(?:{fold_pattern(pattern)})(?!\w)")
    except re.error as exc:
        raise DataError(f"{where}: the pattern {pattern!r} is not a valid regular expression ({exc})") from None


def matches(answer: str, pattern: str) -> bool:
    """Whether ``pattern`` matches whole words of the folded ``answer``.

    Raises:
        DataError: the pattern is not a valid regular expression.
    """
    return _compile(pattern, "answer pattern").search(fold_text(answer)) is not None


def is_right(answer: str, question: Question) -> bool:
    """True when an accepted pattern matches the answer and no rejected pattern does."""
    if any(matches(answer, p) for p in question.rejected):
        return False
    return any(matches(answer, p) for p in question.accepted)


def read_questions(path: Path) -> list[Question]:
    """The questions in the JSON Lines file ``path`` (blank lines skipped).

    Raises:
        DataError: unreadable file, a line that is not a question object, no accepted answer,
            an invalid pattern, a repeated id, or no questions at all; the message names the line.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the question set {path}: {exc}") from None
    questions = [_parse(line, f"{path}:{number}") for number, line in enumerate(lines, 1) if line.strip()]
    if not questions:
        raise DataError(f"{path} holds no questions")
    ids = [q.id for q in questions]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise DataError(f"{path}: question ids used twice: {', '.join(repeated[:5])}")
    return questions


def _parse(line: str, where: str) -> Question:
    try:
        row = json.loads(line)
        question = Question(str(row["id"]), str(row.get("category", "")), str(row["question"]),
                            tuple(row["accepted"]), tuple(row.get("rejected", ())))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{where}: not a question object with id, question and accepted ({exc})") from None
    if not question.accepted or not all(isinstance(p, str) and p for p in question.accepted + question.rejected):
        raise DataError(f"{where}: accepted must be a non-empty list of non-empty patterns")
    for pattern in question.accepted + question.rejected:
        _compile(pattern, where)
    return question


def score(questions: Sequence[Question], answers: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """Right answers overall (``"all"``) and per category: ``{"n", "right", "rate"}``.

    Raises:
        DataError: a different number of answers and questions, or none.
    """
    if len(questions) != len(answers) or not questions:
        raise DataError(f"{len(answers)} answers for {len(questions)} questions")
    verdicts = [is_right(a, q) for q, a in zip(questions, answers)]
    groups: dict[str, list[bool]] = {"all": verdicts}
    for question, right in zip(questions, verdicts):
        groups.setdefault(question.category or "(none)", []).append(right)
    return {name: {"n": len(v), "right": sum(v), "rate": round(sum(v) / len(v), 3)} for name, v in groups.items()}
