import pytest

from lhama.guard.verdict import SAFE, Verdict, merge, parse_verdict, refusal_text


def test_parse_safe_and_unsafe_answers():
    assert parse_verdict("safe") == SAFE
    assert parse_verdict("\n\nsafe\n") == SAFE
    v = parse_verdict("unsafe\nS1,S2")
    assert not v.safe and v.categories == ("S1", "S2")
    assert parse_verdict("unsafe\nS10, S2 ,S14").categories == ("S2", "S10", "S14")


def test_unreadable_answer_fails_closed():
    v = parse_verdict("I cannot tell")
    assert not v.safe and v.categories == ()
    assert parse_verdict("").safe is False
    assert parse_verdict("unsafe\nS15,S0").categories == ()  # not codes of the taxonomy


def test_str_and_dict_shape_follow_llama_guard():
    v = Verdict(safe=False, categories=("S2", "S9"), score=0.9)
    assert str(v) == "unsafe\nS2,S9"
    assert str(SAFE) == "safe"
    assert v.to_dict() == {"verdict": "unsafe", "categories": ["S2", "S9"]}
    assert SAFE.to_dict() == {"verdict": "safe", "categories": []}


def test_invalid_verdicts_are_rejected():
    with pytest.raises(ValueError, match="S99"):
        Verdict(safe=False, categories=("S99",))
    with pytest.raises(ValueError):
        Verdict(safe=True, categories=("S1",))


def test_refusal_is_portuguese_and_names_categories():
    text = refusal_text(Verdict(safe=False, categories=("S1", "S9")))
    assert text.startswith("Desculpe, não posso ajudar")
    assert "crimes violentos e armas de destruição indiscriminada" in text
    assert "188" in refusal_text(Verdict(safe=False, categories=("S11",)))
    assert "192" in refusal_text(Verdict(safe=False, categories=("S6",)))
    assert refusal_text(Verdict(safe=False)) == "Desculpe, não posso ajudar com esse pedido."


def test_merge_unites_categories_and_keeps_max_score():
    a = Verdict(safe=False, categories=("S9",), score=0.7)
    b = Verdict(safe=False, categories=("S1",), score=0.9)
    assert merge([SAFE, SAFE]) == SAFE
    assert merge([a, SAFE, b]) == Verdict(safe=False, categories=("S1", "S9"), score=0.9)
