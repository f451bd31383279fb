"""Is the open-NSFW ResNet-50 trunk a useful image tower? A linear probe on Tux Paint.

Classifies the 622 Tux Paint stamps (../shared/data/tuxpaint_ptbr) into their coarse category
(the part of `category` before the first "/", 16 classes) with a closed-form ridge classifier
on globally pooled features, 5-fold cross-validated; the ridge strength is chosen inside each
training fold (inner 4-fold CV), so test folds never steer it. Compares the real weights with
the same network at random initialisation and with raw pixels, then times the tower's forward.

    PYTHONPATH=src python benchmarks/tower_probe.py [--home /tmp/lh] [--time-only]

Needs the prepared tower (`lhama models prepare open-nsfw-resnet50`; prepared here if missing).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import torch

from lhama.data.media import images_to_tensor
from lhama.model.towers.resnet import ResNetTower, ResNetTowerConfig, caffe_image_spec, load_tower
from lhama.weights.prepare import prepare

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tuxpaint_ptbr"
LAMBDAS = [10.0**k for k in range(-3, 5)]


def read_dataset() -> tuple[list[Path], torch.Tensor, list[str]]:
    with open(DATA / "captions.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    coarse = [r["category"].split("/")[0] for r in rows]
    names = sorted(set(coarse))
    labels = torch.tensor([names.index(c) for c in coarse])
    return [DATA / "images" / r["file"] for r in rows], labels, names


@torch.no_grad()
def pooled_features(tower: ResNetTower, pixels: torch.Tensor, layers: list[int], batch: int = 32) -> dict[int, torch.Tensor]:
    """Global-average of each chosen hidden state -> {layer: (n, C)}."""
    out: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(pixels), batch):
        hidden = tower(pixels[start : start + batch]).hidden_states
        for layer in layers:
            out[layer].append(hidden[layer].mean(dim=1).double())
    return {layer: torch.cat(chunks) for layer, chunks in out.items()}


def ridge_fit(x: torch.Tensor, y: torch.Tensor, n_classes: int, lam: float) -> tuple[torch.Tensor, ...]:
    """One-vs-all ridge regression on standardised features; returns (mean, std, W, b)."""
    mean, std = x.mean(0), x.std(0) + 1e-8
    z = (x - mean) / std
    targets = torch.nn.functional.one_hot(y, n_classes).double()
    gram = z.T @ z + lam * len(z) * torch.eye(z.shape[1], dtype=z.dtype)
    w = torch.linalg.solve(gram, z.T @ (targets - targets.mean(0)))
    return mean, std, w, targets.mean(0)


def ridge_predict(model: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
    mean, std, w, b = model
    return (((x - mean) / std) @ w + b).argmax(1)


def folds(n: int, k: int, seed: int) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [order[i::k] for i in range(k)]


def cv_accuracy(x: torch.Tensor, y: torch.Tensor, n_classes: int, k: int = 5, seed: int = 0) -> float:
    """k-fold accuracy; the ridge strength is picked by an inner CV on each training part."""
    correct = 0
    for test in folds(len(x), k, seed):
        train = torch.ones(len(x), dtype=torch.bool)
        train[test] = False
        xt, yt = x[train], y[train]
        lam = max(LAMBDAS, key=lambda lam: _inner_accuracy(xt, yt, n_classes, lam))
        correct += (ridge_predict(ridge_fit(xt, yt, n_classes, lam), x[test]) == y[test]).sum().item()
    return correct / len(x)


def _inner_accuracy(x: torch.Tensor, y: torch.Tensor, n_classes: int, lam: float) -> float:
    correct = 0
    for test in folds(len(x), 4, seed=1):
        train = torch.ones(len(x), dtype=torch.bool)
        train[test] = False
        correct += (ridge_predict(ridge_fit(x[train], y[train], n_classes, lam), x[test]) == y[test]).sum().item()
    return correct / len(x)


def time_forward(tower: ResNetTower, batch: int, repeats: int = 3) -> float:
    """Median seconds per image of ``tower`` on a batch of random 224 px images."""
    x = torch.randn(batch, 3, 224, 224) * 60
    times = []
    with torch.no_grad():
        tower(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            tower(x)
            times.append((time.perf_counter() - start) / batch)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="LHAMA_HOME holding the prepared tower")
    parser.add_argument("--time-only", action="store_true", help="only time the forward pass")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    real = load_tower(prepare("open-nsfw-resnet50", home=args.home))
    if not args.time_only:
        probe(real)
    print(f"\nload average before timing: {os.getloadavg()}")
    print("| batch | ms per image (forward, all stages) |\n|---|---|")
    for batch in (1, 16):
        print(f"| {batch} | {time_forward(real, batch) * 1000:.0f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


def probe(real: ResNetTower) -> None:
    """Print the probe table: raw pixels, real and random weights, stage 3 and 4 maps."""
    torch.manual_seed(0)
    random = ResNetTower(ResNetTowerConfig()).eval()
    paths, labels, names = read_dataset()
    pixels = images_to_tensor(paths, caffe_image_spec(real.config))
    n_classes = len(names)
    print(f"{len(paths)} images, {n_classes} coarse categories, majority class {labels.bincount().max().item() / len(labels):.3f}")
    print(f"load average: {os.getloadavg()}")
    rows = [("raw pixels 16x16x3 (768)", cv_accuracy(_raw_pixels(pixels), labels, n_classes))]
    for label, tower in (("real", real), ("random init", random)):
        feats = pooled_features(tower, pixels, [-2, -1])
        rows.append((f"{label}: stage 3 pooled, 14x14x512 map (512)", cv_accuracy(feats[-2], labels, n_classes)))
        rows.append((f"{label}: stage 4 pooled, 7x7x1024 map (1024)", cv_accuracy(feats[-1], labels, n_classes)))
    print("\n| features (dims) | 5-fold accuracy |\n|---|---|")
    for label, acc in rows:
        print(f"| {label} | {acc:.3f} |", flush=True)


def _raw_pixels(pixels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.adaptive_avg_pool2d(pixels, 16).flatten(1).double()


if __name__ == "__main__":
    main()
