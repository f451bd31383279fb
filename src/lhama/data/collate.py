"""Samples -> padded training batches: chat-template tokenisation, label masking (only
assistant tokens supervised), ``<image>`` expansion to the tower's token count, padding."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from lhama.data.conversation import IGNORE_INDEX, TranscriptTemplate, encode_supervised, render_conversation
from lhama.data.dataset import Sample
from lhama.errors import DataError


@dataclass(frozen=True)
class CollateConfig:
    max_length: int = 2048  # tokens after <image> expansion; longer samples are cut on the right
    system_prompt: str | None = None  # None: the model's default (as at inference); "": none
    use_chat_template: bool = True  # False: the Portuguese transcript even if the tokenizer has a template


@dataclass
class Encoded:
    """One tokenised sample."""

    input_ids: torch.Tensor  # (T,) int64
    labels: torch.Tensor  # (T,) int64, IGNORE_INDEX where unsupervised
    media: dict[str, Any] = field(default_factory=dict)  # branch kind ("image", "video", "audio") -> file path

    @property
    def supervised(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T), 1 for real tokens
    labels: torch.Tensor  # (B, T)
    media: dict[str, torch.Tensor] = field(default_factory=dict)  # "image" -> (n, 3, S, S), "video" -> (n, F, 3, S, S), "audio" -> (n, M + 1, F)

    def to(self, device: torch.device | str) -> "Batch":
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.input_ids), move(self.attention_mask), move(self.labels),
                     {k: move(v) for k, v in self.media.items()})

    @property
    def target_tokens(self) -> int:
        """Tokens that carry loss after the next-token shift."""
        return int((self.labels[:, 1:] != IGNORE_INDEX).sum())


Reader = Callable[[Any], torch.Tensor]  # a medium's file path -> the tensor its branch encodes
SAMPLE_MEDIA = ("image", "video", "audio")  # the media fields of a Sample, named by branch kind, in merge order


def sample_media(sample: Sample) -> dict[str, Any]:
    """Branch kind -> the sample's file path, for each medium the sample has (its record-key
    fields, then ``Sample.media``)."""
    fields = {kind: getattr(sample, kind) for kind in SAMPLE_MEDIA if getattr(sample, kind) is not None}
    return {**fields, **sample.media}


def _with_placeholder(sample: Sample, placeholders: list[str]) -> list[dict[str, str]]:
    """LLaVA records with an image but no ``<image>`` in the text get it before the first
    user turn, as the reference implementation does."""
    messages = [dict(m) for m in sample.messages]
    if "image" not in sample_media(sample) or not placeholders or any(placeholders[0] in m["content"] for m in messages):
        return messages
    first = next(i for i, m in enumerate(messages) if m["role"] == "user")
    messages[first]["content"] = f"{placeholders[0]}\n{messages[first]['content']}"
    return messages


class Collator:
    """Tokenises samples for one model and stacks them into :class:`Batch` es."""

    def __init__(self, tokenizer: Any, expansions: Mapping[int, int], readers: Mapping[str, Reader] | None,
                 config: CollateConfig, default_system: str = "") -> None:
        """``readers``: branch kind -> file path -> the tensor its branch encodes, for every branch
        the model has (``LoadedModel.readers()``); None or empty: a text-only model."""
        self.tokenizer = tokenizer
        self.readers = dict(readers or {})
        self.expansions = dict(expansions)
        self.config = config
        self.system = default_system if config.system_prompt is None else config.system_prompt
        self.template = None if config.use_chat_template else TranscriptTemplate()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode(self, sample: Sample) -> Encoded:
        """Tokenise one sample. Raises DataError if no token is left to supervise."""
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + _with_placeholder(
            sample, self.tokenizer.convert_ids_to_tokens(list(self.expansions)[:1])
        )
        try:
            ids, labels = encode_supervised(
                self.tokenizer, render_conversation(self.tokenizer, messages, self.template), self.expansions
            )
        except DataError as exc:
            raise DataError(f"sample {sample.id}: {exc}") from None
        ids, labels = self._truncate(sample, ids, labels)
        encoded = Encoded(torch.tensor(ids), torch.tensor(labels), sample_media(sample))
        if encoded.supervised == 0:
            raise DataError(
                f"sample {sample.id} has no supervised token after tokenisation (all labels masked); "
                f"check its assistant turns or raise data.max_length (now {self.config.max_length})"
            )
        return encoded

    def _truncate(self, sample: Sample, ids: list[int], labels: list[int]) -> tuple[list[int], list[int]]:
        limit = self.config.max_length
        if len(ids) <= limit:
            return ids, labels
        for token_id, count in self.expansions.items():
            if ids[:limit].count(token_id) % count:
                raise DataError(f"sample {sample.id}: max_length {limit} cuts through an image's tokens; raise it")
        return ids[:limit], labels[:limit]

    def __call__(self, items: Sequence[Encoded]) -> Batch:
        """Right-pad a list of encoded samples and load their media files."""
        length = max(len(item.input_ids) for item in items)
        input_ids = torch.full((len(items), length), self.pad_id, dtype=torch.long)
        labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item.input_ids)
            input_ids[row, :n], labels[row, :n], mask[row, :n] = item.input_ids, item.labels, 1
        kinds = dict.fromkeys(kind for item in items for kind in item.media)  # every kind the items have
        media = {kind: self._read(kind, [item.media[kind] for item in items if kind in item.media]) for kind in kinds}
        return Batch(input_ids, mask, labels, media)

    def _read(self, kind: str, paths: list[Any]) -> torch.Tensor:
        """One kind's files, stacked: "image" (n, 3, S, S), "video" (n, F, 3, S, S), "audio" (n, M + 1, F)."""
        if kind not in self.readers:
            raise DataError(f"sample {kind} {paths[0]} given, but the model has no {kind} branch")
        return torch.stack([self.readers[kind](path) for path in paths])

