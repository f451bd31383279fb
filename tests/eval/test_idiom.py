import pytest

from lhama.eval.admire import SentenceItem
from lhama.eval.idiom import IdiomConfig, classify_senses, evaluate_idiom, pick_shots, score_senses, sense_messages

TRAIN = [SentenceItem(f"c{i}", f"frase {i}", "idiomatic" if i % 3 else "literal") for i in range(9)]
DEV = [SentenceItem("livro aberto", "Ela é um livro aberto.", "idiomatic"),
       SentenceItem("cerca viva", "A cerca viva cresceu.", "literal")]


def test_few_shot_messages_alternate_and_end_with_the_question():
    shots = pick_shots(TRAIN, 4, seed=0)
    assert sorted(s.sentence_type for s in shots) == ["idiomatic", "idiomatic", "literal", "literal"]
    messages = sense_messages("livro aberto", "Ela é um livro aberto.", "pt", shots)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4 + ["user"]
    assert messages[1]["content"] in ("idiomático", "literal")
    assert "livro aberto" in messages[-1]["content"] and "Responda idiomático ou literal" in messages[-1]["content"]


def test_classify_returns_a_label_per_item(tiny_lm):
    labels = classify_senses(tiny_lm, DEV, "pt")
    assert len(labels) == 2 and set(labels) <= {"idiomatic", "literal"}


def test_scores_on_known_predictions():
    result = score_senses("x", DEV, ["idiomatic", "idiomatic"])
    assert result.accuracy == 0.5
    assert result.macro_f1 == pytest.approx((2 / 3 + 0) / 2)


def test_evaluate_idiom_systems(tiny_lm):
    results = evaluate_idiom(tiny_lm, DEV, TRAIN, IdiomConfig("en", shots=2))
    assert [r.system.split(" ", 1)[-1] for r in results][1:] == ["zero-shot", "2-shot"]
    assert results[0].system == "majority (idiomatic)" and results[0].accuracy == 0.5


def test_labels_are_cached_and_reused(tmp_path, tiny_lm):
    cfg = IdiomConfig("pt", shots=0, cache=tmp_path / "c.jsonl")
    first = evaluate_idiom(tiny_lm, DEV, (), cfg)[0]
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert len(lines) == 1 + len(DEV)  # meta + one label per item
    flipped = {"idiomatic": "literal", "literal": "idiomatic"}
    rewritten = [lines[0]] + [line.replace(f'"{lab}"', f'"{flipped[lab]}"') for line, lab in zip(lines[1:], first.predictions)]
    (tmp_path / "c.jsonl").write_text("\n".join(rewritten) + "\n")
    again = evaluate_idiom(tiny_lm, DEV, (), cfg)[0]
    assert again.predictions == tuple(flipped[lab] for lab in first.predictions)
