"""``lhama prune``: cut decoder layers, MLP channels and attention heads from a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, ClassVar, Optional

import typer
from rich.console import Console

from lhama.cli.common import named_model
from lhama.cli.options import command

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.train.prune import PruneConfig


@dataclass(frozen=True)
class Cuts:
    PANEL: ClassVar[str] = "What to cut"
    layers: Annotated[int, typer.Option("--layers", help="Remove this many decoder layers: those whose output differs least from their input on the calibration text.")] = 0
    drop_layers: Annotated[str, typer.Option("--drop-layers", help="Or remove exactly these layers, 0-based and comma-separated, e.g. 20,21,22.")] = ""
    mlp_ratio: Annotated[float, typer.Option("--mlp-ratio", help="Keep this share of each layer's MLP channels (the most active on the calibration text).")] = 1.0
    heads: Annotated[Optional[int], typer.Option("--heads", help="Keep this many query heads per layer, a multiple of the key-value head count (KV heads are kept).")] = None

    def __post_init__(self) -> None:
        _layer_numbers(self.drop_layers)  # a bad --drop-layers fails before any model loads

    @property
    def dropped(self) -> tuple[int, ...]:
        """``--drop-layers`` as layer numbers."""
        return _layer_numbers(self.drop_layers)


def _layer_numbers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--drop-layers wants comma-separated layer numbers like 20,21, got {text!r}") from None


@dataclass(frozen=True)
class Calibration:
    PANEL: ClassVar[str] = "Calibration"
    calib: Annotated[Optional[str], typer.Option("--calib", help="Calibration text: .txt (one text per line) or .jsonl ('text' or chat 'messages'); needed by --layers, --mlp-ratio, --heads.")] = None
    calib_texts: Annotated[int, typer.Option("--calib-texts", help="Read at most this many calibration texts (each cut to 256 tokens); fewer is faster, on a CPU the passes over the text dominate.")] = 64


@dataclass(frozen=True)
class PruneOptions:
    model: Annotated[str, typer.Option("--model", callback=named_model, help="The causal-LM model directory, or a prepared model's name, to prune (Llama, Qwen2, SmolLM2, Gemma 3).")]
    out: Annotated[str, typer.Option("--out", help="Where to write the pruned model directory (replaced atomically).")]
    cuts: Cuts = field(default_factory=Cuts)
    calibration: Calibration = field(default_factory=Calibration)

    def config(self) -> PruneConfig:
        """The options as a PruneConfig (``--model`` as given: the library resolves it)."""
        from lhama.train.prune import PruneConfig

        cuts, calibration = self.cuts, self.calibration
        return PruneConfig(self.model, self.out, cuts.layers, cuts.dropped, cuts.mlp_ratio, cuts.heads,
                           calibration.calib, calibration.calib_texts)


@command(PruneOptions)
def prune(options: PruneOptions) -> None:
    """Prune a model to a smaller one of the same family, by importance on calibration text
    (the first step of making a small student; then `lhama distill` recovers what it lost).

    Examples:

      lhama prune --model qwen2.5-coder-1.5b-instruct --out runs/q21 --layers 7 --calib calib.txt

      lhama prune --model my-model --out my-model-slim --mlp-ratio 0.5 --heads 8 --calib calib.txt

      lhama prune --model my-model --out my-model-20 --drop-layers 20,21
    """
    from lhama.train.prune import prune as run_prune  # library code loads here: help and usage errors never wait for torch

    err = Console(stderr=True)
    result = run_prune(options.config(), echo=lambda text: err.print(text, highlight=False))
    err.print(result.summary(), highlight=False)
    typer.echo(str(result.out))
