"""Stage-2 LoRA training throughput at 7B scale: lhama's loop vs a plain Hugging Face Trainer.

Random weights, real shapes: a Llama-2-7B-sized decoder (32 x 4096, vocab 32000) and a
CLIP-ViT-L/336-sized tower (24 x 1024, 576 patch tokens), LLaVA-1.5 2-layer MLP projector,
LoRA r=128 / alpha=256 on all linear layers, bf16 autocast, gradient checkpointing. Both loops
train the same model on the same synthetic batches (576 image tokens + text, the answer half
supervised) and report samples/s, tokens/s, MFU and peak GPU memory.

    PYTHONPATH=src python benchmarks/train_gpu.py                 # on a GPU (H100: ~45 GB peak)
    PYTHONPATH=src python benchmarks/train_gpu.py --tiny --steps 3  # CPU smoke test of the script

MFU counts the FLOPs the run must do: decoder forward 2N and backward 2N per token (the frozen
base needs activation gradients but no weight gradients) plus the LoRA/projector weight
gradients, attention's 4*L*T*d per token forward (x2 backward), and the frozen tower's forward.
Gradient-checkpointing recomputation is not counted (it is overhead, as in the PaLM definition).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, models
from transformers import (AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel, LlamaConfig,
                          PreTrainedTokenizerFast, Trainer, TrainerCallback, TrainingArguments)

from lhama.config import load
from lhama.data.collate import Batch
from lhama.data.conversation import IGNORE_INDEX
from lhama.model.adapters import apply_lora, enable_gradient_checkpointing, set_trainable, trainable_parameters
from lhama.model.build import compose
from lhama.model.branches import lhama_config
from lhama.model.config import ImageConfig, LoraSettings
from lhama.train.config import TrainConfig
from lhama.train.distributed import DistInfo
from lhama.train.loop import LoopParts, train_step
from lhama.train.optim import build_optimizer, build_scheduler

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16


@dataclass(frozen=True)
class Shapes:
    lm: LlamaConfig
    tower: CLIPVisionConfig
    text_tokens: int


def shapes(tiny: bool) -> Shapes:
    if tiny:
        lm = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=512)
        return Shapes(lm, CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=56, patch_size=14), 32)
    lm = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
    tower = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                             image_size=336, patch_size=14, projection_dim=768)
    return Shapes(lm, tower, 448)  # 576 image + 448 text = 1024 tokens, typical of LLaVA-1.5 data


def build(s: Shapes, device: torch.device, dtype: torch.dtype, lora: LoraSettings):
    """The composed model with LoRA applied, base weights in ``dtype``, trainable ones fp32."""
    vocab = {f"t{i}": i for i in range(s.lm.vocab_size - 1)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")),
                                        pad_token="t0", eos_token="t1")
    with torch.device(device):
        lm = AutoModelForCausalLM.from_config(s.lm, dtype=dtype)
        tower = CLIPVisionModel(s.tower).to(dtype)
    loaded = compose(lhama_config(image=ImageConfig()), lm, tokenizer, {"image": tower})
    loaded.model.to(device)
    apply_lora(loaded, lora)
    set_trainable(loaded.model, ("multi_modal_projector", "lora_"))
    for param in trainable_parameters(loaded.model).values():
        param.data = param.data.float()
    enable_gradient_checkpointing(loaded)
    return loaded


def batches(loaded, s: Shapes, batch_size: int, count: int, seed: int = 0) -> list[Batch]:
    """Synthetic LLaVA-shaped batches: <image> tokens, then text whose second half is supervised."""
    g = torch.Generator().manual_seed(seed)
    n_image = next(iter(loaded.expansions().values()))
    image_id = loaded.model.token_ids["image"]
    out = []
    for _ in range(count):
        text = torch.randint(2, s.lm.vocab_size - 2, (batch_size, s.text_tokens), generator=g)
        ids = torch.cat([torch.full((batch_size, n_image), image_id), text], dim=1)
        labels = ids.clone()
        labels[:, : n_image + s.text_tokens // 2] = IGNORE_INDEX
        size = s.tower.image_size
        media = {"image": torch.randn(batch_size, 3, size, size, generator=g)}
        out.append(Batch(ids, torch.ones_like(ids), labels, media))
    return out


def flops_per_sample(loaded, s: Shapes) -> float:
    lm = loaded.model.language_model
    n_lm = sum(p.numel() for n, p in lm.named_parameters() if "lora_" not in n and "embed_tokens" not in n)
    n_train = sum(p.numel() for p in trainable_parameters(loaded.model).values())
    n_tower = sum(p.numel() for p in loaded.model.vision_tower.parameters())
    tokens = next(iter(loaded.expansions().values())) + s.text_tokens
    attention = 4 * s.lm.num_hidden_layers * tokens * s.lm.hidden_size * 3  # fwd + bwd (2x)
    image_tokens = (s.tower.image_size // s.tower.patch_size) ** 2 + 1
    return tokens * (4 * n_lm + 6 * n_train + attention) + 2 * n_tower * image_tokens


def measure(step_fn, data: list[Batch], warmup: int, device: torch.device) -> float:
    """Seconds per step over the batches after ``warmup``."""
    for batch in data[:warmup]:
        step_fn(batch)
    _sync(device)
    start = time.perf_counter()
    for batch in data[warmup:]:
        step_fn(batch)
    _sync(device)
    return (time.perf_counter() - start) / max(1, len(data) - warmup)


def lhama_loop(loaded, data, args, device) -> float:
    cfg = load(TrainConfig, None, ["model.lm=benchmark", "stage=finetune", f"micro_batch_size={args.batch}",
                                   "precision=bf16", "optim.lr=2e-4", "progress=false"])
    info = DistInfo(device=device)
    optimizer = build_optimizer(loaded.model, cfg.optim)
    parts = LoopParts(loaded.model, loaded.model, optimizer, build_scheduler(optimizer, len(data), cfg.optim), None, ())
    scaler = torch.amp.GradScaler(enabled=False)
    return measure(lambda b: train_step(parts, [b], info, cfg, scaler), data, args.warmup, device)


class _Timer(TrainerCallback):
    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device, self.start, self.steps = warmup, device, None, 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()
        elif state.global_step > self.warmup:
            self.steps += 1


class _WithLoss(torch.nn.Module):
    """HF's own loss (labels shifted inside the LM), the plain-Trainer way."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels, image):
        return self.model(input_ids, media={"image": image}, attention_mask=attention_mask, labels=labels)


def hf_trainer(loaded, data, args, device) -> float:
    rows = [{"input_ids": b.input_ids[i], "attention_mask": b.attention_mask[i], "labels": b.labels[i],
             "image": b.media["image"][i]} for b in data for i in range(len(b.input_ids))]
    targs = TrainingArguments(
        output_dir="/tmp/lhama-hf-bench", per_device_train_batch_size=args.batch, max_steps=len(data),
        learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=max(1, round(0.03 * len(data))), bf16=device.type == "cuda",
        logging_steps=10_000, save_strategy="no", report_to=[], remove_unused_columns=False,
        dataloader_num_workers=0, use_cpu=device.type != "cuda",
    )
    timer = _Timer(args.warmup, device)
    Trainer(model=_WithLoss(loaded.model), args=targs, train_dataset=rows, callbacks=[timer]).train()
    _sync(device)
    return (time.perf_counter() - timer.start) / max(1, timer.steps)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description="7B-class stage-2 LoRA: lhama loop vs HF Trainer")
    parser.add_argument("--batch", type=int, default=8, help="samples per step (per GPU)")
    parser.add_argument("--steps", type=int, default=12, help="steps per loop, warm-up included")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="small shapes, for a CPU smoke test")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    s = shapes(args.tiny)
    lora = LoraSettings(r=8 if args.tiny else 128, alpha=16 if args.tiny else 256, dropout=0.05)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    results = {}
    for name, loop_fn in (("lhama loop", lhama_loop), ("HF Trainer", hf_trainer)):
        torch.manual_seed(0)
        loaded = build(s, device, dtype, lora)
        data = batches(loaded, s, args.batch, args.steps)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step_s = loop_fn(loaded, data, args, device)
        results[name] = (step_s, _peak_gb(device), flops_per_sample(loaded, s))
        del loaded, data
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    _print(results, args, s, device)


def _print(results: dict, args, s: Shapes, device: torch.device) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    tokens = (s.tower.image_size // s.tower.patch_size) ** 2 + s.text_tokens
    print(f"device: {name}; batch {args.batch} x {tokens} tokens; {args.steps - args.warmup} timed steps; "
          f"load {os.getloadavg()[0]:.1f}")
    print("| loop | s/step | samples/s | tokens/s | MFU | peak GPU memory |\n|---|---|---|---|---|---|")
    for loop_name, (step_s, peak_gb, flops) in results.items():
        sps = args.batch / step_s
        mfu = f"{sps * flops / (peak * 1e12):.1%}" if peak else "n/a"
        print(f"| {loop_name} | {step_s:.3f} | {sps:.2f} | {sps * tokens:.0f} | {mfu} | {peak_gb:.1f} GB |")


if __name__ == "__main__":
    main()
