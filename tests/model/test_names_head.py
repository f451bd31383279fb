"""The names head: the nearest named picture by pooled features, and its two-file folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lhama.errors import CheckpointError
from lhama.model.names_head import FEATURES_FILE, SHIPPED, TABLE_FILE, NamedPicture, NamesHead, copy_head

ENTRIES = (NamedPicture("uma lápide", "", "seasonal/halloween/grave-a"),
           NamedPicture("o planeta Marte", "um planeta", "space/planets/4_mars"),
           NamedPicture("uma moeda de 5 ienes", "uma moeda", "symbols/money/japanese/yen005"))


def head() -> NamesHead:
    return NamesHead(torch.tensor([[4.0, 0, 0, 1], [0, 4.0, 0, 1], [0, 0, 4.0, 1]]), ENTRIES)


def test_nearest_is_the_most_similar_picture_after_centring() -> None:
    h = head()
    picture, similarity = h.nearest(torch.tensor([0.2, 3.0, 0.1, 1.0]))
    assert picture.name == "o planeta Marte" and 0.9 < similarity <= 1.0
    picture, similarity = h.nearest(h.features[2])
    assert picture == ENTRIES[2] and similarity == pytest.approx(1.0)
    # All three share the last feature: centring removes it, so it does not make everything similar.
    assert h.nearest(torch.tensor([4 / 3, 4 / 3, 4 / 3, 5.0]))[1] < 0.1
    with pytest.raises(CheckpointError, match="4-wide features but the tower gave"):
        h.nearest(torch.zeros(5))


def test_save_load_round_trip_and_bad_files(tmp_path: Path) -> None:
    head().save(tmp_path)
    loaded = NamesHead.load(tmp_path)
    assert loaded.entries == ENTRIES and torch.equal(loaded.features, head().features)  # small integers: exact in fp16
    other = tmp_path / "copy"
    other.mkdir()
    copy_head(tmp_path, other)
    assert NamesHead.load(other).entries == ENTRIES
    (tmp_path / TABLE_FILE).write_text("name\tkind\tkey\n\t\tx\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="is not a names table"):
        NamesHead.load(tmp_path)
    (other / FEATURES_FILE).unlink()
    with pytest.raises(CheckpointError, match="cannot read the names head"):
        NamesHead.load(other)
    with pytest.raises(CheckpointError, match="one feature row per named picture"):
        NamesHead(torch.zeros(2, 4), ENTRIES)


def test_the_shipped_head_loads_with_pt_br_names() -> None:
    shipped = NamesHead.load(SHIPPED)
    assert shipped.width == 1280 and len(shipped.entries) > 100
    names = {e.name for e in shipped.entries}
    assert "uma lápide" in names and all(e.name.strip() == e.name and e.name for e in shipped.entries)
