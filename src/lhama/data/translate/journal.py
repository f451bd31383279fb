"""The resume journal: an append-only, fsync'ed JSONL file of finished records.

Line 1 is a header naming the input (its SHA-256) and the settings that shape the output; a
journal whose header differs belongs to another run and is refused rather than mixed in.
Each further line is one finished record keyed by its input index. A kill -9 can leave at
most one partial last line; :meth:`Journal.open` cuts it off before appending, so every line
kept is whole and every record is counted once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from lhama.errors import DataError
from lhama.files import atomic_open


class Journal:
    """Finished records of one run, found by input index (offsets only are kept in memory)."""

    def __init__(self, path: Path, offsets: dict[int, int]) -> None:
        self.path = path
        self._offsets = offsets
        self._file = path.open("ab")
        self._reader: BinaryIO | None = None

    @classmethod
    def open(cls, path: Path, header: dict[str, Any]) -> Journal:
        """Resume the journal at ``path`` or start a new one.

        Raises:
            DataError: the journal was written for a different input or settings.
        """
        if not path.exists() or _holds_no_record(path):
            # Also replaces a header-only journal of other settings: nothing would be lost.
            _write_synced(path, _line(header))
            return cls(path, {})
        offsets = _scan(path, header)
        return cls(path, offsets)

    def __contains__(self, index: int) -> bool:
        return index in self._offsets

    def __len__(self) -> int:
        return len(self._offsets)

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Write finished records and fsync before returning: after this they survive a crash."""
        for entry in entries:
            self._offsets[entry["i"]] = self._file.tell()
            self._file.write(_line(entry))
        self._file.flush()
        os.fsync(self._file.fileno())

    def read(self, index: int) -> dict[str, Any]:
        """The journal entry of input record ``index``."""
        if self._reader is None:
            self._reader = self.path.open("rb")
        self._reader.seek(self._offsets[index])
        return json.loads(self._reader.readline())

    def close(self) -> None:
        self._file.close()
        if self._reader is not None:
            self._reader.close()


def _line(obj: dict[str, Any]) -> bytes:
    # ASCII escapes: a rejected record may hold lone surrogates (its non-UTF-8 bytes).
    return (json.dumps(obj) + "\n").encode("ascii")


def _write_synced(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def _holds_no_record(path: Path) -> bool:
    with path.open("rb") as f:
        f.readline()
        return not f.readline().endswith(b"\n")


def _scan(path: Path, header: dict[str, Any]) -> dict[int, int]:
    """Check the header, index whole lines, and cut a partial last line off the file."""
    offsets: dict[int, int] = {}
    with path.open("r+b") as f:
        first = f.readline()
        try:
            found = json.loads(first)
        except json.JSONDecodeError:
            found = None
        if found != header:
            raise DataError(
                f"{path} is the journal of a different input or settings; "
                "delete it to start over, or rerun with the same input and options"
            )
        good = f.tell()
        for line in iter(f.readline, b""):
            if not line.endswith(b"\n"):
                break  # written up to a kill -9: the record was never acknowledged
            offsets[json.loads(line)["i"]] = good
            good += len(line)
        f.truncate(good)
    return offsets
