from pathlib import Path

import pytest

from lhama.data.translate.glossary import load_glossary
from lhama.errors import DataError


def test_loads_keep_and_force_terms_with_comments(tmp_path: Path) -> None:
    f = tmp_path / "g.tsv"
    f.write_text("# brands\nTux\nskateboard\tskate  # force\n\n", encoding="utf-8")
    g = load_glossary(f)
    assert g.terms == (("Tux", "Tux"), ("skateboard", "skate"))
    assert [(s, e, t) for s, e, _, t in g.matches("A skateboard for tux.")] == [(2, 12, "skate"), (17, 20, "tux")]


def test_whole_words_only(tmp_path: Path) -> None:
    f = tmp_path / "g.tsv"
    f.write_text("cat\n", encoding="utf-8")
    assert load_glossary(f).matches("concatenate the cat") == [(16, 19, "glossary", "cat")]


def test_none_is_empty_and_errors_are_one_line(tmp_path: Path) -> None:
    assert load_glossary(None).matches("anything") == []
    with pytest.raises(DataError, match="not found"):
        load_glossary(tmp_path / "missing.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\tc\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1"):
        load_glossary(bad)
