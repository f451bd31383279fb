"""What several commands share: finding and loading a model with visible progress."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from lhama.model.build import LoadedModel, load_model
from lhama.weights.prepare import is_current, prepare
from lhama.weights.registry import models_dir
from lhama.weights.resolve import registered_name, resolve

DEFAULT_MODEL = "lhama-default"  # Gemma-3-270M + ResNet-50 tower + the projector and LoRA lhama ships


def load_with_progress(model: str, err: Console) -> LoadedModel:
    """Resolve ``--model`` (preparing the default on first use) and load it, reporting on stderr."""
    started = time.perf_counter()
    model_dir = model_directory(model, err)
    with err.status(f"loading {model} ..."):
        loaded = load_model(model_dir)
    err.print(f"[dim]{loaded.name} loaded in {time.perf_counter() - started:.1f} s[/]")
    return loaded


def model_directory(model: str | None, err: Console) -> Path:
    """``--model`` as a directory; a registered model not prepared yet is prepared first (once)."""
    name = registered_name(model, DEFAULT_MODEL)
    if name is not None and not is_current(name):
        err.print(f"{name} is not prepared (or out of date): preparing it once into {models_dir() / name}")
        prepare(name, progress=err.print)
    return resolve(model, DEFAULT_MODEL)
