"""Decoding settings and the file a model directory keeps them in.

A model's defaults (its system prompt, its image guidance) belong to how it is decoded, not to
what it is: they live in ``lhama_generation.json`` beside ``config.json`` (as transformers keeps
``generation_config.json``) and are read into ``LoadedModel.generation``. Directories written
before this file existed kept the two settings in ``config.json``'s ``"lhama"`` block; they are
converted on load (:func:`split_legacy`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhama.config import from_dict, to_dict
from lhama.errors import CheckpointError, ConfigError

GENERATION_FILE = "lhama_generation.json"
DEFAULT_SYSTEM_PROMPT = "Você é um assistente prestativo. Responda sempre em português do Brasil, de forma clara e breve."
# Keys that older lhama versions stored in the model config's "lhama" block.
LEGACY_KEYS = ("system_prompt", "image_guidance")


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode: the system prompt, sampling, stops, image guidance. A model directory
    carries its own defaults (``lhama_generation.json``); chat, serve and eval override them
    per request without touching the model's config."""

    # The Portuguese default; "" sends no system message (models trained without one).
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy (deterministic)
    top_p: float = 1.0
    repetition_penalty: float = 1.0  # >1 discourages tokens already in the sequence (CTRL-style)
    # Which tokens the penalty counts: "all" (prompt and answer, as transformers does) or
    # "answer" (only the answer's own, so words of the system prompt or an image note stay free).
    repetition_scope: str = "all"
    # n > 0: the answer never says the same n tokens twice (the prompt is not counted, so quoting
    # it stays possible); a loop is cut at its n-th repeated token. 0: off.
    no_repeat_ngram: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    use_cache: bool = True  # False recomputes the whole sequence each step (for checking)
    # Image guidance (visual contrastive decoding): each step scores tokens by
    # (1 + g) log p(token | image) - g log p(token | same prompt without the image), among the
    # tokens the image-conditioned model itself finds plausible (p >= plausibility x the best p),
    # so an answer the text prompt alone would give anyway loses to one the image supports.
    # 0: off. Needs the prompt without its media (``reference_ids``); costs a second forward.
    image_guidance: float = 0.0
    plausibility: float = 0.1

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.repetition_scope not in ("all", "answer"):
            raise ValueError(f"repetition_scope must be 'all' or 'answer', got {self.repetition_scope!r}")
        if self.no_repeat_ngram < 0:
            raise ValueError(f"no_repeat_ngram must be >= 0, got {self.no_repeat_ngram}")
        if self.image_guidance < 0:
            raise ValueError(f"image_guidance must be >= 0, got {self.image_guidance}")
        if not 0 < self.plausibility <= 1:
            raise ValueError(f"plausibility must be in (0, 1], got {self.plausibility}")


def split_legacy(block: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An old ``"lhama"`` config block -> (the block without decoding keys, those keys)."""
    model = {k: v for k, v in block.items() if k not in LEGACY_KEYS}
    decoding = {k: v for k, v in block.items() if k in LEGACY_KEYS}
    return model, decoding


def generation_from_dict(data: Mapping[str, Any], where: str) -> GenerationConfig:
    """A :class:`GenerationConfig` from saved data; CheckpointError naming ``where`` if invalid."""
    try:
        return from_dict(GenerationConfig, dict(data))
    except (ValueError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{where} has invalid decoding settings: {exc}") from None


def read_generation(directory: Path, legacy: Mapping[str, Any] | None = None) -> GenerationConfig:
    """The decoding defaults saved in ``directory``; else ``legacy`` keys from an old config."""
    path = directory / GENERATION_FILE
    if not path.is_file():
        return generation_from_dict(legacy or {}, str(directory / "config.json"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not readable JSON: {exc}") from None
    return generation_from_dict(data, str(path))


def write_generation(config: GenerationConfig, directory: Path) -> None:
    """Write ``config`` as ``directory/lhama_generation.json`` (directory is a temp dir being built)."""
    (directory / GENERATION_FILE).write_text(json.dumps(to_dict(config), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
