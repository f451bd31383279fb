"""What the glyph reader adds to a labeler note (issue #26 session 11): per picture, the note's time
with and without the reader, and the reader's own time, median of ``--rounds``.

    python benchmarks/glyph_cost.py --model lhama-default --threads 1

Pictures: the README owl (a photo: the gate stops at its page), a Tux Paint animal drawing, a
Tux Paint letter (the reader names it and the tower is skipped) and, when installed, a large
openclipart picture (the gate reads every pixel).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from pathlib import Path

import torch

from lhama.data.media import load_image
from lhama.model.glyph import SHIPPED, GlyphConfig, GlyphReader
from lhama.model.labeler import Labeler, load_labeler
from lhama.weights.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]
TUX = ROOT.parent / "shared/data/tuxpaint_ptbr/images"
PICTURES = {"owl photo (examples/coruja.jpg)": ROOT / "examples/coruja.jpg",
            "Tux Paint crow": TUX / "animals_birds__crow.jpg",
            "Tux Paint letter b": TUX / "symbols_alphabets_english_filled_lowercase__b_filled.jpg",
            "clip-art tiger, 2.25 Mpx": Path("/usr/share/openclipart/png/animals/mammals/big_cats/tiger_graig_ryan_smith_-_01.png")}


def timed(call, rounds: int) -> float:
    """Median milliseconds of ``call()`` over ``rounds`` runs (after one untimed run)."""
    call()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--confident", type=float, default=0.8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shipped = load_labeler(resolve(args.model, args.model))
    reader = GlyphReader.load(SHIPPED, GlyphConfig(confident=args.confident))
    config = dataclasses.replace(shipped.config, glyph_confident=args.confident)
    with_reader = Labeler(shipped.tower, shipped.names, config, shipped.kinds, shipped.names_head, reader)
    print(f"{platform.machine()}, {args.threads} thread(s), median of {args.rounds}")
    print("| picture | size | note without reader (ms) | note with reader (ms) | reader alone (ms) | note with reader |")
    print("|---|---|---:|---:|---:|---|")
    for label, path in PICTURES.items():
        if not path.is_file():
            continue
        image = load_image(path)
        rows = [timed(lambda: shipped.note(image), args.rounds), timed(lambda: with_reader.note(image), args.rounds),
                timed(lambda: reader.read(image), args.rounds)]
        print(f"| {label} | {image.width}x{image.height} | {rows[0]:.1f} | {rows[1]:.1f} | {rows[2]:.2f} | {with_reader.note(image)} |")


if __name__ == "__main__":
    main()
