"""Translation backends: the protocol every engine implements, and building one by name.

A backend turns a batch of plain sentences (placeholders included) into translations, one
worker thread at a time. The pipeline builds one backend *per worker* so that engines holding
a lock per model (Bergamot does) still use every core.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from lhama.errors import ConfigError

BackendName = Literal["bergamot", "seq2seq"]


class Backend(Protocol):
    """Translates sentences; must be deterministic (resume relies on it)."""

    def translate_batch(self, texts: list[str]) -> list[str]:
        """Translations of ``texts``, in order, one per input."""
        ...


@dataclass(frozen=True)
class BackendSpec:
    """What to build: engine name, model directory (seq2seq), language codes (NLLB/M2M100)."""

    name: BackendName = "bergamot"
    model: Path | None = None
    src_lang: str | None = None
    tgt_lang: str | None = None
    direction: Literal["en-pt", "pt-en"] = "en-pt"  # Bergamot only

    @property
    def default_workers(self) -> int:
        # torch already spreads one seq2seq model over all cores; Bergamot needs one per core.
        return 1 if self.name == "seq2seq" else 2


def build_backend(spec: BackendSpec) -> Backend:
    """Load the engine described by ``spec``.

    Raises:
        ConfigError: unknown backend, or a missing/invalid ``--model`` for seq2seq.
        CheckpointError: the model directory cannot be loaded.
    """
    if spec.name == "bergamot":
        from lhama.data.translate.bergamot import BergamotBackend

        return BergamotBackend(spec.direction)
    if spec.name == "seq2seq":
        if spec.model is None:
            raise ConfigError("backend seq2seq needs --model DIR (a local MarianMT/NLLB/M2M100 directory)")
        from lhama.data.translate.seq2seq import Seq2SeqBackend

        return Seq2SeqBackend(spec.model, spec.src_lang, spec.tgt_lang)
    raise ConfigError(f"unknown translation backend {spec.name!r}; choose bergamot or seq2seq")
