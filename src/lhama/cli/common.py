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
    from lhama.weights.registry import WeightSource

DEFAULT_MODEL = "lhama-default"  # Qwen2.5-Coder-1.5B-Instruct + EfficientNet-Lite2's pt-BR class names (v2)


def _named(flag: str, leave_out: bool = True) -> Callable[[str | None], str | None]:
    """A typer ``callback`` for a model-name option: a blank name is a one-line error naming ``flag``, not
    "none given" (the resolver read ``''`` as the default model, a draft option as no draft), so a shell
    variable left empty cannot change what loads unasked."""

    def check(value: str | None) -> str | None:
        from lhama.errors import ConfigError

        if value is not None and not value.strip():
            tail = ", or leave the option out" if leave_out else ""
            raise ConfigError(f"{flag} is empty: give a prepared model name (`lhama models list`) or a model directory{tail}")
        return value

    return check


named_model = _named("--model")
named_draft = _named("--draft")
named_teacher = _named("--teacher", leave_out=False)


QuantOpt = Annotated[Optional[str], typer.Option(help="Weights of the language model: none (fp32), bf16, int8 or int4 (quantised once, cached beside the model), or an int4 plan such as int4-g32+head+v+down-half (docs/benchmarks.md). Default: the model's registry choice, else none.")]
GuardOpt = Annotated[Optional[str], typer.Option("--guard", help="Safety guard backend: default = lhama's trained classifier (English messages also judged through their pt-BR translation); or a local Llama Guard model directory; 'translated:classifier+judge:self' also asks the model chat or serve loaded a yes/no question about low-margin flags, without loading it twice (all forms: `lhama guard --help`).")]


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
    from lhama.inference.quant import check_quant
    from lhama.inference.quant_cache import load_for_inference

    started = time.perf_counter()
    model_dir, source = located(model, err)
    if quant is None:
        quant = source.quant if source else "none"  # the default's 1.5B LM: int4-g32-grid-k+lossy6
    plan = check_quant(quant)  # once, here, where the quant was chosen; the loader takes the checked plan
    with err.status(f"loading {model} ..."):
        loaded = load_for_inference(model_dir, plan, progress=err.print)
    err.print(f"[dim]{loaded.name} loaded in {time.perf_counter() - started:.1f} s[/]")
    return loaded


def loader(err: Console) -> Callable[[str, str | None], LoadedModel]:
    """:func:`load_with_progress` reporting on ``err``, as the library's ``load(model, quant)``
    (``lhama.serve.server.run``, ``lhama.serve.terminal.chat``)."""
    return lambda model, quant: load_with_progress(model, err, quant)


def model_directory(model: str | None, err: Console) -> Path:
    """``--model`` as a directory (:func:`located`)."""
    return located(model, err)[0]


def located(model: str | None, err: Console) -> tuple[Path, WeightSource | None]:
    """``--model`` as a directory, and its registry entry (None for a path). A registered model
    is prepared first when it is not yet (once; ``prepare`` is a cheap check otherwise).

    One pass down the weights package: the name is looked up once, then prepared (or the path
    checked); nothing is resolved twice (``benchmarks/call_path.py`` counts the calls)."""
    from lhama.weights.prepare import prepare
    from lhama.weights.resolve import registered_source, resolve

    announce = _announced(model or DEFAULT_MODEL, err)
    source = registered_source(model, DEFAULT_MODEL)
    if source is None:
        return resolve(model, DEFAULT_MODEL), None
    return prepare(source, progress=announce), source


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
