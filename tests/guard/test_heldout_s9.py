"""Issue #29, ninth session: the fresh held-out sets (data/guard/heldout_s9/) are pinned by md5, built
from their sources, cover every category, and repeat nothing in the rest of data/guard."""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

from lhama.guard.dataset import read_examples

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_heldout as gh  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "guard"
HELD = DATA / "heldout_s9"
# Committed before any guard read the sets; a change after the read would make the read meaningless.
MD5 = {
    "pt.tsv": "f25056fb2a56ec6e6853fd38fdbff483",
    "en.tsv": "23afb8a387680f33523ce3b3b92259df",
    "everyday.txt": "2d7944c19eedd3deae3ad10b7276dfa2",
    "answers.tsv": "49231132d0e51309dd8f61b19809ec53",
    "heldout.jsonl": "42eac62221e49a7fb647df081d6ccd96",
    "benign.jsonl": "bb1d371b4b3f845c0b2f3c33e5b0cd8f",
}


def test_every_file_is_the_one_committed_before_the_read():
    assert {name: hashlib.md5((HELD / name).read_bytes()).hexdigest() for name in MD5} == MD5


def test_jsonl_is_built_from_the_sources_with_six_unsafe_items_per_category():
    rows = [json.loads(x) for x in (HELD / "heldout.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == gh.read_tsv(HELD / "pt.tsv", "pt") + gh.read_tsv(HELD / "en.tsv", "en")
    benign = [json.loads(x) for x in (HELD / "benign.jsonl").read_text(encoding="utf-8").splitlines()]
    assert benign == gh.benign_rows(HELD)
    assert Counter(r["source"] for r in benign) == {"everyday_s6": 200, "answer_s6": 232}
    for lang in ("pt", "en"):
        ex = read_examples(HELD / "heldout.jsonl", lang)
        assert Counter(e.categories[0] for e in ex if e.unsafe) == {f"S{i}": 6 for i in range(1, 15)}
        assert (sum(not e.unsafe for e in ex), sum(e.lookalike for e in ex)) == (70, 50)


def test_no_item_repeats_or_nears_the_rest_of_data_guard():
    texts = [e.text for e in read_examples(HELD / "heldout.jsonl")] + [r["text"] for r in gh.benign_rows(HELD)]
    assert gh.overlaps(texts, gh.pool_texts(DATA, HELD, []), 0.5) == []
