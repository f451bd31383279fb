import re
from collections import Counter
from pathlib import Path

import pytest

from lhama.errors import DataError
from lhama.guard.dataset import read_examples
from lhama.guard.verdict import CODES

DATA = Path(__file__).resolve().parents[2] / "data" / "guard"


def _grams(text: str) -> set[tuple[str, ...]]:
    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i : i + 3]) for i in range(max(0, len(w) - 2))} or {tuple(w)}


def test_shipped_splits_have_the_promised_size_and_coverage():
    train, test = read_examples(DATA / "train.jsonl"), read_examples(DATA / "test.jsonl")
    assert sum(e.lang == "pt" for e in train) >= 600
    assert sum(e.lang == "pt" for e in test) >= 200
    for split in (train, test):
        cats = Counter(c for e in split if e.lang == "pt" for c in e.categories)
        assert set(cats) == set(CODES) and min(cats.values()) >= 5
        assert sum(e.lookalike for e in split if e.lang == "pt") >= 60
        assert {e.lang for e in split} == {"pt", "en"}


def test_test_split_has_no_near_duplicates_in_train():
    train, test = read_examples(DATA / "train.jsonl"), read_examples(DATA / "test.jsonl")
    train_grams = [_grams(e.text) for e in train]
    for e in test:
        g = _grams(e.text)
        worst = max(len(g & t) / len(g | t) for t in train_grams)
        assert worst < 0.5, e.text


def test_bad_record_names_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "oi", "label": "safe"}\n{"text": "x", "label": "unsafe"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2: unsafe records need"):
        read_examples(path)
    path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:1: not a guard record"):
        read_examples(path)
    with pytest.raises(DataError, match="not found"):
        read_examples(tmp_path / "missing.jsonl")
