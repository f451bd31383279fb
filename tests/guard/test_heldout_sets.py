"""Issue #29, the fresh held-out sets of sessions 9-16 (data/guard/heldout_s10 ... heldout_s16): each is pinned by md5
(committed before any guard read it), has the sizes its rule named, covers every category alike, and repeats
nothing in the rest of data/guard. One row per set; a new set is one more row."""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_heldout as gh  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "guard"


@dataclass(frozen=True)
class HeldOut:
    name: str
    md5: dict[str, str]  # file -> md5 at the commit before the read; a change after the read would make it meaningless
    sizes: dict[str, int]  # non-empty lines per file
    per_category: int  # unsafe requests in each of S1-S14
    distinct: int  # distinct texts (case-folded) over all files


SETS = (
    HeldOut("heldout_s10", {"everyday.txt": "c97af710509b9a1e1b2b493a42b15a2b", "unsafe.tsv": "415529c2a3a9babf32ab0672b46c0ecd"},
            {"everyday.txt": 150}, 6, 234),
    HeldOut("heldout_s11", {"everyday.txt": "454b8a3b99f47f44faeddb052af9b221", "answers.txt": "d647a6d8eade41e5d22709a7999da229",
                            "unsafe.tsv": "cf5aa9c68649329f9267eca53eb8baf4"},
            {"everyday.txt": 150, "answers.txt": 60}, 5, 280),
    HeldOut("heldout_s12", {"everyday.txt": "4f73a2fcfaeefc29e92d379c3027ff6d", "answers.txt": "c583e45fb2c8b75d4206505fdba55d25",
                            "catalog.tsv": "1b3c456c08b48610586de6db5aa3c12d", "unsafe.tsv": "aa71711b3274a87d17fa9b192fd22da7"},
            {"everyday.txt": 150, "answers.txt": 50, "catalog.tsv": 200}, 4, 456),
    HeldOut("heldout_s13", {"everyday.txt": "933318c6d5e37179245761067feac470", "answers.txt": "50f6c554c4af818c7e44846382b59346",
                            "catalog.tsv": "e47a06c8ac79511a1972f2714e1b885e", "unsafe.tsv": "0622ea195cebd1257cf341dd84a0073d"},
            {"everyday.txt": 206, "answers.txt": 50, "catalog.tsv": 200}, 6, 540),
    HeldOut("heldout_s14", {"everyday.txt": "9b477f500ab6934ecd5bddb78c0fe448", "answers.txt": "0387662cc5e9d01ab61ec5e35fa6bf85",
                            "catalog.tsv": "994b6c0c6ded8c53a3b5df43f25e99a2", "unsafe.tsv": "bc643cf60f94c82b03dbaef5dc700dc4"},
            {"everyday.txt": 221, "answers.txt": 50, "catalog.tsv": 200}, 5, 541),
    HeldOut("heldout_s15", {"everyday.txt": "1273c29895103973ebc73464524721ab", "answers.txt": "5d8fbb3ec58b4f4a7132f719746eb113",
                            "catalog.tsv": "f2b0717b07f910f544ce634b27054b19", "unsafe.tsv": "409ef636a90b4cd5092ce1c93bdbc236"},
            {"everyday.txt": 226, "answers.txt": 100, "catalog.tsv": 64}, 5, 460),
    HeldOut("heldout_s16", {"everyday.txt": "e6bbaade70be824d9a4787c12553239a", "answers.txt": "c170f5f90f159e17017043788aaff3e8",
                            "catalog.tsv": "a50e430cbacb9c4d25341456f01d45a0", "unsafe.tsv": "a32cb27d12d0a4f4fadf46698fb8bb75"},
            {"everyday.txt": 249, "answers.txt": 73, "catalog.tsv": 200}, 5, 592),
)
BY_NAME = pytest.mark.parametrize("held", SETS, ids=[s.name for s in SETS])


def _lines(held: HeldOut, name: str) -> list[str]:
    path = DATA / held.name / name
    return [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()] if path.exists() else []


def _texts(held: HeldOut) -> list[str]:
    """Every text of the set: plain lines, and the text column of the tab-separated files."""
    return (_lines(held, "everyday.txt") + _lines(held, "answers.txt")
            + [x.split("\t", 1)[1] for name in ("unsafe.tsv", "catalog.tsv") for x in _lines(held, name)])


@BY_NAME
def test_every_file_is_the_one_committed_before_the_read(held: HeldOut):
    assert {name: hashlib.md5((DATA / held.name / name).read_bytes()).hexdigest() for name in held.md5} == held.md5


@BY_NAME
def test_sizes_and_the_same_number_of_unsafe_requests_per_category(held: HeldOut):
    unsafe = [x.split("\t") for x in _lines(held, "unsafe.tsv")]
    assert {name: len(_lines(held, name)) for name in held.sizes} == held.sizes
    assert all(len(x) == 2 for x in unsafe)
    assert Counter(k for k, _ in unsafe) == {f"S{i}": held.per_category for i in range(1, 15)}


@BY_NAME
def test_no_item_repeats_or_nears_the_rest_of_data_guard(held: HeldOut):
    texts = _texts(held)
    assert len({t.lower() for t in texts}) == held.distinct
    assert gh.overlaps(texts, gh.pool_texts(DATA, DATA / held.name, []), 0.5) == []
