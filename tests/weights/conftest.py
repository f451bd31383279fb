"""The real open-NSFW tower, prepared once per test session (about 15 s on a 2-core CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def open_nsfw_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary LHAMA_HOME holding a prepared ``open-nsfw-resnet50``. Do not modify it."""
    from lhama.weights.prepare import prepare  # imported here so test collection stays fast

    home = tmp_path_factory.mktemp("lhama_home")
    prepare("open-nsfw-resnet50", home=home)
    return home


@pytest.fixture(scope="session")
def open_nsfw_dir(open_nsfw_home: Path) -> Path:
    return open_nsfw_home / "models" / "open-nsfw-resnet50"
