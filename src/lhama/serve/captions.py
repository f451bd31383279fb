"""The model's own short caption of attached images, for the safety guard to read: a harmful
request can hide in a picture, so the guard checks the user's text and what the model sees."""

from __future__ import annotations

from lhama.data.conversation import Message, encode_prompt, render_prompt
from lhama.model.build import LoadedModel
from lhama.inference.generate import GenerationConfig

CAPTION_INSTRUCTION = "Descreva a imagem em uma frase."
CAPTION_CONFIG = GenerationConfig(max_new_tokens=32)


def caption_prompt(loaded: LoadedModel, n_images: int) -> tuple[list[Message], list[int]]:
    """Messages and token ids that ask the model to describe ``n_images`` images."""
    placeholder = loaded.config.placeholders["image"]
    messages = [{"role": "user", "content": f"{placeholder}\n" * n_images + CAPTION_INSTRUCTION}]
    prompt = render_prompt(loaded.tokenizer, messages)
    return messages, encode_prompt(loaded.tokenizer, prompt, loaded.expansions())
