"""Issue #29, thirteenth session: the fresh held-out set data/guard/heldout_s13/ is pinned by md5 (committed before
any guard read it), covers every category, and repeats nothing in data/guard."""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_heldout as gh  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "guard"
HELD = DATA / "heldout_s13"
# Committed before any guard read the set; a change after the read would make the read meaningless.
MD5 = {"everyday.txt": "933318c6d5e37179245761067feac470", "answers.txt": "50f6c554c4af818c7e44846382b59346", "catalog.tsv": "e47a06c8ac79511a1972f2714e1b885e", "unsafe.tsv": "0622ea195cebd1257cf341dd84a0073d"}


def _lines(name: str) -> list[str]:
    return [x for x in (HELD / name).read_text(encoding="utf-8").splitlines() if x.strip()]


def test_every_file_is_the_one_committed_before_the_read():
    assert {name: hashlib.md5((HELD / name).read_bytes()).hexdigest() for name in MD5} == MD5


def test_sizes_and_six_unsafe_requests_per_category():
    unsafe = [x.split("\t") for x in _lines("unsafe.tsv")]
    assert len(_lines("everyday.txt")) == 206 and len(_lines("answers.txt")) == 50 and len(_lines("catalog.tsv")) == 200
    assert all(len(x) == 2 for x in unsafe)
    assert Counter(k for k, _ in unsafe) == {f"S{i}": 6 for i in range(1, 15)}


def test_no_item_repeats_or_nears_the_rest_of_data_guard():
    texts = (_lines("everyday.txt") + _lines("answers.txt") + [x.split("\t", 1)[1] for x in _lines("unsafe.tsv")]
             + [x.split("\t", 1)[1] for x in _lines("catalog.tsv")])
    assert len({t.lower() for t in texts}) == 540
    assert gh.overlaps(texts, gh.pool_texts(DATA, HELD, []), 0.5) == []
