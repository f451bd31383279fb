"""What several commands share: finding and loading a model with visible progress."""

from __future__ import annotations

import time

from rich.console import Console

from lhama.model.build import LoadedModel, load_model
from lhama.model.weights import resolve_model_dir

DEFAULT_MODEL = "lhama-default"  # Gemma-3-270M + ResNet-50 tower + the projector and LoRA lhama ships


def load_with_progress(model: str, err: Console) -> LoadedModel:
    """Resolve ``--model`` (preparing the default on first use) and load it, reporting on stderr."""
    started = time.perf_counter()
    model_dir = resolve_model_dir(model, DEFAULT_MODEL, auto_prepare=True, progress=err.print)
    with err.status(f"loading {model} ..."):
        loaded = load_model(model_dir)
    err.print(f"[dim]{loaded.name} loaded in {time.perf_counter() - started:.1f} s[/]")
    return loaded
