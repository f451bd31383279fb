"""Logit distillation of a student from a teacher that shares its tokenizer.

1. The data (LLaVA-style chat JSONL/JSON, as ``lhama train`` reads) is tokenised with the student's chat
   template; only assistant tokens carry loss.
2. The teacher's top-k logits at those positions are cached once under
   ``<output_dir>/teacher_cache`` (train/logit_cache.py); a rerun or ``--resume`` reuses them and
   never loads the teacher.
3. The student trains on ``kd_weight`` x top-k forward KL at ``temperature`` (train/kd.py) +
   (1 - ``kd_weight``) x the label cross-entropy (0: labels alone, e.g. the teacher's greedy answers,
   no cache, the teacher never loads), with the training machinery's optimizer, schedule,
   batching, checkpoints (``--resume``), ``metrics.jsonl`` and ``curves.png``.
4. The student is written to ``<output_dir>/model`` (LoRA merged in).

The text LM or a multimodal model: teacher and student must expand media to the same tokens
(e.g. the same tower); the student's projectors train with its decoder, its towers stay frozen.
A cascade model (``lhama-default``: a text LM plus a labeler, no image branch) reads each image
as its labeler's note (train/told_images.py); the distilled student gets that labeler (and the
teacher's decoding settings when it had none of its own).

Under ``torchrun`` (train/distributed.py: gloo on CPU, NCCL on GPU) the student is wrapped in DDP;
each process takes its share of every global batch (``micro_batch_size x grad_accum x
world_size`` examples), so N processes compute the same losses and updates as one process with the
same global batch. The first process builds the teacher cache while the others wait, then all
read it; it alone writes metrics, curves and the model.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lhama.config import to_dict
from lhama.data.collate import CollateConfig, Collator, Encoded
from lhama.data.dataset import DatasetConfig, load_samples, split_samples
from lhama.errors import ConfigError, DataError, ModelError
from lhama.files import atomic_directory
from lhama.inference.quant_cache import load_for_inference
from lhama.model import adapters, branches, build
from lhama.model.config import LoraSettings
from lhama.model.generation import GenerationConfig, read_generation
from lhama.model.labeler import LABELER_DIR
from lhama.train import kd
from lhama.train.batches import micro_batches, plan_epoch
from lhama.train.checkpoint import Position, latest_checkpoint, load_checkpoint, save_checkpoint
from lhama.train.config import OptimConfig
from lhama.train import distributed
from lhama.train.distributed import DistInfo, all_sum, barrier
from lhama.train.logit_cache import (TeacherTargets, build_cache, cache_key, cached_vocabulary, saved_vocabulary,
                                     teacher_topk, vocabulary_digest)
from lhama.train.optim import build_optimizer, build_scheduler
from lhama.train.report import MetricsLog, plot_curves, read_metrics
from lhama.train.told_images import labeler_source, tell_images
from lhama.weights.resolve import resolve

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DistillConfig:
    teacher: str  # teacher model directory, or a prepared model's name
    student: str  # student model directory (e.g. a smaller sibling, or `lhama prune` output), or a prepared name
    data: str  # LLaVA chat JSON/JSONL or caption TSV/JSON (what `lhama train` reads); assistant turns are the targets
    output_dir: str = "runs/distill"
    eval_data: str | None = None  # a separate held-out file (else eval_fraction of data)
    eval_fraction: float = 0.0
    top_k: int = 32  # teacher logits kept per position
    temperature: float = 2.0  # softening of both distributions in the KL
    kd_weight: float = 0.5  # loss = kd_weight x KL + (1 - kd_weight) x label cross-entropy
    micro_batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = 0  # 0: `epochs` epochs
    epochs: int = 1
    stop_after: int = 0  # >0: stop (with a checkpoint) after this step, keeping the schedule
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, warmup_ratio=0.1))
    # system_prompt "": none of our own (a chat template may still add its default one)
    collate: CollateConfig = field(default_factory=lambda: CollateConfig(max_length=512, system_prompt=""))
    lora: LoraSettings | None = None  # None: train the whole student
    seed: int = 0
    eval_every: int = 0  # steps between held-out evaluations (also at 0 and the end)
    save_every: int = 0  # steps between checkpoints (also at the end)
    keep_checkpoints: int = 2
    progress: bool = True
    # Where the teacher's logits are cached (default <output_dir>/teacher_cache). Students that
    # share a tokenizer and data may share one cache: it is keyed by teacher, token ids and top_k.
    cache_dir: str | None = None
    image_dir: str | None = None  # image paths of data/eval_data are relative to it (default: each file's folder)
    teacher_quant: str = "none"  # the teacher's logits from its quantised copy (as chat runs it; less memory), e.g. int8

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.temperature <= 0 or not 0.0 <= self.kd_weight <= 1.0:
            raise ConfigError(f"need top_k >= 1, temperature > 0, 0 <= kd_weight <= 1; got {self.top_k}, "
                             f"{self.temperature}, {self.kd_weight}")
        for name in ("micro_batch_size", "grad_accum", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Parts:
    """What a distillation step needs; ``targets`` covers train items then eval items."""

    model: torch.nn.Module  # DDP-wrapped under torchrun, else the student itself
    optimizer: torch.optim.Optimizer
    scheduler: object
    collator: Collator
    items: list[Encoded]
    n_train: int
    targets: TeacherTargets | None  # None: kd_weight 0, no teacher logits
    info: DistInfo = field(default_factory=DistInfo)


@dataclass(frozen=True)
class DistillResult:
    output_dir: Path
    steps: int
    final_loss: float | None
    eval_before: dict[str, float]
    eval_after: dict[str, float]
    model_dir: Path | None
    main_process: bool = True  # False in torchrun's other processes (they report nothing)


def distill(cfg: DistillConfig, resume: bool = False, echo: Echo = print) -> DistillResult:
    """Distil ``cfg.teacher`` into ``cfg.student``; see the module docstring. Both are resolved to
    their directories first (:func:`resolved`). Under torchrun every process calls this; only the
    first one echoes.

    Raises:
        DataError: no usable example (nothing is written). ModelError: different tokenizers, or
            media expanded differently. CheckpointError: a stale cache, or a teacher or student that
            is an unknown name, not prepared, or not a model directory. ConfigError: ``resume`` with no checkpoint."""
    cfg = resolved(cfg)
    info = distributed.setup()
    try:
        return _run(cfg, resume, info, echo if info.is_main else (lambda _: None))
    finally:
        distributed.cleanup(info)


def resolved(cfg: DistillConfig) -> DistillConfig:
    """``cfg`` with teacher and student as model directories (a prepared model's name resolved;
    a directory checked). Raises CheckpointError."""
    return replace(cfg, teacher=str(resolve(cfg.teacher, cfg.teacher)), student=str(resolve(cfg.student, cfg.student)))


def _run(cfg: DistillConfig, resume: bool, info: DistInfo, echo: Echo) -> DistillResult:
    torch.manual_seed(cfg.seed)
    student = build.load_model(cfg.student)
    collator = Collator(student.tokenizer, student.expansions(), student.readers(), cfg.collate, "")
    told = labeler_source(student, cfg.student, cfg.teacher)
    train_items, eval_items = _encoded(cfg, collator, echo, told)
    items = train_items + eval_items
    targets = _shared_targets(cfg, student, collator, items, info, echo) if cfg.kd_weight > 0 else _no_targets(cfg, student)
    _prepare_student(student, cfg)
    model = distributed.wrap(student.model.to(info.device), "ddp", info)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, total_steps(cfg, len(train_items), info.world_size), cfg.optim)
    parts = Parts(model, optimizer, scheduler, collator, items, len(train_items), targets, info)
    start = _resume(cfg, parts, echo) if resume else Position()
    log = MetricsLog(Path(cfg.output_dir) / "metrics.jsonl", start.step if resume else None) if info.is_main else None
    if info.is_main:
        _write_config(cfg)
    before = _log_eval(parts, cfg, log, start.step) if start.step == 0 else {}
    end = _train(parts, cfg, start, log)
    after = _log_eval(parts, cfg, log, end.step)
    finished = end.step >= total_steps(cfg, len(train_items), info.world_size)
    result = DistillResult(Path(cfg.output_dir), end.step, None, before, after, None, info.is_main)
    return _finish(cfg, student, result, (finished, told), echo) if info.is_main else result


def _encoded(cfg: DistillConfig, collator: Collator, echo: Echo, told: Path | None) -> tuple[list[Encoded], list[Encoded]]:
    """Train and held-out items; with a labeler (``told``: the directory holding it) images become its notes."""
    report = load_samples(DatasetConfig(path=cfg.data, image_dir=cfg.image_dir))  # DataError: no usable record
    echo(f"data {cfg.data}: {report.summary()}")
    train, held = split_samples(report.samples, cfg.eval_fraction)
    if cfg.eval_data:
        held += load_samples(DatasetConfig(path=cfg.eval_data, image_dir=cfg.image_dir)).samples
    if not train:
        raise DataError(f"{cfg.data}: no training example left after holding out eval_fraction={cfg.eval_fraction}")
    if told is not None:
        train, held = tell_images(told, (train, held), echo)
    return [collator.encode(s) for s in train], [collator.encode(s) for s in held]


def _shared_targets(cfg: DistillConfig, student: build.LoadedModel, collator: Collator, items: list[Encoded],
                    info: DistInfo, echo: Echo) -> TeacherTargets:
    """The first process builds (or checks) the cache while the others wait; then they read it,
    complete, so only the first process ever loads the teacher."""
    targets = _teacher_targets(cfg, student, collator, items, echo, info.device) if info.is_main else None
    barrier(info)
    return targets if targets is not None else _teacher_targets(cfg, student, collator, items, echo, info.device)


def _no_targets(cfg: DistillConfig, student: build.LoadedModel) -> None:
    """kd_weight 0: no teacher logits; the saved vocabularies must still agree (read, nothing loaded)."""
    saved, vocab = saved_vocabulary(cfg.teacher), student.tokenizer.get_vocab()
    if saved is not None and saved != vocab:
        _refuse(cfg, saved, vocab)


def _teacher_targets(cfg: DistillConfig, student: build.LoadedModel, collator: Collator, items: list[Encoded],
                     echo: Echo, device: torch.device = torch.device("cpu")) -> TeacherTargets:
    """Load the cache, building what is missing (only then is the teacher loaded)."""
    tokenizer = student.tokenizer
    directory = Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.output_dir) / "teacher_cache"
    key = cache_key(cfg.teacher, items, cfg.top_k, tokenizer, cfg.teacher_quant)
    cached = cached_vocabulary(directory, key)
    if cached is not None and cached != key.vocabulary:
        raise ModelError(f"teacher {cfg.teacher} and student {cfg.student} use different tokenizers; "
                         "logit distillation needs one shared vocabulary")
    saved = saved_vocabulary(cfg.teacher)
    if saved is not None and saved != tokenizer.get_vocab():  # refuse before loading the teacher's weights
        _refuse(cfg, saved, tokenizer.get_vocab())
    teacher = None if cached else load_for_inference(cfg.teacher, cfg.teacher_quant)  # "none": fp32 as saved
    if teacher is not None:
        _check_tokenizers(cfg, teacher.tokenizer, tokenizer)
        _check_media(cfg, teacher, student)
        teacher.model.to(device)
        echo(f"caching the teacher's top-{cfg.top_k} logits for {len(items)} examples in {directory}")
    with Progress(TextColumn("teacher logits"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(),
                  disable=not cfg.progress or teacher is None) as bar:
        task = bar.add_task("cache", total=len(items))
        rows = (lambda item: teacher_topk(teacher.model, collator([item]).to(device), cfg.top_k)) if teacher else None
        return build_cache(rows, items, directory, key, progress=lambda n: bar.advance(task, n))


def _check_tokenizers(cfg: DistillConfig, teacher: object, student: object) -> None:
    if vocabulary_digest(teacher) != vocabulary_digest(student):
        _refuse(cfg, teacher.get_vocab(), student.get_vocab())


def _check_media(cfg: DistillConfig, teacher: build.LoadedModel, student: build.LoadedModel) -> None:
    """Teacher and student must read the same prompt: same media branches, same tokens per item."""
    if teacher.expansions() != student.expansions():
        raise ModelError(f"teacher {cfg.teacher} and student {cfg.student} expand media to different token counts "
                         f"({teacher.expansions()} vs {student.expansions()}); use a student with the teacher's towers")


def _refuse(cfg: DistillConfig, teacher: dict[str, int], student: dict[str, int]) -> None:
    example = next(iter(sorted(set(teacher.items()) ^ set(student.items()))), ("?", -1))
    raise ModelError(f"teacher {cfg.teacher} and student {cfg.student} use different tokenizers ({len(teacher)} vs "
                     f"{len(student)} tokens; e.g. {example[0]!r} -> {example[1]}); logit distillation needs one shared vocabulary")


def _prepare_student(student: build.LoadedModel, cfg: DistillConfig) -> None:
    """Train the decoder (or its LoRA adapters) and every media projector; towers stay frozen."""
    if cfg.lora is not None:
        adapters.apply_lora(student, cfg.lora)
    projectors = tuple(name for kind, _ in branches.configured(student.config) for name in kind.trained)
    adapters.set_trainable(student.model, ("lora_",) + projectors if cfg.lora else ("language_model",) + projectors)
    for param in adapters.trainable_parameters(student.model).values():
        param.data = param.data.float()


def total_steps(cfg: DistillConfig, n_train: int, world_size: int = 1) -> int:
    return cfg.max_steps or cfg.epochs * len(_plan(cfg, n_train, 0, world_size))


def _plan(cfg: DistillConfig, n_train: int, epoch: int, world_size: int = 1) -> list[list[int]]:
    """The epoch's global batches (item indices) of ``micro_batch_size x grad_accum x world_size``."""
    return plan_epoch([1] * n_train, cfg.micro_batch_size * cfg.grad_accum * world_size, cfg.seed, epoch, False)


def _train(parts: Parts, cfg: DistillConfig, start: Position, log: MetricsLog | None) -> Position:
    total = total_steps(cfg, parts.n_train, parts.info.world_size)
    stop = min(total, cfg.stop_after) if cfg.stop_after else total
    position, began = start, time.perf_counter()
    with _progress(cfg, parts.info) as bar:
        task = bar.add_task("distill", total=total, completed=start.step, stats="")
        for step_items in _steps(cfg, parts.n_train, position, stop, parts.info):
            tic = time.perf_counter()
            stats = train_step(parts, step_items, cfg)
            position = position.advanced(len(_plan(cfg, parts.n_train, 0, parts.info.world_size)))
            row = {"step": position.step, **stats, "step_s": time.perf_counter() - tic,
                   "tokens_per_s": stats["tokens"] / (time.perf_counter() - tic), "elapsed_s": time.perf_counter() - began}
            if log:
                log.write(row)
            bar.update(task, completed=position.step, stats=f"loss {row['loss']:.4f}  kl {row['kl']:.4f}")
            if cfg.eval_every and position.step % cfg.eval_every == 0 and position.step < stop:
                _log_eval(parts, cfg, log, position.step)
            if position.step == stop or (cfg.save_every and position.step % cfg.save_every == 0):
                pieces = {"model": distributed.unwrap(parts.model), "optimizer": parts.optimizer, "scheduler": parts.scheduler}
                save_checkpoint(cfg.output_dir, pieces, position, parts.info, cfg.keep_checkpoints)
    return position


def _steps(cfg: DistillConfig, n_train: int, position: Position, stop: int, info: DistInfo):
    """Each step's micro batches of this process (lists of item indices), from ``position`` on."""
    step, epoch, skip = position.step, position.epoch, position.batch
    while step < stop:
        for global_batch in _plan(cfg, n_train, epoch, info.world_size)[skip:]:
            yield micro_batches(global_batch, cfg.micro_batch_size, cfg.grad_accum, info.world_size, info.rank)
            step += 1
            if step >= stop:
                return
        epoch, skip = epoch + 1, 0


def train_step(parts: Parts, micro: Sequence[Sequence[int]], cfg: DistillConfig) -> dict[str, float]:
    """One optimizer step over this process's micro batches; losses are per supervised token over
    the whole global batch (each process scales its part by ``world_size / total``: DDP averages)."""
    info, model = parts.info, parts.model
    model.train()
    rows = parts.targets.rows if parts.targets else (lambda _: (None, None))  # kd_weight 0: no teacher rows
    batches = [(parts.collator([parts.items[i] for i in idx]).to(info.device), rows(idx)) for idx in micro]
    total = all_sum(sum(b.target_tokens for b, _ in batches), info)
    sums = {"kl": 0.0, "ce": 0.0}
    for i, (batch, (values, indices)) in enumerate(batches):
        last = i == len(batches) - 1
        with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
            kl, ce = kd.losses(model, batch, values, indices, cfg.temperature)
            (kd.mixed_loss(kl, ce, cfg.kd_weight) * info.world_size / total).backward()
        sums["kl"], sums["ce"] = sums["kl"] + float(kl.detach()), sums["ce"] + float(ce.detach())
    params = [p for p in model.parameters() if p.grad is not None]
    norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.optim.max_grad_norm)) if cfg.optim.max_grad_norm > 0 else 0.0
    lr = parts.optimizer.param_groups[0]["lr"]
    parts.optimizer.step()
    parts.optimizer.zero_grad(set_to_none=True)
    parts.scheduler.step()
    kl, ce = all_sum(sums["kl"], info) / total, all_sum(sums["ce"], info) / total
    return {"loss": kd.mixed_loss(kl, ce, cfg.kd_weight), "kl": kl, "ce": ce, "lr": lr, "grad_norm": norm,
            "target_tokens": total, "tokens": all_sum(sum(int(b.attention_mask.sum()) for b, _ in batches), info)}


def _log_eval(parts: Parts, cfg: DistillConfig, log: MetricsLog | None, step: int) -> dict[str, float]:
    """Held-out loss and KL; under torchrun each process scores every world_size-th item and the
    sums are combined, so every process returns the same numbers."""
    held, info = parts.items[parts.n_train :], parts.info
    if not held:
        return {}
    mine = list(range(info.rank, len(held), info.world_size))
    part = kd.evaluate(distributed.unwrap(parts.model), parts.collator, [held[i] for i in mine],
                    parts.targets.tail(parts.n_train).select(mine) if parts.targets else None, cfg.temperature)
    tokens = all_sum(part["eval_tokens"], info)
    row = {"eval_loss": all_sum(part["eval_loss"] * part["eval_tokens"], info) / max(tokens, 1),
           "eval_kl": all_sum(part["eval_kl"] * part["eval_tokens"], info) / max(tokens, 1), "eval_tokens": int(tokens)}
    if log:
        log.write({"step": step, **row})
    return row


def _resume(cfg: DistillConfig, parts: Parts, echo: Echo) -> Position:
    path = latest_checkpoint(cfg.output_dir)
    if path is None:
        raise ConfigError(f"--resume: no checkpoint under {cfg.output_dir}/checkpoints; start without --resume")
    pieces = {"model": distributed.unwrap(parts.model), "optimizer": parts.optimizer, "scheduler": parts.scheduler}
    position = load_checkpoint(path, pieces, parts.info)
    echo(f"resumed from {path} (step {position.step})")
    return position


def _finish(cfg: DistillConfig, student: build.LoadedModel, result: DistillResult, state: tuple[bool, Path | None],
            echo: Echo) -> DistillResult:
    """Curves always; the student's model directory once the schedule is complete (``state``:
    finished, and the directory whose labeler the student keeps)."""
    out = Path(cfg.output_dir)
    rows = read_metrics(out / "metrics.jsonl")
    plot_curves(rows, out / "curves.png")
    model_dir, (finished, told) = None, state
    if finished:
        if adapters.has_lora(student):
            adapters.merge_lora(student)
        student.model.eval()
        model_dir = _save_student(student, out / "model", told, Path(cfg.teacher))
        echo(f"student saved to {model_dir}")
    train_losses = [r["loss"] for r in rows if "loss" in r]
    return replace(result, final_loss=train_losses[-1] if train_losses else None, model_dir=model_dir)


def _save_student(student: build.LoadedModel, directory: Path, told: Path | None, teacher: Path) -> Path:
    """The student's model directory, written atomically; a cascade student keeps the labeler
    (and takes the teacher's decoding settings, system prompt included, when it had none)."""
    if told is None:
        return build.save_model(student, directory)
    if student.generation == GenerationConfig():
        student.generation = read_generation(teacher)
    with atomic_directory(directory) as tmp:
        build.save_model(student, tmp)
        shutil.copytree(told / LABELER_DIR, tmp / LABELER_DIR)
    return directory


def _write_config(cfg: DistillConfig) -> None:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


def _progress(cfg: DistillConfig, info: DistInfo) -> Progress:
    return Progress(TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[stats]}"),
                    TextColumn("ETA"), TimeRemainingColumn(), disable=not (cfg.progress and info.is_main))
