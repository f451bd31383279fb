"""``lhama train``: run a training recipe from a YAML config plus ``key=value`` overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

from lhama.cli.options import command

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.train.run import TrainRun


@dataclass(frozen=True)
class TrainOptions:
    overrides: Annotated[Optional[list[str]], typer.Argument(help="Dotted config overrides, e.g. optim.lr=2e-4 max_steps=100 model.lora.r=64; ~key removes a key.", show_default=False)] = None
    config: Annotated[str, typer.Option("--config", "-c", help="Recipe YAML file, or the name of a shipped preset (stage1-tuxpaint, stage1-video, stage2-lora, default-stage0, default-stage1, default-stage2).")] = "stage1-tuxpaint"
    resume: Annotated[bool, typer.Option("--resume", help="Continue exactly from the newest checkpoint in output_dir (same config, same number of processes).")] = False

    def run(self) -> TrainRun:
        """The options as a TrainRun: the recipe, its overrides, whether to resume."""
        from lhama.train.run import TrainRun

        return TrainRun(self.config, tuple(self.overrides or ()), self.resume)


@command(TrainOptions)
def train(options: TrainOptions) -> None:
    """Train a model: stage 1 (align the projector) or stage 2 (LoRA / full instruction tuning);
    stage=prealign is an optional stage 0 (a caption contrast on cached features, minutes on a CPU).

    The same command runs under torchrun for several processes (DDP, or strategy=fsdp).
    Outputs in output_dir: model/, metrics.jsonl, curves.png, checkpoints/.

    Examples:

      lhama train --config stage1-tuxpaint data.path=DATA/captions.tsv data.image_dir=DATA/images max_steps=50 output_dir=runs/s1

      lhama train --config my_stage2.yaml model.init=runs/s1/model model.lora.r=64

      lhama train --config my_stage2.yaml --resume

      lhama train --config default-stage0 prealign.epochs=10

      torchrun --nproc_per_node 8 -m lhama train --config my_stage2.yaml
    """
    from lhama.train.run import train as run_train  # library code loads here: help and usage errors never wait for torch

    console = Console(stderr=True)
    result = run_train(options.run(), echo=lambda text: console.print(text, highlight=False))
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    console.print(f"done: {result.steps} steps, last loss {loss}; outputs in {result.output_dir}", highlight=False)
