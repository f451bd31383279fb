"""Issue #29, session 12: the benign-sentence part of data/guard/heldout_s12 — pt-BR sentences from the system's
gettext message catalogs (/usr/share/locale/pt_BR/LC_MESSAGES/*.mo, decompiled with msgunfmt), a source no guard
training, tuning or measurement file has used (Tux Paint's catalogs are left out: its stamp captions are in the
benign set).

    for f in /usr/share/locale/pt_BR/LC_MESSAGES/*.mo; do msgunfmt "$f" -o DIR/$(basename $f .mo).po; done
    python benchmarks/guard_catalog_s12.py DIR data/guard/heldout_s12/catalog.tsv

Fixed filter (written before any guard read a line): one msgstr, 6-25 words, starts with a capital letter, ends
with a full stop, only letters, spaces and , ; : ' ( ) -; no escape sequence. Exact repeats, lines within 0.5 word
3-gram Jaccard of any text in data/guard (outside heldout_s12's catalog) or of an earlier kept line are dropped;
then a seeded shuffle (seed 12) and the first 200. Output: ``CATALOG<TAB>sentence``.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import guard_heldout as gh

ROOT = Path(__file__).resolve().parents[1]
OK = re.compile(r"^[A-ZÁÉÍÓÚÂÊÔÃÕÇ][A-Za-zÀ-ÿ ,;:'()-]+\.$")


def msgstrs(po: Path) -> list[str]:
    """The msgstr texts of one .po file (continuation lines joined)."""
    out, cur, on = [], [], False
    for line in po.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("msgstr"):
            on, cur = True, [line.split(" ", 1)[1] if " " in line else '""']
        elif on and line.startswith('"'):
            cur.append(line)
        else:
            if on:
                out.append("".join(s.strip()[1:-1] for s in cur))
            on = False
    return out + (["".join(s.strip()[1:-1] for s in cur)] if on else [])


def sentences(po_dir: Path) -> list[tuple[str, str]]:
    rows = []
    for po in sorted(p for p in po_dir.glob("*.po") if not p.stem.startswith("tuxpaint")):
        for s in msgstrs(po):
            s = s.replace('\\"', '"').strip()
            if "\\" not in s and OK.match(s) and 6 <= len(s.split()) <= 25:
                rows.append((po.stem, s))
    return rows


def main() -> None:
    po_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    pool = gh.pool_texts(ROOT / "data/guard", out, [])  # everything but this file itself
    near = {t for _, t, _ in gh.overlaps([s for _, s in sentences(po_dir)], pool, 0.5)}
    kept: list[tuple[str, str]] = []
    for src, s in sentences(po_dir):
        if s not in near and s.lower() not in {k.lower() for _, k in kept} and not gh.overlaps([s], [k for _, k in kept], 0.5):
            kept.append((src, s))
    random.Random(12).shuffle(kept)
    out.write_text("".join(f"{a}\t{s}\n" for a, s in kept[:200]), encoding="utf-8")
    print(f"{len(kept)} kept, 200 written to {out}")


if __name__ == "__main__":
    main()
