"""A multi-turn chat with one loaded model: history, attached images, streamed answers.

Used by ``lhama chat`` (one-shot and the REPL). It knows nothing about terminals or HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lhama.data.conversation import Message, encode_prompt, render_prompt, stop_strings
from lhama.data.media import image_to_tensor, load_image
from lhama.errors import ModelError
from lhama.model.build import LoadedModel
from lhama.model.generate import Completion, GenerationConfig, complete


@dataclass
class ChatSession:
    loaded: LoadedModel
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    system_prompt: str | None = None  # None: the model config's Portuguese default; "": none
    history: list[Message] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)  # every image in history order
    pending: list[torch.Tensor] = field(default_factory=list)  # attached, not yet asked about

    def attach_image(self, path: str | Path) -> None:
        """Load and preprocess an image now (so errors show at once) for the next question."""
        image_config = self.loaded.config.image
        if image_config is None:
            raise ModelError(
                f"the model {self.loaded.name or ''} is text-only (no vision tower), so it cannot "
                "see images; pass --model DIR with a lhama/LLaVA model directory that has one"
            )
        image = load_image(path, max_side=image_config.max_image_side)
        self.pending.append(image_to_tensor(image, self.loaded.image_spec))

    def reset(self) -> None:
        """Forget the conversation and any attached images."""
        self.history.clear()
        self.images.clear()
        self.pending.clear()

    def ask(self, text: str) -> Iterator[str | Completion]:
        """Add a user turn and stream the answer: text deltas, then a :class:`Completion`.

        If the caller stops early (Ctrl-C), the partial answer stays in the history.
        """
        placeholder = self.loaded.config.image.placeholder if self.loaded.config.image else ""
        content = "".join(f"{placeholder}\n" for _ in self.pending) + text.strip()
        self.history.append({"role": "user", "content": content})
        self.images.extend(self.pending)
        self.pending.clear()
        answer: list[str] = []
        try:
            for item in self._generate():
                if isinstance(item, str):
                    answer.append(item)
                yield item
        finally:
            self.history.append({"role": "assistant", "content": "".join(answer).strip()})

    def _generate(self) -> Iterator[str | Completion]:
        tokenizer = self.loaded.tokenizer
        prompt = render_prompt(tokenizer, self._messages())
        input_ids = encode_prompt(tokenizer, prompt, self.loaded.expansions())
        media = {"image": torch.stack(self.images)} if self.images else None
        config = replace(self.generation, stop=self.generation.stop + stop_strings(tokenizer))
        return complete(self.loaded.model, tokenizer, input_ids, config, media)

    def _messages(self) -> list[Message]:
        system = self.loaded.config.system_prompt if self.system_prompt is None else self.system_prompt
        return ([{"role": "system", "content": system}] if system else []) + self.history
