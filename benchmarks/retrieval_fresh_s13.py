"""Issue #26 session 13: a fresh, unread 5-way retrieval set from Debian's gcompris-qt-data 3.1-2.

    python benchmarks/retrieval_fresh_s13.py candidates --out /tmp/26b/s13/cand  # render + contact sheets
    python benchmarks/retrieval_fresh_s13.py build --out /tmp/26b/s13/fresh     # renders LIST, Tux Paint layout
    lhama eval retrieval --data /tmp/26b/s13/fresh                               # the one read
                                                                                 # (docs/results/retrieval_s13_rule.md)

GCompris ships its pictures inside Qt resource files (``/usr/share/gcompris-qt/rcc/*.rcc``); they
are read here with a small reader of Qt's documented ``qres`` layout (:func:`read_rcc`), nothing is
copied into the repository. The candidates are every picture of the activity folders in
:data:`FOLDERS` except the activities' own menu icons, backgrounds and card backs
(:func:`is_picture`). Each listed picture's pt_BR caption was written by hand, by looking at the
picture (helper 26b, session 13), before any model saw it; pictures that show no one thing a
caption can name, or that repeat another candidate's drawing, were left out by hand and are listed
with the reason in ``retrieval_fresh_s13_left_out.tsv``.

Pictures are made like the shared Tux Paint set and session 12's fresh set: flattened on white,
JPEG quality 90, longest side 384 px (an SVG rendered with cairosvg to that side; a bitmap only
shrunk).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
RCC = Path("/usr/share/gcompris-qt/rcc")
LIST = ROOT / "benchmarks" / "data" / "retrieval_fresh_s13.tsv"
LEFT_OUT = ROOT / "benchmarks" / "data" / "retrieval_fresh_s13_left_out.tsv"
SIDE, QUALITY = 384, 90
PREFIX = "gcompris/src/activities/"
FOLDERS = ("lang/resource/words_sample/", "instruments/resource/", "explore_world_animals/resource/animals/",
           "explore_farm_animals/resource/animals/", "memory/resource/", "babymatch/resource/images/",
           "categorization/resource/images/tools/", "categorization/resource/images/others/")
NOT_PICTURES = ("background", "backcard", "emptycard", "question", "error", "farm-animals")
SUFFIXES = (".svg", ".svgz", ".webp", ".png", ".jpg")
COLUMNS = ["file", "key", "pt_BR"]


def read_rcc(path: Path) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a Qt resource file (format versions 1-3; zlib or zstd)."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource file (no 'qres' magic)")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    node = 22 if version >= 2 else 14

    def name(offset: int) -> str:
        n = struct.unpack(">H", b[names + offset:names + offset + 2])[0]
        return b[names + offset + 6:names + offset + 6 + 2 * n].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + index * node
        name_offset, flags = struct.unpack(">IH", b[at:at + 6])
        here = name(name_offset) if index else ""
        if flags & 2:  # a directory: child count, first child
            count, first = struct.unpack(">II", b[at + 6:at + 14])
            for child in range(first, first + count):
                yield from walk(child, f"{prefix}{here}/" if index else "")
            return
        offset = struct.unpack(">I", b[at + 10:at + 14])[0]
        size = struct.unpack(">I", b[data + offset:data + offset + 4])[0]
        raw = b[data + offset + 4:data + offset + 4 + size]
        if flags & 1:
            raw = zlib.decompress(raw[4:])  # qCompress: 4-byte length, then zlib
        elif flags & 4:
            import zstandard

            raw = zstandard.ZstdDecompressor().decompress(raw)
        yield prefix + here, raw

    yield from walk(0, "")


def is_picture(key: str) -> bool:
    """A picture file of one of :data:`FOLDERS`, not a menu icon, background or card back."""
    folder, _, stem = key.rpartition("/")
    return (key.endswith(SUFFIXES) and any(key.startswith(f) and "/" not in key[len(f):] for f in FOLDERS)
            and not any(stem.startswith(n) for n in NOT_PICTURES) and folder + "/" in FOLDERS)


def pictures(rcc: Path = RCC) -> dict[str, bytes]:
    """key (path under ``gcompris/src/activities/``) -> bytes, for every candidate picture."""
    found = {}
    for path in sorted(rcc.glob("*.rcc")):
        for name, raw in read_rcc(path):
            key = name.removeprefix(PREFIX)
            if name.startswith(PREFIX) and is_picture(key):
                found[key] = raw
    return found


def flat_name(key: str) -> str:
    """``instruments/resource/banjo.svg`` -> ``instruments__banjo_svg.jpg`` (a folder may hold a
    drawing and a photo of one name)."""
    folder, (stem, ext) = key.split("/", 1)[0], key.rsplit("/", 1)[1].rsplit(".", 1)
    return f"{folder}__{stem}_{ext}.jpg"


def render(key: str, raw: bytes) -> Image.Image:
    """The picture flattened on white, longest side ``SIDE``."""
    if key.endswith((".svg", ".svgz")):
        import cairosvg

        svg = gzip.decompress(raw) if key.endswith(".svgz") else raw
        first = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg, unsafe=True)))
        image = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg, scale=SIDE / max(first.size), unsafe=True)))
    else:
        image = Image.open(io.BytesIO(raw))
    image = image.convert("RGBA")
    flat = Image.new("RGB", image.size, (255, 255, 255))
    flat.paste(image, mask=image.getchannel("A"))
    flat.thumbnail((SIDE, SIDE), Image.LANCZOS)
    return flat


def dhash(image: Image.Image, size: int = 16) -> int:
    """A 256-bit difference hash of the picture's content (cropped to what is not white, grey,
    (size+1) x size): the same drawing at another scale or margin differs in few bits."""
    grey = image.convert("L")
    box = grey.point(lambda v: 255 if v < 245 else 0).getbbox()
    grey = (grey.crop(box) if box else grey).resize((size + 1, size), Image.LANCZOS)
    px = list(grey.tobytes())
    bits = [px[r * (size + 1) + c] > px[r * (size + 1) + c + 1] for r in range(size) for c in range(size)]
    return sum(1 << i for i, bit in enumerate(bits) if bit)


def read_list(path: Path = LIST) -> list[dict[str, str]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def build(out: Path, rcc: Path = RCC, rows: list[dict[str, str]] | None = None) -> int:
    """Write ``out/images/*.jpg`` and ``out/captions.tsv`` (file, category, key, pt_BR), each via a temporary
    name and a rename. Returns the number of pictures."""
    rows = read_list() if rows is None else rows
    found = pictures(rcc)
    missing = [r["key"] for r in rows if r["key"] not in found]
    if missing:
        raise SystemExit(f"error: {len(missing)} listed pictures are not in {rcc} (first: {missing[0]}); "
                         "apt-get install gcompris-qt-data=3.1-2")
    (out / "images").mkdir(parents=True, exist_ok=True)
    for row in rows:
        target = out / "images" / row["file"]
        tmp = target.with_suffix(".tmp.jpg")
        render(row["key"], found[row["key"]]).save(tmp, "JPEG", quality=QUALITY)
        tmp.replace(target)
    with (out / "captions.tsv.tmp").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, lineterminator="\n")
        writer.writerow(["file", "category", "key", "pt_BR"])  # category: the activity (per-kind counts)
        writer.writerows([r["file"], r["key"].split("/", 1)[0], r["key"], r["pt_BR"]] for r in rows)
    (out / "captions.tsv.tmp").replace(out / "captions.tsv")
    return len(rows)


def candidates(out: Path, rcc: Path = RCC, per_sheet: int = 16) -> int:
    """Render every candidate to ``out/images`` and numbered contact sheets ``out/sheet_NN.jpg``
    (for writing the captions by hand); ``out/candidates.tsv`` lists number, file, key."""
    found = pictures(rcc)
    (out / "images").mkdir(parents=True, exist_ok=True)
    keys = sorted(found)
    with (out / "candidates.tsv").open("w", encoding="utf-8") as handle:
        for n, key in enumerate(keys):
            render(key, found[key]).save(out / "images" / flat_name(key), "JPEG", quality=QUALITY)
            handle.write(f"{n}\t{flat_name(key)}\t{key}\n")
    cell = 240
    for s in range(0, len(keys), per_sheet):
        sheet = Image.new("RGB", (4 * cell, 4 * cell), (200, 200, 200))
        draw = ImageDraw.Draw(sheet)
        for i, key in enumerate(keys[s:s + per_sheet]):
            picture = Image.open(out / "images" / flat_name(key))
            picture.thumbnail((cell - 8, cell - 24))
            x, y = (i % 4) * cell, (i // 4) * cell
            sheet.paste(picture, (x + 4, y + 20))
            draw.text((x + 4, y + 4), f"{s + i}", fill=(200, 0, 0))
        sheet.save(out / f"sheet_{s // per_sheet:02d}.jpg", quality=85)
    return len(keys)


REFERENCES = (Path("/usr/share/openclipart"), Path("/usr/share/tuxpaint/stamps"), ROOT.parent / "shared" / "data")


def reference_hashes(roots: tuple[Path, ...] = REFERENCES) -> dict[str, int]:
    """dhash of every picture (PNG, JPEG, WebP, SVG) under ``roots``: the art lhama's lists, names
    heads and training sets were drawn from (openclipart, Tux Paint stamps, the shared data)."""
    hashes = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp", ".svg"} and path.is_file():
                try:
                    hashes[str(path)] = dhash(render(path.name, path.read_bytes()))
                except Exception as error:  # noqa: BLE001 - an unreadable reference is reported, not fatal
                    print(f"skipped {path}: {error}", file=sys.stderr)
    return hashes


def overlap(out: Path, rcc: Path = RCC, within: int = 64) -> int:
    """``out``: each candidate's nearest reference picture and its dhash distance (bits of 256), and
    each pair of candidates within ``within`` bits; rows within ``within`` are for checking by eye."""
    found = pictures(rcc)
    mine = {key: dhash(render(key, raw)) for key, raw in found.items()}
    refs = reference_hashes()
    rows = []
    for key, h in sorted(mine.items()):
        ref, d = min(((r, bin(h ^ rh).count("1")) for r, rh in refs.items()), key=lambda x: x[1])
        rows.append(f"{key}\t{ref}\t{d}")
        rows += [f"{key}\t{other}\t{bin(h ^ oh).count('1')}" for other, oh in sorted(mine.items())
                 if other > key and bin(h ^ oh).count("1") <= within]
    out.write_text("key\tnearest\tbits\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return sum(int(r.rsplit("\t", 1)[1]) <= within for r in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("overlap").add_argument("--out", type=Path, required=True)
    for name in ("candidates", "build"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--rcc-dir", type=Path, default=RCC)
    args = parser.parse_args(argv)
    if args.command == "overlap":
        print(f"{overlap(args.out)} rows within 64 bits -> {args.out}")
        return
    if not args.rcc_dir.is_dir():
        sys.exit(f"error: {args.rcc_dir} not found (apt-get install gcompris-qt-data)")
    if args.command == "candidates":
        print(f"{candidates(args.out, args.rcc_dir)} candidates -> {args.out}")
    else:
        print(f"{build(args.out, args.rcc_dir)} pictures -> {args.out}")


if __name__ == "__main__":
    main()
