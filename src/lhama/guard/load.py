"""Picking a guard backend from a one-string spec (what ``--guard`` on the CLI takes)."""

from __future__ import annotations

from pathlib import Path

from lhama.errors import ConfigError
from lhama.guard.base import Guard

SPEC_HELP = (
    "'classifier' (default, shipped head), 'classifier:HEAD.safetensors', "
    "or 'llama-guard:MODEL_DIR' / a model directory (Llama Guard 3 or any local instruct model)"
)


def load_guard(spec: str | None = None) -> Guard:
    """The guard named by ``spec``; ``None`` means the default trained classifier.

    Raises:
        ConfigError: an unknown spec. CheckpointError: missing head, encoder or model files.
    """
    from lhama.guard.classifier import load_classifier

    spec = (spec or "classifier").strip()
    kind, sep, arg = spec.partition(":")
    if kind == "classifier":
        return load_classifier(Path(arg) if sep else None)
    if spec.endswith(".safetensors"):
        return load_classifier(Path(spec))
    if kind == "llama-guard" and sep:
        return _generative(Path(arg))
    if Path(spec).is_dir():
        return _generative(Path(spec))
    raise ConfigError(f"unknown guard {spec!r}; use {SPEC_HELP}")


def _generative(model_dir: Path) -> Guard:
    from lhama.guard.generative import load_generative

    return load_generative(model_dir)
