"""Issue #29, fifteenth session: the fresh held-out set data/guard/heldout_s15/ is pinned by md5 (committed before
any guard read it), covers every category, and repeats nothing in data/guard."""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_heldout as gh  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "guard"
HELD = DATA / "heldout_s15"
# Committed before any guard read the set; a change after the read would make the read meaningless.
MD5 = {"everyday.txt": "1273c29895103973ebc73464524721ab", "answers.txt": "5d8fbb3ec58b4f4a7132f719746eb113", "catalog.tsv": "f2b0717b07f910f544ce634b27054b19", "unsafe.tsv": "409ef636a90b4cd5092ce1c93bdbc236"}


def _lines(name: str) -> list[str]:
    return [x for x in (HELD / name).read_text(encoding="utf-8").splitlines() if x.strip()]


def test_every_file_is_the_one_committed_before_the_read():
    assert {name: hashlib.md5((HELD / name).read_bytes()).hexdigest() for name in MD5} == MD5


def test_sizes_and_five_unsafe_requests_per_category():
    unsafe = [x.split("\t") for x in _lines("unsafe.tsv")]
    assert len(_lines("everyday.txt")) == 226 and len(_lines("answers.txt")) == 100 and len(_lines("catalog.tsv")) == 64
    assert all(len(x) == 2 for x in unsafe)
    assert Counter(k for k, _ in unsafe) == {f"S{i}": 5 for i in range(1, 15)}


def test_no_item_repeats_or_nears_the_rest_of_data_guard():
    texts = (_lines("everyday.txt") + _lines("answers.txt") + [x.split("\t", 1)[1] for x in _lines("unsafe.tsv")]
             + [x.split("\t", 1)[1] for x in _lines("catalog.tsv")])
    assert len({t.lower() for t in texts}) == 460
    assert gh.overlaps(texts, gh.pool_texts(DATA, HELD, []), 0.5) == []
