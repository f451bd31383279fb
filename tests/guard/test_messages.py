"""guard/messages: ``lhama guard``'s one call; input read before the guard loads, verdicts in
order, blank lines safe, batches of BATCH with progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhama.errors import ConfigError, DataError
from lhama.guard import SAFE, Verdict
from lhama.guard import messages
from lhama.guard.messages import BATCH, GuardRun, check_messages


class Flags:
    """Flags every message containing "bomba" as S9; records the batches it was given."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[str], str]] = []

    def check_batch(self, texts, role="user"):
        self.batches.append((list(texts), role))
        return [Verdict(False, ("S9",)) if "bomba" in t else SAFE for t in texts]


def test_lines_are_checked_in_batches_and_answered_in_order(tmp_path: Path, monkeypatch) -> None:
    guard, specs, seen = Flags(), [], []
    monkeypatch.setattr(messages, "load_guard", lambda spec: specs.append(spec) or guard)
    lines = ["bomba caseira", "", "bom dia"] * 40  # 80 messages to check, 40 blank
    (tmp_path / "m.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    verdicts = check_messages(GuardRun(input=tmp_path / "m.txt", role="assistant", spec="classifier"),
                              lambda done, total: seen.append((done, total)))
    assert [v.safe for v in verdicts] == [line != "bomba caseira" for line in lines]
    assert [len(texts) for texts, _ in guard.batches] == [BATCH, 80 - BATCH] and guard.batches[0][1] == "assistant"
    assert specs == ["classifier"] and seen == [(0, 80), (BATCH, 80), (80, 80)]
    assert check_messages(GuardRun(text="uma bomba")) == [Verdict(False, ("S9",))]


def test_bad_input_fails_before_the_guard_loads(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(messages, "load_guard", lambda spec: pytest.fail("the guard loaded"))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    for path, message in [(tmp_path / "nope.txt", "input file not found"), (tmp_path, "is a directory"),
                          (tmp_path / "bad.txt", "is not UTF-8 text")]:
        with pytest.raises(DataError, match=message):
            check_messages(GuardRun(input=path))
    with pytest.raises(ConfigError, match="not both or neither"):
        GuardRun(text="x", input=tmp_path)
    with pytest.raises(ConfigError, match="--role must be"):
        GuardRun(text="x", role="bot")
