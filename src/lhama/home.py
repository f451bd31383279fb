"""Where lhama keeps what it prepares: ``$LHAMA_HOME`` (default ``~/.cache/lhama``)."""

from __future__ import annotations

import os
from pathlib import Path


def lhama_home() -> Path:
    """``$LHAMA_HOME`` if set and non-empty, else ``~/.cache/lhama``."""
    return Path(os.environ.get("LHAMA_HOME") or "~/.cache/lhama").expanduser()


def models_dir(home: Path | None = None) -> Path:
    """The directory that holds prepared models: ``<home>/models``."""
    return (home or lhama_home()) / "models"
