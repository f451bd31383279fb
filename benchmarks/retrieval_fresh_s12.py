"""Issue #26 session 12: a fresh, unread 5-way retrieval set from Debian's tuxpaint-stamps-default.

    python benchmarks/retrieval_fresh_s12.py list                       # writes LIST (once, committed)
    python benchmarks/retrieval_fresh_s12.py build --out /tmp/26b/fresh # renders LIST in the Tux Paint layout
    lhama eval retrieval --data /tmp/26b/fresh                          # the one read (docs/results/retrieval_s12_rule.md)

The stamps are those of ``/usr/share/tuxpaint/stamps`` (tuxpaint-stamps-default 2022.06.04-1,
GPL-2; referenced, not copied) that no lhama model or list has seen (:func:`eligible`):

* a ``pt_BR.utf8=`` caption in the stamp's ``.txt`` and a PNG or SVG picture;
* not in the shared Tux Paint set (``../shared/data/tuxpaint_ptbr``, its file name rule);
* no key in the names heads (``src/lhama/model/towers/names_head*``), the names table
  (``stamp_names.tsv``), ``naming_heldout.tsv``, ``naming_glyphs_fresh_s11.tsv`` or
  ``names_pool_excluded.tsv``, nor anywhere else in the repository's text (:func:`mentioned`);
* not a PNG the glyph reader was trained on as "not a glyph" (every PNG outside ``alphabets`` and
  ``math``: benchmarks/naming_glyph_s11.py ``train``).

Pictures are made like the shared set: flattened on white, JPEG quality 90, longest side 384 px
(an SVG is rendered with cairosvg so that its longest side is 384 px; a PNG is only shrunk). The
list is written once and committed; ``build`` renders exactly the listed stamps.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
STAMPS = Path("/usr/share/tuxpaint/stamps")
SHARED = ROOT.parent / "shared" / "data" / "tuxpaint_ptbr"
LIST = ROOT / "benchmarks" / "data" / "retrieval_fresh_s12.tsv"
SIDE, QUALITY = 384, 90
COLUMNS = ["file", "category", "key", "source", "en", "pt_BR"]
KEY_LISTS = ("src/lhama/model/towers/names_head.tsv", "src/lhama/model/towers/names_head_clipart/names_head.tsv",
             "src/lhama/model/towers/stamp_names.tsv", "benchmarks/data/naming_heldout.tsv",
             "benchmarks/data/naming_glyphs_fresh_s11.tsv", "benchmarks/data/names_pool_excluded.tsv")
HEADER = """\
# Fresh 5-way retrieval set, issue #26 session 12: every stamp of Debian's tuxpaint-stamps-default
# 2022.06.04-1 (/usr/share/tuxpaint/stamps, GPL-2; referenced, not copied) with a pt_BR caption that is
# not in the shared Tux Paint set, in no names head, names table or naming list of the repository, and
# not a glyph reader training picture (benchmarks/retrieval_fresh_s12.py `eligible`). Listed before any
# model saw them; read ONCE under docs/results/retrieval_s12_rule.md. `build` renders them.
"""


def flat_name(key: str) -> str:
    """``animals/birds/swallow`` -> ``animals_birds__swallow.jpg`` (the shared set's file names)."""
    return key.replace("/", "_", key.count("/") - 1).replace("/", "__") + ".jpg"


def captions(txt: Path) -> tuple[str, str]:
    """(English, pt_BR) of a stamp's ``.txt`` (first line; the ``pt_BR.utf8=`` line, "" if none)."""
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    pt = [line.split("=", 1)[1].strip() for line in lines if line.startswith("pt_BR.utf8=")]
    return (lines[0].strip() if lines else ""), (pt[0] if pt else "")


def mentioned(keys: list[str]) -> set[str]:
    """The keys that occur in a key list or anywhere in the repository's tracked text files."""
    listed = set()
    for rel in KEY_LISTS:
        for line in (ROOT / rel).read_text(encoding="utf-8").splitlines():
            listed.update(cell.removesuffix(".png").removesuffix(".svg") for cell in line.split("\t"))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    text = "\n".join(_read(ROOT / p) for p in tracked if p != LIST.relative_to(ROOT).as_posix())
    return {k for k in keys if k in listed or k in text or flat_name(k) in text}


def _read(path: Path) -> str:
    if path.suffix not in {".py", ".tsv", ".txt", ".md", ".json", ".jsonl", ".csv", ".sh"} or not path.is_file():
        return ""
    return path.read_text(encoding="utf-8", errors="replace")


def eligible(stamps: Path = STAMPS, shared: Path = SHARED) -> list[dict[str, str]]:
    """The listed rows, sorted by key (see the module docstring for the rules)."""
    in_shared = set(os.listdir(shared / "images"))
    rows = []
    for txt in sorted(stamps.rglob("*.txt")):
        key = txt.relative_to(stamps).as_posix().removesuffix(".txt")
        en, pt = captions(txt)
        source = ".png" if txt.with_suffix(".png").is_file() else ".svg" if txt.with_suffix(".svg").is_file() else ""
        glyph_negative = source == ".png" and "alphabets" not in key and "/math/" not in key
        if pt and source and flat_name(key) not in in_shared and not glyph_negative:
            rows.append({"file": flat_name(key), "category": key.rsplit("/", 1)[0], "key": key, "source": source,
                         "en": en, "pt_BR": pt})
    seen = mentioned([r["key"] for r in rows])
    return [r for r in rows if r["key"] not in seen]


def read_list(path: Path = LIST) -> list[dict[str, str]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def render(path: Path) -> Image.Image:
    """The stamp flattened on white, longest side ``SIDE`` (an SVG rendered to it, a PNG shrunk to it)."""
    if path.suffix == ".svg":
        import cairosvg

        first = Image.open(io.BytesIO(cairosvg.svg2png(url=str(path), unsafe=True)))
        scale = SIDE / max(first.size)
        image = Image.open(io.BytesIO(cairosvg.svg2png(url=str(path), scale=scale, unsafe=True)))
    else:
        image = Image.open(path)
    image = image.convert("RGBA")
    flat = Image.new("RGB", image.size, (255, 255, 255))
    flat.paste(image, mask=image.getchannel("A"))
    flat.thumbnail((SIDE, SIDE), Image.LANCZOS)
    return flat


def build(out: Path, stamps: Path = STAMPS, rows: list[dict[str, str]] | None = None) -> int:
    """Write ``out/images/*.jpg`` and ``out/captions.tsv`` (file, category, en, pt_BR); each file via
    a temporary name and a rename. Returns the number of pictures."""
    rows = read_list() if rows is None else rows
    (out / "images").mkdir(parents=True, exist_ok=True)
    for row in rows:
        target = out / "images" / row["file"]
        tmp = target.with_suffix(".tmp.jpg")
        render(stamps / (row["key"] + row["source"])).save(tmp, "JPEG", quality=QUALITY)
        tmp.replace(target)
    tsv = out / "captions.tsv"
    with (out / "captions.tsv.tmp").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, lineterminator="\n")
        writer.writerow(["file", "category", "en", "pt_BR"])
        writer.writerows([r["file"], r["category"], r["en"], r["pt_BR"]] for r in rows)
    (out / "captions.tsv.tmp").replace(tsv)
    return len(rows)


def write_list(rows: list[dict[str, str]], path: Path = LIST) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(HEADER + buffer.getvalue(), encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="write the committed list (once)")
    b = sub.add_parser("build", help="render the listed stamps")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--stamps-dir", type=Path, default=STAMPS)
    args = parser.parse_args(argv)
    if args.command == "list":
        if LIST.exists():
            sys.exit(f"error: {LIST} exists: the fresh set is listed once (its stamps are named in the repository now)")
        rows = eligible()
        write_list(rows)
        print(f"{len(rows)} stamps -> {LIST}")
    else:
        if not args.stamps_dir.is_dir():
            sys.exit(f"error: {args.stamps_dir} not found (apt-get install tuxpaint-stamps-default)")
        print(f"{build(args.out, args.stamps_dir)} pictures -> {args.out}")


if __name__ == "__main__":
    main()
