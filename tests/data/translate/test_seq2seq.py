"""The transformers backend on a tiny random MarianMT built in-test (no downloads)."""

from pathlib import Path

import pytest

from lhama.data.translate.seq2seq import Seq2SeqBackend
from lhama.errors import CheckpointError


def test_translates_a_batch_deterministically(tiny_marian: Path) -> None:
    backend = Seq2SeqBackend(tiny_marian, None, None)
    texts = ["the man is in the car.", "a dog with a red umbrella", "o homem"]
    first = backend.translate_batch(texts)
    assert len(first) == 3 and all(isinstance(t, str) and t for t in first)
    assert backend.translate_batch(texts) == first


def test_missing_or_broken_model_dir_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no config.json"):
        Seq2SeqBackend(tmp_path, None, None)


def test_unknown_target_language_is_refused(tiny_marian: Path) -> None:
    with pytest.raises(CheckpointError, match="not in the tokenizer"):
        Seq2SeqBackend(tiny_marian, None, "por_Latn")
