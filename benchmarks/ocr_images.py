"""Render the OCR benchmark's pt-BR images (receipts, signs, product labels, notes and a few
text-free pictures) from their description in benchmarks/data/ocr_ptbr.jsonl.

    python benchmarks/ocr_images.py /tmp/ocr_ptbr          # writes 01.png ... 54.png

Each line gives the text lines, the DejaVu font and size, the colours, a rotation in degrees
and a noise level (standard deviation of Gaussian pixel noise, plus as many random specks).
Rendering is deterministic (the noise is seeded by the item id).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DATA = Path(__file__).parent / "data" / "ocr_ptbr.jsonl"
FONTS = Path("/usr/share/fonts/truetype/dejavu")  # Debian fonts-dejavu-core
BACKGROUNDS = {"paper": "#fbf8f0"}


def render(item: dict) -> Image.Image:
    background = BACKGROUNDS.get(item["background"], item["background"])
    if not item["lines"]:
        image = Image.new("RGB", (480, 320), background)
    else:
        font = ImageFont.truetype(str(FONTS / item["font"]), item["size"])
        step = round(item["size"] * 1.45)
        pad = max(16, item["size"])
        width = max(round(font.getlength(line)) for line in item["lines"]) + 2 * pad
        image = Image.new("RGB", (width, step * len(item["lines"]) + 2 * pad), background)
        draw = ImageDraw.Draw(image)
        for row, line in enumerate(item["lines"]):
            draw.text((pad, pad + row * step), line, font=font, fill=item["color"])
    if item["rotate"]:
        image = image.rotate(item["rotate"], expand=True, fillcolor=background, resample=Image.Resampling.BICUBIC)
    return _noisy(image, item["noise"], item["id"])


def _noisy(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    if not sigma:
        return image
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.normal(0, sigma, pixels.shape)
    h, w = pixels.shape[:2]
    ys, xs = rng.integers(0, h, int(sigma)), rng.integers(0, w, int(sigma))
    pixels[ys, xs] = rng.integers(0, 255, (len(ys), 1))  # specks
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def items(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for item in items(args.data):
        render(item).save(args.out / f"{item['id']:02d}.png")
    print(f"{len(items(args.data))} images in {args.out}")


if __name__ == "__main__":
    main()
