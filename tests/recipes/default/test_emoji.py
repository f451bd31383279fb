import json

import pytest
from PIL import Image

from lhama.recipes.default.emoji import emoji_answer, emoji_rows, portuguese_names
from lhama.recipes.default.mixture import CATEGORY_PROMPT, build_mix
from lhama.errors import DataError
from lhama.files import read_jsonl

from tests.recipes.default.test_mixture import _fake_translate, _sources

# (unified, category, subcategory, has an image): the layout of emoji-datasource's emoji.json
ENTRIES = [("1F989", "Animals & Nature", "animal-bird", True),     # owl: kept, "Animais"
           ("1F34E", "Food & Drink", "food-fruit", True),          # red apple: kept, "Comida"
           ("2764-FE0F", "Objects", "other-object", True),         # named without FE0F in CLDR; no category
           ("1F600", "Smileys & Emotion", "face-smiling", True),  # a face: left out
           ("1F1E7-1F1F7", "Flags", "country-flag", True),         # a flag: left out
           ("1F98A", "Animals & Nature", "animal-mammal", False),  # no image in this style: left out
           ("1F9A9", "Animals & Nature", "animal-bird", True)]     # no Portuguese name: left out
NAMES = {"🦉": "coruja", "🍎": "maçã vermelha", "❤": "coração vermelho", "😀": "rosto risonho",
         "🇧🇷": "bandeira: Brasil", "🦊": "rosto de raposa"}


def _emoji_package(root, style="google"):
    images = root / "img" / style / "64"
    images.mkdir(parents=True)
    entries = []
    for unified, category, subcategory, has_image in ENTRIES:
        entries.append({"unified": unified, "image": f"{unified.lower()}.png", "category": category,
                        "subcategory": subcategory, f"has_img_{style}": has_image})
        if has_image:
            Image.new("RGBA", (64, 64), (200, 30, 30, 255)).save(images / f"{unified.lower()}.png")
    (root / "emoji.json").write_text(json.dumps(entries))
    return root


def _cldr(root):
    table = {char: {"default": [name], "tts": [name]} for char, name in NAMES.items()}
    (root / "annotations" / "pt").mkdir(parents=True)
    (root / "annotations" / "pt" / "annotations.json").write_text(
        json.dumps({"annotations": {"identity": {"language": "pt"}, "annotations": table}}, ensure_ascii=False))
    return root


def test_emoji_rows_keep_named_things_and_map_categories(tmp_path):
    rows, left_out = emoji_rows(_emoji_package(tmp_path / "google"), _cldr(tmp_path / "cldr"))
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"coruja", "maçã vermelha", "coração vermelho"}
    assert left_out == 2  # the fox (no image) and the flamingo (no name); faces and flags are not counted
    assert by_name["coruja"]["category"] == "Animais" and by_name["maçã vermelha"]["category"] == "Comida"
    assert by_name["coração vermelho"]["category"] is None
    assert by_name["coruja"]["image"].endswith("img/google/64/1f989.png") and by_name["coruja"]["id"] == "emoji-google-1f989"


def test_emoji_answer_is_a_capitalised_sentence():
    assert emoji_answer("maçã vermelha") == "Maçã vermelha."


def test_missing_or_wrong_emoji_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="annotations not found"):
        portuguese_names(tmp_path)
    with pytest.raises(DataError, match="not an unpacked emoji-datasource"):
        emoji_rows(tmp_path, _cldr(tmp_path / "cldr"))


def test_mix_puts_one_emoji_style_in_each_stage_and_leaves_the_rest_unchanged(tmp_path):
    cfg = _sources(tmp_path)
    plain = build_mix(cfg, tmp_path / "plain", _fake_translate)
    google, twitter = _emoji_package(tmp_path / "google"), _emoji_package(tmp_path / "twitter", style="twitter")
    with_emoji = cfg.__class__(**{**cfg.__dict__, "emoji_stage1": str(google), "emoji_stage2": str(twitter),
                                  "cldr_annotations": str(_cldr(tmp_path / "cldr"))})
    summary = build_mix(with_emoji, tmp_path / "mix", _fake_translate)
    assert summary.by_source["stage1"]["emoji"] == 3 and summary.by_source["stage2"]["emoji"] == 3
    assert summary.emoji_unusable == {"stage1": 2, "stage2": 2} and not plain.emoji_unusable
    assert "stage1 emoji left out (no Portuguese name or no image in that style): 2" in summary.lines()
    stage1, stage2 = read_jsonl(tmp_path / "mix" / "stage1.jsonl"), read_jsonl(tmp_path / "mix" / "stage2.jsonl")
    assert all("/img/google/" in r["image"] for r in stage1 if r["source"] == "emoji")
    assert all("/img/twitter/" in r["image"] for r in stage2 if r["source"] == "emoji")
    owl = next(r for r in stage1 if r["id"] == "emoji-google-1f989")
    assert [t["value"] for t in owl["conversations"][1:]] == ["Coruja.", CATEGORY_PROMPT, "Animais."]
    # emoji draw from their own random stream: every other record is what the plain mix wrote
    before = {r["id"]: r for r in read_jsonl(tmp_path / "plain" / "stage2.jsonl")}
    after = {r["id"]: r for r in stage2 if r["source"] != "emoji"}
    assert len(before) == plain.stage2 and {k: dict(v, image=None) for k, v in after.items()} == {
        k: dict(v, image=None) for k, v in before.items()}


def test_emoji_without_their_names_is_an_error_before_any_translation_or_output(tmp_path):
    cfg = _sources(tmp_path)
    broken = cfg.__class__(**{**cfg.__dict__, "emoji_stage1": str(_emoji_package(tmp_path / "google"))})
    translated = []
    with pytest.raises(DataError, match="cldr-annotations-full"):
        build_mix(broken, tmp_path / "mix", lambda records: translated.append(records) or records)
    assert not translated and not (tmp_path / "mix").exists()
