"""Fixtures for the server tests: tiny saved models and real uvicorn servers on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lhama.model.build import LoadedModel, load_model
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.serve.helpers import running, tiny_model_dir

SETTINGS = ServeSettings(max_tokens_cap=64, default_max_tokens=12, max_image_pixels=1_000_000,
                         max_image_bytes=200_000, max_images=2, max_body_bytes=1_000_000)


@pytest.fixture(scope="session")
def vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny-vlm")


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny-lm", image=False)


@pytest.fixture(scope="session")
def vlm(vlm_dir: Path) -> LoadedModel:
    return load_model(vlm_dir)


@pytest.fixture(scope="module")
def server(vlm: LoadedModel) -> Iterator[str]:
    """Base URL of a server for the tiny VLM, no API key."""
    with running(Engine(vlm, SETTINGS), SETTINGS) as url:
        yield url
