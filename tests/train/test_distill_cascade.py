"""Distilling a cascade model (lhama-default's form: a text LM plus a labeler, no image branch):
images become the labeler's note in the user turn, the student learns the teacher's answers to
it, and the distilled student keeps the labeler and the teacher's decoding settings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from lhama.data.dataset import DatasetConfig, load_samples
from lhama.data.media import image_to_tensor, load_image
from lhama.model import build
from lhama.model.generation import GenerationConfig, read_generation, write_generation
from lhama.model.labeler import LabelerConfig, load_labeler, save_labeler
from lhama.model.towers.efficientnet_lite import EfficientNetLiteTower, save_tower
from lhama.model.towers.imagenet_names import TABLE
from lhama.train.distill import distill
from lhama.train.told_images import tell_images, told_images
from tests.conftest import tiny_tokenizer
from tests.model.test_labeler import TINY_1000
from tests.train.students import save_decoder, tiny_decoder
from tests.train.test_distill import config

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (120, 40, 160)]


def _cascade_teacher(root: Path) -> Path:
    teacher = tiny_decoder("qwen2", layers=2, seed=1)
    with torch.no_grad():
        teacher.lm_head.weight.mul_(30)
    directory = save_decoder(teacher, root / "teacher", tiny_tokenizer())
    tower = root / "tower"
    tower.mkdir()
    torch.manual_seed(0)
    save_tower(EfficientNetLiteTower(TINY_1000).eval(), tower)
    save_labeler(tower, TABLE, LabelerConfig(style="top1"), directory)
    write_generation(GenerationConfig(system_prompt="Diga o que a imagem mostra."), directory)
    return directory


def _image_chats(root: Path, name: str, colours: list[tuple[int, int, int]]) -> Path:
    lines = []
    for i, colour in enumerate(colours):
        Image.new("RGB", (40, 40), colour).save(root / f"{name}-{i}.png")
        turns = [{"from": "human", "value": "<image>\nO que é isto?"}, {"from": "gpt", "value": "Um gato dorme no sofá."}]
        lines.append(json.dumps({"id": f"{name}{i}", "image": f"{name}-{i}.png", "conversations": turns}, ensure_ascii=False))
    (root / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / f"{name}.jsonl"


def test_images_become_the_labelers_note(tmp_path: Path) -> None:
    teacher = _cascade_teacher(tmp_path)
    samples = load_samples(DatasetConfig(path=str(_image_chats(tmp_path, "x", COLOURS[:2])))).samples
    labeler = load_labeler(teacher)
    told = told_images(samples, labeler)
    for before, after in zip(samples, told):
        note = labeler.notes(image_to_tensor(load_image(before.image), labeler.image_spec)[None])[0]
        assert note.startswith("[Imagem anexada: ") and after.image is None
        assert after.messages[0]["content"] == f"{note}\nO que é isto?"
        assert after.messages[1] == before.messages[1]  # the answer is untouched


def test_tell_images_loads_the_labeler_only_for_sets_with_an_image(tmp_path: Path) -> None:
    teacher = _cascade_teacher(tmp_path)
    pictured = load_samples(DatasetConfig(path=str(_image_chats(tmp_path, "x", COLOURS[:2])))).samples
    text = [replace(sample, image=None) for sample in pictured]
    said: list[str] = []
    train, held = tell_images(teacher, (pictured, text), said.append)
    assert said == [f"images told as the notes of {teacher / 'labeler'}"] and held == text
    assert all(s.image is None and s.messages[0]["content"].startswith("[Imagem anexada: ") for s in train)
    (teacher / "labeler" / "lhama_labeler.json").unlink()  # a broken labeler: not loaded when no image needs it
    assert tell_images(teacher, (text, []), said.append) == [text, []] and len(said) == 1


def test_a_cascade_student_learns_and_keeps_the_labeler(tmp_path: Path) -> None:
    _cascade_teacher(tmp_path)
    save_decoder(tiny_decoder("qwen2", layers=2, seed=2), tmp_path / "student", tiny_tokenizer())
    train, held = _image_chats(tmp_path, "train", COLOURS * 2), _image_chats(tmp_path, "held", COLOURS[:2])
    result = distill(config(tmp_path, tmp_path / "run", data=str(train), eval_data=str(held)), echo=lambda _: None)
    assert result.eval_after["eval_kl"] < 0.8 * result.eval_before["eval_kl"]
    saved = build.load_model(tmp_path / "run" / "model")
    assert saved.labeler is not None and not saved.config.branches  # a cascade model, like its teacher
    assert saved.generation.system_prompt == read_generation(tmp_path / "teacher").system_prompt
