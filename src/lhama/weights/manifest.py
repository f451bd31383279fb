"""The manifest a prepared directory carries (``lhama-prepared.json``): where it came from, how it
was verified and the size of every file, so a damaged or out-of-date copy is found before use."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import transformers

from lhama.errors import CheckpointError
from lhama.model.adapters import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from lhama.weights.registry import WeightSource


MANIFEST = "lhama-prepared.json"


def check_prepared(model_dir: Path) -> dict[str, Any]:
    """Cheap integrity check of a prepared directory: its manifest exists and every file it
    lists has the recorded size (catches interrupted copies and truncated files).

    Returns the manifest. Raises CheckpointError naming the first problem.
    """
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{model_dir} has no readable {MANIFEST} ({exc})") from None
    for rel, size in files.items():
        path = model_dir / rel
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            found = "missing" if actual is None else f"{actual} bytes"
            raise CheckpointError(f"{path} is damaged: {found}, expected {size} bytes")
    return manifest


def check_current(source: WeightSource, model_dir: Path) -> dict[str, Any]:
    """:func:`check_prepared`, and for a composed model also that it was built from the adapter
    this lhama ships: an upgrade that ships a retrained adapter makes older copies out of date,
    and serving one would silently answer with the old model.

    Returns the manifest. Raises CheckpointError naming the problem.
    """
    manifest = check_prepared(model_dir)
    if source.kind in ("composed", "audio-tuned"):
        if manifest.get("source", {}).get("adapter_sha256") != adapter_sha256(shipped_adapter(source)):
            raise CheckpointError(f"{model_dir} was built from another version of the adapter this lhama ships")
    if source.kind == "cascade":
        from lhama.weights.cascade import settings_current  # it writes manifests: imported late

        if not settings_current(manifest.get("source", {})):
            raise CheckpointError(f"{model_dir} was built with other settings than this lhama ships")
    return manifest


def shipped_adapter(source: WeightSource) -> Path:
    """The adapter folder a composed entry ships inside the lhama package."""
    path = Path(__file__).resolve().parents[1] / source.gguf_file
    if not (path / "adapter_config.json").is_file():
        raise CheckpointError(f"{path} holds no adapter_config.json: this lhama install lacks {source.name}'s weights")
    return path


def write_manifest(out: Path, source: dict, verified: dict) -> None:
    """Write the manifest of the finished directory ``out`` (call it last: it lists every file)."""
    files = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = {
        "source": source,
        "prepared_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
        "verify": verified,
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def adapter_sha256(adapter_dir: Path) -> str:
    """One digest of a shipped adapter's weights and its config (which carries settings the
    composed model is saved with, e.g. its image guidance): a change to either is a new version."""
    return sha256(adapter_dir / ADAPTER_WEIGHTS, adapter_dir / ADAPTER_CONFIG)
