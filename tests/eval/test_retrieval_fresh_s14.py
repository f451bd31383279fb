"""The fresh retrieval set of #26 session 14 (benchmarks/retrieval_fresh_s14.py): GCompris folders that session
13's set did not use, with hand-written pt_BR captions; no picture is in session 13's list, no other file of the
repository names one. Tests that need Debian's gcompris-qt-data (or cairosvg) skip where it is absent."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lhama.eval.caption import load_captions
from lhama.eval.retrieval import make_trials

ROOT = Path(__file__).parents[2]
_SPEC = importlib.util.spec_from_file_location("retrieval_fresh_s14", ROOT / "benchmarks" / "retrieval_fresh_s14.py")
fresh = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fresh)

needs_package = pytest.mark.skipif(not fresh.s13.RCC.is_dir(), reason="gcompris-qt-data is not installed")
OWN = ("benchmarks/retrieval_fresh_s14.py", "benchmarks/data/retrieval_fresh_s14", "tests/eval/test_retrieval_fresh_s14.py",
       "docs/results/retrieval_s14_", "docs/default-model.md")


def _rows() -> list[dict[str, str]]:
    return fresh.s13.read_list(fresh.LIST)


def test_the_list_is_a_five_way_set_of_distinct_hand_captioned_pictures() -> None:
    rows = _rows()
    assert len(rows) >= 150
    assert len({r["file"] for r in rows}) == len({r["key"] for r in rows}) == len(rows)
    assert all(r["file"] == fresh.flat_name(r["key"]) and fresh.is_picture(r["key"]) for r in rows)
    assert all(r["pt_BR"][0].isupper() and r["pt_BR"].endswith(".") for r in rows)
    assert len({r["pt_BR"] for r in rows}) == len(rows)
    assert [r["key"] for r in rows] == sorted(r["key"] for r in rows)


def test_no_picture_or_folder_of_session_13s_set_is_in_it() -> None:
    mine = {r["key"] for r in _rows()}
    earlier = {r["key"] for r in fresh.s13.read_list()}
    assert not mine & earlier
    assert not {k.rsplit("/", 1)[0] + "/" for k in mine} & set(fresh.s13.FOLDERS)


def test_flat_names_keep_the_country_so_two_monuments_of_one_name_differ() -> None:
    assert fresh.flat_name("explore_monuments/resource/france/eiffelTower.webp") == \
        "explore_monuments__france__eiffelTower_webp.jpg"
    assert fresh.flat_name("categorization/resource/images/monuments/eiffelTower.webp") == \
        "categorization__monuments__eiffelTower_webp.jpg"
    assert not fresh.is_picture("clickgame/resource/sea1.webp") and fresh.is_picture("clickgame/resource/f00.webp")


def test_no_other_file_of_the_repository_names_a_picture_of_the_set() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    others = [p for p in tracked if not p.startswith(OWN) and (ROOT / p).is_file()
              and p.endswith((".py", ".tsv", ".txt", ".md", ".json", ".jsonl", ".csv", ".sh"))]
    files = {r["file"] for r in _rows()}
    for path in others:
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        assert not any(f in text for f in files), path


@needs_package
def test_the_list_and_the_left_out_file_account_for_every_candidate() -> None:
    listed = {r["key"] for r in _rows()}
    left = {line.split("\t")[0] for line in fresh.LEFT_OUT.read_text(encoding="utf-8").splitlines()[1:] if line}
    assert not listed & left and listed | left == set(fresh.pictures())


@needs_package
def test_build_renders_flat_white_pictures_that_eval_retrieval_reads(tmp_path: Path) -> None:
    pytest.importorskip("cairosvg")
    rows = _rows()
    sample = [r for r in rows if r["key"].endswith(".svg")][:3] + [r for r in rows if r["key"].endswith(".webp")][:3]
    fresh.main(["build", "--out", str(tmp_path), "--only", ",".join(r["key"] for r in sample)])
    for row in sample:
        image = Image.open(tmp_path / "images" / row["file"])
        assert image.mode == "RGB" and max(image.size) <= fresh.s13.SIDE
        assert len(set(image.convert("L").tobytes())) > 8  # a picture, not a blank page
    items = load_captions(tmp_path)
    assert [i.reference for i in items] == [r["pt_BR"] for r in sample]
    assert all(len(set(t.candidates)) == 5 for t in make_trials(items, 5, 0))
    assert not list(tmp_path.rglob("*.tmp*"))
