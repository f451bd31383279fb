"""lhama.eval.naming (reading a naming set, where its pictures are, rates per source) and the
shipped held-out set benchmarks/data/naming_heldout.tsv: big enough, relative image names, every
accepted name scoreable, its Tux Paint pictures all in the committed held-out split."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhama.errors import DataError
from lhama.eval.metrics import names_thing
from lhama.eval.naming import NamingItem, item_path, naming_rates, read_naming_items
from lhama.recipes.default.splits import read_file_list

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "benchmarks/data/naming_heldout.tsv"
HEADER = "# a comment\nimage\tsource\tenglish\taccepted\n"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "set.tsv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_read_naming_items_and_rates(tmp_path: Path) -> None:
    path = _write(tmp_path, "a/galo.png\tstamps\tA rooster.\tgalo\nb.jpg\ttux\tA bear.\turso-pardo|urso\n")
    items = read_naming_items(path)
    assert items == [NamingItem("a/galo.png", "stamps", "A rooster.", ("galo",)),
                     NamingItem("b.jpg", "tux", "A bear.", ("urso-pardo", "urso"))]
    assert item_path(items[0], {"stamps": tmp_path / "s", "tux": tmp_path}) == tmp_path / "s/a/galo.png"
    rates = naming_rates(items, ["Um galo.", "Um cachorro."])
    assert rates == {"all": 0.5, "stamps": 1.0, "tux": 0.0}


@pytest.mark.parametrize(("body", "message"), [
    ("/abs/galo.png\ts\tx\tgalo\n", "item 1: image '/abs/galo.png' must be relative"),
    ("../galo.png\ts\tx\tgalo\n", "must be relative"),
    ("galo.png\ts\tx\tgalo||galinha\n", "item 1: empty accepted name"),
    ("galo.png\ts\tx\n", "item 1: 3 columns, expected 4"),
])
def test_bad_naming_sets_are_data_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_naming_items(_write(tmp_path, body))
    with pytest.raises(DataError, match="naming set not found"):
        read_naming_items(tmp_path / "absent.tsv")


def test_item_path_needs_the_source_folder() -> None:
    with pytest.raises(DataError, match="no folder for naming source 'tux'"):
        item_path(NamingItem("a.png", "tux", "", ("a",)), {"stamps": Path("/s")})


def test_shipped_set_is_held_out_and_well_formed() -> None:
    items = read_naming_items(SHIPPED)
    assert len(items) >= 100
    assert len({(i.source, i.image) for i in items}) == len(items)
    assert {i.source for i in items} == {"tuxpaint_ptbr", "tuxpaint_stamps"}
    heldout = set(read_file_list(ROOT / "data/tuxpaint/heldout.txt"))
    assert {i.image for i in items if i.source == "tuxpaint_ptbr"} <= heldout
    for item in items:  # every accepted name matches an answer that says it
        assert all(names_thing(f"Isto é {name}.", [name]) for name in item.accepted)


def test_shipped_set_accepts_everyday_names() -> None:
    by_image = {i.image: i for i in read_naming_items(SHIPPED)}
    assert names_thing("Uma bola de futebol.", by_image["sports/soccer.png"].accepted)
    assert names_thing("É um galo.", by_image["animals/birds/rooster.png"].accepted)
    assert not names_thing("É uma galinha.", by_image["animals/birds/rooster.png"].accepted)
    assert names_thing("Um estetoscópio", by_image["medical/stethoscope.png"].accepted)
