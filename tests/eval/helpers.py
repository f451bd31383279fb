"""Small AdMIRe-shaped data sets written into a tmp dir (real files, tiny images)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

HEADER = ["compound", "subset", "sentence_type", "sentence", "expected_order"] + [
    f"image{n}_{k}" for n in range(1, 6) for k in ("name", "caption")]
COLORS = ["red", "green", "blue", "yellow", "black"]
ITEMS = [
    ("hot potato", "idiomatic", "The tax reform became a hot potato for the government."),
    ("big fish", "literal", "The fisherman pulled a big fish out of the lake."),
    ("night owl", "idiomatic", "My sister is a night owl who works until 3 am."),
]


def write_admire(root: Path, images: bool = True, pt: bool = False, rows: list[list[str]] | None = None) -> Path:
    """A 3-item Subtask A split at ``root``; returns the TSV path. Gold order: images 1..5."""
    root.mkdir(parents=True, exist_ok=True)
    header = HEADER + ([f"image{n}_caption_pt" for n in range(1, 6)] if pt else [])
    lines = ["\t".join(header)]
    for compound, kind, sentence in ITEMS:
        names = [f"{compound.replace(' ', '')}{n}.jpg" for n in range(1, 6)]
        captions = [f"A {c} picture of {compound} number {n}." for n, c in enumerate(COLORS, start=1)]
        row = [compound, "Dev", kind, sentence, str(names)]
        row += [v for pair in zip(names, captions) for v in pair]
        row += [f"Uma imagem {n} de {compound}." for n in range(1, 6)] if pt else []
        lines.append("\t".join(row))
        if images:
            (root / compound).mkdir(exist_ok=True)
            for name, color in zip(names, COLORS):
                Image.new("RGB", (40, 30), color).save(root / compound / name)
    lines += ["\t".join(r) for r in rows or []]
    tsv = root / "subtask_a_dev.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tsv
