"""The model's own short caption of attached images, for the safety guard to read: a harmful
request can hide in a picture, so the guard checks the user's text and what the model sees."""

from __future__ import annotations

import torch

from lhama.data.conversation import Message, encode_prompt, render_prompt
from lhama.model.build import LoadedModel
from lhama.model.pictures import picture_branch
from lhama.inference.generate import GenerationConfig

CAPTION_INSTRUCTION = "Descreva a imagem em uma frase."
CAPTION_CONFIG = GenerationConfig(max_new_tokens=32)


def caption_prompt(loaded: LoadedModel, images: torch.Tensor) -> tuple[list[Message], list[int], dict[str, torch.Tensor]]:
    """Messages, token ids and media that ask the model to describe ``images`` ``(n, 3, S, S)``
    through its image branch (``model/pictures.picture_branch``): one placeholder per image, made
    with the media they stand for."""
    shown, media = loaded.show(picture_branch(loaded).name, images)
    messages = [{"role": "user", "content": shown + CAPTION_INSTRUCTION}]
    prompt = render_prompt(loaded.tokenizer, messages)
    return messages, encode_prompt(loaded.tokenizer, prompt, loaded.expansions()), media
