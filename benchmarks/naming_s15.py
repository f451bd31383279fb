"""Issue #26 session 15: a names memory of common things drawn in several emoji styles, and a fresh OpenMoji read.

    npm pack emoji-datasource-{apple,facebook,google,twitter}@16.0.0 cldr-annotations-full@48.2.0 openmoji@17.0.0
    (unpacked under NPM, one folder per package: NAME-VERSION/)
    python benchmarks/naming_s15.py features --budget 540      # heavy: pooled features of the memory + EmojiOne dev
    python benchmarks/naming_s15.py head --memory styles --out DIR   # a names head folder (s12 rows + emoji rows)
    python benchmarks/naming_s15.py grid --out /tmp/26a/s15/grid.json  # the dev choice (rule: docs/default-model.md)
    python benchmarks/naming_s15.py render                     # the fresh set's OpenMoji pictures, rendered
    python benchmarks/naming_s15.py overlap --out /tmp/26a/s15/overlap.tsv   # 256-bit dhash vs everything used
    python benchmarks/naming_s15.py fresh --setting PICK --start A --stop B   # the one read (shipped vs candidate)

The memory: every emoji of the four ``emoji-datasource`` styles (Apple, Facebook, Google, Twitter) in the
categories that show things (animals and nature, food and drink, travel and places, activities, objects;
no people, faces, flags or symbols), named by CLDR's Portuguese ``tts`` name (human translators,
:mod:`lhama.recipes.default.emoji`). ``styles`` keeps one row per picture; ``mean`` one row per emoji
(its styles' features averaged). Both are added to the shipped head's rows (names_head_s12).

Dev (``grid``, note alone from cached features, nothing run through the LM): the 282 EmojiOne icons of
``naming_fresh_s13.tsv`` (read in session 13: dev), the photo gate on 426 photos (examples/*.jpg,
AdMIRe dev and train; no names: a changed note is counted against the candidate) and the 1,549 read
drawings of ``naming_s13_split.tsv`` (memory of session 12's rows reduced to the other CV folds,
as in session 14, plus all emoji rows). The fresh set is OpenMoji 17 art (CC BY-SA 4.0), a style no
lhama file used before, of the code points of naming_fresh_s13 with their hand-written names.

Writes only under /tmp/26a/ (asserted), except ``fresh``'s result file under docs/results/.
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
SCRATCH = Path("/tmp/26a")
NPM = SCRATCH / "s15/npm/x"
CACHE = SCRATCH / "s15/features.pt"
CACHE_S13 = [SCRATCH / "s13/features.pt", SCRATCH / "s13/features_tail.pt", SCRATCH / "s13/features_photos.pt"]
RENDERED = SCRATCH / "s15/openmoji72"
EMOJIONE = Path("/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png")
DEV = ROOT / "benchmarks/data/naming_fresh_s13.tsv"
BASE_HEAD = ROOT / "src/lhama/model/towers/names_head_s12"  # the head the memory is added to (shipped until s15)
FRESH = ROOT / "benchmarks/data/naming_fresh_s15.tsv"
STYLES = ("apple", "facebook", "google", "twitter")
VERSION = "16.0.0"
CLDR = "cldr-annotations-full-48.2.0"
OPENMOJI = "openmoji-17.0.0"
MEMORY_CATEGORIES = frozenset({"Activities", "Animals & Nature", "Food & Drink", "Objects", "Travel & Places"})
NOTE_VIEWS = ("squash", "fit", "fit_flip")
MEMORY_VIEWS = ("fit",)  # a memory row: the emoji cropped to its drawing (an emoji fills its square: squash ~ fit)
BATCH = 8  # pictures per forward (x3 views)
SIDE = 72  # OpenMoji's own PNG size
# the dev grid (rule committed before it ran: docs/default-model.md "Naming, session 15")
MEMORIES = ("styles", "mean")
CONFIDENT = (0.7, 0.6, 0.55, 0.5, 0.45, 0.4)
YIELD = (0.5, 0.3)
SHIP_MARGIN = 14  # the candidate must name at least this many more of the 282 fresh pictures (5%), with the LM
SHIP_PHOTO_CHANGES = 2  # and change at most this many of the 76 check photos' notes (real labelers)
PHOTO_CHANGES = 4  # at most this many of the 426 photo notes may change (and the owl's must name "coruja")


def _out(path: Path) -> Path:
    """``path`` if it lies under /tmp/26a/ (scripts here write nowhere else)."""
    path = Path(path).resolve()
    if SCRATCH not in path.parents:
        raise SystemExit(f"refusing to write {path}: outside {SCRATCH}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _rows(path: Path) -> list[dict]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def memory_rows(npm: Path = NPM) -> list[dict]:
    """{"key", "unified", "image", "name"}: one per emoji picture of the memory (four styles)."""
    from lhama.recipes.default.emoji import emoji_rows

    out = []
    for style in STYLES:
        package = npm / f"emoji-datasource-{style}-{VERSION}"
        entries = json.loads((package / "emoji.json").read_text(encoding="utf-8"))
        things = {e["unified"].lower() for e in entries if e.get("category") in MEMORY_CATEGORIES}
        rows, _ = emoji_rows(package, npm / CLDR)
        for r in rows:
            unified = r["id"].removeprefix(f"emoji-{style}-")
            if unified in things:
                out.append({"key": f"emoji-{style}:{unified}", "unified": unified, "image": r["image"], "name": r["name"]})
    return out


def _tower():
    from lhama.model.towers import efficientnet_lite
    from lhama.weights.prepare import prepare

    return efficientnet_lite.load_tower(prepare("efficientnet-lite2")).eval()


@torch.no_grad()
def features(args: argparse.Namespace) -> None:
    """Pooled features (float16): the labeler's three views of each EmojiOne dev icon, MEMORY_VIEWS of each memory picture
    (``--only``: these styles' memory pictures only; ``--cache``: another cache file under /tmp/26a/s15/)."""
    from lhama.data.media import image_to_tensor, load_image
    from lhama.model.labeler import view
    from lhama.model.towers.efficientnet_lite import lite_image_spec

    torch.set_num_threads(args.threads)
    out = _out(args.cache or CACHE)
    cache = _cache(missing_ok=True)
    todo = [] if args.only else [(f"emojione:{r['image']}", EMOJIONE / f"{r['image']}.png", NOTE_VIEWS) for r in _rows(DEV)]
    todo += [(r["key"], Path(r["image"]), MEMORY_VIEWS) for r in memory_rows(args.npm)
             if not args.only or r["key"].split(":")[0].removeprefix("emoji-") in args.only.split(",")]
    todo = [t for t in todo if t[0] not in cache]
    mine = torch.load(out) if out.is_file() else {}
    tower = _tower()
    spec = lite_image_spec(tower.config)
    started, done = time.perf_counter(), 0
    print(f"{len(todo)} pictures to do", flush=True)
    for at in range(0, len(todo), BATCH):
        if time.perf_counter() - started > args.budget:
            break
        chunk = todo[at:at + BATCH]
        pixels = torch.stack([image_to_tensor(view(load_image(picture), v), spec) for _, picture, views in chunk
                              for v in views])
        pooled = tower(pixels, output_hidden_states=False).pooler_output.half()
        for key, _, views in chunk:
            mine[key], pooled = pooled[: len(views)].clone(), pooled[len(views):]
        done += len(chunk)
        if done % 200 < BATCH:
            torch.save(mine, out)
            print(done, f"{time.perf_counter() - started:.0f} s", flush=True)
    torch.save(mine, out)
    print(f"{done} done, {len(todo) - done} left, {time.perf_counter() - started:.0f} s", flush=True)


def _cache(missing_ok: bool = False) -> dict:
    """Session 13's cached drawings and photos + every s15 cache file (features*.pt)."""
    cache = {}
    for path in (*CACHE_S13, *sorted(CACHE.parent.glob("features*.pt"))):
        try:
            cache.update(torch.load(path))
        except (OSError, RuntimeError, EOFError):  # features: absent or being written by another job
            if not missing_ok:
                raise
    return cache


def emoji_head_rows(cache: dict, memory: str, npm: Path = NPM):
    """(features (n, 1280), NamedPicture rows) of the emoji memory: ``styles`` or ``mean``."""
    from lhama.model.names_head import NamedPicture

    rows = memory_rows(npm)
    missing = [r["key"] for r in rows if r["key"] not in cache]
    if missing:
        raise SystemExit(f"{len(missing)} memory pictures have no cached features (run features): {missing[:3]}")
    fit = NOTE_VIEWS.index(MEMORY_VIEWS[0])  # the first features job cached all three views of its pictures: their fit view
    pooled = {r["key"]: cache[r["key"]][fit if len(cache[r["key"]]) == len(NOTE_VIEWS) else 0].float() for r in rows}
    if memory == "styles":
        return (torch.stack([pooled[r["key"]] for r in rows]),
                [NamedPicture(r["name"], "", r["key"]) for r in rows])
    by = {}
    for r in rows:
        by.setdefault(r["unified"], []).append(r)
    return (torch.stack([torch.stack([pooled[r["key"]] for r in group]).mean(0) for group in by.values()]),
            [NamedPicture(group[0]["name"], "", f"emoji-mean:{u}") for u, group in by.items()])


def grown_head(base, cache: dict, memory: str, keep=None):
    """``base`` (a NamesHead; only its rows at indices ``keep`` when given) + the emoji memory."""
    from lhama.model.names_head import NamesHead

    keep = range(len(base.entries)) if keep is None else keep
    feats, entries = [base.features[list(keep)]], [base.entries[i] for i in keep]
    if memory != "none":
        extra, named = emoji_head_rows(cache, memory)
        feats.append(extra)
        entries += named
    return NamesHead(torch.cat(feats).half().float(), tuple(entries))  # float16 as saved


def head(args: argparse.Namespace) -> None:
    from lhama.model.names_head import TABLE_FILE, NamesHead
    grown = grown_head(NamesHead.load(BASE_HEAD), _cache(), args.memory)
    folder = _out(args.out / TABLE_FILE).parent  # copied into src/lhama/model/towers/ by hand
    grown.save(folder)
    print(f"{len(grown.entries)} rows -> {folder}")


def _notes(feats: dict, keys: list[str], parts, config, head_) -> list[str]:
    from naming_s13_fit import probs

    from lhama.model.labeler import describe

    names, kinds, classifier = parts
    return [describe(probs(feats[k], classifier), names, config, kinds, head_.nearest(feats[k][:3].float().mean(0)))
            for k in keys]


def _setting(memory: str, confident: float, yld: float) -> str:
    return f"{memory},{confident:g},{yld:g}"


def grid(args: argparse.Namespace) -> None:
    """The dev choice: every setting's EmojiOne named, photo notes changed, drawings named (note alone)."""
    from dataclasses import replace

    import naming_s13 as data
    from naming_s13_fit import FOLDS, _fold
    from naming_s14_misses import _parts

    from lhama.eval.metrics import names_thing
    from lhama.model.names_head import NamesHead
    from lhama.weights.cascade import V2_LABELER
    from lhama.weights.prepare import prepare

    torch.set_num_threads(args.threads)
    cache, parts, base = _cache(), _parts(prepare("efficientnet-lite2")), NamesHead.load(BASE_HEAD)
    dev = _rows(DEV)
    dev_keys = [f"emojione:{r['image']}" for r in dev]
    photo_keys = [k for k in cache if k.startswith("photo:")]
    assert len(photo_keys) == 426 and photo_keys[0].endswith("examples/coruja.jpg"), (len(photo_keys), photo_keys[:1])
    drawings = data.split_rows()
    folds = [[r for r in drawings if _fold(r["component"]) == f] for f in range(FOLDS)]
    reference = replace(V2_LABELER, names_confident=0.7, names_yield=0.5)  # session 12's (shipped until s15)
    shipped_photo = _notes(cache, photo_keys, parts, reference, base)
    results = {}
    for memory in ("none", *MEMORIES):
        full = grown_head(base, cache, memory)
        reduced = [grown_head(base, cache, memory, [i for i, e in enumerate(base.entries)
                                                   if e.key not in {r["key"] for r in fold}]) for fold in folds]
        for confident in ((0.7,) if memory == "none" else CONFIDENT):
            for yld in ((0.5,) if memory == "none" else YIELD):
                config = replace(V2_LABELER, names_confident=confident, names_yield=yld)
                dev_notes = _notes(cache, dev_keys, parts, config, full)
                photo_notes = _notes(cache, photo_keys, parts, config, full)
                drawn = sum(names_thing(n, r["accepted"].split("|")) for fold, h in zip(folds, reduced)
                            for n, r in zip(_notes(cache, [r["key"] for r in fold], parts, config, h), fold))
                key = _setting(memory, confident, yld)
                results[key] = {
                    "emojione": sum(names_thing(n, r["accepted"].split("|")) for n, r in zip(dev_notes, dev)),
                    "photos_changed": sum(a != b for a, b in zip(photo_notes, shipped_photo)),
                    "owl": photo_notes[0], "drawings": drawn,
                    "photo_changes": [(k.removeprefix("photo:"), a, b) for k, a, b in
                                      zip(photo_keys, shipped_photo, photo_notes) if a != b][:20]}
                print(key, {k: v for k, v in results[key].items() if k != "photo_changes"}, flush=True)
    _out(args.out).write_text(json.dumps({"pick": pick(results), "results": results}, indent=1,
                                         ensure_ascii=False) + "\n", encoding="utf-8")
    print("pick:", pick(results))


def pick(results: dict) -> str | None:
    """The rule: among settings with at most PHOTO_CHANGES photo notes changed, the owl's note naming
    "coruja" and at least the shipped drawings count, the most EmojiOne dev named; ties: higher
    names_confident, then higher yield, then ``mean`` (fewer rows). None when no setting beats shipped."""
    shipped = results[_setting("none", 0.7, 0.5)]
    ok = {k: v for k, v in results.items() if not k.startswith("none") and v["photos_changed"] <= PHOTO_CHANGES
          and "coruja" in v["owl"] and v["drawings"] >= shipped["drawings"] and v["emojione"] > shipped["emojione"]}
    if not ok:
        return None
    return max(ok, key=lambda k: (ok[k]["emojione"], float(k.split(",")[1]), float(k.split(",")[2]), k.startswith("mean")))


def _svg(code: str, npm: Path = NPM) -> Path:
    folder = npm / OPENMOJI / "color/svg"
    for name in (code, f"{code}-FE0F", code.replace("-FE0F", "")):
        if (folder / f"{name}.svg").is_file():
            return folder / f"{name}.svg"
    raise SystemExit(f"OpenMoji has no picture for {code}")


def render(args: argparse.Namespace) -> None:
    """Each fresh code point's OpenMoji colour SVG as a SIDE x SIDE RGBA PNG under RENDERED (its md5 printed)."""
    import cairosvg

    folder = _out(RENDERED / "x").parent
    for row in _rows(args.set if args.set else DEV):
        png = cairosvg.svg2png(url=str(_svg(row["image"], args.npm)), output_width=SIDE, output_height=SIDE)
        (folder / f"{row['image']}.png").write_bytes(png)
        print(row["image"], hashlib.md5(png).hexdigest())


def _emoji_refs(npm: Path) -> list[Path]:
    return [p for style in STYLES for p in sorted((npm / f"emoji-datasource-{style}-{VERSION}/img/{style}/64").glob("*.png"))]


def overlap(args: argparse.Namespace) -> None:
    """Each fresh picture's nearest picture (256-bit dhash) among everything lhama used: session 14's references
    (openclipart, Tux Paint stamps, ../shared/data, EmojiOne, GCompris of session 13), GCompris of session 14's
    list, the four emoji-datasource styles (the memory; Google and Twitter also trained v1)."""
    import retrieval_fresh_s14 as r14

    s13 = r14.s13
    cache = _out(SCRATCH / "s15/ref_hashes.pt")
    refs = torch.load(cache) if cache.is_file() else {}
    if not refs:
        refs = r14.reference_hashes()
        listed = {row["key"] for row in s13.read_list(r14.LIST)}
        refs.update({f"gcompris-s14:{k}": s13.dhash(s13.render(k, raw)) for k, raw in r14.pictures().items() if k in listed})
        torch.save(refs, cache)
    emoji = {str(p): s13.dhash(s13.render(p.name, p.read_bytes())) for p in _emoji_refs(args.npm)}
    all_refs = {**refs, **emoji}
    mine = {r["image"]: s13.dhash(s13.render("x.png", (RENDERED / f"{r['image']}.png").read_bytes())) for r in _rows(args.set or DEV)}
    rows = []
    for key, h in mine.items():
        ref, bits = min(((k, bin(h ^ v).count("1")) for k, v in all_refs.items()), key=lambda x: x[1])
        rows.append(f"{key}\t{ref}\t{bits}")
    _out(args.out).write_text(f"key\tnearest\tbits\n# {len(all_refs)} reference pictures ({len(emoji)} emoji-datasource)\n"
                              + "\n".join(rows) + "\n", encoding="utf-8")
    close = sorted(int(r.rsplit("\t", 1)[1]) for r in rows)
    print(f"{len(all_refs)} references; nearest bits: min {close[0]}, 10 smallest {close[:10]} -> {args.out}")


HEADER = """# Fresh common-object naming set, issue #26 session 15 (benchmarks/naming_s15.py build).
# OpenMoji 17.0.0 colour art (npm openmoji@17.0.0, CC BY-SA 4.0, HfG Schwaebisch Gmuend); a drawing
# style no lhama list, names head or training file used before (256-bit dhash overlap check:
# docs/default-model.md "Naming, session 15"). `image` = code point: color/svg/<image>.svg rendered
# by `naming_s15.py render` (cairosvg, 72x72 RGBA PNG; png_md5 = the rendered file's md5).
# The things and names are session 13's EmojiOne set (naming_fresh_s13.tsv: the same code points,
# accepted pt-BR names written by hand then); each OpenMoji picture was checked by eye on contact
# sheets to show that thing. So this set measures naming the same common things drawn in a style
# the names memory never holds (the memory holds them in other emoji styles): a generalisation
# across drawing styles. Read ONCE under the rule in docs/default-model.md; never train or tune on it.
"""
ENGLISH_FIX = {"1F3BE": "A tennis ball."}  # OpenMoji draws the ball only (its names still count)


def build(args: argparse.Namespace) -> None:
    from lhama.files import atomic_write_text

    lines = ["image\tenglish\taccepted\tgroup\tpng_md5"]
    for row in _rows(DEV):
        png = (RENDERED / f"{row['image']}.png").read_bytes()
        english = ENGLISH_FIX.get(row["image"], row["english"])
        lines.append("\t".join((row["image"], english, row["accepted"], row["group"], hashlib.md5(png).hexdigest())))
    atomic_write_text(FRESH, HEADER + "\n".join(lines) + "\n")
    print(f"{len(lines) - 1} pictures -> {FRESH}")


def _candidate(setting: str):
    """CascadeSettings of a candidate MEMORY,CONFIDENT,YIELD: names head ``names_head_s15_MEMORY`` (committed)."""
    from dataclasses import replace

    from lhama.model.names_head import SHIPPED
    from lhama.weights import cascade

    memory, confident, yld = setting.split(",")
    labeler = replace(cascade.V2_LABELER, names_confident=float(confident), names_yield=float(yld))
    return replace(cascade.SHIPPED_SETTINGS, labeler=labeler, names_head=SHIPPED / f"names_head_s15_{memory}")


def _labelers(work: Path, setting: str) -> dict:
    from lhama.model.labeler import load_labeler
    from lhama.weights import cascade
    from lhama.weights.prepare import prepare

    tower_dir = prepare("efficientnet-lite2")
    out = {}
    for key, settings in (("shipped", cascade.SHIPPED_SETTINGS), ("candidate", _candidate(setting))):
        (work / key).mkdir()
        cascade.assemble_labeler(tower_dir, settings, work / key)
        out[key] = load_labeler(work / key)
    return out


def fresh(args: argparse.Namespace) -> None:
    """The one read of fresh pictures --start..--stop: both labelers' notes, the LM's answers (the candidate's
    only where its note differs), then the photo check with the real labelers (--start 0 only)."""
    from batched import answer_all

    from lhama.data.media import load_image
    from lhama.eval.metrics import names_thing
    from lhama.files import atomic_write_text
    from lhama.inference.quant_cache import load_for_inference
    from lhama.weights.cascade import V2_GENERATION
    from lhama.weights.registry import models_dir, registry_entry

    torch.set_num_threads(args.threads)
    items = _rows(FRESH)[args.start:args.stop]
    out_path = args.out or ROOT / f"docs/results/naming_s15_fresh_{args.start}.json"
    with tempfile.TemporaryDirectory(prefix="naming_s15_") as work:
        built = _labelers(Path(work), args.setting)
        images = []
        for item in items:
            path = RENDERED / f"{item['image']}.png"
            if hashlib.md5(path.read_bytes()).hexdigest() != item["png_md5"]:
                raise SystemExit(f"{path}: not the committed rendering (md5)")
            images.append(load_image(path))
        notes = {key: [lab.note(im) for im in images] for key, lab in built.items()}
        photo_rows = _photo_check(built) if args.start == 0 else None
    quant = registry_entry("lhama-default").quant
    loaded = load_for_inference(models_dir() / "lhama-default", quant)
    system = [{"role": "system", "content": V2_GENERATION.system_prompt}]
    out = {"command": " ".join(sys.argv), "set": FRESH.name, "md5": hashlib.md5(FRESH.read_bytes()).hexdigest(),
           "candidate": args.setting, "quant": quant, "start": args.start, "n": len(items),
           "machine": f"{platform.machine()} CPU, {args.threads} thread(s), one heavy slot", "photos": photo_rows}
    answers: dict[str, list[str]] = {}
    for key in ("shipped", "candidate"):
        started = time.perf_counter()
        todo = [n for n, note in enumerate(notes[key]) if key == "shipped" or note != notes["shipped"][n]]
        talk = [system + [{"role": "user", "content": f"{notes[key][n]}\nO que é isto?"}] for n in todo]
        said = dict(zip(todo, (a.text.strip() for a in answer_all(loaded, talk, 16, 16)))) if todo else {}
        answers[key] = [said.get(n, answers.get("shipped", [""] * len(items))[n]) for n in range(len(items))]
        print(f"{key}: {len(todo)} answers in {time.perf_counter() - started:.0f} s", flush=True)
        out[f"{key}_answered"] = len(todo)
    out["rows"] = []
    for n, item in enumerate(items):
        row = {"image": item["image"], "accepted": item["accepted"]}
        for key in notes:
            accepted = item["accepted"].split("|")
            row.update({f"{key}_note": notes[key][n], f"{key}_note_named": names_thing(notes[key][n], accepted),
                        f"{key}_answer": answers[key][n], f"{key}_named": names_thing(answers[key][n], accepted)})
        out["rows"].append(row)
    atomic_write_text(out_path, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"-> {out_path}")


def photos(args: argparse.Namespace) -> None:
    """The ship rule's photo check on its own (the read's job ran it from an export, which has no ../shared:
    it saw the owl only): both real labelers on examples/*.jpg + AdMIRe dev under --shared."""
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="naming_s15_photos_") as work:
        rows = _photo_check(_labelers(Path(work), args.setting), args.shared)
    _out(args.out).write_text(json.dumps({"candidate": args.setting, "photos": rows}, indent=1, ensure_ascii=False)
                              + "\n", encoding="utf-8")


def _photo_check(built: dict, shared: Path = ROOT.parent / "shared/data") -> list[dict]:
    """examples/*.jpg + AdMIRe dev's pictures with both real labelers (no names known)."""
    from lhama.data.media import load_image

    admire = shared / "admire_en/dev"
    if not admire.is_dir():
        print(f"warning: {admire} is absent: the photo check sees examples/*.jpg only", flush=True)
    paths = sorted((ROOT / "examples").glob("*.jpg")) + sorted(admire.rglob("*.jpg")) + sorted(admire.rglob("*.png"))
    rows = []
    for path in paths:
        image = load_image(path)
        old, new = built["shipped"].note(image), built["candidate"].note(image)
        rows.append({"photo": path.name, "shipped": old, "candidate": new, "changed": old != new})
    print(f"{len(rows)} photos: {sum(r['changed'] for r in rows)} notes changed; owl: {rows[0]['candidate']}", flush=True)
    return rows


def summary(args: argparse.Namespace) -> None:
    """The counts and the ship rule over the read's part files."""
    parts = [json.loads(p.read_text(encoding="utf-8")) for p in args.parts]
    rows = [r for part in parts for r in part.get("rows", [])]
    photos = next(p["photos"] for p in parts if p.get("photos") and len(p["photos"]) > 1)  # see photos()
    n = len(_rows(FRESH))
    count = {f"{key}{col}": sum(r[f"{key}{col}"] for r in rows) for key in ("shipped", "candidate")
             for col in ("_named", "_note_named")}
    changed = sum(r["changed"] for r in photos)
    ships = (len(rows) == n and count["candidate_named"] >= count["shipped_named"] + SHIP_MARGIN
             and changed <= SHIP_PHOTO_CHANGES and "coruja" in photos[0]["candidate"])
    print(f"{len(rows)} of {n} read; with the LM: shipped {count['shipped_named']}, candidate {count['candidate_named']}; "
          f"note alone: {count['shipped_note_named']} / {count['candidate_note_named']}; photos changed {changed} of "
          f"{len(photos)}, owl: {photos[0]['candidate']}; ships: {ships}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("features", "head", "grid", "render", "overlap", "build", "fresh", "photos", "summary"))
    parser.add_argument("--npm", type=Path, default=NPM)
    parser.add_argument("--budget", type=float, default=540)
    parser.add_argument("--only", default="", help="features: only these styles' memory pictures (comma-separated)")
    parser.add_argument("--cache", type=Path, default=None, help="features: the cache file to write")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory", choices=("none", *MEMORIES), default="styles")
    parser.add_argument("--setting", default=None, help="fresh: the candidate, MEMORY,CONFIDENT,YIELD")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--parts", type=Path, nargs="*", default=[])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared/data", help="photos: the shared data folder")
    parser.add_argument("--set", type=Path, default=None, help="render/overlap/fresh: the list (default: the fresh set)")
    args = parser.parse_args()
    globals()[args.step](args)


if __name__ == "__main__":
    main()
