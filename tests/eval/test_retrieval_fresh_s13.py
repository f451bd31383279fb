"""The fresh retrieval set of #26 session 13 (benchmarks/retrieval_fresh_s13.py): the committed list
names GCompris pictures with hand-written pt_BR captions, none named by any other file of the
repository; the Qt resource reader and the builder give eval retrieval's layout. Tests that need
Debian's gcompris-qt-data (or cairosvg, for its SVGs) skip where it is absent."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image

from lhama.eval.caption import load_captions
from lhama.eval.retrieval import make_trials

ROOT = Path(__file__).parents[2]
_SPEC = importlib.util.spec_from_file_location("retrieval_fresh_s13", ROOT / "benchmarks" / "retrieval_fresh_s13.py")
fresh = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fresh)

needs_package = pytest.mark.skipif(not fresh.RCC.is_dir(), reason="gcompris-qt-data is not installed")
OWN = ("benchmarks/retrieval_fresh_s13.py", "benchmarks/data/retrieval_fresh_s13", "tests/eval/test_retrieval_fresh_s13.py",
       "docs/results/retrieval_s13_", "docs/default-model.md",
       "benchmarks/retrieval_fresh_s14.py", "benchmarks/data/retrieval_fresh_s14", "tests/eval/test_retrieval_fresh_s14.py",
       "docs/results/retrieval_s14_",  # session 14 reads this set as dev and checks its new set against it
       "docs/results/naming_s15_overlap.tsv")  # session 15's naming overlap check: GCompris pictures as references


def test_the_list_is_a_five_way_set_of_distinct_hand_captioned_pictures() -> None:
    rows = fresh.read_list()
    assert len(rows) >= 150
    assert len({r["file"] for r in rows}) == len({r["key"] for r in rows}) == len(rows)
    assert all(r["file"] == fresh.flat_name(r["key"]) and fresh.is_picture(r["key"]) for r in rows)
    assert all(r["pt_BR"][0].isupper() and r["pt_BR"].endswith(".") for r in rows)
    assert len({r["pt_BR"] for r in rows}) >= 0.95 * len(rows)  # captions tell the pictures apart
    assert [r["key"] for r in rows] == sorted(r["key"] for r in rows)


def test_no_other_file_of_the_repository_names_a_gcompris_picture() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    others = [p for p in tracked if not p.startswith(OWN) and (ROOT / p).is_file()
              and p.endswith((".py", ".tsv", ".txt", ".md", ".json", ".jsonl", ".csv", ".sh"))]
    files = {r["file"] for r in fresh.read_list()}
    for path in others:
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        if path.endswith((".tsv", ".txt", ".json", ".jsonl", ".csv")):  # lists and training files
            assert "gcompris" not in text.lower(), path
        assert not any(f in text for f in files), path


def _qres(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A format-1 Qt resource file holding ``files`` (name -> (bytes, compressed)) in folder ``a``."""
    names, data, offsets = b"", b"", {}
    for name in ["a", *files]:
        offsets[name] = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    tree = struct.pack(">IHII", 0, 2, 1, 1) + struct.pack(">IHII", offsets["a"], 2, len(files), 2)
    for name, (raw, compressed) in files.items():
        stored = struct.pack(">I", len(raw)) + zlib.compress(raw) if compressed else raw
        tree += struct.pack(">IHHHI", offsets[name], 1 if compressed else 0, 0, 0, len(data))
        data += struct.pack(">I", len(stored)) + stored
    header = 20
    return b"qres" + struct.pack(">IIII", 1, header, header + len(tree), header + len(tree) + len(data)) + tree + data + names


def test_the_resource_reader_gives_each_file_its_path_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.rcc"
    path.write_bytes(_qres({"plain.txt": (b"ol\xc3\xa1", False), "packed.svg": (b"<svg/>" * 50, True)}))
    assert dict(fresh.read_rcc(path)) == {"a/plain.txt": b"ol\xc3\xa1", "a/packed.svg": b"<svg/>" * 50}
    (tmp_path / "bad.rcc").write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="bad.rcc is not a Qt resource file"):
        list(fresh.read_rcc(tmp_path / "bad.rcc"))


@needs_package
def test_the_list_and_the_left_out_file_account_for_every_candidate() -> None:
    listed = {r["key"] for r in fresh.read_list()}
    left = {line.split("\t")[0] for line in fresh.LEFT_OUT.read_text(encoding="utf-8").splitlines()[1:] if line}
    assert not listed & left and listed | left == set(fresh.pictures())


@needs_package
def test_build_renders_flat_white_pictures_that_eval_retrieval_reads(tmp_path: Path) -> None:
    pytest.importorskip("cairosvg")
    rows = fresh.read_list()
    sample = [r for r in rows if r["key"].endswith(".svg")][:3] + [r for r in rows if r["key"].endswith(".webp")][:3]
    assert fresh.build(tmp_path, rows=sample) == 6
    for row in sample:
        image = Image.open(tmp_path / "images" / row["file"])
        assert image.mode == "RGB" and max(image.size) <= fresh.SIDE
        if row["key"].endswith(".svg"):
            assert max(image.size) >= fresh.SIDE - 1 and image.getpixel((0, 0)) >= (245, 245, 245)
        assert len(set(image.convert("L").tobytes())) > 8  # a picture, not a blank page
    items = load_captions(tmp_path)
    assert [i.reference for i in items] == [r["pt_BR"] for r in sample]
    trials = make_trials(items, 5, 0)
    assert all(t.candidates[t.answer] == t.item.reference and len(set(t.candidates)) == 5 for t in trials)
    assert not list(tmp_path.rglob("*.tmp*"))
