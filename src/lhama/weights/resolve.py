"""Resolve ``--model``: a registered name or a local Hugging Face directory -> the directory to load.

Nothing is prepared here: first use calls :func:`lhama.weights.prepare.prepare` explicitly
(``lhama models prepare`` or the CLI's first run), then resolves.
"""

from __future__ import annotations

import os
from pathlib import Path

from lhama.errors import CheckpointError
from lhama.weights.manifest import MANIFEST, check_current
from lhama.weights.registry import WeightSource, models_dir, registry_entry


def registered_name(spec: str | None, default: str) -> str | None:
    """The registered model ``spec`` (``default`` when None) names; None when it is a path."""
    source = registered_source(spec, default)
    return None if source is None else source.name


def registered_source(spec: str | None, default: str) -> WeightSource | None:
    """The registry entry ``spec`` (``default`` when None) names; None when it is a path.
    Raises CheckpointError for an unknown name (listing the registered ones)."""
    spec = spec or default
    return None if _looks_like_path(spec) else registry_entry(spec)


def resolve(spec: str | None, default: str, *, home: Path | None = None) -> Path:
    """Turn ``--model`` into a directory that ``from_pretrained`` can load.

    ``spec`` (``default`` when None) is a local HF directory if it looks like a path (contains
    ``/``, starts with ``.`` or ``~``, or exists), else a registered name whose prepared copy
    must be current.

    Raises:
        CheckpointError: unknown name, a registered model not prepared (or damaged, or out of
            date; the message gives the command that prepares it), a missing directory, or a
            directory without config.json or weights.
    """
    spec = spec or default
    if _looks_like_path(spec):
        return check_hf_dir(Path(spec).expanduser())
    source = registry_entry(spec)
    path = models_dir(home) / source.name
    try:
        check_current(source, path)
        return path
    except CheckpointError as exc:
        state = f"must be prepared again ({exc})" if (path / MANIFEST).is_file() else "is not prepared"
    raise CheckpointError(f"model {spec!r} {state}; run `lhama models prepare {spec}`")


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.startswith((".", "~")) or Path(spec).exists()


def check_hf_dir(path: Path) -> Path:
    """Check that ``path`` is a Hugging Face model directory; return it. Raises CheckpointError."""
    if not path.exists():
        raise CheckpointError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file, expected a Hugging Face model directory")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json; is it a Hugging Face model directory?")
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")]
    if not weights:
        raise CheckpointError(f"{path} has no weights (*.safetensors or pytorch_model*.bin)")
    return path
