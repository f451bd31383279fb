"""The fresh clip-art naming list: grouping, split and reader (no openclipart package needed)."""

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from lhama.errors import DataError
from lhama.eval.metrics import names_thing
from lhama.model.names_head import NamedPicture, NamesHead
from lhama.recipes.default.clipart_names import (COLUMNS, SPLITS, ClipartPicture, drawing_signature, group_word, groups,
                                                 pool_head, prototype_head, read_clipart_names, same_drawing, split_of)

LIST = Path(__file__).resolve().parents[3] / "benchmarks/data/openclipart_names.tsv"


def test_group_word_skips_articles_digits_and_variants():
    assert group_word("food/fruit/an_apple_01") == "apple"
    assert group_word("food/fruit/apple_bw") == "apple"
    assert group_word("animals/mammals/big_cats/tigre01_architetto_franc_01") == "tigre"
    assert group_word("animals/mammals/contour_fox") == "fox"
    assert group_word("food/desserts/cone_alt1_bw") == "cone"


def test_split_of_is_fixed_and_roughly_half_pool():
    keys = [f"word{i}" for i in range(2000)]
    parts = [split_of(k) for k in keys]
    assert parts == [split_of(k) for k in keys]
    assert set(parts) == set(SPLITS)
    assert 0.45 < parts.count("pool") / 2000 < 0.55 and 0.2 < parts.count("test") / 2000 < 0.3


def _drawing(path: Path, colour: str, shape: str) -> Path:
    img = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    (draw.ellipse if shape == "disc" else draw.polygon)([10, 10, 110, 110] if shape == "disc" else [(60, 5), (115, 115), (5, 115)],
                                                          fill=colour, outline="black")
    if shape == "disc":
        draw.line([(30, 60), (90, 60)], fill="black", width=3)
    img.save(path)
    return path


def test_same_drawing_joins_a_recoloured_copy_not_another_shape(tmp_path):
    signatures = [drawing_signature(_drawing(tmp_path / f"{n}.png", c, s))
                  for n, (c, s) in enumerate([("red", "disc"), ("blue", "disc"), ("red", "triangle")])]
    pairs = same_drawing(torch.stack([s[0] for s in signatures]), torch.stack([s[1] for s in signatures]))
    assert bool(pairs[0, 1]) and not bool(pairs[0, 2]) and not bool(pairs[1, 2])
    named = groups(["x/red_ball", "x/blue_sphere", "x/cone"], pairs)
    assert named[0] == named[1] == "ball" and named[2] == "cone"


def _write(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("# header\n" + "\n".join("\t".join(r) for r in [COLUMNS] + rows) + "\n", encoding="utf-8")
    return path


def test_reader_parses_and_rejects_a_group_in_two_splits(tmp_path):
    good = [["food/apple", "An apple.", "uma maçã", "maçã|fruta", "apple", "pool"]]
    pictures = read_clipart_names(_write(tmp_path / "a.tsv", good))
    assert pictures[0].accepted == ("maçã", "fruta") and pictures[0].split == "pool"
    with pytest.raises(DataError, match="two splits"):
        read_clipart_names(_write(tmp_path / "b.tsv", good + [["food/apple_bw", "An apple.", "uma maçã", "maçã", "apple", "test"]]))
    with pytest.raises(DataError, match="split"):
        read_clipart_names(_write(tmp_path / "c.tsv", [good[0][:5] + ["train"]]))
    with pytest.raises(DataError, match="not found"):
        read_clipart_names(tmp_path / "missing.tsv")


def test_committed_list_is_split_by_group_with_names():
    pictures = read_clipart_names(LIST)
    counts = {s: sum(p.split == s for p in pictures) for s in SPLITS}
    assert counts["test"] >= 100 and counts["dev"] >= 100 and counts["pool"] >= 300
    assert len({p.image for p in pictures}) == len(pictures)
    assert all(p.split == split_of(p.group) for p in pictures)
    unnamed = [p.image for p in pictures if not names_thing(p.name, p.accepted)]
    assert not unnamed, f"labels the naming check would not accept: {unnamed[:5]}"


def test_pool_head_adds_the_pool_and_names_its_nearest_picture():
    base = NamesHead(torch.tensor([[4.0, 0, 0, 1], [0, 4.0, 0, 1]]), (NamedPicture("uma lápide", "", "a"), NamedPicture("uma moeda", "", "b")))
    apple = ClipartPicture("food/apple", "An apple.", "uma maçã", ("maçã",), "apple", "pool")
    head = pool_head(base, [apple], {"food/apple": torch.tensor([0, 0, 4.0, 1])})
    assert [e.name for e in head.entries] == ["uma lápide", "uma moeda", "uma maçã"]
    picture, similarity = head.nearest(torch.tensor([0.1, 0, 3.9, 1]))
    assert picture.key == "openclipart:food/apple" and similarity > 0.9
    with pytest.raises(DataError, match="pool pictures"):
        pool_head(base, [ClipartPicture("x/y", "Y.", "um y", ("y",), "y", "test")], {"x/y": torch.zeros(4)})


def test_prototype_head_averages_each_label():
    entries = (NamedPicture("uma maçã", "", "a"), NamedPicture("uma pera", "", "b"), NamedPicture("uma maçã", "", "c"))
    head = prototype_head(NamesHead(torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]]), entries))
    assert [e.name for e in head.entries] == ["uma maçã", "uma pera"] and head.entries[0].key == "prototype:2"
    assert torch.allclose(head.features[0], torch.tensor([1.0, 0, 1.0]))
