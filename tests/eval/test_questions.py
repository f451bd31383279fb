import json
from pathlib import Path

import pytest

from lhama.errors import DataError
from lhama.eval.questions import Question, fold_pattern, is_right, matches, read_questions, score

SHIPPED = Path(__file__).parents[2] / "benchmarks" / "data" / "everyday_ptbr.jsonl"


def q(accepted, rejected=(), category="c"):
    return Question("q1", category, "?", tuple(accepted), tuple(rejected))


def test_accents_case_and_punctuation_are_ignored():
    assert is_right("A capital do Brasil é Brasília.", q(["brasilia"]))
    assert is_right("BRASILIA", q(["Brasília"]))
    assert not is_right("A capital é São Paulo.", q(["brasilia"]))


def test_whole_words_only_unless_the_pattern_says_otherwise():
    assert not matches("156 reais", "56")
    assert matches("7 x 8 = 56.", "56")
    assert not matches("desligar", "deslig")
    assert matches("Desligue o aparelho", r"deslig\w*")
    assert matches("cinquenta e seis", "56|cinquenta e seis")


def test_rejected_patterns_win():
    question = q(["sim"], rejected=["nao"])
    assert is_right("Sim, é.", question)
    assert not is_right("Sim... quer dizer, não.", question)


def test_fold_pattern_keeps_regex_syntax():
    assert fold_pattern(r"Pão|CIDADÃOS?\w*") == r"pao|cidadaos?\w*"


def test_score_by_category():
    questions = [q(["a"], category="x"), q(["b"], category="x"), q(["c"], category="y")]
    result = score(questions, ["a", "nada", "c"])
    assert result["all"] == {"n": 3, "right": 2, "rate": 0.667}
    assert result["x"] == {"n": 2, "right": 1, "rate": 0.5}
    assert result["y"]["right"] == 1
    with pytest.raises(DataError, match="2 answers for 3 questions"):
        score(questions, ["a", "b"])


def test_read_questions_errors_name_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    good = {"id": "a", "question": "Q?", "accepted": ["x"]}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", "accepted": []}) + "\n")
    with pytest.raises(DataError, match=r"q.jsonl:2: accepted must be"):
        read_questions(path)
    path.write_text(json.dumps({**good, "accepted": ["(unclosed"]}) + "\n")
    with pytest.raises(DataError, match=r"q.jsonl:1: the pattern '\(unclosed' is not a valid"):
        read_questions(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(DataError, match="ids used twice: a"):
        read_questions(path)
    path.write_text("not json\n")
    with pytest.raises(DataError, match="q.jsonl:1: not a question object"):
        read_questions(path)
    with pytest.raises(DataError, match="cannot read"):
        read_questions(tmp_path / "missing.jsonl")


def test_shipped_everyday_set():
    questions = read_questions(SHIPPED)
    assert len(questions) >= 100
    assert {q.category for q in questions} == {"brasil", "mundo", "aritmetica", "lingua", "pratico", "definicao"}
    by_id = {q.id: q for q in questions}
    capital = next(q for q in questions if q.question == "Qual é a capital do Brasil?")
    assert is_right("Brasília.", capital) and not is_right("São Paulo.", capital)
    assert len(by_id) == len(questions)


def test_shipped_patterns_judge_real_answers_right():
    """Grader fixes of issue #26 (session 2), on answers v2 gave: right ones are not marked wrong,
    a wrong one is not marked right."""
    by_id = {q.id: q for q in read_questions(SHIPPED)}
    assert is_right("Um substantivo é um termo que representa uma coisa, um objeto, um animal.", by_id["q111"])
    assert is_right("A maior floresta tropical do Brasil é a floresta do Amazonas.", by_id["q014"])
    assert is_right("A sigla PIX é uma forma de transação bancária rápida e segura.", by_id["q118"])
    assert not is_right("O Quênia fica no continente da África do Sul.", by_id["q054"])
    assert is_right("O Quênia fica na África.", by_id["q054"])
    assert is_right("O CPF é um número de identificação pessoal, de 11 dígitos.", by_id["q119"])
