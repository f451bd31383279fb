"""A cascade model directory (lhama-default v2): the LM's files + ``labeler/`` + decoding
defaults, assembled from tiny prepared parts, loaded (plain and int8) with its labeler."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from lhama.errors import CheckpointError
from lhama.errors import ConfigError
from lhama.inference.quant_cache import load_for_inference
from lhama.model.build import load_model
from lhama.model.glyph import SHIPPED as GLYPH_READER
from lhama.model.glyph import copy_reader
from lhama.model.labeler import LabelerConfig
from lhama.model.names_head import NamedPicture, NamesHead
from lhama.model.towers.efficientnet_lite import EfficientNetLiteTower, save_tower
from lhama.model.generation import GenerationConfig
from lhama.weights.cascade import (
    NAMES_HEAD, SHIPPED_SETTINGS, V2_GENERATION, V2_LABELER, V2_SYSTEM_PROMPT, CascadeInputs, CascadeSettings,
    convert_cascade, settings_current,
)
from lhama.weights.convert import PREPARE_STEPS
from lhama.weights.manifest import MANIFEST, check_current, check_prepared
from lhama.weights.registry import registry_entry
from tests.conftest import tiny_loaded
from tests.model.towers.test_efficientnet_lite import TINY

TINY_1000 = dataclasses.replace(TINY, num_classes=1000)  # the shipped pt-BR table has 1000 names
# The tiny cascades' settings: the shipped decoding defaults and the kinds note over the squashed
# view without a names head (lhama-default's holds 1280-wide features; TINY's head is 16 wide).
TINY_SETTINGS = CascadeSettings(V2_GENERATION, LabelerConfig(style="kinds", kind_confident=0.3))


def tiny_parts(root: Path, head_width: int = TINY.head_width) -> tuple[Path, Path]:
    """Prepared-looking (LM, tower) directories: a tiny Llama with its own manifest and decoding
    file (both must be replaced), and a tiny EfficientNet-Lite with a 1000-class head
    (``head_width`` 1280 takes the names head lhama-default ships)."""
    lm_dir, tower_dir = root / "lm", root / "tower"
    loaded = tiny_loaded(image=None)
    loaded.model.language_model.save_pretrained(lm_dir)
    loaded.tokenizer.save_pretrained(lm_dir)
    (lm_dir / MANIFEST).write_text(json.dumps({"verify": {"max_abs_logit_diff": 0.0}, "files": {}}))
    (lm_dir / "lhama_generation.json").write_text(json.dumps({"system_prompt": "old"}))
    tower_dir.mkdir()
    torch.manual_seed(0)
    save_tower(EfficientNetLiteTower(dataclasses.replace(TINY_1000, head_width=head_width)).eval(), tower_dir)
    return lm_dir, tower_dir


def tiny_cascade(root: Path, settings: CascadeSettings = TINY_SETTINGS) -> Path:
    """``convert_cascade`` of the tiny parts with ``settings``; returns the model directory. The
    shipped settings (the names head) take a tower with lhama-default's 1280-wide features."""
    work = root / "work"
    work.mkdir(parents=True)
    parts = tiny_parts(root, 1280 if settings.names_head else TINY.head_width)
    return convert_cascade(registry_entry("lhama-default"), "0.0", work, lambda step: None, CascadeInputs(*parts, settings))


def test_convert_links_the_lm_and_adds_the_labeler(tmp_path: Path) -> None:
    steps: list[str] = []
    (tmp_path / "work").mkdir()
    lm_dir, tower_dir = tiny_parts(tmp_path)
    out = convert_cascade(registry_entry("lhama-default"), "0.0", tmp_path / "work", steps.append,
                          CascadeInputs(lm_dir, tower_dir, TINY_SETTINGS))
    assert steps == list(PREPARE_STEPS[:4])
    assert (out / "model.safetensors").stat().st_ino == (lm_dir / "model.safetensors").stat().st_ino  # linked, not copied
    assert {p.name for p in (out / "labeler").iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json",
                                                             "class_names.tsv", "class_kinds.tsv", "lhama_labeler.json"}
    manifest = check_prepared(out)
    assert settings_current(manifest["source"], TINY_SETTINGS) and not settings_current(manifest["source"])
    with pytest.raises(CheckpointError, match="built with other settings than this lhama ships"):
        check_current(registry_entry("lhama-default"), out)  # the tiny settings are not what lhama-default ships
    assert manifest["source"]["parts"] == ["qwen2.5-coder-1.5b-instruct", "efficientnet-lite2"]
    assert manifest["verify"]["labeler_max_abs_prob_diff"] == 0.0 and manifest["verify"]["lm"] == {"max_abs_logit_diff": 0.0}
    loaded = load_model(out)
    assert "image" not in loaded.config.branches and loaded.labeler is not None  # the LM sees text; the labeler names images
    assert loaded.labeler.config == TINY_SETTINGS.labeler and loaded.labeler.kinds is not None
    assert loaded.labeler.names_head is None and not (out / "labeler" / "names_head.tsv").exists()
    assert loaded.generation.system_prompt == V2_SYSTEM_PROMPT and loaded.generation.repetition_penalty == 1.0
    assert loaded.generation.no_repeat_ngram == 6 and "tucano" not in V2_SYSTEM_PROMPT  # session 4 of #26
    assert loaded.labeler.notes(torch.zeros(1, 3, 37, 37))[0].startswith("[Imagem anexada")


def test_other_shipped_settings_make_a_copy_out_of_date(tmp_path: Path) -> None:
    out = tiny_cascade(tmp_path, SHIPPED_SETTINGS)
    assert check_current(registry_entry("lhama-default"), out)["source"]["labeler"]["names_confident"] == 0.6
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["source"]["labeler"]["confident"] = 0.99  # what an older lhama wrote
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="built with other settings than this lhama ships"):
        check_current(registry_entry("lhama-default"), out)


def test_a_settings_field_added_with_a_default_keeps_a_copy_current(tmp_path: Path) -> None:
    out = tiny_cascade(tmp_path, SHIPPED_SETTINGS)
    entry = registry_entry("lhama-default")
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["source"]["generation"]["plausibility"]  # as written before these fields existed
    del manifest["source"]["labeler"]["max_image_side"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert check_current(entry, out)["source"]["parts"] == ["qwen2.5-coder-1.5b-instruct", "efficientnet-lite2"]
    # GenerationConfig grows a field with a default: the copy prepared before it stays current
    Grown = dataclasses.make_dataclass("Grown", [("knob", int, dataclasses.field(default=0))],
                                       bases=(GenerationConfig,), frozen=True)
    recorded = manifest["source"]
    assert settings_current(recorded, dataclasses.replace(SHIPPED_SETTINGS, generation=Grown(**dataclasses.asdict(V2_GENERATION))))
    assert not settings_current(recorded, dataclasses.replace(SHIPPED_SETTINGS,
                                                              generation=Grown(**dataclasses.asdict(V2_GENERATION), knob=1)))


@pytest.mark.parametrize("key", ["no_repeat_ngram", "system_prompt"])
def test_a_record_without_a_shipped_non_default_setting_is_out_of_date(tmp_path: Path, key: str) -> None:
    out = tiny_cascade(tmp_path, SHIPPED_SETTINGS)
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["source"]["generation"][key]  # the copy loads the default, not what this lhama ships
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="built with other settings than this lhama ships"):
        check_current(registry_entry("lhama-default"), out)


def test_int8_load_keeps_labeler_and_decoding_defaults(tmp_path: Path) -> None:
    out = tiny_cascade(tmp_path)
    first = load_for_inference(out, "int8")  # quantises and caches
    again = load_for_inference(out, "int8")  # from the cache: a meta skeleton filled from disk
    assert (out / "quant-int8").is_dir()
    for loaded in (first, again):
        assert loaded.labeler is not None and loaded.generation.system_prompt == V2_SYSTEM_PROMPT
    pixels = torch.rand(1, 3, 37, 37)
    assert first.labeler.notes(pixels) == again.labeler.notes(pixels)


def test_the_shipped_labeler_crops_the_drawing_and_has_the_clipart_names_head(tmp_path: Path, monkeypatch) -> None:
    from lhama.weights import prepare

    assert SHIPPED_SETTINGS == CascadeSettings(V2_GENERATION, V2_LABELER, NAMES_HEAD, GLYPH_READER)
    assert V2_LABELER.views == ("squash", "fit", "fit_flip") and (V2_LABELER.names_confident, V2_LABELER.names_yield) == (0.6, 0.5)
    head = NamesHead.load(NAMES_HEAD)  # #26 s7: Tux Paint stamps + the openclipart pool, 3 views; s12: + 666 read
    assert head.width == 1280 and len(head.entries) == 751 + 666 + 857 and all(e.name for e in head.entries)  # s15: + emoji
    assert sum(e.key.startswith("openclipart:") for e in head.entries) == 442 + 479
    # `lhama models prepare lhama-default` with its parts already prepared (tiny, a 1280-wide tower)
    parts, prepare_default = dict(zip(registry_entry("lhama-default").parts, tiny_parts(tmp_path, 1280))), prepare.prepare
    monkeypatch.setattr(prepare, "prepare", lambda part, home=None: parts[part])
    out = prepare_default("lhama-default", home=tmp_path / "home")
    labeler = load_model(out).labeler
    assert labeler.config == V2_LABELER and [e.name for e in labeler.names_head.entries] == [e.name for e in head.entries]
    recorded = check_current(registry_entry("lhama-default"), out)["source"]
    other = tmp_path / "other_head"
    other.mkdir()
    NamesHead(torch.eye(1280)[:3] * 5, tuple(NamedPicture(f"uma coisa {i}", "", f"k{i}") for i in range(3))).save(other)
    assert settings_current(recorded) and not settings_current(recorded, dataclasses.replace(SHIPPED_SETTINGS, names_head=other))
    # #26 s11: the glyph reader is copied and named in the manifest; a letter's note is its name
    assert V2_LABELER.glyph_confident == 0.8 and labeler.glyphs is not None
    assert recorded["glyph_reader_sha256"] and (out / "labeler" / "glyphs.safetensors").is_file()
    letter = Image.new("RGB", (120, 160), (255, 255, 255))
    ImageDraw.Draw(letter).rectangle((20, 20, 45, 140), fill=(0, 0, 0))
    ImageDraw.Draw(letter).rectangle((20, 115, 100, 140), fill=(0, 0, 0))  # a block letter L
    assert labeler.note(letter) == "[Imagem anexada: a letra L.]"
    reader = tmp_path / "other_reader"
    copy_reader(GLYPH_READER, reader)
    (reader / "glyphs.tsv").write_text((reader / "glyphs.tsv").read_text().replace("a letra L", "a letra ele"))
    assert not settings_current(recorded, dataclasses.replace(SHIPPED_SETTINGS, glyph_reader=reader))


def test_cascade_settings_with_a_names_threshold_need_a_head() -> None:
    with pytest.raises(ConfigError, match="need a names_head folder"):
        CascadeSettings(V2_GENERATION, V2_LABELER)
    with pytest.raises(ConfigError, match="need a glyph_reader folder"):
        CascadeSettings(V2_GENERATION, V2_LABELER, NAMES_HEAD)
