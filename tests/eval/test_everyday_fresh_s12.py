"""Issue #26, session 12: the second fresh everyday pt-BR set (benchmarks/data/everyday_fresh_s12.jsonl) is the one
committed before any model answered it, has the old sets' kinds, repeats no question of either earlier set
(everyday_ptbr.jsonl, everyday_fresh_s10.jsonl, both read and so dev), and its patterns judge plain right and
wrong answers as a reader would."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from lhama.eval.questions import is_right, read_questions

from tests.eval.test_everyday_fresh_s10 import content, jaccard

DATA = Path(__file__).parents[2] / "benchmarks" / "data"
FRESH = DATA / "everyday_fresh_s12.jsonl"
EARLIER = (DATA / "everyday_ptbr.jsonl", DATA / "everyday_fresh_s10.jsonl")
# Committed before any model read the set (its reading rule: docs/default-model.md, "Session 12 everyday").
MD5 = "9507e1dc75aa91c9c0fbeea5a2fdef03"


def test_the_set_is_the_one_committed_before_any_read():
    assert hashlib.md5(FRESH.read_bytes()).hexdigest() == MD5


def test_at_least_100_questions_of_the_old_kinds():
    fresh = read_questions(FRESH)
    kinds = {q.category for path in EARLIER for q in read_questions(path)}
    counts = Counter(q.category for q in fresh)
    assert len(fresh) >= 100 and set(counts) == kinds
    assert min(counts.values()) >= 20


def test_no_question_nears_an_earlier_one():
    """Content words (folded, stop words out, numbers and quoted words kept) of every fresh question
    against every question of both earlier sets: a Jaccard of 0.6 or more is the same question."""
    earlier = [(q.question, content(q.question)) for path in EARLIER for q in read_questions(path)]
    near = [(q.question, text) for q in read_questions(FRESH) for text, words in earlier
            if jaccard(content(q.question), words) >= 0.6]
    assert near == []


def test_patterns_judge_plain_answers():
    by_id = {q.id: q for q in read_questions(FRESH)}
    right = {"g002": "A capital do Rio Grande do Norte é Natal.", "g017": "Juscelino Kubitschek (JK).",
             "g019": "O Acre fica na região Norte.", "g033": "A água congela a 0 °C.", "g046": "A raiz quadrada de 64 é 8.",
             "g053": "6 + 2 x 5 = 6 + 10 = 16.", "g056": "O troco é de 57 reais.", "g060": "Há 23 passageiros agora.",
             "g072": "Em casa de ferreiro, o espeto é de pau.", "g077": "O aumentativo de 'cão' é 'canzarrão'.",
             "g083": "Ligue 199.", "g090": "Não corra; fique parado e calmo.", "g109": "O pronome substitui ou acompanha o substantivo.",
             "g101": "Um vírus é um agente infeccioso microscópico que só se reproduz dentro de células.",
             "g114": "Um número primo só é divisível por 1 e por ele mesmo."}
    wrong = {"g002": "A capital do Rio Grande do Norte é Fortaleza.", "g019": "O Acre fica na região Nordeste.",
             "g033": "A água congela a 100 graus Celsius.", "g053": "6 + 2 x 5 = 8 x 5 = 40.", "g056": "O troco é de 67 reais.",
             "g060": "Há 37 passageiros agora.", "g072": "Em casa de ferreiro, o espeto é de ferro.",
             "g077": "O aumentativo de 'cão' é 'cãozinho'.", "g083": "Ligue 190.", "g046": "A raiz quadrada de 64 é 32.",
             "g027": "O menor planeta é Plutão.", "g040": "O Japão fica na Europa.", "g044": "91 dividido por 7 é 12.",
             "g109": "Um pronome é uma palavra que indica uma ação.", "g107": "A Constituição é um livro de histórias antigas."}
    assert [i for i, a in right.items() if not is_right(a, by_id[i])] == []
    assert [i for i, a in wrong.items() if is_right(a, by_id[i])] == []
