"""A video's frames for a cascade model (lhama-default): each frame is named as the labeler's note
would name it as an image (its views, its names head; an unsure frame is left out), not by the
tower's plain top class; a model without a labeler keeps its tower's class head."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from lhama.data.media import image_to_tensor
from lhama.data.video import sample_frames
from lhama.model.labeler import Labeler, LabelerConfig, describe, named_thing
from lhama.model.names_head import NamedPicture, NamesHead
from lhama.model.towers.imagenet_names import class_names
from lhama.recipes.default.clips import write_video
from lhama.serve.cascade import frame_namer, frames_note
from lhama.serve.session import ChatSession
from tests.conftest import tiny_loaded
from tests.model.views_labeler import NAMES, HalvesTower, lopsided_picture


class ClassifyingHalves(HalvesTower):
    """:class:`HalvesTower` with the class head interface the old frame naming used
    (``classify``), its logits scaled by ``steep`` (0: every class equally likely)."""

    def __init__(self, steep: float = 1.0) -> None:
        super().__init__()
        with torch.no_grad():
            self.head.weight.mul_(steep)

    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        return self(pixels).logits.softmax(-1)


def _labeled(labeler: Labeler):
    loaded = tiny_loaded(image=None)
    loaded.labeler = labeler
    return loaded


@pytest.fixture(scope="module")
def lopsided_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-s clip of one picture, dark on the left and bright on the right."""
    return write_video(tmp_path_factory.mktemp("video") / "lado.mp4", [lopsided_picture((64, 48))] * 16)


def test_frames_are_named_through_the_labelers_views_like_an_image(lopsided_mp4: Path) -> None:
    labeler = Labeler(ClassifyingHalves().eval(), NAMES, LabelerConfig(style="top1", views=("squash_flip",)))
    frame = sample_frames(lopsided_mp4).frames[0]
    plain = NAMES[int(labeler.classify(image_to_tensor(frame, labeler.image_spec)[None]).argmax())]  # the old path
    unflipped = Labeler(labeler.tower, NAMES, LabelerConfig(style="top1")).note(frame)
    mirrored = labeler.note(frame)  # the image path: the labeler's view (mirrored) decides
    assert unflipped == f"[Imagem anexada: {plain}.]" and mirrored != unflipped
    name = mirrored.removeprefix("[Imagem anexada: ").removesuffix(".]")
    assert frames_note(lopsided_mp4, _labeled(labeler)) == f"Quadros do vídeo: {name} (8 quadros)"


def test_frames_the_labeler_is_unsure_of_are_left_out(lopsided_mp4: Path) -> None:
    unsure = Labeler(ClassifyingHalves(steep=0.0).eval(), NAMES, LabelerConfig(style="hedged", min_prob=0.5))
    assert unsure.note(lopsided_picture()) == "[Imagem anexada: não reconhecida.]"  # 1/7 each
    assert frames_note(lopsided_mp4, _labeled(unsure)) == "Quadros do vídeo: (nada reconhecido)"
    session = ChatSession(_labeled(unsure))
    session.attach("video", lopsided_mp4)  # `lhama chat --video`'s path
    assert session.pending_notes == ["Quadros do vídeo: (nada reconhecido)"]


def test_a_confident_names_head_names_the_frames(lopsided_mp4: Path) -> None:
    grave, coin = NamedPicture("uma lápide", "", "g"), NamedPicture("uma moeda", "uma moeda", "c")
    pooled = HalvesTower()(torch.zeros(1, 3, 8, 8)).pooler_output[0]  # 6 wide
    left_dark = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])  # the clip's pooled features lean this way
    head = NamesHead(torch.stack([left_dark, -left_dark]) + pooled, (grave, coin))
    config = LabelerConfig(style="hedged", names_confident=0.7, names_yield=0.5)
    labeler = Labeler(ClassifyingHalves(steep=0.0).eval(), NAMES, config, names_head=head)
    assert labeler.note(sample_frames(lopsided_mp4).frames[0]) == "[Imagem anexada: parece ser uma lápide.]"
    assert frames_note(lopsided_mp4, _labeled(labeler)) == "Quadros do vídeo: uma lápide (8 quadros)"


def test_each_frame_is_named_on_its_own_in_time_order(tmp_path: Path) -> None:
    picture = lopsided_picture((64, 48))
    clip = write_video(tmp_path / "vira.mp4", [picture] * 8 + [picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)] * 8)
    labeler = Labeler(ClassifyingHalves().eval(), NAMES, LabelerConfig(style="top1"))
    first, second = (labeler.note(image).removeprefix("[Imagem anexada: ").removesuffix(".]")
                     for image in (picture, picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    assert first != second
    assert frames_note(clip, _labeled(labeler)) == f"Quadros do vídeo: {first} (4 quadros), {second} (4 quadros)"
    assert labeler.things([]) == []


@pytest.mark.parametrize("p", [(0.6, 0.3, 0.05, 0.05), (0.3, 0.25, 0.25, 0.2), (0.05, 0.05, 0.6, 0.3),
                               (0.31, 0.05, 0.28, 0.36), (0.3, 0.05, 0.05, 0.6), (0.07, 0.06, 0.05, 0.04)])
def test_the_frame_name_is_the_thing_the_image_note_names(p: tuple[float, ...]) -> None:
    from tests.model.test_labeler import INDEX

    names = ("galo", "galinha", "pato", "ganso")
    probs = torch.tensor(p)
    config = LabelerConfig(style="kinds", confident=0.5, min_prob=0.1, kind_confident=0.5, names_confident=0.8)
    for named in (None, (NamedPicture("uma lápide", "", "g"), 0.9), (NamedPicture("uma lápide", "", "g"), 0.5)):
        for style in ("kinds", "hedged", "top1"):
            settings = dataclasses.replace(config, style=style)
            note, thing = describe(probs, names, settings, INDEX, named), named_thing(probs, names, settings, INDEX, named)
            said = note.removeprefix("[Imagem anexada: ").removeprefix("parece ser ").removesuffix("]")
            assert (thing is None) == (said == "não reconhecida.")
            assert thing is None or said.startswith(thing), (note, thing)


def test_a_model_without_a_labeler_keeps_its_towers_class_head(lopsided_mp4: Path) -> None:
    loaded = tiny_loaded()
    assert frame_namer(loaded) is None  # a CLIP tower: no class head

    class Thousand(nn.Module):
        def classify(self, pixels: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(torch.full((len(pixels),), 7), 1000).float()

    loaded.model.vision_tower = Thousand()
    assert frames_note(lopsided_mp4, loaded) == f"Quadros do vídeo: {class_names()[7]} (8 quadros)"
