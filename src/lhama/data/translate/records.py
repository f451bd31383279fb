"""Stream LLaVA-Instruct records from a JSON array or JSONL file in bounded memory.

A JSON array is decoded one element at a time with ``json.JSONDecoder.raw_decode`` over a
sliding text buffer, so a 229 MB file never sits in memory whole. Bytes are decoded as UTF-8
with ``surrogateescape``: an invalid byte inside a string does not stop the run, it marks that
record, which :func:`record_problem` then rejects with a reason.

Items are ``(index, record_or_None, problem_or_None)``: a JSONL line that is not JSON is a
per-record problem; a broken JSON array stops the whole run (nothing after it can be trusted).
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lhama.errors import DataError

Format = Literal["json", "jsonl"]
Item = tuple[int, Any, str | None]
ROLES = frozenset({"human", "gpt", "system"})
_CHUNK = 1 << 20
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class InputInfo:
    """What a first pass over the input found: its format, record count and content hash."""

    format: Format
    count: int
    sha256: str


def sniff_format(path: Path) -> Format:
    """``json`` for a top-level array, ``jsonl`` for one object a line.

    Raises:
        DataError: missing or empty file, or the first character is neither ``[`` nor ``{``.
    """
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        return "jsonl"
    what = "empty" if not head else "not JSON"
    raise DataError(f"{path} is {what}: expected a JSON array of records or JSONL (one record a line)")


def scan_input(path: Path) -> InputInfo:
    """Read the whole input once: check the JSON syntax, count records, hash the bytes."""
    fmt = sniff_format(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    count = sum(1 for _ in iter_records(path, fmt))
    return InputInfo(fmt, count, digest.hexdigest())


def iter_records(path: Path, fmt: Format, chunk: int = _CHUNK) -> Iterator[Item]:
    """Yield ``(index, record, problem)`` for every element of the input, in order.

    ``chunk`` is how many bytes a JSON array is read at a time (memory stays near it plus
    the largest record).
    """
    return _iter_array(path, chunk) if fmt == "json" else _iter_lines(path)


def _iter_lines(path: Path) -> Iterator[Item]:
    with path.open("rb") as f:
        index = 0
        for line_no, raw in enumerate(f, start=1):
            text = raw.decode("utf-8", errors="surrogateescape").strip()
            if not text:
                continue
            try:
                yield index, json.loads(text), None
            except json.JSONDecodeError as exc:  # the raw line goes to the rejected file
                yield index, text, f"line {line_no} is not valid JSON ({exc.msg})"
            index += 1


def _iter_array(path: Path, chunk: int) -> Iterator[Item]:
    reader = _Buffer(path, chunk)
    reader.expect("[")
    index = 0
    if reader.peek() == "]":
        reader.pos += 1
    else:
        while True:
            yield index, reader.value(index), None
            index += 1
            sep = reader.peek()
            reader.pos += 1
            if sep == "]":
                break
            if sep != ",":
                reader.fail(index, f"expected ',' or ']' after record {index}, found {sep!r}")
    if reader.peek() != "":
        reader.fail(index, "unexpected data after the closing ']'")


class _Buffer:
    """A sliding window of decoded text over a file, refilled on demand."""

    def __init__(self, path: Path, chunk: int) -> None:
        self.path = path
        self._chunk = chunk
        self._file = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.text, self.pos, self.offset, self.eof = "", 0, 0, False

    def _fill(self) -> bool:
        """Append the next chunk; drop what was consumed. False at end of file."""
        if self.eof:
            return False
        block = self._file.read(self._chunk)
        self.eof = not block
        if self.eof:
            self._file.close()
        self.offset += self.pos
        self.text = self.text[self.pos :] + self._decoder.decode(block, final=self.eof)
        self.pos = 0
        return not self.eof

    def peek(self) -> str:
        """Next non-blank character ('' at end of file), without consuming it."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            if self.pos < len(self.text) or not self._fill():
                return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            self.fail(0, f"expected {char!r} at the start")
        self.pos += 1

    def value(self, index: int) -> Any:
        """Decode the next JSON value, reading more until it is complete."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # Only an error at the end of the window (or an open string) may be cured by
                # more text; anything earlier is a real syntax error.
                incomplete = exc.pos >= len(self.text) - 8 or exc.msg.startswith("Unterminated")
                if incomplete and self._fill():
                    continue
                self.fail(index, f"{exc.msg} (truncated or malformed record {index})")
            if end == len(self.text) and self._fill():
                continue  # a bare number could continue in the next chunk
            self.pos = end
            return value

    def fail(self, index: int, why: str) -> None:
        self._file.close()
        raise DataError(
            f"{self.path} is not a valid JSON array: {why} near character {self.offset + self.pos}"
        )


def record_problem(record: Any) -> str | None:
    """Why ``record`` cannot be translated (schema, empty value, bad bytes), or None."""
    if not isinstance(record, dict):
        return f"record is a {type(record).__name__}, not an object"
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        return "no 'conversations' list"
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            return f"turn {i} has no string 'value'"
        if turn.get("from") not in ROLES:
            return f"turn {i} has unknown 'from' {turn.get('from')!r} (expected human, gpt or system)"
        if not turn["value"].strip():
            return f"turn {i} has an empty value"
    if _has_bad_text(record):
        return "non-UTF-8 bytes or lone surrogates in the record"
    return None


def _has_bad_text(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_bad_text(k) or _has_bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_bad_text(v) for v in value)
    return False
