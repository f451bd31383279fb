"""Stage 1 on CPU with the real Gemma-3-270M on the Tux Paint pt_BR captions.

The vision tower is the project's open-NSFW ResNet-50 (``lhama models prepare
open-nsfw-resnet50``; ``--feature-layer -1``: its 7x7x1024 stage-4 map, 49 tokens per image), or,
without ``--vision``, a small randomly initialised CLIP. Only the projector trains. Prints the
training loss at the start and end and the held-out caption loss at step 0 and at the end.

    lhama models prepare open-nsfw-resnet50
    LHAMA_HOME=/tmp/lh PYTHONPATH=src python benchmarks/train_stage1_cpu.py --steps 20 \
        --data ../shared/data/tuxpaint_ptbr --vision $LHAMA_HOME/models/open-nsfw-resnet50 --feature-layer -1 --out runs/stage1-cpu
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from lhama.config import load
from lhama.train.config import TrainConfig
from lhama.train.recipes import find_recipe, run


def random_tower(path: Path, seed: int = 0) -> Path:
    """A 4-layer CLIP-style tower (64 px, 16 px patches -> 16 image tokens), random weights."""
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                              num_attention_heads=4, image_size=64, patch_size=16)
    CLIPVisionModel(config).save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the Tux Paint folder: captions.tsv + images/")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--out", default="runs/stage1-cpu")
    parser.add_argument("--vision", default=None, help="a real tower dir; default: a random tiny CLIP")
    parser.add_argument("--feature-layer", type=int, default=-2, help="the tower's hidden state to use")
    parser.add_argument("--lm", default="gemma-3-270m", help="registry name or LM directory")
    args = parser.parse_args()
    out = Path(args.out)
    vision = args.vision or str(random_tower(out.parent / f"{out.name}-random-clip"))
    cfg = load(TrainConfig, find_recipe("stage1-tuxpaint"), [
        f"data.path={args.data / 'captions.tsv'}", f"data.image_dir={args.data / 'images'}",
        f"model.lm={args.lm}", f"model.vision={vision}", f"model.image.feature_layer={args.feature_layer}", f"output_dir={out}", f"max_steps={args.steps}",
        f"micro_batch_size={args.batch}", "grad_accum=1", "eval_every=0", "save_every=0", "data.eval_fraction=0.05",
    ])
    started = time.perf_counter()
    run(cfg)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_loss" in r]
    head, tail = steps[:3], steps[-3:]
    print("| measure | start | end |\n|---|---|---|")
    print(f"| train loss (mean of first / last 3 steps) | {sum(r['loss'] for r in head) / 3:.4f} | {sum(r['loss'] for r in tail) / 3:.4f} |")
    print(f"| held-out caption loss ({evals[0]['eval_samples']} images) | {evals[0]['eval_loss']:.4f} (step 0) | {evals[-1]['eval_loss']:.4f} (step {evals[-1]['step']}) |")
    print(f"\n{len(steps)} steps x {args.batch} samples in {wall:.0f} s wall "
          f"({sum(r['tokens_per_s'] for r in steps) / len(steps):.0f} tokens/s mean); load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
