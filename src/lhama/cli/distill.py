"""``lhama distill``: train a student on a teacher's (cached) logits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, ClassVar, Optional

import typer
from rich.console import Console

from lhama.cli.common import named_teacher
from lhama.cli.options import command
from lhama.errors import ConfigError

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.train.distill import DistillConfig


@dataclass(frozen=True)
class HeldOut:
    PANEL: ClassVar[str] = "Held-out data"
    eval_data: Annotated[Optional[str], typer.Option("--eval-data", help="Held-out chat data, never trained on (reported as eval_loss and eval_kl).")] = None
    eval_fraction: Annotated[float, typer.Option("--eval-fraction", help="Or hold out this share of --data (by a hash of each id).")] = 0.0


@dataclass(frozen=True)
class Loss:
    PANEL: ClassVar[str] = "Distillation loss"
    top_k: Annotated[int, typer.Option("--top-k", help="Teacher logits cached per position.")] = 32
    temperature: Annotated[float, typer.Option("--temperature", help="Softening temperature of the distillation KL.")] = 2.0
    kd_weight: Annotated[float, typer.Option("--kd-weight", help="Loss = w x KL(teacher || student) + (1 - w) x label cross-entropy; 0: the label loss alone (e.g. on the teacher's own answers): no teacher logits, the teacher never loads.")] = 0.5


@dataclass(frozen=True)
class Schedule:
    PANEL: ClassVar[str] = "Training"
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps (0: --epochs passes over the data).")] = 0
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the data when --steps is 0.")] = 1
    batch: Annotated[int, typer.Option("--batch", help="Examples per forward pass.")] = 4
    grad_accum: Annotated[int, typer.Option("--grad-accum", help="Forward passes per optimizer step.")] = 1
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (linear warm-up over 10% of steps, then cosine).")] = 5e-5
    lora: Annotated[int, typer.Option("--lora", help="Train LoRA adapters of this rank (merged into model/ at the end); 0 trains the whole student.")] = 0
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens per example; longer ones are cut.")] = 512


@dataclass(frozen=True)
class Checkpoints:
    PANEL: ClassVar[str] = "Checkpoints and evaluation"
    stop_after: Annotated[int, typer.Option("--stop-after", help="Stop with a checkpoint after this step (continue later with --resume).")] = 0
    save_every: Annotated[int, typer.Option("--save-every", help="Steps between checkpoints (0: only at the end).")] = 0
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between held-out evaluations (0: at the start and end only).")] = 0


@dataclass(frozen=True)
class DistillOptions:
    teacher: Annotated[str, typer.Option("--teacher", callback=named_teacher, help="Teacher model directory or prepared model's name (it must share the student's tokenizer).")]
    student: Annotated[str, typer.Option("--student", help="Student model directory or prepared model's name: a smaller sibling, or `lhama prune` output.")]
    data: Annotated[str, typer.Option("--data", help="Training data as `lhama train` reads it: LLaVA chat JSON/JSONL ('conversations') or image captions (TSV/JSON); the answers are learned.")]
    out: Annotated[str, typer.Option("--out", help="Output directory: teacher_cache/, checkpoints/, metrics.jsonl, curves.png, model/.")]
    held_out: HeldOut = field(default_factory=HeldOut)
    loss: Loss = field(default_factory=Loss)
    schedule: Schedule = field(default_factory=Schedule)
    checkpoints: Checkpoints = field(default_factory=Checkpoints)
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data order.")] = 0
    image_dir: Annotated[Optional[str], typer.Option("--image-dir", help="Folder the data's image paths are relative to (default: the data file's folder).")] = None
    teacher_quant: Annotated[str, typer.Option("--teacher-quant", help="Cache the teacher's logits from its quantised copy, as chat runs it (int8, int4, or an int4 plan such as int4-g32-grid-k+lossy6; none: fp32 as saved). Less memory; other logits, so another cache.")] = "none"
    cache: Annotated[Optional[str], typer.Option("--cache", help="Teacher-logit cache directory (default: OUT/teacher_cache); students with the same tokenizer and data can share one.")] = None
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint in --out (same options).")] = False

    def config(self) -> DistillConfig:
        """The options as a DistillConfig (checked there: a bad value is a one-line ConfigError,
        before any model loads); teacher and student as given, the library resolves them."""
        from lhama.data.collate import CollateConfig
        from lhama.inference.quant import check_quant
        from lhama.model.config import LoraSettings
        from lhama.train.config import OptimConfig
        from lhama.train.distill import DistillConfig

        held, loss, schedule, saves = self.held_out, self.loss, self.schedule, self.checkpoints
        lora = schedule.lora
        if self.teacher_quant != "none":
            check_quant(self.teacher_quant, option="--teacher-quant")  # one-line ConfigError before any model loads
        try:
            return DistillConfig(
                self.teacher, self.student, self.data, self.out, held.eval_data, held.eval_fraction, loss.top_k, loss.temperature,
                loss.kd_weight, schedule.batch, schedule.grad_accum, schedule.steps, schedule.epochs, saves.stop_after,
                OptimConfig(lr=schedule.lr, warmup_ratio=0.1), CollateConfig(max_length=schedule.max_length, system_prompt=""),
                LoraSettings(r=lora, alpha=2 * lora, dropout=0.0) if lora else None,
                self.seed, saves.eval_every, saves.save_every, cache_dir=self.cache, image_dir=self.image_dir,
                teacher_quant=self.teacher_quant,
            )
        except ValueError as exc:  # OptimConfig/CollateConfig/LoraSettings checks: one line, exit 2
            raise ConfigError(str(exc)) from None


@command(DistillOptions)
def distill(options: DistillOptions) -> None:
    """Distil a teacher into a student: forward KL to the teacher's top-k logits (cached once on
    disk, so the teacher never runs during training) mixed with the label loss.

    Examples:

      lhama distill --teacher qwen2.5-coder-1.5b-instruct --student qwen2.5-coder-0.5b-instruct --data train.jsonl --eval-data heldout.jsonl --out runs/d --steps 40

      lhama distill --teacher qwen2.5-coder-1.5b-instruct --student runs/q21 --data train.jsonl --out runs/d2 --lora 16 --lr 2e-4 --resume
    """
    from lhama.train.distill import distill as run_distill  # library code loads here: help and usage errors never wait for torch

    err = Console(stderr=True)
    result = run_distill(options.config(), resume=options.resume, echo=lambda text: err.print(text, highlight=False))
    if not result.main_process:  # torchrun: the first process reports
        return
    before, after = result.eval_before, result.eval_after
    if before and after:
        err.print(f"held-out: loss {before['eval_loss']:.4f} -> {after['eval_loss']:.4f}, "
                  f"KL to the teacher {before['eval_kl']:.4f} -> {after['eval_kl']:.4f}", highlight=False)
    err.print(f"done: {result.steps} steps; outputs in {result.output_dir}", highlight=False)
