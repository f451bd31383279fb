"""Chunk translation with the real Bergamot model, and the fallback when placeholders die."""

import threading

import pytest

from lhama.data.translate.bergamot import BergamotBackend
from lhama.data.translate.chunk import ChunkTools, translate_chunk
from lhama.data.translate.glossary import Glossary
from lhama.data.translate.pool import TranslatorPool
from lhama.data.translate.quality import QualityChecker

from .conftest import SAMPLE, turn


class PlaceholderEater:
    """Wraps Bergamot and deletes every placeholder, as a weaker MT model might."""

    def __init__(self) -> None:
        self.inner = BergamotBackend()
        self.lock = threading.Lock()

    def translate_batch(self, texts: list[str]) -> list[str]:
        import re

        return [re.sub(r"X\d+X", "", t) for t in self.inner.translate_batch(texts)]


@pytest.fixture(scope="module")
def checker() -> QualityChecker:
    return QualityChecker()


def run(backend_factory, items, checker, glossary=Glossary()):  # noqa: ANN001, ANN201
    pool = TranslatorPool(backend_factory, workers=2, batch_size=4)
    try:
        return translate_chunk(items, ChunkTools(pool, glossary, checker))
    finally:
        pool.close()


def test_sample_translates_with_structure_intact(checker: QualityChecker) -> None:
    items = [(i, r, None) for i, r in enumerate(SAMPLE)]
    entries = run(BergamotBackend, items, checker)
    assert [e["i"] for e in entries] == [0, 1, 2] and all(e["ok"] for e in entries)
    a, b, c = (e["record"] for e in entries)
    assert a["conversations"][0]["value"].startswith("<image>\n") and "homem" in a["conversations"][0]["value"]
    assert b["extra"] == {"k": [1, 2]} and b["conversations"][0]["value"].endswith("?\n<image>")
    gpt = b["conversations"][1]["value"]
    assert "[0.12, 0.34, 0.56, 0.78]" in gpt and "\n\n1. " in gpt and "\n2. " in gpt
    assert all(s in c["conversations"][1]["value"] for s in ("`print(42)`", "https://example.com/menu", "$12.50"))


def test_lost_placeholders_fall_back_to_piecewise(checker: QualityChecker) -> None:
    items = [(0, SAMPLE[2], None)]
    (entry,) = run(PlaceholderEater, items, checker)
    assert entry["ok"], entry.get("reason")
    assert all(s in entry["record"]["conversations"][1]["value"] for s in ("`print(42)`", "$12.50"))


def test_invalid_records_are_rejected_with_reason_and_glossary_applies(checker: QualityChecker) -> None:
    items = [
        (0, {"id": "x"}, None),
        (1, "{broken", "line 2 is not valid JSON (Expecting value)"),
        (2, {"id": "s", "conversations": [turn("gpt", "Tux rides a skateboard.")]}, None),
    ]
    glossary = Glossary((("skateboard", "skate"), ("Tux", "Tux")))
    bad, broken, good = run(BergamotBackend, items, checker, glossary)
    assert not bad["ok"] and bad["reason"] == "invalid_record: no 'conversations' list"
    assert not broken["ok"] and "line 2" in broken["reason"] and broken["record"] == "{broken"
    value = good["record"]["conversations"][0]["value"]
    assert "Tux" in value and "skate" in value and "skateboard" not in value
