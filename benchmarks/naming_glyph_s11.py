"""Issue #26 session 11: a glyph reader for the labeler (pictures of one letter, digit or sign).

    python benchmarks/naming_glyph_s11.py train --stamps-dir /usr/share/tuxpaint/stamps
    python benchmarks/naming_glyph_s11.py dev --data-dir ../shared/data/tuxpaint_ptbr
    python benchmarks/naming_glyph_s11.py fresh --stamps-dir /usr/share/tuxpaint/stamps --model lhama-default

``train`` renders glyphs from the machine's free fonts (DejaVu, FreeFont, URW base35) and takes
its ``other`` pictures from Debian's tuxpaint-stamps-default, leaving out every stamp that is in
the shared Tux Paint set (dev), in ``naming_heldout.tsv``, or a letter or arithmetic stamp (the
fresh set). ``dev`` scores the reader on the shared Tux Paint pictures outside
``data/tuxpaint/heldout.txt``: glyph pictures named (by the reader's name alone), other pictures
the reader speaks on (false alarms), for each ``confident`` threshold. ``fresh`` reads the fresh
set (``benchmarks/data/naming_glyphs_fresh_s11.tsv``) once under the rule in docs/default-model.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import time
from dataclasses import replace
from pathlib import Path

import torch

from lhama.data.media import load_image
from lhama.errors import DataError
from lhama.eval.metrics import names_thing
from lhama.model.glyph import SHIPPED, GlyphConfig, GlyphReader
from lhama.recipes.default.glyphs import GlyphTrainConfig, train_reader

ROOT = Path(__file__).resolve().parents[1]
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/freefont", "/usr/share/fonts/opentype/urw-base35")
NOT_LETTERS = ("Math", "StandardSymbols", "D050000L")  # symbol and dingbat fonts
FRESH = ROOT / "benchmarks/data/naming_glyphs_fresh_s11.tsv"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
SIGNS = {"plus": "mais|adicao|soma", "minus": "menos|subtracao", "multiply": "vezes|multiplicacao|multiplicar",
         "divide": "dividir|divisao", "equals": "igual", "notequals": "diferente", "lessthanequal": "menor ou igual",
         "greaterthanequal": "maior ou igual", "lessthan": "menor que", "greaterthan": "maior que"}
MARKS = {"a_with_umlaut": "a com trema", "o_with_umlaut": "o com trema", "u_with_umlaut": "u com trema",
         "n_with_tilda": "n com til|enhe|ene com til", "ss_eszett": "s duplo|eszett|sz"}


def fonts() -> list[Path]:
    return sorted(p for d in FONT_DIRS for p in Path(d).glob("*.[ot]tf") if not any(n in p.name for n in NOT_LETTERS))


def accepted(stem: str) -> str | None:
    """A glyph picture's accepted pt-BR names from its file stem (None: not a glyph picture)."""
    key = re.sub(r"_(filled|outline)$", "", stem.split("__")[-1]).lower()
    if "symbols_alphabets_asl" in stem or not ("alphabets" in stem or "math" in stem):
        return None
    if "operators" in stem or stem.split("/")[-1].startswith("op"):
        return SIGNS[re.sub(r"^op\d+_", "", key)]
    if key in MARKS:
        return MARKS[key]
    if re.fullmatch(r"\d", key):
        return f"numero {key}|{key}"
    return f"letra {key}" if re.fullmatch(r"[a-z]", key) else None


LETTERISH = re.compile(r"letter|alphab|abc|font|number|digit|text|word|type|sign|symbol|math|plus|minus|arrow")


def clipart_paths(folder: Path, limit: int = 1500) -> list[Path]:
    """The unlisted openclipart pictures the reader trains on as ``other``: none shares a file-name
    group with a listed (dev) picture, none has a letter-like word in its path, none is over 2 MB;
    the first ``limit`` by sha256 of the path."""
    import hashlib

    from lhama.recipes.default.clipart_names import group_word

    listed = [row["image"] for row in csv.DictReader(_rows(ROOT / "benchmarks/data/openclipart_names.tsv"), delimiter="\t")]
    groups, listed = {group_word(i) for i in listed}, set(listed)
    paths = []
    for path in folder.rglob("*.png"):
        image = path.relative_to(folder).as_posix()[:-4]
        if image in listed or group_word(image) in groups or LETTERISH.search(image.lower()):
            continue
        if path.stat().st_size <= 2_000_000:
            paths.append(path)
    paths.sort(key=lambda p: hashlib.sha256(str(p).encode()).hexdigest())
    return paths[:limit]


def clipart_others(args: argparse.Namespace, limit: int = 1500) -> list:
    """The pictures of :func:`clipart_paths` that decode, shrunk for training."""
    paths = clipart_paths(args.clipart_dir, limit)
    out = []
    for path in paths:
        try:
            image = load_image(path)
        except DataError:
            continue
        image.thumbnail((480, 480))  # the net sees 32 px; kept small so that 1,500 pictures fit in memory
        out.append(image)
    print(f"clip-art others: {len(out)} of {len(paths)} taken", flush=True)
    return out


def train(args: argparse.Namespace) -> None:
    shared = set(os.listdir(args.data_dir / "images"))
    heldout = {r.split("\t")[0] for r in (ROOT / "benchmarks/data/naming_heldout.tsv").read_text().splitlines()}
    others = []
    for path in sorted(args.stamps_dir.rglob("*.png")):
        rel = path.relative_to(args.stamps_dir).as_posix()
        flat = rel.replace("/", "_", rel.count("/") - 1).replace("/", "__")[:-4] + ".jpg"
        if flat in shared or rel in heldout or "alphabets" in rel or "/math/" in rel:
            continue
        others.append(load_image(path))
    others += clipart_others(args)
    started = time.perf_counter()
    reader, summary = train_reader(fonts(), others, GlyphTrainConfig(epochs=args.epochs))
    reader.save(args.out)
    summary |= {"fonts": len(fonts()), "other_pictures": len(others), "seconds": round(time.perf_counter() - started)}
    print(json.dumps(summary))


def dev_pictures(args: argparse.Namespace) -> list[tuple[str, Path, str | None]]:
    """(set, path, accepted) for every dev picture: the whole shared Tux Paint set (glyph pictures
    have accepted names), the naming_heldout stamps and the listed clip art (none is a glyph)."""
    out = [("tuxpaint", args.data_dir / "images" / n, accepted(Path(n).stem)) for n in sorted(os.listdir(args.data_dir / "images"))]
    for row in csv.DictReader(_rows(ROOT / "benchmarks/data/naming_heldout.tsv"), delimiter="\t"):
        if row["source"] == "tuxpaint_stamps":
            out.append(("naming_stamps", args.stamps_dir / row["image"], None))
    for row in csv.DictReader(_rows(ROOT / "benchmarks/data/openclipart_names.tsv"), delimiter="\t"):
        out.append(("clipart", args.clipart_dir / f"{row['image']}.png", None))
    return out


def _rows(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]


def dev(args: argparse.Namespace) -> None:
    """Named glyph pictures and false alarms on the dev pictures, per threshold."""
    reader = GlyphReader.load(args.reader, GlyphConfig(confident=0.0))
    rows = []
    for kind, path, truth in dev_pictures(args):
        try:
            image = load_image(path)
        except DataError as exc:
            print(f"skipped {path}: {exc}")
            continue
        started = time.perf_counter()
        glyph = reader.read(image)
        rows.append({"set": kind, "image": str(path), "accepted": truth, "glyph": glyph and glyph.glyph,
                     "name": glyph and glyph.name, "prob": glyph and round(glyph.prob, 4),
                     "ms": round(1000 * (time.perf_counter() - started), 2)})
    table = {}
    for t in THRESHOLDS:
        spoke = [r for r in rows if r["prob"] is not None and r["prob"] >= t]
        named = sum(1 for r in spoke if r["accepted"] and names_thing(r["name"], r["accepted"].split("|")))
        table[t] = {"named": named, "glyph_pictures": sum(1 for r in rows if r["accepted"]),
                    "false_alarms": sum(1 for r in spoke if not r["accepted"]),
                    "other_pictures": sum(1 for r in rows if not r["accepted"])}
        table[t]["score"] = table[t]["named"] - 3 * table[t]["false_alarms"]
        print(t, table[t])
    pick = max(THRESHOLDS, key=lambda t: (table[t]["score"], t))
    ms = sorted(r["ms"] for r in rows)
    out = {"command": "python benchmarks/naming_glyph_s11.py dev", "machine": platform.platform(),
           "pick": pick, "by_threshold": table, "reader_ms_median_p90": [ms[len(ms) // 2], ms[int(0.9 * len(ms))]],
           "rows": rows}
    print("pick", pick, "reader ms median/p90", out["reader_ms_median_p90"])
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def fresh(args: argparse.Namespace) -> None:
    """The committed fresh read: the shipped labeler and the labeler with the reader at ``--confident``,
    note alone and with the LM; also the reader's added time per picture."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from batched import answer_all

    from lhama.inference.quant_cache import load_for_inference
    from lhama.model.labeler import Labeler, load_labeler
    from lhama.weights.cascade import V2_GENERATION
    from lhama.weights.resolve import resolve

    model_dir = resolve(args.model, args.model)
    shipped = load_labeler(model_dir)
    config = replace(shipped.config, glyph_confident=args.confident)
    reader = GlyphReader.load(args.reader, GlyphConfig(confident=args.confident))
    candidate = Labeler(shipped.tower, shipped.names, config, shipped.kinds, shipped.names_head, reader)
    items = list(csv.DictReader(_rows(FRESH), delimiter="\t"))
    notes: dict[str, list[str]] = {"reference": [], "candidate": []}
    seconds: dict[str, list[float]] = {"reference": [], "candidate": [], "reader": []}
    from PIL import Image

    blank = Image.new("RGB", (64, 64), (255, 255, 255))
    shipped.note(blank), candidate.note(blank), reader.read(blank)  # warm-up: not timed
    for item in items:
        image = load_image(args.stamps_dir / item["image"])
        for key, labeler in (("reference", shipped), ("candidate", candidate)):
            started = time.perf_counter()
            notes[key].append(labeler.note(image))
            seconds[key].append(time.perf_counter() - started)
        started = time.perf_counter()
        reader.read(image)
        seconds["reader"].append(time.perf_counter() - started)
    loaded = load_for_inference(model_dir, args.quant)
    system = [{"role": "system", "content": V2_GENERATION.system_prompt}]
    out = {"command": f"python benchmarks/naming_glyph_s11.py fresh --confident {args.confident} --quant {args.quant}",
           "machine": f"{platform.machine()} CPU, {args.threads} thread(s), one heavy slot of the shared machine",
           "fresh_md5": _md5(FRESH), "quant": args.quant, "summary": {}, "rows": []}
    for key in ("reference", "candidate"):
        conversations = [system + [{"role": "user", "content": f"{n}\nO que é isto?"}] for n in notes[key]]
        answers = [a.text.strip() for a in answer_all(loaded, conversations, 16, 16)]
        named_note = [names_thing(n, i["accepted"].split("|")) for n, i in zip(notes[key], items)]
        named_lm = [names_thing(a, i["accepted"].split("|")) for a, i in zip(answers, items)]
        out["summary"][key] = {"note_alone": sum(named_note), "with_lm": sum(named_lm), "n": len(items),
                               "note_ms_median": round(1000 * sorted(seconds[key])[len(items) // 2], 1)}
        for item, note, answer, ok in zip(items, notes[key], answers, named_lm):
            out["rows"].append({"labeler": key, "image": item["image"], "note": note, "answer": answer, "named": ok})
            print(key, item["image"], "|", note, "->", answer, "|", ok, flush=True)
    out["summary"]["reader_ms_median"] = round(1000 * sorted(seconds["reader"])[len(items) // 2], 2)
    print(json.dumps(out["summary"]))
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def verdict(args: argparse.Namespace) -> None:
    """Rule (0) on the dev file: print the pick and exit non-zero when it fails (no fresh read then)."""
    dev_row = json.loads(args.out.read_text(encoding="utf-8"))
    pick = dev_row["pick"]
    row = dev_row["by_threshold"][str(pick)]
    quiet = row["false_alarms"] <= 0.005 * row["other_pictures"]
    names = row["named"] >= 0.6 * row["glyph_pictures"]
    print(f"pick {pick}: {row}; false alarms <= 0.5%: {quiet}; named >= 60%: {names}")
    if not (quiet and names):
        raise SystemExit("rule (0) fails: the fresh set is not read")
    print(pick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("train", "dev", "verdict", "fresh"))
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/data/tuxpaint_ptbr")
    parser.add_argument("--stamps-dir", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--clipart-dir", type=Path, default=Path("/usr/share/openclipart/png"))
    parser.add_argument("--reader", type=Path, default=SHIPPED)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--quant", default="int4-g32-grid-k+lossy6", help="the shipped quant of lhama-default")
    parser.add_argument("--confident", type=float, default=0.0, help="fresh: the dev-chosen glyph_confident")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.step == "train":
        args.out = args.out or SHIPPED
        train(args)
    elif args.step == "verdict":
        verdict(args)
    elif args.step == "dev":
        args.out = args.out or ROOT / "docs/results/naming_s11_glyph_dev.json"
        dev(args)
    else:
        if not args.confident:
            parser.error("fresh needs --confident (the dev pick)")
        args.out = args.out or ROOT / "docs/results/naming_s11_glyph_fresh.json"
        fresh(args)


if __name__ == "__main__":
    main()
