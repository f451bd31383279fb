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


def test_benign_measurement_set_is_kept_apart_from_training():
    """data/guard/benign/benign.jsonl (issue #29's false-alarm measure) is never trained on:
    no training item repeats a benign sentence or comes within 0.5 word 3-gram Jaccard of one."""
    import json

    benign = [json.loads(line) for line in (DATA / "benign" / "benign.jsonl").open(encoding="utf-8")]
    assert len(benign) >= 2000 and {"tuxpaint_caption", "everyday_prompt", "assistant_answer"} <= {b["source"] for b in benign}
    index: dict = {}
    for i, e in enumerate(read_examples(DATA / "train.jsonl")):
        for g in _grams(e.text):
            index.setdefault(g, set()).add(i)
    train_grams = [_grams(e.text) for e in read_examples(DATA / "train.jsonl")]
    for b in benign:
        g = _grams(b["text"])
        near = set().union(*(index.get(x, set()) for x in g))
        worst = max((len(g & train_grams[i]) / len(g | train_grams[i]) for i in near), default=0.0)
        assert worst < 0.5, b["text"]
