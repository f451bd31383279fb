"""Run outputs for people: ``metrics.jsonl`` (one JSON row per logged step or evaluation) and
``curves.png`` (training/held-out loss and learning rate against step), drawn with PIL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from lhama.files import atomic_open, atomic_write_text, read_jsonl

SIZE = (900, 620)
MARGIN = (70, 30, 20, 40)  # left, top, right, bottom of each panel
COLORS = {"loss": (31, 119, 180), "eval_loss": (214, 39, 40), "lr": (44, 160, 44)}


class MetricsLog:
    """Append-only JSONL log. On resume, rows after the resumed step are dropped first (they
    belong to the interrupted tail and will be recomputed)."""

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.is_file():
            kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    return read_jsonl(path)


def plot_curves(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """Two panels: loss (train and held-out) and learning rate, against step."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    half = SIZE[1] // 2
    loss = {k: [(r["step"], r[k]) for r in rows if k in r] for k in ("loss", "eval_loss")}
    _panel(draw, (0, 0, SIZE[0], half), loss, "loss")
    _panel(draw, (0, half, SIZE[0], SIZE[1]), {"lr": [(r["step"], r["lr"]) for r in rows if "lr" in r]}, "learning rate")
    out = Path(out)
    with atomic_open(out, "wb") as handle:
        image.save(handle, format="PNG")
    return out


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], series: dict[str, list], title: str) -> None:
    left, top = box[0] + MARGIN[0], box[1] + MARGIN[1]
    right, bottom = box[2] - MARGIN[2], box[3] - MARGIN[3]
    draw.rectangle((left, top, right, bottom), outline="black")
    points = [p for values in series.values() for p in values]
    if not points:
        draw.text((left + 10, top + 10), f"{title}: no data", fill="black")
        return
    (x0, x1), (y0, y1) = _range([p[0] for p in points]), _range([p[1] for p in points])
    scale = lambda x, y: (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))  # noqa: E731
    for name, values in series.items():
        xy = [scale(x, y) for x, y in values]
        if len(xy) > 1:
            draw.line(xy, fill=COLORS[name], width=2)
        for x, y in xy if len(xy) < 40 else []:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=COLORS[name])
    legend = "   ".join(f"{name} (last {values[-1][1]:.4g})" for name, values in series.items() if values)
    draw.text((left, box[1] + 8), f"{title}: {legend}", fill="black")
    for value, y in ((y1, top), (y0, bottom)):
        draw.text((box[0] + 4, y - 6), f"{value:.3g}", fill="black")
    draw.text((left, bottom + 6), f"step {x0:g}", fill="black")
    draw.text((right - 80, bottom + 6), f"step {x1:g}", fill="black")


def _range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    return (low, high) if high > low else (low - 1, high + 1)
