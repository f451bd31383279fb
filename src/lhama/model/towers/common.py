"""What lhama's own towers share: the config's derived sizes and JSON form, and the tower
directory (``config.json``, ``model.safetensors``, ``preprocessor_config.json``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from lhama.config import from_dict
from lhama.data.media import ImageSpec
from lhama.errors import CheckpointError

WEIGHTS = "model.safetensors"
DEFAULT_LAYER = -2  # ImageConfig.feature_layer's default; what ``patch_size``/``hidden_size`` describe
DERIVED = {"patch_size", "hidden_size", "hidden_state_shapes"}


class TowerConfigSizes:
    """Mixin for a frozen tower config dataclass that defines ``image_size`` and
    ``hidden_state_shapes`` ((grid side, channels) per hidden state)."""

    @property
    def patch_size(self) -> int:
        """Pixels per token side of the default (``feature_layer=-2``) map."""
        return self.image_size // self.hidden_state_shapes[DEFAULT_LAYER][0]

    @property
    def hidden_size(self) -> int:
        """Channels of the default (``feature_layer=-2``) map."""
        return self.hidden_state_shapes[DEFAULT_LAYER][1]

    def to_dict(self) -> dict:
        """``config.json`` content; the derived sizes are written for readers, ignored on load."""
        data = dataclasses.asdict(self)
        data.update(patch_size=self.patch_size, hidden_size=self.hidden_size)
        data["hidden_state_shapes"] = [list(shape) for shape in self.hidden_state_shapes]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Any:
        """Inverse of :meth:`to_dict`. Raises ConfigError on unknown keys or wrong types."""
        return from_dict(cls, {k: v for k, v in data.items() if k not in DERIVED})


def save_tower_dir(tower: nn.Module, directory: Path, spec: ImageSpec) -> None:
    """Write ``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` into
    ``directory`` (which must exist; callers make it atomic)."""
    (directory / "config.json").write_text(json.dumps(tower.config.to_dict(), indent=2) + "\n")
    state = {k: v.contiguous() for k, v in tower.state_dict().items()}
    save_file(state, directory / WEIGHTS, metadata={"format": "pt"})
    (directory / "preprocessor_config.json").write_text(json.dumps(spec.to_preprocessor_config(), indent=2) + "\n")


def load_tower_dir(directory: Path, from_config: Callable[[dict], nn.Module]) -> nn.Module:
    """Inverse of :func:`save_tower_dir`, in eval mode; ``from_config`` builds the empty tower.
    Raises CheckpointError on a missing or mismatched file."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        state = load_file(directory / WEIGHTS)
    except Exception as exc:  # OSError, JSON errors, safetensors' own error types: all mean unreadable
        raise CheckpointError(f"cannot load the tower in {directory}: {exc}") from None
    tower = from_config(config)
    try:
        tower.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{directory / WEIGHTS} does not fit its config.json: {str(exc).splitlines()[0]}") from None
    return tower.eval()
