"""Distillation data for a cascade model: images told as text.

``lhama-default`` (v2) is a text LM plus a labeler (an image classifier whose pt-BR class names
are told to the LM, :mod:`lhama.model.labeler`); it has no image branch and no projector. To
distil it into a smaller LM that keeps its labeler, each image of the data becomes the labeler's
note at the start of its user turn, as chat and the API tell it (the note, a newline, the text;
``<image>`` removed). Teacher and student then read the same text, and the student learns what
the teacher answers to that note. A model with an image branch of its own (LLaVA layout) does not
come here: its projector trains with the decoder (train/distill.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from lhama.data.dataset import Sample
from lhama.data.media import load_image
from lhama.model.build import LoadedModel
from lhama.model.labeler import LABELER_DIR, Labeler, load_labeler
from lhama.model.pictures import picture_branch

PLACEHOLDER = "<image>"


def labeler_source(student: LoadedModel, student_dir: str | Path, teacher_dir: str | Path) -> Path | None:
    """The model directory whose ``labeler/`` tells the images: the student's, else the teacher's
    (the distilled student then gets a copy); None when the student has an image branch of its
    own or neither model has a labeler."""
    if picture_branch(student) is not None:
        return None
    for directory in (Path(student_dir), Path(teacher_dir)):
        if (directory / LABELER_DIR).is_dir():
            return directory
    return None


def told_images(samples: Sequence[Sample], labeler: Labeler) -> list[Sample]:
    """``samples`` with every image replaced by ``labeler``'s note in the turn that held
    ``<image>`` (else the first user turn); samples without an image are returned as they are.

    Raises:
        DataError: an image cannot be read (the message names the file)."""
    return [_told(sample, labeler) if _pictured(sample) else sample for sample in samples]


def tell_images(model_dir: Path, sets: Sequence[list[Sample]], echo: Callable[[str], None]) -> list[list[Sample]]:
    """Each of ``sets`` (distillation's train and held-out samples) with its images told as the notes
    of the labeler in ``model_dir/labeler/`` (``model_dir``: :func:`labeler_source`'s answer); the
    labeler is loaded only when a sample has an image, and ``echo`` says where the notes come from.

    Raises:
        CheckpointError: the labeler does not load. DataError: an image cannot be read."""
    if not any(_pictured(sample) for samples in sets for sample in samples):
        return list(sets)
    labeler = load_labeler(model_dir)
    echo(f"images told as the notes of {model_dir / LABELER_DIR}")
    return [told_images(samples, labeler) for samples in sets]


def _pictured(sample: Sample) -> bool:
    return sample.image is not None


def _told(sample: Sample, labeler: Labeler) -> Sample:
    image = load_image(sample.image, max_side=labeler.config.max_image_side)
    note = labeler.note(image)  # as chat tells it: over the labeler's configured views
    messages = [dict(m) for m in sample.messages]
    marked = [i for i, m in enumerate(messages) if PLACEHOLDER in m["content"]]
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    turn = (marked or users or [0])[0]
    text = messages[turn]["content"].replace(PLACEHOLDER, "").strip()
    messages[turn]["content"] = f"{note}\n{text}" if text else note
    return replace(sample, image=None, messages=tuple(messages))
