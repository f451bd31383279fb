"""Shared fixtures. Real weights are prepared once per test session and reused by every test
that needs them (about 30 s for SmolLM2-135M on a 2-core CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared SmolLM2-135M-Instruct directory (float32 safetensors, tokenizer with ChatML
    template) in a session-wide temporary LHAMA_HOME; load it with ``from_pretrained(dir)``.
    Do not modify it: copy it first."""
    from lhama.model.weights import prepare  # imported here so test collection stays fast

    return prepare("smollm2-135m-instruct", home=tmp_path_factory.mktemp("lhama_home"))
