"""Pure metric functions: AdMIRe ranking scores, VQA accuracy, chrF/BLEU, classification scores.

Nothing here touches a model or a file; every function takes plain Python values, so each can be
checked on hand-worked cases.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence

from lhama.errors import DataError

# AdMIRe Subtask A: only the expected first and second images carry weight (3 and 1).
DCG_WEIGHTS = (3.0, 1.0, 0.0, 0.0, 0.0)
GROUPS = ("all", "idiomatic", "literal")


def top1(expected: Sequence[str], predicted: Sequence[str]) -> float:
    """1.0 when the predicted first image is the expected first image, else 0.0."""
    _check_same_items(expected, predicted)
    return float(predicted[0] == expected[0])


def dcg(expected: Sequence[str], predicted: Sequence[str], weights: Sequence[float] = DCG_WEIGHTS) -> float:
    """AdMIRe DCG: sum over the expected order of ``weight_i / log2(2 + p_i)``, where ``p_i`` is
    the 0-based position in ``predicted`` of the i-th expected image (perfect: 3 + 1/log2 3)."""
    _check_same_items(expected, predicted)
    position = {name: i for i, name in enumerate(predicted)}
    return sum(w / math.log2(2 + position[name]) for w, name in zip(weights, expected) if w)


def spearman(expected: Sequence[str], predicted: Sequence[str]) -> float:
    """Spearman's rank correlation of two orders of the same items (no ties): 1 - 6Σd²/(n(n²-1))."""
    _check_same_items(expected, predicted)
    n = len(expected)
    if n < 2:
        return 1.0
    position = {name: i for i, name in enumerate(predicted)}
    d2 = sum((i - position[name]) ** 2 for i, name in enumerate(expected))
    return 1.0 - 6.0 * d2 / (n * (n * n - 1))


def ranking_metrics(rows: Sequence[tuple[Sequence[str], Sequence[str], str]]) -> dict[str, dict[str, float | None]]:
    """Mean top-1, DCG and Spearman over ``(expected, predicted, sentence_type)`` rows, for all
    rows and for the idiomatic and literal ones; a group with no rows gets ``None``."""
    scores: dict[str, dict[str, float | None]] = {}
    for name, fn in (("top1", top1), ("dcg", dcg), ("spearman", spearman)):
        per_row = [(fn(e, p), t) for e, p, t in rows]
        scores[name] = {g: _mean([s for s, t in per_row if g == "all" or t == g]) for g in GROUPS}
    return scores


def group_counts(types: Sequence[str]) -> dict[str, int]:
    """How many rows fall in each of :data:`GROUPS`."""
    return {g: sum(1 for t in types if g == "all" or t == g) for g in GROUPS}


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of positions where ``predicted`` equals ``gold``."""
    _check_lengths(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold) if gold else 0.0


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean over ``labels`` (default: the gold labels) of per-label F1."""
    _check_lengths(gold, predicted)
    labels = sorted(set(gold)) if labels is None else list(labels)
    f1s = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _check_same_items(expected: Sequence[str], predicted: Sequence[str]) -> None:
    if sorted(expected) != sorted(predicted):
        raise DataError(f"predicted order {list(predicted)} is not a permutation of {list(expected)}")


def _check_lengths(gold: Sequence[str], predicted: Sequence[str]) -> None:
    if len(gold) != len(predicted):
        raise DataError(f"{len(predicted)} predictions for {len(gold)} gold labels")


# --- VQA (VQAv2-style answer normalisation) -----------------------------------------------

_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {"dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "cant": "can't",
                 "wont": "won't", "wasnt": "wasn't", "werent": "weren't", "hasnt": "hasn't", "havent": "haven't",
                 "shouldnt": "shouldn't", "couldnt": "couldn't", "wouldnt": "wouldn't", "im": "i'm",
                 "ive": "i've", "youre": "you're", "theyre": "they're", "thats": "that's", "whats": "what's"}
_PUNCT = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$:|~]")
# A period is punctuation unless it sits inside a number ("2.5" keeps it).
_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")


def normalize_answer(answer: str) -> str:
    """VQAv2-style normalisation: lower case, punctuation dropped (a comma between digits too),
    number words to digits, articles removed, common contractions restored."""
    text = answer.replace("\n", " ").replace("\t", " ").strip().lower()
    text = re.sub(r"(?<=\d),(?=\d)", "", text)
    text = _PERIOD.sub("", _PUNCT.sub(" ", text))
    words = [_CONTRACTIONS.get(w, _NUMBERS.get(w, w)) for w in text.split()]
    return " ".join(w for w in words if w not in _ARTICLES)


def vqa_accuracy(predicted: str, answers: Sequence[str]) -> float:
    """Accuracy of one answer against the reference answers, after :func:`normalize_answer`.

    With 10 human answers (VQAv2), the official formula: the mean over the 10 leave-one-out
    subsets of ``min(1, matches / 3)``. With fewer references (one gold answer, as in easy-VQA),
    exact match against any of them.
    """
    if not answers:
        raise DataError("a question has no reference answers")
    pred = normalize_answer(predicted)
    refs = [normalize_answer(a) for a in answers]
    if len(refs) < 10:
        return float(pred in refs)
    scores = [min(1.0, sum(r == pred for j, r in enumerate(refs) if j != i) / 3) for i in range(len(refs))]
    return sum(scores) / len(scores)


# --- Text generation: chrF and BLEU (sacrebleu) ----------------------------------------------

def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2), 0-100. ``references`` holds
    one list per reference set, each aligned with ``hypotheses``."""
    import sacrebleu  # imported here: only the caption and translation evaluations need it

    _check_reference_sets(hypotheses, references)
    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(r) for r in references]).score)


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu defaults, 13a tokenisation), 0-100; same layout as :func:`chrf`."""
    import sacrebleu

    _check_reference_sets(hypotheses, references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(r) for r in references]).score)


def _check_reference_sets(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    for refs in references:
        _check_lengths(refs, hypotheses)


def mean_by(values: Mapping[str, Sequence[float]]) -> dict[str, float | None]:
    """Mean of each named list of values (``None`` for an empty one)."""
    return {name: _mean(list(v)) for name, v in values.items()}


# Function words, and the form words of the Tux Paint captions ("A letra q.", "O gesto para a
# letra O na Linguagem Americana de Sinais."), which a caption can share without naming anything.
FORM_WORDS = frozenset(
    "um uma uns umas o a os as de do da dos das e ou em no na nos nas ao aos à às para por com sem que se "
    "é são está letra gesto número imagem figura linguagem americana sinais".split())


def content_words(text: str) -> set[str]:
    """Lowercased words of three or more letters that are not in :data:`FORM_WORDS`."""
    return {w for w in wer_words(text) if len(w) >= 3 and w not in FORM_WORDS}


def content_word_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Share of hypotheses that share at least one content word with their reference: a crude
    "does it name the thing" rate that chrF lacks (chrF also rewards a caption's form). A
    single-letter answer ("A letra n.") never counts, right or wrong.

    Raises:
        DataError: different lengths, or none at all."""
    _check_lengths(references, hypotheses)
    if not hypotheses:
        raise DataError("no captions to compare")
    return sum(bool(content_words(h) & content_words(r)) for h, r in zip(hypotheses, references)) / len(hypotheses)


def wer_words(text: str) -> list[str]:
    """Words for WER: lowercase, punctuation removed (accents kept: "é" and "e" differ in pt)."""
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions + deletions + insertions) between two sequences:
    characters of two strings, or words of two lists."""
    previous = list(range(len(hyp) + 1))  # distances from the empty reference prefix
    for i, item in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item != other)))
        previous = current
    return previous[-1]


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level edit distance after :func:`wer_words`."""
    return edit_distance(wer_words(reference), wer_words(hypothesis))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: total word errors / total reference words (can exceed 1 with insertions).

    Raises:
        DataError: different lengths, or no reference word at all."""
    _check_lengths(references, hypotheses)
    words = sum(len(wer_words(r)) for r in references)
    if words == 0:
        raise DataError("WER needs at least one reference word")
    return sum(word_errors(r, h) for r, h in zip(references, hypotheses)) / words


# --- Naming: does an answer name the thing in the picture? ------------------------------------

def fold_text(text: str) -> str:
    """Lowercase, accents removed, hyphens and other punctuation as spaces, spaces collapsed
    ("Urso-Pardo!" -> "urso pardo", "tênis" -> "tenis")."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))  # ’ -> '
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w']+|_", " ", plain).split())


def names_thing(answer: str, accepted: Sequence[str]) -> bool:
    """True when ``answer`` contains one of the ``accepted`` names as whole words, ignoring case,
    accents and hyphens ("Um urso pardo." names "urso-pardo"; "galinhas" does not name "galinha",
    "pimentão" does not name "pimenta": list the forms you accept).

    Raises:
        DataError: no accepted name, or an accepted name without a letter or digit."""
    names = [fold_text(a) for a in accepted]
    if not names or not all(names):
        raise DataError(f"a naming item needs non-empty accepted names, got {list(accepted)!r}")
    text = f" {fold_text(answer)} "
    return any(f" {name} " in text for name in names)


def naming_rate(answers: Sequence[str], accepted: Sequence[Sequence[str]]) -> float:
    """Share of ``answers`` that name their item (:func:`names_thing`), 0-1.

    Raises:
        DataError: different lengths, or no answers at all."""
    _check_lengths(accepted, answers)
    if not answers:
        raise DataError("no answers to score")
    return sum(names_thing(a, names) for a, names in zip(answers, accepted)) / len(answers)
