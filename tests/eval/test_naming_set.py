"""The naming held-out set (benchmarks/data/naming_heldout.tsv): big enough, relative image names,
every accepted name scoreable, and its Tux Paint pictures all in the committed held-out split."""

from __future__ import annotations

from pathlib import Path

from benchmarks.naming_classifier import ITEMS, SOURCES, read_items
from lhama.eval.metrics import fold_text, names_thing
from lhama.recipes.default.splits import read_file_list

ROOT = Path(__file__).resolve().parents[2]


def test_naming_set_is_held_out_and_well_formed() -> None:
    items = read_items(ITEMS)
    assert len(items) >= 100
    assert len({(i.source, i.image) for i in items}) == len(items)
    assert {i.source for i in items} == set(SOURCES)
    assert all(not Path(i.image).is_absolute() and ".." not in Path(i.image).parts for i in items)
    heldout = set(read_file_list(ROOT / "data/tuxpaint/heldout.txt"))
    assert {i.image for i in items if i.source == "tuxpaint_ptbr"} <= heldout
    # Every accepted name can match an answer that says it.
    for item in items:
        assert all(fold_text(name) and names_thing(f"Isto é {name}.", [name]) for name in item.accepted)


def test_common_items_accept_their_everyday_names() -> None:
    by_image = {i.image: i for i in read_items(ITEMS)}
    assert names_thing("Uma bola de futebol.", by_image["sports/soccer.png"].accepted)
    assert names_thing("É um galo.", by_image["animals/birds/rooster.png"].accepted)
    assert not names_thing("É uma galinha.", by_image["animals/birds/rooster.png"].accepted)
    assert names_thing("Um estetoscópio", by_image["medical/stethoscope.png"].accepted)
