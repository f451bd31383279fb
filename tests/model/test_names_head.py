"""The names head: the nearest named picture by pooled features, and its two-file folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lhama.errors import CheckpointError
from lhama.model.names_head import (FEATURES_FILE, SHIPPED, TABLE_FILE, NamedPicture, NamesHead, copy_head, pool,
                                    within_class_whitening)

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


def test_a_projection_changes_which_picture_is_nearest_and_survives_saving(tmp_path: Path) -> None:
    features = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [-1.0, -1.0, 0]])
    query = torch.tensor([0.9, 0.3, 0.0])
    assert NamesHead(features, ENTRIES).nearest(query)[0] == ENTRIES[0]
    shrink = torch.diag(torch.tensor([0.1, 1.0, 1.0]))  # the first feature counts a tenth
    projected = NamesHead(features, ENTRIES, shrink, "gem")
    picture, similarity = projected.nearest(query)
    assert picture == ENTRIES[1] and projected.nearest(features[2])[1] == pytest.approx(1.0)
    projected.save(tmp_path)
    loaded = NamesHead.load(tmp_path)
    assert loaded.pooling == "gem" and torch.equal(loaded.projection, shrink)
    assert loaded.nearest(query) == (picture, pytest.approx(similarity))
    NamesHead(features, ENTRIES).save(tmp_path)
    assert NamesHead.load(tmp_path).projection is None and NamesHead.load(tmp_path).pooling == "mean"
    with pytest.raises(CheckpointError, match="projection must have 3 rows"):
        NamesHead(features, ENTRIES, torch.eye(4))
    with pytest.raises(CheckpointError, match="pooling must be one of mean, gem"):
        NamesHead(features, ENTRIES, None, "max")


def test_pooling_and_within_class_whitening() -> None:
    head_map = torch.tensor([[[1.0, 2.0], [3.0, 2.0]]])  # (1 picture, 2 positions, 2 channels)
    assert torch.allclose(pool(head_map, "mean"), torch.tensor([[2.0, 2.0]]))
    gem = pool(head_map, "gem")  # the p = 3 mean: above the mean where positions differ, equal where not
    assert gem[0, 0] == pytest.approx(((1 + 27) / 2) ** (1 / 3)) and gem[0, 1] == pytest.approx(2.0)
    torch.manual_seed(0)
    labels = torch.arange(4).repeat_interleave(50)
    rows = torch.randn(200, 3) * torch.tensor([5.0, 1.0, 0.2]) + torch.randn(4, 3)[labels] * 3
    w = within_class_whitening(rows, labels, shrink=0.0)
    centred = rows @ w
    for c in range(4):
        centred[labels == c] -= centred[labels == c].mean(0)
    assert torch.allclose(centred.T @ centred / len(rows), torch.eye(3), atol=1e-3)  # within-class scatter white
    shrunk = within_class_whitening(rows, labels, shrink=1.0)
    assert torch.allclose(shrunk, shrunk[0, 0] * torch.eye(3), atol=1e-5)  # fully shrunk: a plain scale
