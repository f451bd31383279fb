"""What several commands share: finding and loading a model with visible progress, and the
options that mean the same in each.

Library code is imported inside the functions, so that ``lhama --help`` and usage errors do not
wait for torch (``tests/cli/test_import.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    from lhama.model.build import LoadedModel

DEFAULT_MODEL = "lhama-default"  # Qwen2.5-Coder-1.5B-Instruct + EfficientNet-Lite2's pt-BR class names (v2)
QuantOpt = Annotated[Optional[str], typer.Option(help="Weights of the language model: none (fp32), bf16, int8 or int4 (quantised once, cached beside the model). Default: the model's registry choice, else none.")]
GuardOpt = Annotated[Optional[str], typer.Option("--guard", help="Safety guard backend: default = lhama's trained classifier (English messages also judged through their pt-BR translation); or a local Llama Guard model directory (see `lhama guard --help`).")]


@dataclass(frozen=True)
class Safety:
    """The guard options of the commands that talk to a model (chat, serve)."""

    PANEL: ClassVar[str] = "Safety"
    no_guard: Annotated[bool, typer.Option("--no-guard", help="Turn off the safety guard (S1-S14 moderation of what goes in - questions, images, speech - and of the answers; on by default).")] = False
    guard: GuardOpt = None


def load_with_progress(model: str, err: Console, quant: str | None = None) -> LoadedModel:
    """Resolve ``--model`` (preparing a registered model on first use) and load it, reporting on
    stderr. ``quant``: the language model's weights (none, bf16, int8, int4; lhama.inference.quant);
    None: the registry's choice for a registered model, else none (fp32)."""
    from lhama.inference.quant_cache import load_for_inference
    from lhama.weights.registry import registry_entry
    from lhama.weights.resolve import registered_name

    started = time.perf_counter()
    name = registered_name(model, DEFAULT_MODEL)
    model_dir = model_directory(model, err, name)
    if quant is None:
        quant = registry_entry(name).quant if name else "none"  # the default's 1.5B LM decodes as int8
    with err.status(f"loading {model} ..."):
        loaded = load_for_inference(model_dir, quant, progress=err.print)
    err.print(f"[dim]{loaded.name} loaded in {time.perf_counter() - started:.1f} s[/]")
    return loaded


def model_directory(model: str | None, err: Console, name: str | None = None) -> Path:
    """``--model`` as a directory. A registered model (``name``, found from ``model`` when not
    given) is prepared first when it is not yet (once; ``prepare`` is a cheap check otherwise)."""
    from lhama.weights.prepare import prepare
    from lhama.weights.resolve import registered_name, resolve

    name = name or registered_name(model, DEFAULT_MODEL)
    if name is None:
        return resolve(model, DEFAULT_MODEL)
    return prepare(name, progress=_announced(name, err))


def _announced(name: str, err: Console) -> Callable[[str], None]:
    """A progress printer that first says why the wait: the model is being prepared."""
    from lhama.weights.registry import models_dir

    said = False

    def say(step: str) -> None:
        nonlocal said
        if not said:
            err.print(f"{name} is not prepared (or out of date): preparing it once into {models_dir() / name}")
            said = True
        err.print(step)

    return say
