"""Greedy short answers from a model for one question and its images (VQA, captioning)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from lhama.data.conversation import encode_prompt, encode_without_media, render_prompt, stop_strings
from lhama.data.media import load_image
from lhama.errors import ModelError
from lhama.model.build import LoadedModel
from lhama.model.pictures import pictures, sees_pictures
from lhama.inference.generate import Completion, GenerationConfig, complete


def require_vision(loaded: LoadedModel, task: str, fix: str = "pass --model with a lhama/LLaVA model directory "
                   "that has one") -> None:
    """Raise a one-line error if ``loaded`` cannot see images (no image branch and no labeler):
    ``task`` is what it then cannot do ("do image captioning"), ``fix`` what the user can do."""
    if not sees_pictures(loaded):
        raise ModelError(f"the model {loaded.name} has no vision tower, so it cannot {task}; {fix}")


def labeler_note(loaded: LoadedModel, path: str | Path) -> str:
    """A cascade model's view of one image: its labeler's note of the class names
    (:mod:`lhama.model.labeler`), the text that stands in for the image in its prompt."""
    labeler = loaded.labeler
    return labeler.note(load_image(path, max_side=labeler.config.max_image_side))  # as chat's labels_note: its views


def shown_image(loaded: LoadedModel, path: str | Path) -> tuple[str, dict[str, torch.Tensor]]:
    """What stands for one image file in a prompt to ``loaded``, and the media that go with it
    (a :class:`lhama.eval.scoring.ScoreRequest`'s, by branch kind): its image branch's
    placeholder and the image's pixels ((1, 3, S, S) under the branch's kind), or, for a cascade
    model (no image branch), its labeler's note as text and no media (:func:`labeler_note`; eval's
    counterpart of chat's stand-ins)."""
    shown, media = pictures(loaded, [path])  # model/pictures: the one "branch or labeler" decision
    return shown.removesuffix("\n"), media or {}


def chat_messages(loaded: LoadedModel, content: str) -> tuple[dict[str, str], ...]:
    """One user turn as ``lhama chat`` sends it to ``loaded``: after the model's own system
    prompt (``LoadedModel.generation``; none when it is ""), so a chat template never puts its
    own default in its place (Qwen's "You are Qwen, created by Alibaba Cloud...")."""
    system = loaded.generation.system_prompt
    user = {"role": "user", "content": content}
    return ({"role": "system", "content": system}, user) if system else (user,)


def generate_answer(loaded: LoadedModel, text: str, images: Sequence[str | Path], max_new_tokens: int = 16,
                    image_guidance: float | None = None) -> str:
    """Greedy answer to one user turn: what stands for each image file (``model/pictures.pictures``:
    a placeholder with its pixels, or a cascade model's labeler note), one per line, then ``text``.
    ``image_guidance``: see :class:`GenerationConfig` (it needs pixels); None: the model's own."""
    shown, media = pictures(loaded, images)
    messages = [{"role": "user", "content": shown + text}]
    input_ids = encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, messages), loaded.expansions())
    guidance = loaded.generation.image_guidance if image_guidance is None else image_guidance
    reference_ids = (encode_without_media(loaded.tokenizer, messages, loaded.config.placeholders.values(),
                                          loaded.expansions()) if media and guidance else None)
    config = GenerationConfig(max_new_tokens=max_new_tokens, stop=stop_strings(loaded.tokenizer),
                              image_guidance=guidance)
    with torch.no_grad():
        for item in complete(loaded.model, loaded.tokenizer, input_ids, config, media, reference_ids):
            if isinstance(item, Completion):
                return item.text.strip()
    return ""
