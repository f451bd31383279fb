"""Issue #26 session 14: a second fresh 5-way retrieval set from GCompris folders no lhama file read before.

    python benchmarks/retrieval_fresh_s14.py candidates --out /tmp/26b/s14/cand  # render + contact sheets
    python benchmarks/retrieval_fresh_s14.py overlap --out /tmp/26b/s14/overlap.tsv  # 256-bit, every reference
    python benchmarks/retrieval_fresh_s14.py build --out /tmp/26b/s14/fresh      # renders LIST
    lhama eval retrieval --data /tmp/26b/s14/fresh                                # the one read
                                                                                  # (docs/results/retrieval_s14_rule.md)

The pictures, their rendering and the Qt resource reader are session 13's
(``benchmarks/retrieval_fresh_s13.py``); only the folders differ (:data:`FOLDERS`: categorization's
fishes, monuments and renewable-energy photos, clickgame's fish, babyshapes' food drawings, the
monuments of explore_monuments, the coins and notes of money, the planets of solar_system). Every
caption was written by hand by looking at the picture (helper 26b, session 14) before any model saw it.

``overlap`` compares each candidate with every picture lhama's committed lists, names heads and
training sets were drawn from, by the 256-bit difference hash: openclipart, the Tux Paint stamps, the
shared data (``../shared/data``), the EmojiOne art of naming_fresh_s13 (Debian ruby-gemojione, where
present) and the GCompris pictures of session 13's set.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("retrieval_fresh_s13", Path(__file__).with_name("retrieval_fresh_s13.py"))
s13 = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(s13)

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "benchmarks" / "data" / "retrieval_fresh_s14.tsv"
LEFT_OUT = ROOT / "benchmarks" / "data" / "retrieval_fresh_s14_left_out.tsv"
FOLDERS = ("categorization/resource/images/fishes/", "categorization/resource/images/monuments/",
           "categorization/resource/images/renewable/", "clickgame/resource/", "babyshapes/resource/food/",
           "explore_monuments/resource/egypt/", "explore_monuments/resource/france/",
           "explore_monuments/resource/germany/", "explore_monuments/resource/india/",
           "explore_monuments/resource/usa/", "explore_monuments/resource/wonders/", "money/resource/",
           "solar_system/resource/")
NOT_PICTURES = ("background", "bubble", "sea", "world-map", "egypt.svg", "france.svg", "germany.svg", "india.svg",
                "usa.svg", "c2e-base")
EMOJI = Path("/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png")


def is_picture(key: str) -> bool:
    """A picture file directly in one of :data:`FOLDERS`, not a background, map or part."""
    folder, _, stem = key.rpartition("/")
    return (key.endswith(s13.SUFFIXES) and folder + "/" in FOLDERS
            and not any(stem.startswith(n) for n in NOT_PICTURES))


def pictures(rcc: Path = s13.RCC) -> dict[str, bytes]:
    """key (path under ``gcompris/src/activities/``) -> bytes, for every candidate picture."""
    found = {}
    for path in sorted(rcc.glob("*.rcc")):
        for name, raw in s13.read_rcc(path):
            key = name.removeprefix(s13.PREFIX)
            if name.startswith(s13.PREFIX) and is_picture(key):
                found[key] = raw
    return found


def flat_name(key: str) -> str:
    """``explore_monuments/resource/france/eiffelTower.webp`` -> ``explore_monuments__france__eiffelTower_webp.jpg``
    (the sub-folder kept: two countries may hold a picture of one name)."""
    parts = key.split("/")
    stem, ext = parts[-1].rsplit(".", 1)
    middle = [p for p in parts[1:-1] if p not in ("resource", "images")]
    return "__".join([parts[0], *middle, f"{stem}_{ext}.jpg"])


def reference_hashes() -> dict[str, int]:
    """dhash of every reference picture: session 13's references, the EmojiOne art and the GCompris
    pictures of session 13's list."""
    roots = tuple(r for r in (*s13.REFERENCES, EMOJI) if r.is_dir())
    missing = [str(r) for r in (*s13.REFERENCES, EMOJI) if not r.is_dir()]
    if missing:
        print(f"warning: reference folders absent: {', '.join(missing)}", file=sys.stderr)
    hashes = s13.reference_hashes(roots)
    listed = {s13.PREFIX + row["key"] for row in s13.read_list()}
    for path in sorted(s13.RCC.glob("*.rcc")):
        for name, raw in s13.read_rcc(path):
            if name in listed:
                hashes[f"gcompris-s13:{name.removeprefix(s13.PREFIX)}"] = s13.dhash(s13.render(name, raw))
    return hashes


def overlap(out: Path, within: int = 64) -> int:
    """``out``: each candidate's nearest reference picture and its distance (bits of 256), and each pair of
    candidates within ``within`` bits. Returns the number of rows within ``within`` (to look at by eye)."""
    mine = {key: s13.dhash(s13.render(key, raw)) for key, raw in pictures().items()}
    refs = reference_hashes()
    rows = []
    for key, h in sorted(mine.items()):
        ref, d = min(((r, bin(h ^ rh).count("1")) for r, rh in refs.items()), key=lambda x: x[1])
        rows.append(f"{key}\t{ref}\t{d}")
        rows += [f"{key}\t{other}\t{bin(h ^ oh).count('1')}" for other, oh in sorted(mine.items())
                 if other > key and bin(h ^ oh).count("1") <= within]
    out.write_text(f"key\tnearest\tbits\n# {len(refs)} reference pictures\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return sum(int(r.rsplit("\t", 1)[1]) <= within for r in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("overlap", "candidates", "build"):
        sub.add_parser(name).add_argument("--out", type=Path, required=True)
    sub.choices["build"].add_argument("--only", default="", help="comma-separated keys of the list (default: all)")
    args = parser.parse_args(argv)
    if not str(args.out.resolve()).startswith("/tmp/"):
        sys.exit(f"error: write under /tmp/, not {args.out}")
    if not s13.RCC.is_dir():
        sys.exit(f"error: {s13.RCC} not found (apt-get install gcompris-qt-data=3.1-2)")
    if args.command == "overlap":
        print(f"{overlap(args.out)} rows within 64 bits -> {args.out}")
        return
    s13.flat_name, s13.is_picture = flat_name, is_picture  # session 13's builders, over these folders
    if args.command == "candidates":
        print(f"{s13.candidates(args.out)} candidates -> {args.out}")
    else:
        rows = [r for r in s13.read_list(LIST) if not args.only or r["key"] in args.only.split(",")]
        print(f"{s13.build(args.out, rows=rows)} pictures -> {args.out}")


if __name__ == "__main__":
    main()
