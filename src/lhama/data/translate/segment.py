"""Cut a turn's text into layout and sentences, and glue translations back in the same layout.

A turn value becomes a list of :class:`Piece`: ``keep`` pieces are copied byte-exact (media
tags with their newline, fenced code blocks, line and paragraph breaks, list markers,
indentation, leading/trailing blanks, pieces without letters); ``text`` pieces are split into
sentences (grouped into units of up to ``UNIT_CHARS``) so long answers can be batched.
:func:`join` rebuilds the turn from the pieces and the translated units, reusing the original
whitespace between them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MEDIA_TAGS = ("<image>", "<video>", "<audio>")
# Short sentences translate better with their neighbours ("Fire! Fire!" -> "Fogo! Fogo!",
# alone each becomes "O fogo!"); long units slow Bergamot down and risk dropped clauses.
UNIT_CHARS = 200

_KEEP = re.compile(
    r"(?ms)(?:^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z))"  # fenced code, to its fence or the end
    r"|<image>|<video>|<audio>"
    r"|[ \t]*\n(?:[ \t]*\n)*"  # line and paragraph breaks (the next line's indent is separate)
    r"|^[ \t]*(?:[-*•+]|\d{1,3}[.)]|#{1,6})[ \t]+"  # list markers and headings
    r"|^[ \t]+"
)
_LETTER = re.compile(r"[^\W\d_]")
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by blanks and a capital/digit.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*([ \t]+)(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr vs etc e.g i.e approx no fig inc ltd co mt ft".split()
)


@dataclass(frozen=True)
class Piece:
    """A run of a turn's text: copied as is (``keep``) or translated sentence by sentence."""

    kind: str  # "keep" | "text"
    text: str
    sentences: tuple[str, ...] = ()
    separators: tuple[str, ...] = ()  # whitespace after each sentence but the last


def split_layout(value: str, max_chars: int = UNIT_CHARS) -> list[Piece]:
    """Split ``value`` into keep/text pieces; ``"".join(p.text for p in pieces) == value``.

    A text piece's ``sentences`` are translation units: consecutive sentences grouped up to
    ``max_chars`` characters (a longer sentence stays whole).
    """
    pieces: list[Piece] = []
    pos = 0
    for m in _KEEP.finditer(value):
        if m.start() == m.end():
            continue
        _add_text(pieces, value[pos : m.start()], max_chars)
        pieces.append(Piece("keep", m.group()))
        pos = m.end()
    _add_text(pieces, value[pos:], max_chars)
    return pieces


def _add_text(pieces: list[Piece], text: str, max_chars: int) -> None:
    """Append ``text`` as a text piece, its outer blanks (and letterless text) as keep pieces."""
    if not text:
        return
    body = text.strip()
    if not _LETTER.search(body):
        pieces.append(Piece("keep", text))
        return
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    if lead:
        pieces.append(Piece("keep", lead))
    sentences, separators = group(*split_sentences(body), max_chars)
    pieces.append(Piece("text", body, sentences, separators))
    if trail:
        pieces.append(Piece("keep", trail))


def split_sentences(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sentences of one line of prose and the whitespace between them."""
    sentences, separators, start = [], [], 0
    for m in _BOUNDARY.finditer(text):
        head = text[start : m.start(1)]
        last_word = head.rsplit(None, 1)[-1].rstrip(".").lower() if head.strip() else ""
        if last_word in _ABBREVIATIONS or len(last_word) == 1:
            continue  # "Dr. Smith", "J. Doe": not a sentence end
        sentences.append(head)
        separators.append(m.group(1))
        start = m.end(1)
    sentences.append(text[start:])
    return tuple(sentences), tuple(separators)


def group(
    sentences: tuple[str, ...], separators: tuple[str, ...], max_chars: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Merge neighbouring sentences (with their original blanks) while under ``max_chars``."""
    units, seps = [sentences[0]], []
    for sep, sentence in zip(separators, sentences[1:]):
        if len(units[-1]) + len(sep) + len(sentence) <= max_chars:
            units[-1] += sep + sentence
        else:
            units.append(sentence)
            seps.append(sep)
    return tuple(units), tuple(seps)


def join(pieces: list[Piece], translations: dict[tuple[int, int], str]) -> str:
    """Rebuild the turn; ``translations[(piece_index, sentence_index)]`` replaces a sentence."""
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if piece.kind == "keep":
            out.append(piece.text)
            continue
        for j, _ in enumerate(piece.sentences):
            out.append(translations[(i, j)])
            if j < len(piece.separators):
                out.append(piece.separators[j])
    return "".join(out)


def media_layout(value: str) -> list[tuple[str, str, str]]:
    """Each media tag with what is right before and after it (a blank, an edge, or text).

    Two values with equal ``media_layout`` have their tags at the same places relative to the
    text (first or last, with the same newline).
    """
    layout = []
    for m in re.finditer("|".join(MEDIA_TAGS), value):
        before = value[m.start() - 1] if m.start() else "^"
        after = value[m.end()] if m.end() < len(value) else "$"
        layout.append((m.group(), _edge(before), _edge(after)))
    return layout


def _edge(char: str) -> str:
    return char if char.isspace() or char in "^$" else "text"
