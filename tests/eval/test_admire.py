from pathlib import Path

import pytest

from lhama.errors import DataError
from lhama.eval.admire import check_images, load_sentences, load_subtask_a, load_subtask_b
from tests.eval.helpers import write_admire

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEV = SHARED / "admire_en" / "dev" / "subtask_a_dev.tsv"


@pytest.mark.skipif(not DEV.is_file(), reason="needs ../shared/data")
def test_real_dev_split_loads_with_images():
    items = load_subtask_a(DEV)
    assert len(items) == 15
    assert {i.sentence_type for i in items} == {"idiomatic", "literal"}
    check_images(items)  # every named image exists, including "pig_s ear" for "pig's ear"
    pig = next(i for i in items if i.compound == "pig's ear")
    assert pig.image_dir.name == "pig_s ear"
    assert all(sorted(i.expected) == sorted(i.images) for i in items)


@pytest.mark.skipif(not DEV.is_file(), reason="needs ../shared/data")
def test_real_portuguese_targets_give_sentences_but_no_ranking():
    pt = SHARED / "admire_pt" / "a_pt_dev_targets.tsv"
    items = load_sentences(pt)
    assert len(items) == 10 and items[0].compound == "livro aberto"
    with pytest.raises(DataError, match="missing column 'image1_name'"):
        load_subtask_a(pt, "pt")


def test_portuguese_captions(tmp_path):
    items = load_subtask_a(write_admire(tmp_path, pt=True), "pt")
    assert items[0].captions[0] == "Uma imagem 1 de hot potato."
    with pytest.raises(DataError, match="image1_caption_pt"):
        load_subtask_a(write_admire(tmp_path / "en"), "pt")


def test_malformed_expected_order_names_the_item(tmp_path):
    tsv = write_admire(tmp_path)
    text = tsv.read_text().replace("['hotpotato1.jpg'", "['hotpotato1.jpg'" + "]]", 1)
    tsv.write_text(text)
    with pytest.raises(DataError, match="item 'hot potato': expected_order"):
        load_subtask_a(tsv)


def test_expected_order_with_a_wrong_name(tmp_path):
    tsv = write_admire(tmp_path)
    tsv.write_text(tsv.read_text().replace("['bigfish1.jpg'", "['other.jpg'", 1))
    with pytest.raises(DataError, match="item 'big fish'.*each of its 5 image names"):
        load_subtask_a(tsv)


def test_missing_column(tmp_path):
    tsv = tmp_path / "x.tsv"
    tsv.write_text("compound\tsentence_type\nfoo\tliteral\n")
    with pytest.raises(DataError, match="x.tsv: missing column 'sentence'"):
        load_subtask_a(tsv)


def test_missing_image_names_item_and_file(tmp_path):
    tsv = write_admire(tmp_path)
    (tmp_path / "night owl" / "nightowl3.jpg").unlink()
    with pytest.raises(DataError, match="item 'night owl': image nightowl3.jpg not found"):
        check_images(load_subtask_a(tsv))


def test_bad_sentence_type_and_short_row(tmp_path):
    tsv = write_admire(tmp_path)
    tsv.write_text(tsv.read_text().replace("\tliteral\t", "\tfigurative\t", 1))
    with pytest.raises(DataError, match="'big fish': sentence_type 'figurative'"):
        load_subtask_a(tsv)
    tsv.write_text(tsv.read_text() + "only\ttwo\n")
    with pytest.raises(DataError, match="line 5: expected 15 tab-separated fields"):
        load_subtask_a(tsv)


def test_subtask_b(tmp_path):
    header = ["compound", "subset", "sentence_type", "sequence_caption1", "sequence_caption2",
              *[f"image{n}_{k}" for n in range(1, 5) for k in ("name", "caption")], "expected_item"]
    row = ["bad apple", "Train", "idiomatic", "A boy steals.", "Police arrive.",
           *[v for n in range(1, 5) for v in (f"{n}.png", f"caption {n}")], "3.png"]
    tsv = tmp_path / "subtask_b_train.tsv"
    tsv.write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    (item,) = load_subtask_b(tsv)
    assert item.sequence == ("A boy steals.", "Police arrive.")
    assert item.images == ("1.png", "2.png", "3.png", "4.png") and item.expected == "3.png"
    tsv.write_text(tsv.read_text().replace("\t3.png\n", "\t9.png\n"))
    with pytest.raises(DataError, match="expected_item '9.png' is not one of its images"):
        load_subtask_b(tsv)
