"""Session 14 of #26 (benchmarks/retrieval_s14_colour.py): the colour words added to a labeler note name
the colours of a picture's pixels, leave a drawing's white page out, and go inside the note's brackets."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).parents[2]
_SPEC = importlib.util.spec_from_file_location("retrieval_s14_colour", ROOT / "benchmarks" / "retrieval_s14_colour.py")
colour = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(colour)


@pytest.mark.parametrize(("rgb", "name"), [((220, 30, 30), "vermelho"), ((240, 140, 20), "laranja"),
                                           ((240, 220, 30), "amarelo"), ((40, 170, 60), "verde"),
                                           ((30, 80, 220), "azul"), ((120, 40, 170), "roxo"),
                                           ((240, 150, 170), "rosa"), ((120, 70, 30), "marrom"),
                                           ((10, 10, 10), "preto"), ((250, 250, 250), "branco"),
                                           ((128, 128, 128), "cinza")])
def test_each_pixel_colour_has_its_portuguese_name(rgb, name):
    assert colour.pixel_colour(*rgb) == name


def test_a_drawing_on_a_white_page_is_named_by_its_ink_not_the_page():
    page = Image.new("RGB", (200, 200), (255, 255, 255))
    ImageDraw.Draw(page).ellipse((60, 60, 140, 140), fill=(30, 160, 50))  # a green disc on 16% of the page
    assert colour.colours(page) == ["verde"]


def test_a_photo_counts_every_pixel_and_names_at_most_two_colours_most_covered_first():
    photo = Image.new("RGB", (100, 100), (30, 80, 220))  # blue sky (no white page at the border)
    ImageDraw.Draw(photo).rectangle((0, 60, 99, 99), fill=(220, 30, 30))  # 40% red
    ImageDraw.Draw(photo).rectangle((0, 0, 9, 9), fill=(240, 220, 30))  # 1% yellow: not named
    assert colour.colours(photo) == ["azul", "vermelho"]


def test_the_colours_go_inside_the_notes_brackets():
    assert colour.with_colours("[Imagem anexada: parece ser balde.]", ["verde"]) == \
        "[Imagem anexada: parece ser balde. Cor: verde.]"
    assert colour.with_colours("[Imagem anexada: não reconhecida.]", ["azul", "cinza"]) == \
        "[Imagem anexada: não reconhecida. Cores: azul e cinza.]"


def test_the_table_forms_pmi_with_the_reads_priors_and_refuses_other_candidates(tmp_path):
    data = tmp_path / "set"
    (data / "images").mkdir(parents=True)
    (data / "captions.tsv").write_text("file\tpt_BR\na.jpg\tUm sapo.\nb.jpg\tUma flor.\n", encoding="utf-8")
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (8, 8)).save(data / "images" / name)
    cands = ["Um sapo.", "Uma flor."]
    scores = [{"item": "a.jpg", "candidates": cands, "scores": [-5.0, -4.0]},
              {"item": "b.jpg", "candidates": cands, "scores": [-5.0, -4.0]}]
    priors = [{"item": "a.jpg", "candidates": cands, "prior": [-9.0, -4.5]},  # PMI: 4.0 vs 0.5 -> the frog, right
              {"item": "b.jpg", "candidates": cands, "prior": [-5.5, -8.0]}]  # PMI: 0.5 vs 4.0 -> the flower, right
    for name, rows in (("s.jsonl", scores), ("p.jsonl", priors)):
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in [{"meta": {}}, *rows]) + "\n", encoding="utf-8")
    (tmp_path / "j.tsv").write_text("a.jpg\tR\nb.jpg\tN\n", encoding="utf-8")
    args = colour.argparse.Namespace(data=data, scores=tmp_path / "s.jsonl", priors=tmp_path / "p.jsonl",
                                     judged=tmp_path / "j.tsv")
    assert colour.table(args) == {"right": 2, "n": 2, "top1": 1.0, "by_note": {"R": [1, 1], "N": [1, 1]}}
    priors[1]["candidates"] = cands[::-1]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in priors) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="other candidates"):
        colour.table(args)
