"""ChatSession with image guidance: the second prompt is the same conversation without its
media, and the answer is what the two-stream decoder gives for them."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.inference.generate import Completion, GenerationConfig, eos_token_ids, generate_ids
from lhama.serve.session import ChatSession
from tests.conftest import tiny_loaded


def test_guided_answer_is_decoded_against_the_conversation_without_images(tmp_path: Path) -> None:
    loaded = tiny_loaded()
    Image.new("RGB", (40, 30), (200, 30, 90)).save(tmp_path / "foto.png")
    config = GenerationConfig(max_new_tokens=10, image_guidance=2.0, plausibility=1e-3)
    session = ChatSession(loaded, config, system_prompt="")
    session.attach("image", tmp_path / "foto.png")
    *_, done = session.ask("Descreva a imagem.")
    assert isinstance(done, Completion)

    def ids(content: str) -> list[int]:
        prompt = render_prompt(loaded.tokenizer, [{"role": "user", "content": content}])
        return encode_prompt(loaded.tokenizer, prompt, loaded.expansions())

    media = {"image": torch.stack(session.media["image"])}
    eos = eos_token_ids(loaded.model, loaded.tokenizer)
    expected = list(generate_ids(loaded.model, ids("<image>\nDescreva a imagem."), config, media, eos,
                                 ids("Descreva a imagem.")))
    assert done.token_ids == expected
    unguided = list(generate_ids(loaded.model, ids("<image>\nDescreva a imagem."), GenerationConfig(max_new_tokens=10), media, eos))
    assert done.token_ids != unguided
