"""A fresh common-object naming set of EmojiOne pictures and its one read (issue #26, session 13).

    apt-get download ruby-gemojione && dpkg -x ruby-gemojione_3.3.0-1_all.deb DIR   # art: CC BY-SA 4.0
    python benchmarks/naming_s13_fresh.py build --list HAND.tsv --folder DIR/.../assets/png   # once, before any model
    python benchmarks/naming_s13_fresh.py fresh --folder ... --start A --stop B     # the one read, in slices
    python benchmarks/naming_s13_fresh.py summary --parts docs/results/naming_s13_fresh_*.json

``build`` takes a hand-written list (image = the emoji's code point file stem, english, accepted pt-BR
names, group) and checks every picture is a 64x64 PNG of the package; no lhama list, head or
training file has used EmojiOne art (v1 trained on Google's and Twitter's emoji, other drawings).

``fresh`` is the one read (rule committed before it: docs/default-model.md "Naming, session 13").
Labelers: ``shipped`` = lhama-default's as this tree ships it (``SHIPPED_SETTINGS``, assembled by
:func:`lhama.weights.cascade.assemble_labeler` as ``lhama models prepare`` assembles it, from the
prepared EfficientNet-Lite2) and ``s12`` = session 12's (names_head_s12, no drawing recogniser);
the LM is the prepared lhama-default's at its registry quantisation, greedy, at most 16 new tokens,
the shipped system prompt, the user turn "<note>\\nO que é isto?". A picture is named when the answer
contains an accepted name (:func:`lhama.eval.metrics.names_thing`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
FRESH = ROOT / "benchmarks/data/naming_fresh_s13.tsv"
FOLDER = Path("/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png")
HEADER = """# Fresh common-object naming set, issue #26 session 13 (benchmarks/naming_s13_fresh.py build).
# EmojiOne 2.x art from Debian ruby-gemojione 3.3.0-1 (assets: CC BY-SA 4.0, Ranks.com Inc.);
# `image` = file stem under gemojione-3.3.0/assets/png (64x64 RGBA PNG; referenced, not copied).
# english: what the picture shows; accepted: |-separated pt-BR names that count as naming it
# (lhama.eval.metrics.names_thing), the specific name first, then the basic-level names a Brazilian
# would also give; written by hand from the picture (contact sheets) before any model saw it.
# Chosen from the package's objects/nature/food/travel/activity emoji that show one common thing
# (no people, faces, hands, flags, symbols, letters, scenes of Japan-specific things).
# group: pictures of one kind of thing share it. Read ONCE under docs/default-model.md
# ("Naming, session 13"); never train or tune on it.
"""


def _rows(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def build(args: argparse.Namespace) -> None:
    from PIL import Image

    from lhama.files import atomic_write_text

    lines = ["image\tenglish\taccepted\tgroup"]
    for row in _rows(args.list):
        image, english, accepted, group = row.split("\t")
        with Image.open(args.folder / f"{image}.png") as img:
            if img.size != (64, 64) or img.format != "PNG":
                raise SystemExit(f"{image}: not a 64x64 PNG")
        if not accepted or any(not a.strip() for a in accepted.split("|")):
            raise SystemExit(f"{image}: empty accepted name")
        lines.append("\t".join((image, english, accepted, group)))
    atomic_write_text(args.out, HEADER + "\n".join(lines) + "\n")
    print(f"{len(lines) - 1} pictures in {len({line.split(chr(9))[3] for line in lines[1:]})} groups -> {args.out}")


def labelers(work: Path) -> dict:
    """{"shipped": this tree's lhama-default labeler, "s12": session 12's}, each assembled in ``work``."""
    from dataclasses import replace

    from lhama.model.labeler import load_labeler
    from lhama.model.names_head import SHIPPED
    from lhama.weights import cascade
    from lhama.weights.prepare import prepare

    tower_dir = prepare("efficientnet-lite2")
    shipped = cascade.SHIPPED_SETTINGS
    s12 = replace(shipped, names_head=SHIPPED / "names_head_s12")
    out = {}
    for key, settings in (("shipped", cascade.SHIPPED_SETTINGS), ("s12", s12)):
        (work / key).mkdir()
        cascade.assemble_labeler(tower_dir, settings, work / key)
        out[key] = load_labeler(work / key)
    return out


def fresh(args: argparse.Namespace) -> None:
    """The one read of pictures ``--start``..``--stop``: both labelers' notes, the LM's answers to them."""
    from batched import answer_all

    from lhama.data.media import load_image
    from lhama.files import atomic_write_text
    from lhama.inference.quant_cache import load_for_inference
    from lhama.weights.cascade import V2_GENERATION
    from lhama.weights.registry import models_dir, registry_entry

    torch.set_num_threads(args.threads)
    items = list(csv.DictReader(_rows(args.set), delimiter="\t"))[args.start:args.stop]
    with tempfile.TemporaryDirectory(prefix="naming_s13_") as work:
        built = labelers(Path(work))
        images = [load_image(args.folder / f"{i['image']}.png") for i in items]
        notes = {key: [lab.note(im) for im in images] for key, lab in built.items()}
    same = notes["shipped"] == notes["s12"]
    quant = registry_entry("lhama-default").quant
    loaded = load_for_inference(models_dir() / "lhama-default", quant)  # its LM; the labelers are built above
    system = [{"role": "system", "content": V2_GENERATION.system_prompt}]
    out = {"command": " ".join(sys.argv), "set": args.set.name, "md5": hashlib.md5(args.set.read_bytes()).hexdigest(),
           "quant": quant, "machine": f"{platform.machine()} CPU, {args.threads} thread(s), one heavy slot",
           "start": args.start, "n": len(items), "notes_identical": same, "rows": []}
    answers: dict[str, list[str]] = {}
    for key in ("shipped", "s12"):  # the file is written after each labeler's answers
        started = time.perf_counter()
        # s12: only its notes that differ from the shipped labeler's are answered again (greedy: same note, same answer)
        todo = [n for n, note in enumerate(notes[key]) if key == "shipped" or note != notes["shipped"][n]]
        conversations = [system + [{"role": "user", "content": f"{notes[key][n]}\nO que é isto?"}] for n in todo]
        fresh_answers = dict(zip(todo, (a.text.strip() for a in answer_all(loaded, conversations, 16, 16)))) if todo else {}
        answers[key] = [fresh_answers.get(n, answers.get("shipped", [""] * len(items))[n]) for n in range(len(items))]
        print(f"{key}: {len(todo)} answers in {time.perf_counter() - started:.0f} s", flush=True)
        out["rows"] = [_row(item, n, notes, answers) for n, item in enumerate(items)]
        out[f"{key}_answered"] = len(todo)
        atomic_write_text(args.out, json.dumps(out, indent=1, ensure_ascii=False) + "\n")


def _row(item: dict, n: int, notes: dict, answers: dict) -> dict:
    from lhama.eval.metrics import names_thing

    accepted = item["accepted"].split("|")
    row = {"image": item["image"], "english": item["english"], "accepted": item["accepted"]}
    for key in notes:
        row[f"{key}_note"] = notes[key][n]
        row[f"{key}_note_named"] = names_thing(notes[key][n], accepted)
        if key in answers:
            row[f"{key}_answer"] = answers[key][n]
            row[f"{key}_named"] = names_thing(answers[key][n], accepted)
    return row


def photos(args: argparse.Namespace) -> None:
    """The photo check with the real labelers: examples/*.jpg + AdMIRe dev's pictures (no names known):
    how many notes the shipped labeler changes against session 12's, and the owl's note."""
    from lhama.data.media import load_image

    torch.set_num_threads(args.threads)
    admire = args.shared / "admire_en/dev"
    paths = sorted((ROOT / "examples").glob("*.jpg")) + sorted(admire.rglob("*.jpg")) + sorted(admire.rglob("*.png"))
    with tempfile.TemporaryDirectory(prefix="naming_s13_photos_") as work:
        built = labelers(Path(work))
        rows = []
        for path in paths:
            image = load_image(path)
            old, new = built["s12"].note(image), built["shipped"].note(image)
            rows.append({"photo": path.name if path.parent.name == "examples" else f"{path.parent.name}/{path.name}",
                         "s12": old, "shipped": new, "changed": old != new})
    changed = sum(r["changed"] for r in rows)
    print(f"{len(rows)} photos: {changed} notes changed; owl: {rows[0]['shipped']}")
    (args.out or ROOT / "docs/results/naming_s13_photos.json").write_text(
        json.dumps({"photos": len(rows), "changed": changed, "rows": rows}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8")


def summary(args: argparse.Namespace) -> None:
    rows = [r for part in args.parts for r in json.loads(part.read_text(encoding="utf-8"))["rows"]]
    total = len(_rows(FRESH)) - 1
    print(f"{len(rows)} of {total} pictures read")
    for key in ("shipped", "s12"):
        for col, label in ((f"{key}_note_named", "note alone"), (f"{key}_named", "with the LM")):
            hits = [r[col] for r in rows if col in r]
            if hits:
                print(f"{key} {label}: {sum(hits)} / {len(hits)} named ({100 * sum(hits) / len(hits):.1f}%); target 50%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("build", "fresh", "photos", "summary"))
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--list", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--set", type=Path, default=FRESH)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", type=Path, nargs="*", default=[])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared/data", help="photos: the shared data folder")
    args = parser.parse_args()
    if args.step == "build":
        build(args) if args.out else build(argparse.Namespace(**{**vars(args), "out": FRESH}))
    elif args.step == "fresh":
        args.out = args.out or ROOT / f"docs/results/naming_s13_fresh_{args.start}.json"
        fresh(args)
    elif args.step == "photos":
        photos(args)
    else:
        summary(args)


if __name__ == "__main__":
    main()
