import pytest

from lhama.data.translate.quality import QualityChecker


@pytest.fixture(scope="module")
def checker() -> QualityChecker:
    return QualityChecker()


def rec(*values: str) -> dict:
    return {"conversations": [{"from": "gpt", "value": v} for v in values]}


SRC = "<image>\nThe box [0.1, 0.2, 0.3, 0.4] has 3 apples, see `ls` at https://a.org."


def test_intact_translation_passes(checker: QualityChecker) -> None:
    out = "<image>\nA caixa [0.1, 0.2, 0.3, 0.4] tem 3 maçãs, veja `ls` em https://a.org."
    assert checker.rejection(rec(SRC), rec(out)) is None
    assert checker.flags(rec(SRC), rec(out)) == []


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("<imagem>\nA caixa [0.1, 0.2, 0.3, 0.4] tem 3 maçãs, veja `ls` em https://a.org.", "protected_span"),
        ("A caixa [0.1, 0.2, 0.3, 0.4] tem 3 maçãs, veja `ls` em https://a.org.\n<image>", "protected_span"),
        ("<image>\nA caixa [0.1, 0.2, 0.3] tem 3 maçãs, veja `ls` em https://a.org.", "protected_span"),
        ("<image>\nA caixa [0.1, 0.2, 0.3, 0.4] tem 3 maçãs, veja ls em https://a.org.", "protected_span"),
        ("<image>\nA caixa [0.1, 0.2, 0.3, 0.4] tem três maçãs, veja `ls` em https://a.org.", "dropped_number"),
    ],
)
def test_structure_damage_rejects(checker: QualityChecker, out: str, reason: str) -> None:
    got = checker.rejection(rec(SRC), rec(out))
    assert got is not None and got.startswith(reason + ": turn 0")


def test_flags_english_ratio_and_loops(checker: QualityChecker) -> None:
    src = "The man is walking his dog in the park on a sunny afternoon."
    english = rec("The man is walking his dog in the park on a sunny day.")
    short = rec("Homem.")
    loop = rec("O homem e o cão e o cão e o cão e o cão e o cão e o cão no parque.")
    assert checker.flags(rec(src), english) == ["still_english: turn 0"]
    assert checker.flags(rec(src), short) == ["length_ratio: turn 0"]
    assert "repetition: turn 0" in checker.flags(rec(src), loop)
