"""Glossary: terms to keep as they are (names, brands) or to force to a given translation.

The file is UTF-8 TSV, one term a line, ``#`` starts a comment::

    Tux                 # keep: copied unchanged
    skateboard<TAB>skate  # force: always rendered as "skate"

Terms match whole words, case-insensitively; a forced target takes the capital of the source
("Skateboard" -> "Skate"). Matches become protected spans (see :mod:`.spans`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError


@dataclass(frozen=True)
class Glossary:
    """Source terms mapped to their target (equal to the source for kept terms)."""

    terms: tuple[tuple[str, str], ...] = ()

    @property
    def pattern(self) -> re.Pattern[str] | None:
        if not self.terms:
            return None
        # Longest first, so "New York City" wins over "New York".
        alternatives = sorted((re.escape(s) for s, _ in self.terms), key=len, reverse=True)
        return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)

    def matches(self, text: str) -> list[tuple[int, int, str, str]]:
        """``(start, end, kind, target)`` for every term in ``text``."""
        pattern = self.pattern
        if pattern is None:
            return []
        lookup = {s.lower(): t for s, t in self.terms}
        found = []
        for m in pattern.finditer(text):
            source, target = m.group(), lookup[m.group().lower()]
            if target.lower() == source.lower():
                found.append((m.start(), m.end(), "glossary", source))
                continue
            if source[:1].isupper():
                target = target[:1].upper() + target[1:]
            found.append((m.start(), m.end(), "glossary", target))
        return found


def load_glossary(path: Path | None) -> Glossary:
    """Read a glossary TSV; ``None`` gives an empty glossary.

    Raises:
        DataError: the file is missing, not UTF-8, or a line has more than two columns.
    """
    if path is None:
        return Glossary()
    if not path.is_file():
        raise DataError(f"glossary file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"glossary {path} is not UTF-8 text") from None
    terms = []
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) > 2 or not cols[0]:
            raise DataError(f"glossary {path} line {number}: expected 'term' or 'term<TAB>translation'")
        terms.append((cols[0], cols[1] if len(cols) == 2 and cols[1] else cols[0]))
    return Glossary(tuple(terms))
