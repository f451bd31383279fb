"""Atomic file-system writes: a reader sees the old thing or the new thing, never half of one.
Every module that writes a finished file goes through here."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``target``; on success it replaces ``target``
    (rename, same file system), on any error it is removed and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_open(target: str | Path, mode: str = "w") -> Iterator[IO]:
    """A file (text ``"w"`` in UTF-8, or ``"wb"``) that replaces ``target`` only when the block
    ends without error: written to a hidden temporary beside it, fsync'ed, then renamed."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with tmp.open(mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(target: str | Path, text: str) -> Path:
    """Replace ``target`` with ``text`` atomically; returns the path."""
    with atomic_open(target) as handle:
        handle.write(text)
    return Path(target)


def write_jsonl(target: str | Path, records: Iterable[Any]) -> None:
    """One JSON object per line, written atomically (UTF-8, non-ASCII kept readable)."""
    with atomic_open(target, "w") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[Any]:
    """Every non-blank line of a JSONL file, parsed."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
