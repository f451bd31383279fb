"""A recogniser of drawings for the labeler (issue #26, session 13): dev work on read pictures only.

    python benchmarks/naming_s13.py split                      # once, committed before any training
    python benchmarks/naming_s13.py features --budget 840 [--part drawings|photos]   # heavy, resumable
    python benchmarks/naming_s13.py cv                         # train side only: the setting
    python benchmarks/naming_s13.py compare --setting NAME     # held-out side + photos, once (rule first)

Every picture here has been read before (the names head's 1,417 pictures: Tux Paint stamps, the
clip art of ``openclipart_names.tsv``, ``naming_heldout.tsv``; and ``naming_fresh_s12.tsv``, read
in session 12). ``split`` joins pictures that share a near-duplicate group or a first accepted
name into one component and holds out a quarter of the components by a hash of their id
(``benchmarks/data/naming_s13_split.tsv``): a held-out picture's thing is never a training name.

The recogniser is a correction of EfficientNet-Lite2's ImageNet head learned on drawings: logits
``W0 f + b0 + f dW + db`` on the tower's pooled features ``f`` (frozen), trained so that the
ImageNet classes whose pt-BR name would count as naming a drawing (:func:`targets`) get the
probability, a drawing no class names gets a low top-1 (so the names head may speak), and the
AdMIRe *train* pictures (photos of idiom scenes) keep their original probabilities (a KL term).
Each cached view (squash, fit, fit_flip, pad) is one training sample. ``compare`` scores the note
alone (:func:`lhama.model.labeler.describe`, lhama-default's settings) with the names head's
memory reduced to the training side, for the shipped ImageNet head and the recogniser, and counts
how many notes of the photo check (examples/*.jpg + AdMIRe dev) change. Session 14 finished the CV:
no setting beat the shipped head, so the ``ship`` step and the labeler's recogniser machinery
(``lhama.model.drawings``, ``LabelerConfig.drawings``) were removed (docs/default-model.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT / "benchmarks/data"
SPLIT = DATA / "naming_s13_split.tsv"
CACHE = Path("/tmp/26a/s13/features.pt")  # drawings (and photos when --part all)
CACHE_PHOTOS = Path("/tmp/26a/s13/features_photos.pt")  # --part photos: a second slot job may fill it
CACHE_TAIL = Path("/tmp/26a/s13/features_tail.pt")  # --part tail: drawings from the end, until it meets CACHE
CLIPART = Path("/usr/share/openclipart/png")
STAMPS = Path("/usr/share/tuxpaint/stamps")
SHARED = ROOT.parent / "shared/data"
DRAWING_VIEWS = ("squash", "fit", "fit_flip", "pad")
NOTE_VIEWS = ("squash", "fit", "fit_flip")  # lhama-default's labeler views (averaged)
HELD_OUT_SHARE = 4  # one component in four is held out
ARTICLES = ("um ", "uma ", "o ", "a ", "os ", "as ", "uns ", "umas ")


def _rows(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def _bare(name: str) -> str:
    for article in ARTICLES:
        if name.startswith(article):
            return name[len(article):]
    return name


def _path(key: str) -> Path:
    source, _, rest = key.partition(":")
    if not rest:
        return STAMPS / f"{key}.png"
    return {"openclipart": CLIPART / f"{rest}.png", "tuxpaint_ptbr": SHARED / "tuxpaint_ptbr/images" / rest,
            "tuxpaint_stamps": STAMPS / rest}[source]


def drawings() -> list[dict]:
    """Every read named drawing: key (the names head's key where it is in the head), accepted
    names, near-duplicate group, whether it is in the shipped names head."""
    from lhama.weights.cascade import NAMES_HEAD

    clipart = {f"openclipart:{r['image']}": r for r in csv.DictReader(_rows(DATA / "openclipart_names.tsv"), delimiter="\t")}
    heldout = {f"{r['source']}:{r['image']}": r for r in csv.DictReader(_rows(DATA / "naming_heldout.tsv"), delimiter="\t")}
    head = list(csv.DictReader((NAMES_HEAD / "names_head.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    items = []
    for row in head:
        key = row["key"]
        if key in clipart:
            accepted, group = clipart[key]["accepted"], f"oc:{clipart[key]['group']}"
        elif key in heldout:
            accepted, group = heldout[key]["accepted"], f"nh:{key}"
        else:
            accepted, group = _bare(row["name"]), f"tp:{key}"
        items.append({"key": key, "accepted": accepted, "group": group, "in_head": True})
    for r in csv.DictReader(_rows(DATA / "naming_fresh_s12.tsv"), delimiter="\t"):
        items.append({"key": f"openclipart:{r['image']}", "accepted": r["accepted"], "group": f"s12:{r['group']}",
                      "in_head": False})
    return items


def _components(items: list[dict]) -> list[str]:
    """Each item's component: items sharing a group or a first accepted name (folded) are one."""
    from lhama.eval.metrics import fold_text

    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for item in items:
        parent[find(item["group"])] = find("name:" + fold_text(item["accepted"].split("|")[0]))
    return [find(item["group"]) for item in items]


def split(args: argparse.Namespace) -> None:
    from lhama.files import atomic_write_text

    items = drawings()
    comps = _components(items)
    lines = ["key\taccepted\tgroup\tcomponent\tside"]
    held = 0
    for item, comp in zip(items, comps):
        side = "heldout" if int(hashlib.md5(comp.encode()).hexdigest(), 16) % HELD_OUT_SHARE == 0 else "train"
        held += side == "heldout"
        lines.append("\t".join((item["key"], item["accepted"], item["group"], comp, side)))
    header = ("# Issue #26 session 13: read named drawings split for the drawing recogniser "
              "(benchmarks/naming_s13.py split),\n# made before any training; components join shared groups "
              "and first accepted names; side = md5(component) % 4 == 0 -> heldout.\n")
    atomic_write_text(SPLIT, header + "\n".join(lines) + "\n")
    print(f"{len(items)} drawings, {len(set(comps))} components, {held} held out -> {SPLIT}")


def split_rows() -> list[dict]:
    return list(csv.DictReader(_rows(SPLIT), delimiter="\t"))


def photos() -> dict[str, list[Path]]:
    """``keep``: AdMIRe train pictures (the KL term); ``check``: examples/*.jpg + AdMIRe dev (never trained on)."""
    admire = SHARED / "admire_en"
    return {"keep": sorted((admire / "train").rglob("*.jpg")),
            "check": sorted((ROOT / "examples").glob("*.jpg")) + sorted((admire / "dev").rglob("*.jpg"))
            + sorted((admire / "dev").rglob("*.png"))}


def _tower():
    from lhama.model.towers import efficientnet_lite
    from lhama.weights.prepare import prepare

    return efficientnet_lite.load_tower(prepare("efficientnet-lite2")).eval()


@torch.no_grad()
def features(args: argparse.Namespace) -> None:
    """Pooled features of each view of each picture (float16), cached in CACHE; stops after --budget s."""
    from PIL import Image

    from lhama.data.media import image_to_tensor, load_image
    from lhama.model.labeler import view
    from lhama.model.towers.efficientnet_lite import lite_image_spec

    torch.set_num_threads(args.threads)
    Image.MAX_IMAGE_PIXELS = None
    out = {"photos": CACHE_PHOTOS, "tail": CACHE_TAIL}.get(args.part, CACHE)
    cache = torch.load(out) if out.is_file() else {}
    todo = [(r["key"], _path(r["key"]), DRAWING_VIEWS) for r in split_rows()] if args.part != "photos" else []
    if args.part == "tail":
        todo = todo[::-1]
    pics = photos()
    todo += [(f"photo:{p}", p, NOTE_VIEWS) for part in ("check", "keep") for p in pics[part]] if args.part in ("all", "photos") else []
    todo = [t for t in todo if t[0] not in cache]
    tower = _tower()
    spec = lite_image_spec(tower.config)
    started, done = time.perf_counter(), 0
    print(f"{len(todo)} pictures to do", flush=True)
    for key, picture, views in todo:
        if time.perf_counter() - started > args.budget or (args.part == "tail" and _met(key, done)):
            break
        image = load_image(picture, max_side=1024)
        pixels = torch.stack([image_to_tensor(view(image, v), spec) for v in views])
        cache[key] = tower(pixels, output_hidden_states=False).pooler_output.half()
        done += 1
        if done % 100 == 0:
            torch.save(cache, out)
            print(done, f"{time.perf_counter() - started:.0f} s", flush=True)
    torch.save(cache, out)
    print(f"{done} done, {len(todo) - done} left, {time.perf_counter() - started:.0f} s", flush=True)


_MAIN: dict = {}


def _met(key: str, done: int) -> bool:
    """tail: whether the forward job (CACHE, re-read every 25 pictures) already has ``key``."""
    if done % 25 == 0 or not _MAIN:
        try:
            keys = dict.fromkeys(torch.load(CACHE)) if CACHE.is_file() else {}
        except (RuntimeError, EOFError, OSError):  # being written by the forward job: keep the last read
            keys = {}
        _MAIN.update(keys)
        _MAIN["_"] = None
    return key in _MAIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("split", "features", "cv", "compare"))
    parser.add_argument("--budget", type=float, default=840.0)
    parser.add_argument("--part", choices=("all", "drawings", "photos", "tail"), default="all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--setting", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.step in ("cv", "compare"):
        import naming_s13_fit

        getattr(naming_s13_fit, args.step)(args)
    else:
        {"split": split, "features": features}[args.step](args)


if __name__ == "__main__":
    main()
