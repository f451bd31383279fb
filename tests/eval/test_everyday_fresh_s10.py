"""Issue #26, session 10: the fresh everyday pt-BR set (benchmarks/data/everyday_fresh_s10.jsonl) is the one
committed before any model answered it, has the old set's kinds, repeats no old question, and its patterns
judge plain right and wrong answers as a reader would."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from lhama.eval.metrics import fold_text
from lhama.eval.questions import is_right, read_questions

DATA = Path(__file__).parents[2] / "benchmarks" / "data"
FRESH = DATA / "everyday_fresh_s10.jsonl"
OLD = DATA / "everyday_ptbr.jsonl"
# The set as read once in session 10 had md5 3801f32b4c42312417a63ac82d5b9915 (0097ce8; reading rule:
# docs/default-model.md, "Session 10 (#26)"). It is dev since; session 12 revised six patterns after reading
# answers (grader fix, "Session 12 everyday"): the questions are the read ones (QUESTIONS_MD5), the file is MD5.
MD5 = "707078f3805a758ffbce566efca6b1f7"
QUESTIONS_MD5 = "066dba068e9ff0b2fa3aa336405259c4"  # id, category and question of every line, as read in session 10
# words too common in questions to say two questions ask the same thing
STOP = set("qual quais que quem como onde quando quanto quantos quantas para por com sem uma uns umas dos das nos nas "
           "num numa sao ser tem esta isso isto voce meu minha seu sua ele ela mais muito entre sobre pelo pela nosso "
           "nossa hoje".split())


def content(question: str) -> set[str]:
    """The words that say what a question asks: folded, stop words out; numbers and quoted words kept."""
    return {w for w in fold_text(question).split() if (len(w) >= 3 or w.isdigit()) and w not in STOP}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def test_the_questions_are_the_ones_read_and_the_patterns_the_revised_ones():
    rows = "\n".join(f"{q.id}\t{q.category}\t{q.question}" for q in read_questions(FRESH))
    assert hashlib.md5(rows.encode()).hexdigest() == QUESTIONS_MD5
    assert hashlib.md5(FRESH.read_bytes()).hexdigest() == MD5


def test_at_least_100_questions_of_the_old_kinds():
    fresh, old = read_questions(FRESH), read_questions(OLD)
    counts = Counter(q.category for q in fresh)
    assert len(fresh) >= 100 and set(counts) == {q.category for q in old}
    assert min(counts.values()) >= 20


def test_no_fresh_question_nears_an_old_one():
    """Same template with other numbers or words is allowed ("6 vezes 9" against "7 vezes 8"); the same
    content words (a Jaccard of 0.6 or more) are not."""
    old = [(q.question, content(q.question)) for q in read_questions(OLD)]
    near = [(q.question, text) for q in read_questions(FRESH) for text, words in old
            if jaccard(content(q.question), words) >= 0.6]
    assert near == []
    assert jaccard(content("Quanto é 6 vezes 9?"), content("Quanto é 7 vezes 8?")) < 0.6
    assert jaccard(content("Qual é a capital da França?"), content("Qual é a capital da França hoje?")) >= 0.6


def test_patterns_judge_plain_answers():
    by_id = {q.id: q for q in read_questions(FRESH)}
    right = {"f001": "A capital do Ceará é Fortaleza.", "f018": "Dom Pedro II.", "f028": "Ottawa.",
             "f037": "O símbolo do ouro é Au.", "f066": "15 x 4 = 60.", "f068": "20 - 4 x 3 = 20 - 12 = 8.",
             "f069": "Há 1.000 metros em um quilômetro.", "f077": "Limões.", "f088": "De grão em grão, a galinha enche o papo.",
             "f125": "A Via Láctea é a galáxia onde fica o Sistema Solar."}
    wrong = {"f001": "A capital do Ceará é Recife.", "f018": "Dom Pedro I.", "f068": "(20 - 4) x 3 = 48.",
             "f069": "Há 100 metros em um quilômetro.", "f077": "Limãos.", "f062": "10% de 350 é 3,5.",
             "f073": "Sobraram 4 pedaços de 8."}
    assert [i for i, a in right.items() if not is_right(a, by_id[i])] == []
    assert [i for i, a in wrong.items() if is_right(a, by_id[i])] == []


def test_session_12_revised_patterns_judge_plain_answers():
    """The six patterns revised in session 12: each accepts the right answer it missed (or rejects the
    wrong one it passed) and still rejects a plain wrong answer."""
    by_id = {q.id: q for q in read_questions(FRESH)}
    right = {"f039": "A Grande Muralha é chinesa.", "f119": "É quando a superfície da Terra se desloca de repente.",
             "f129": "É o menor valor que um patrão pode pagar a um trabalhador por mês.",
             "f131": "Um lugar quente, quase sem água.", "f135": "Um profissional da saúde dentária.",
             "f118": "Um adjetivo é a palavra que dá uma qualidade ao substantivo."}
    wrong = {"f039": "Fica no Japão.", "f119": "Um terremoto é uma chuva muito forte.", "f129": "É o salário dos deputados.",
             "f131": "Um deserto é uma floresta úmida.", "f135": "Um médico que cuida dos olhos.",
             "f118": "Um adjetivo é um substantivo que modifica outro substantivo, indicando características."}
    assert [i for i, a in right.items() if not is_right(a, by_id[i])] == []
    assert [i for i, a in wrong.items() if is_right(a, by_id[i])] == []
