"""Issue #29, session 13: the benign-sentence part of data/guard/heldout_s13 — pt-BR sentences from the system's
gettext message catalogs, picked by session 12's fixed filter (benchmarks/guard_catalog_s12.py) with another seed
(13). Every sentence already in data/guard (heldout_s12's catalog included) or within 0.5 word 3-gram Jaccard of one
is dropped, so no sentence repeats session 12's.

    for f in /usr/share/locale/pt_BR/LC_MESSAGES/*.mo; do msgunfmt "$f" -o DIR/$(basename $f .mo).po; done
    python benchmarks/guard_catalog_s13.py DIR data/guard/heldout_s13/catalog.tsv
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import guard_heldout as gh
from guard_catalog_s12 import sentences

ROOT = Path(__file__).resolve().parents[1]


def main(seed: int = 13) -> None:
    """Write 200 catalog sentences to argv[2], picked with ``seed`` (session 14 calls it with 14)."""
    po_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    pool = gh.pool_texts(ROOT / "data/guard", out.parent, [])  # everything but this set's own folder
    found = sentences(po_dir)
    near = {t for _, t, _ in gh.overlaps([s for _, s in found], pool, 0.5)}
    kept: list[tuple[str, str]] = []
    for src, s in found:
        if s not in near and s.lower() not in {k.lower() for _, k in kept} and not gh.overlaps([s], [k for _, k in kept], 0.5):
            kept.append((src, s))
    random.Random(seed).shuffle(kept)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{a}\t{s}\n" for a, s in kept[:200]), encoding="utf-8")
    print(f"{len(found)} found, {len(kept)} kept, 200 written to {out}")


if __name__ == "__main__":
    main()
