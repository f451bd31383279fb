"""Per-record quality checks of a translation against its source.

Two checks *reject* a record (it is never written): a protected span (media tag and its
position, code, URL, bounding box) that is missing or altered, and a number of the source that
is missing from the translation. Three only *flag* it in the report: text still in English
(py3langid), a length ratio outside a normal en->pt band, and repeated n-gram loops, the
typical hallucination of MT models.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lhama.data.translate.segment import MEDIA_TAGS, media_layout
from lhama.data.translate.spans import INLINE_PATTERNS, number_counts

REJECTING = ("protected_span", "dropped_number")
FLAGGING = ("still_english", "length_ratio", "repetition")
_FENCE = re.compile(r"(?ms)^[ \t]*(```|~~~).*?(?:^[ \t]*\1[ \t]*$|\Z)")
_STRUCTURE = [re.compile(p) for kind, p in INLINE_PATTERNS if kind != "number"]
_WORD = re.compile(r"\w+")
_LANGUAGES = ["en", "pt", "es", "gl", "fr", "it", "de", "ca"]  # pt's neighbours, to be fair


@dataclass(frozen=True)
class Thresholds:
    """When a flag is raised; defaults suit en->pt (Portuguese runs ~10-25% longer)."""

    min_words_langid: int = 5
    min_chars_ratio: int = 30
    ratio_low: float = 0.6
    ratio_high: float = 2.0
    ngram: int = 3
    loop_count: int = 4


class QualityChecker:
    """Runs every check; owns the language identifier (loaded once, ~0.6 s)."""

    def __init__(self, thresholds: Thresholds = Thresholds()) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._langid = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._langid.set_languages(_LANGUAGES)
        self.t = thresholds

    def rejection(self, source: dict[str, Any], output: dict[str, Any]) -> str | None:
        """Why ``output`` must not be written, or None."""
        for i, (src, out) in enumerate(_values(source, output)):
            missing = _missing(_structure(src), _structure(out))
            if missing or media_layout(src) != media_layout(out):
                what = repr(missing[0]) if missing else "media tag position"
                return f"protected_span: turn {i} lost or altered {what}"
            dropped = _missing(number_counts(src), number_counts(out))
            if dropped:
                return f"dropped_number: turn {i} lost {dropped[0]!r}"
        return None

    def flags(self, source: dict[str, Any], output: dict[str, Any]) -> list[str]:
        """Names of the flagging checks that fire, each with the first turn concerned."""
        found: dict[str, int] = {}
        for i, (src, out) in enumerate(_values(source, output)):
            for name in self._turn_flags(src, out):
                found.setdefault(name, i)
        return [f"{name}: turn {i}" for name, i in found.items()]

    def _turn_flags(self, src: str, out: str) -> list[str]:
        names = []
        prose = _prose(out)
        if len(_WORD.findall(prose)) >= self.t.min_words_langid and self._langid.classify(prose)[0] == "en":
            names.append("still_english")
        ratio = len(out) / len(src)
        if len(src) >= self.t.min_chars_ratio and not self.t.ratio_low <= ratio <= self.t.ratio_high:
            names.append("length_ratio")
        if _max_ngram(out, self.t.ngram) >= max(self.t.loop_count, 2 * _max_ngram(src, self.t.ngram)):
            names.append("repetition")
        return names


def _values(source: dict[str, Any], output: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["value"], o["value"]) for s, o in zip(source["conversations"], output["conversations"])]


def _structure(text: str) -> Counter[str]:
    """Media tags, fenced code, inline code, URLs and boxes of ``text``, with their counts."""
    found = Counter(m.group() for m in _FENCE.finditer(text))
    rest = _FENCE.sub("", text)
    found.update(tag for tag in MEDIA_TAGS for _ in range(rest.count(tag)))
    for pattern in _STRUCTURE:
        found.update(pattern.findall(rest))
    return found


def _missing(source: Counter[str], output: Counter[str]) -> list[str]:
    return sorted((source - output).keys())


def _prose(text: str) -> str:
    """``text`` without code, URLs and media tags: what a language identifier should see."""
    text = _FENCE.sub(" ", text)
    for pattern in _STRUCTURE:
        text = pattern.sub(" ", text)
    for tag in MEDIA_TAGS:
        text = text.replace(tag, " ")
    return text


def _max_ngram(text: str, n: int) -> int:
    words = _WORD.findall(text.lower())
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return max(grams.values(), default=0)
