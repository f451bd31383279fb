"""A fresh common-object naming set and its one read (issue #26, session 12).

    apt-get install -y openclipart-png     # public domain; /usr/share/openclipart/png
    python benchmarks/naming_s12.py build --list HAND.tsv      # once, before any model sees a picture
    python benchmarks/naming_s12.py fresh --threads 1          # the one read (rule: docs/default-model.md)

``build`` takes a hand-written list (image, english, accepted) of openclipart-png pictures and
keeps a picture only when it is in no committed naming list or training file: not listed in
``openclipart_names.tsv`` / ``openclipart_excluded.tsv``, no file-name group word
(:func:`lhama.recipes.default.clipart_names.group_word`) shared with those, not one of the 1,500
clip-art pictures the glyph reader trained on (``naming_glyph_s11.clipart_others``), not
byte-identical to nor with the same file name as any of them, and not the same drawing by pixels
(:func:`~lhama.recipes.default.clipart_names.same_drawing`) as a listed one. Pictures over 16 Mpx
are left out (they exceed the memory rule while decoding). Near-duplicates inside the set share a
group. It writes ``benchmarks/data/naming_fresh_s12.tsv``.

``fresh`` is the one read (rule committed before it: docs/default-model.md "Naming, session 12").
The labeler is lhama-default's as this source tree ships it (``lhama.weights.cascade.SHIPPED_SETTINGS``,
assembled into a temporary folder the way ``convert_cascade`` assembles it, from the prepared
EfficientNet-Lite2), and the reference is session 11's labeler (the same with every setting added
since at its default, and session 11's names head); the LM is the prepared lhama-default at its
registry quantisation, greedy, at most 16 new tokens, the shipped system prompt, the user turn
"<note>\nO que é isto?". A picture is named when the answer contains one of its accepted names
(:func:`lhama.eval.metrics.names_thing`). ``--start``/``--stop`` read a slice (one slot job each);
``summary`` adds the slices up.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT / "benchmarks/data"
FRESH = DATA / "naming_fresh_s12.tsv"
MAX_PIXELS = 16_777_216
HEADER = """# Fresh common-object naming set, issue #26 session 12 (benchmarks/naming_s12.py build).
# Debian openclipart-png 1:0.18+dfsg-19 (public domain); `image` = path under /usr/share/openclipart/png
# without ".png" (referenced, not copied). english: what the picture shows; accepted: |-separated pt-BR
# names that count as naming it (lhama.eval.metrics.names_thing), the specific name first, then the
# basic-level names a Brazilian would also give; written by hand from the picture before any model saw it.
# No picture is in openclipart_names.tsv / openclipart_excluded.tsv or shares a file-name group with
# them, none is one of the glyph reader's 1,500 training pictures (or a byte/same-name copy of one),
# none is the same drawing by pixels as a listed picture. group: near-duplicates inside this set.
# Read ONCE under the rule in docs/default-model.md ("Naming, session 12"); never train or tune on it.
"""


def _rows(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def used_pictures(folder: Path) -> tuple[set[str], set[str]]:
    """Images (paths without .png) already used by a committed list or the glyph reader's training,
    and the group words of the naming lists."""
    from lhama.recipes.default.clipart_names import group_word

    listed = [r["image"] for r in csv.DictReader(_rows(DATA / "openclipart_names.tsv"), delimiter="\t")]
    listed += [r["image"] for r in csv.DictReader(_rows(DATA / "openclipart_excluded.tsv"), delimiter="\t")]
    groups = {group_word(i) for i in listed}
    import naming_glyph_s11

    others = naming_glyph_s11.clipart_paths(folder)
    return set(listed) | {p.relative_to(folder).as_posix()[:-4] for p in others}, groups


def build(args: argparse.Namespace) -> None:
    from lhama.recipes.default.clipart_names import drawing_signature, group_word, groups, same_drawing

    Image.MAX_IMAGE_PIXELS = None
    used, used_groups = used_pictures(args.folder)
    used_names = {u.rsplit("/", 1)[-1] for u in used}
    used_hashes = {hashlib.sha256((args.folder / f"{u}.png").read_bytes()).hexdigest() for u in used
                   if (args.folder / f"{u}.png").is_file()}
    rows = [r.split("\t") for r in _rows(args.list)]
    kept, dropped = [], []
    for image, english, accepted in rows:
        path = args.folder / f"{image}.png"
        with Image.open(path) as img:
            size = img.size[0] * img.size[1]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        reason = ("used" if image in used else "group" if group_word(image) in used_groups
                  else "same name" if image.rsplit("/", 1)[-1] in used_names else "same bytes" if digest in used_hashes
                  else "over 16 Mpx" if size > MAX_PIXELS else "")
        (dropped if reason else kept).append((image, english, accepted, reason))
    listed = sorted(u for u in used if u.split("/")[0] != "" and (args.folder / f"{u}.png").is_file())
    signs = [drawing_signature(args.folder / f"{i}.png") for i in [k[0] for k in kept] + listed]
    masks, edges = torch.stack([s[0] for s in signs]), torch.stack([s[1] for s in signs])
    pairs = same_drawing(masks, edges)
    n = len(kept)
    copies = pairs[:n, n:].any(1)
    final = [k for k, c in zip(kept, copies.tolist()) if not c]
    dropped += [(k[0], k[1], k[2], "same drawing as a used picture") for k, c in zip(kept, copies.tolist()) if c]
    keep_idx = [i for i, c in enumerate(copies.tolist()) if not c]
    named = groups([k[0] for k in final], pairs[keep_idx][:, keep_idx])
    lines = ["image\tenglish\taccepted\tgroup"] + ["\t".join((*k[:3], g)) for k, g in zip(final, named)]
    from lhama.files import atomic_write_text

    atomic_write_text(args.out, HEADER + "\n".join(lines) + "\n")
    for d in dropped:
        print("dropped", d[0], "-", d[3])
    print(f"{len(rows)} listed, {len(final)} kept in {len(set(named))} groups -> {args.out}")


S11_LABELER = dict(style="kinds", kind_confident=0.3, views=("squash", "fit", "fit_flip"), names_confident=0.7,
                   names_yield=0.5, glyph_confident=0.8)  # session 11's V2_LABELER (lhama.weights.cascade)


def labelers(work: Path) -> dict:
    """{"shipped": this tree's lhama-default labeler, "s11": session 11's}, each assembled in ``work``
    as convert_cascade assembles a model's labeler/ folder, from the prepared EfficientNet-Lite2."""
    from lhama.model.glyph import copy_reader
    from lhama.model.labeler import LabelerConfig, load_labeler, save_labeler
    from lhama.model.names_head import copy_head
    from lhama.model.towers.imagenet_names import TABLE
    from lhama.model.names_head import SHIPPED
    from lhama.weights.cascade import GLYPH_READER, SHIPPED_SETTINGS
    from lhama.weights.prepare import prepare

    tower_dir = prepare("efficientnet-lite2")
    out = {}
    for key, config, head in (("shipped", SHIPPED_SETTINGS.labeler, SHIPPED_SETTINGS.names_head),
                              ("s11", LabelerConfig(**S11_LABELER), SHIPPED / "names_head_clipart")):
        folder = work / key
        folder.mkdir()
        save_labeler(tower_dir, TABLE, config, folder)
        if config.names_confident:
            copy_head(head, folder / "labeler")
        if config.glyph_confident:
            copy_reader(GLYPH_READER, folder / "labeler")
        out[key] = load_labeler(folder)
    return out


def fresh(args: argparse.Namespace) -> None:
    """The one read: notes of both labelers, then the LM's answers to the shipped labeler's notes
    (``--answers s11`` also to session 11's), for pictures ``--start``..``--stop``."""
    import json
    import platform
    import tempfile
    import time

    from batched import answer_all

    from lhama.data.media import load_image
    from lhama.files import atomic_write_text
    from lhama.inference.quant_cache import load_for_inference
    from lhama.weights.cascade import V2_GENERATION
    from lhama.weights.registry import models_dir, registry_entry

    torch.set_num_threads(args.threads)
    Image.MAX_IMAGE_PIXELS = None
    items = list(csv.DictReader(_rows(args.set), delimiter="\t"))[args.start:args.stop]
    with tempfile.TemporaryDirectory(prefix="naming_s12_") as work:
        built = labelers(Path(work))
        images = [load_image(args.folder / f"{i['image']}.png") for i in items]
        notes = {key: [lab.note(im) for im in images] for key, lab in built.items()}
    del images
    quant = registry_entry("lhama-default").quant
    loaded = load_for_inference(models_dir() / "lhama-default", quant)  # its LM; the labeler is built above
    system = [{"role": "system", "content": V2_GENERATION.system_prompt}]
    out = {"command": " ".join(sys.argv), "set": args.set.name, "md5": hashlib.md5(args.set.read_bytes()).hexdigest(), "quant": quant,
           "machine": f"{platform.machine()} CPU, {args.threads} thread(s), one heavy slot of the shared machine",
           "start": args.start, "n": len(items), "rows": []}
    answers: dict[str, list[str]] = {}
    for key in args.answers.split(","):  # the file is written after each labeler's answers (a slot may end)
        started = time.perf_counter()
        conversations = [system + [{"role": "user", "content": f"{n}\nO que é isto?"}] for n in notes[key]]
        answers[key] = [a.text.strip() for a in answer_all(loaded, conversations, 16, 16)]
        print(f"{key}: {len(items)} answers in {time.perf_counter() - started:.0f} s", flush=True)
        out["rows"] = [_row(item, n, notes, answers) for n, item in enumerate(items)]
        atomic_write_text(args.out, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    for row in out["rows"]:
        print(json.dumps(row, ensure_ascii=False), flush=True)


def _row(item: dict, n: int, notes: dict, answers: dict) -> dict:
    """One picture's notes, answers and whether each names it."""
    from lhama.eval.metrics import names_thing

    accepted = item["accepted"].split("|")
    row = {"image": item["image"], "accepted": item["accepted"]}
    for key in notes:
        row[f"{key}_note"] = notes[key][n]
        row[f"{key}_note_named"] = names_thing(notes[key][n], accepted)
        if key in answers:
            row[f"{key}_answer"] = answers[key][n]
            row[f"{key}_named"] = names_thing(answers[key][n], accepted)
    return row


def summary(args: argparse.Namespace) -> None:
    """Add up the slices written by ``fresh`` (the files given with --parts)."""
    import json

    rows = [r for part in args.parts for r in json.loads(part.read_text(encoding="utf-8"))["rows"]]
    total = len(list(csv.DictReader(_rows(FRESH), delimiter="\t")))
    print(f"{len(rows)} of {total} pictures read")
    for key in sorted({k[:-6] for r in rows for k in r if k.endswith("_named")}):
        hits = [r[f"{key}_named"] for r in rows if f"{key}_named" in r]
        print(f"{key}: {sum(hits)} / {len(hits)} named ({100 * sum(hits) / max(1, len(hits)):.1f}%); target 50%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("build", "fresh", "summary"))
    parser.add_argument("--folder", type=Path, default=Path("/usr/share/openclipart/png"))
    parser.add_argument("--list", type=Path, help="build: the hand-written list (image, english, accepted)")
    parser.add_argument("--out", type=Path, default=None, help="build: the set; fresh: the slice's JSON")
    parser.add_argument("--set", type=Path, default=FRESH, help="fresh: the set read (another only for a dry run)")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--answers", default="shipped", help="fresh: whose notes the LM answers (shipped,s11)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    if args.step == "build":
        args.out = args.out or FRESH
        build(args)
    elif args.step == "fresh":
        args.out = args.out or ROOT / f"docs/results/naming_s12_fresh_{args.start}.json"
        fresh(args)
    else:
        summary(args)


if __name__ == "__main__":
    main()
