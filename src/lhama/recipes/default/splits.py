"""A fixed, stratified hold-out split of an image-caption folder (the Tux Paint layout:
``captions.tsv`` with ``file`` and ``category`` columns + ``images/``).

Why systematic sampling: sort the rows by (category, a hash of the file name) and hold out every
k-th row. Each category then loses its share (rounded) of rows, the total is exact, and the
choice depends on nothing but the file names — the same split on every machine, every Python.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from lhama.errors import DataError


def read_caption_rows(data_dir: Path) -> list[dict[str, str]]:
    """The rows of ``DATA_DIR/captions.tsv`` (each a dict of its columns).

    Raises:
        DataError: no captions.tsv, or it lacks a ``file`` column."""
    path = Path(data_dir) / "captions.tsv"
    if not path.is_file():
        raise DataError(f"{data_dir}: no captions.tsv (expected the Tux Paint layout: captions.tsv + images/)")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if rows and "file" not in rows[0]:
        raise DataError(f"{path}: no 'file' column (columns: {', '.join(rows[0])})")
    return rows


def stratified_holdout(rows: Sequence[dict[str, str]], every: int = 5, key: str = "category") -> list[str]:
    """File names of the held-out rows: every ``every``-th row (1/every of them) in
    (category, hash) order, so each category is held out in proportion."""
    if every < 2:
        raise ValueError(f"every must be >= 2, got {every}")
    ordered = sorted(rows, key=lambda r: (r.get(key, ""), _digest(r["file"])))
    return sorted(r["file"] for i, r in enumerate(ordered) if i % every == every // 2)


def read_file_list(path: Path) -> list[str]:
    """A split file: one file name per line; blank lines and ``#`` comments ignored."""
    if not Path(path).is_file():
        raise DataError(f"split file not found: {path}")
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def select_rows(rows: Iterable[dict[str, str]], files: Iterable[str], keep: bool = True) -> list[dict[str, str]]:
    """The rows whose file is (``keep=True``) or is not (``keep=False``) in ``files``."""
    wanted = set(files)
    return [r for r in rows if (r["file"] in wanted) == keep]


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()
