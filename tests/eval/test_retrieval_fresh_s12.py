"""The fresh retrieval set of #26 session 12 (benchmarks/retrieval_fresh_s12.py): the committed list
names only unseen stamps with their own pt_BR captions, and the builder renders them like the shared
set. Skipped where Debian's tuxpaint-stamps-default (or cairosvg, for its SVG stamps) is absent."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from PIL import Image

from lhama.eval.caption import load_captions
from lhama.eval.retrieval import make_trials

ROOT = Path(__file__).parents[2]
_SPEC = importlib.util.spec_from_file_location("retrieval_fresh_s12", ROOT / "benchmarks" / "retrieval_fresh_s12.py")
fresh = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fresh)

needs_stamps = pytest.mark.skipif(not fresh.STAMPS.is_dir(), reason="tuxpaint-stamps-default is not installed")


def test_the_list_is_a_five_way_set_of_distinct_files() -> None:
    rows = fresh.read_list()
    assert len(rows) == 164
    assert len({r["file"] for r in rows}) == len(rows)
    assert len({r["pt_BR"] for r in rows}) >= 5
    assert all(r["file"] == fresh.flat_name(r["key"]) and r["source"] in (".png", ".svg") for r in rows)


def test_no_listed_stamp_is_in_a_names_head_a_naming_list_or_the_shared_set() -> None:
    keys = {r["key"] for r in fresh.read_list()}
    for rel in fresh.KEY_LISTS:
        cells = {c.removesuffix(".png") for line in (ROOT / rel).read_text(encoding="utf-8").splitlines() for c in line.split("\t")}
        assert not keys & cells, rel
    if fresh.SHARED.is_dir():
        assert not {fresh.flat_name(k) for k in keys} & set(os.listdir(fresh.SHARED / "images"))
    # the glyph reader's "not a glyph" pictures were every PNG outside alphabets/ and math/
    assert all(r["source"] == ".svg" or "alphabets" in r["key"] for r in fresh.read_list())


@needs_stamps
def test_each_listed_caption_is_the_stamps_own_pt_br_line() -> None:
    for row in fresh.read_list():
        en, pt = fresh.captions(fresh.STAMPS / (row["key"] + ".txt"))
        assert (row["en"], row["pt_BR"]) == (en, pt) and pt
        assert (fresh.STAMPS / (row["key"] + row["source"])).is_file()


@needs_stamps
def test_build_renders_flat_white_pictures_that_eval_retrieval_reads(tmp_path: Path) -> None:
    pytest.importorskip("cairosvg")
    rows = fresh.read_list()
    sample = [r for r in rows if r["source"] == ".png"][:2] + [r for r in rows if r["source"] == ".svg"][:4]
    assert fresh.build(tmp_path, rows=sample) == 6
    for row in sample:
        image = Image.open(tmp_path / "images" / row["file"])
        assert image.mode == "RGB" and max(image.size) <= fresh.SIDE
        assert image.getpixel((0, 0)) >= (245, 245, 245)  # transparent corners flattened on white
        if row["source"] == ".svg":
            assert max(image.size) >= fresh.SIDE - 1
        assert len(set(image.convert("L").getdata())) > 8  # a drawing, not a blank page
    items = load_captions(tmp_path)
    assert [i.reference for i in items] == [r["pt_BR"] for r in sample]
    trials = make_trials(items, 5, 0)
    assert all(t.candidates[t.answer] == t.item.reference and len(set(t.candidates)) == 5 for t in trials)
    assert not list(tmp_path.rglob("*.tmp*"))
