import math

import pytest

from lhama.errors import DataError
from lhama.eval.metrics import (accuracy, bleu, chrf, content_word_match, dcg, macro_f1, normalize_answer, ranking_metrics, spearman,
                                top1, vqa_accuracy)

GOLD = ["a", "b", "c", "d", "e"]


def test_dcg_perfect_ranking_is_3_plus_1_over_log2_3():
    assert dcg(GOLD, GOLD) == pytest.approx(3 + 1 / math.log2(3))
    assert dcg(GOLD, GOLD) == pytest.approx(3.631, abs=5e-4)


def test_dcg_swapped_first_two():
    # expected first now at position 1 -> 3/log2(3); expected second at position 0 -> 1/log2(2) = 1
    assert dcg(GOLD, ["b", "a", "c", "d", "e"]) == pytest.approx(3 / math.log2(3) + 1)


def test_dcg_expected_first_at_position_4_and_second_last():
    # a at 0-based position 3 -> 3/log2(5); b at position 4 -> 1/log2(6)
    assert dcg(GOLD, ["c", "d", "e", "a", "b"]) == pytest.approx(3 / math.log2(5) + 1 / math.log2(6))


def test_dcg_ignores_order_below_second():
    assert dcg(GOLD, ["a", "b", "e", "d", "c"]) == dcg(GOLD, GOLD)


def test_top1():
    assert top1(GOLD, GOLD) == 1.0
    assert top1(GOLD, ["b", "a", "c", "d", "e"]) == 0.0


def test_spearman_identity_reverse_and_swap():
    assert spearman(GOLD, GOLD) == 1.0
    assert spearman(GOLD, list(reversed(GOLD))) == -1.0
    # one adjacent swap: sum d^2 = 2 -> 1 - 12/120 = 0.9
    assert spearman(GOLD, ["b", "a", "c", "d", "e"]) == pytest.approx(0.9)


def test_prediction_must_be_a_permutation():
    with pytest.raises(DataError, match="not a permutation"):
        dcg(GOLD, ["a", "b", "c", "d", "x"])


def test_ranking_metrics_groups():
    rows = [(GOLD, GOLD, "idiomatic"), (GOLD, ["b", "a", "c", "d", "e"], "literal"), (GOLD, GOLD, "literal")]
    m = ranking_metrics(rows)
    assert m["top1"] == {"all": pytest.approx(2 / 3), "idiomatic": 1.0, "literal": 0.5}
    assert m["dcg"]["literal"] == pytest.approx((3 / math.log2(3) + 1 + dcg(GOLD, GOLD)) / 2)
    assert m["spearman"]["idiomatic"] == 1.0
    only_literal = ranking_metrics([(GOLD, GOLD, "literal")])
    assert only_literal["top1"]["idiomatic"] is None


def test_accuracy_and_macro_f1_hand_worked():
    gold = ["idiomatic", "idiomatic", "literal", "literal"]
    pred = ["idiomatic", "literal", "literal", "literal"]
    assert accuracy(gold, pred) == 0.75
    # idiomatic: tp1 fp0 fn1 -> 2/3; literal: tp2 fp1 fn0 -> 4/5; mean = 11/15
    assert macro_f1(gold, pred) == pytest.approx(11 / 15)
    assert macro_f1(gold, ["literal"] * 4, ["idiomatic", "literal"]) == pytest.approx((0 + 2 * 2 / (4 + 2)) / 2)


def test_vqa_normalisation():
    assert normalize_answer("  The Circle. ") == "circle"
    assert normalize_answer("Two") == "2"
    assert normalize_answer("yes!") == "yes"
    assert normalize_answer("dont know") == "don't know"
    assert normalize_answer("2.5") == "2.5"
    assert normalize_answer("1,000") == "1000"


def test_vqa_accuracy_single_reference_is_exact_match():
    assert vqa_accuracy("Circle.", ["circle"]) == 1.0
    assert vqa_accuracy("square", ["circle"]) == 0.0


def test_vqa_accuracy_ten_humans_official_formula():
    answers = ["red"] * 2 + ["blue"] * 8
    # leave-one-out: 2 subsets drop a "red" (1 match -> 1/3), 8 keep both (2 -> 2/3)
    assert vqa_accuracy("red", answers) == pytest.approx((2 * (1 / 3) + 8 * (2 / 3)) / 10)
    assert vqa_accuracy("blue", answers) == 1.0


def test_chrf_and_bleu():
    refs = [["Um sapo.", "Uma chaleira elétrica."]]
    assert chrf(["Um sapo.", "Uma chaleira elétrica."], refs) == pytest.approx(100.0)
    assert bleu(["Um sapo.", "Uma chaleira elétrica."], refs) == pytest.approx(100.0)
    assert 0 < chrf(["Um sapo verde.", "Uma chaleira."], refs) < 100
    with pytest.raises(DataError):
        chrf(["só uma"], refs)


def test_word_errors_hand_worked() -> None:
    from lhama.eval.metrics import word_error_rate, word_errors, wer_words

    assert wer_words("Um sapo, verde!") == ["um", "sapo", "verde"]
    assert word_errors("um sapo verde", "um sapo verde") == 0
    assert word_errors("um sapo verde", "um sapo") == 1  # deletion
    assert word_errors("um sapo", "um sapo sapo verde") == 2  # insertions
    assert word_errors("um sapo verde", "uma sapa verde") == 2  # substitutions
    assert word_errors("Um Sapo.", "um sapo") == 0  # case and punctuation ignored
    assert word_errors("é", "e") == 1  # accents are kept
    assert word_error_rate(["um sapo verde", "uma casa"], ["um sapo", "uma casa azul grande"]) == 3 / 5
    with pytest.raises(DataError):
        word_error_rate(["um"], [])
    with pytest.raises(DataError):
        word_error_rate(["..."], ["x"])


def test_content_word_match_counts_named_things_not_caption_form():
    references = ["Uma coruja.", "A letra q.", "O gesto para a letra O na Linguagem Americana de Sinais.", "Um sapo verde."]
    hypotheses = ["Uma Coruja branca!", "A letra q.", "O gesto para a letra A na Linguagem Americana de Sinais.", "Uma vaca."]
    # the owl is named; an exact letter and a shared sign-language sentence are form, not naming
    assert content_word_match(hypotheses, references) == 0.25


def test_content_word_match_needs_matching_nonempty_lists():
    with pytest.raises(DataError):
        content_word_match(["Uma coruja."], [])
    with pytest.raises(DataError, match="no captions"):
        content_word_match([], [])


# --- naming -------------------------------------------------------------------------------------

from lhama.eval.metrics import fold_text, names_thing, naming_rate  # noqa: E402


def test_fold_text_drops_case_accents_and_hyphens():
    assert fold_text("Urso-Pardo!") == "urso pardo"
    assert fold_text("  O PINGUIM,  e o Tênis. ") == "o pinguim e o tenis"
    assert fold_text("galinha d’angola") == "galinha d'angola"


@pytest.mark.parametrize(("answer", "accepted", "named"), [
    ("Um urso pardo.", ["urso-pardo"], True),
    ("É um PINGUIM!", ["pinguim"], True),
    ("Isto é um pinguim-rei na neve.", ["pinguim"], True),  # a hyphenated compound contains it
    ("Uma bola de futebol", ["bola de futebol", "bola"], True),
    ("Uma bola de tenis.", ["bola de tênis"], True),  # the accent left out still names it
    ("Um caminhao de bombeiros", ["caminhão de bombeiros", "caminhão"], True),
    ("Um galo.", ["galinha", "frango"], False),
    ("Várias galinhas.", ["galinha"], False),  # whole words only: list plurals you accept
    ("Um pimentão amarelo.", ["pimenta"], False),
    ("Uma sereia", ["rei"], False),  # not inside another word
    ("", ["gato"], False),
])
def test_names_thing(answer, accepted, named):
    assert names_thing(answer, accepted) is named


def test_names_thing_needs_accepted_names():
    with pytest.raises(DataError, match="non-empty accepted names"):
        names_thing("um gato", [])
    with pytest.raises(DataError, match="non-empty accepted names"):
        names_thing("um gato", ["gato", " - "])


def test_naming_rate():
    answers = ["Um galo.", "Uma coruja.", "Um gato."]
    accepted = [["galo"], ["coruja", "mocho"], ["cachorro", "cão"]]
    assert naming_rate(answers, accepted) == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="2 predictions for 3"):
        naming_rate(answers[:2], accepted)
    with pytest.raises(DataError, match="no answers"):
        naming_rate([], [])


def test_edit_distance_counts_characters_or_words() -> None:
    from lhama.eval.metrics import edit_distance, word_errors

    assert edit_distance("galinha", "galinhas") == 1 and edit_distance("", "abc") == 3
    assert edit_distance(["o", "gato", "preto"], ["o", "cão", "preto"]) == 1
    assert word_errors("Compre pão e leite.", "compre pão leite") == 1
