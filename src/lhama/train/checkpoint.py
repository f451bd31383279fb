"""Training checkpoints: trainable weights, optimizer, scheduler, data position and every
process's RNG state, so ``--resume`` continues the exact same run.

Layout: ``<output_dir>/checkpoints/step-000120/{state.pt, rng-0.pt, rng-1.pt, ...}``, written
to a temporary folder and renamed into place (an interrupted save leaves no half checkpoint).
Frozen weights are not stored: the run rebuilds them from its config.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lhama.errors import CheckpointError
from lhama.model.adapters import trainable_parameters
from lhama.train.distributed import DistInfo, barrier


@dataclass(frozen=True)
class Position:
    """Where a run is: optimizer steps done, and the data-loader position of the next batch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # global batches already consumed in `epoch`

    def advanced(self, per_epoch: int) -> "Position":
        """The position after one more optimizer step, in an epoch of ``per_epoch`` batches."""
        if self.batch + 1 >= per_epoch:
            return Position(self.step + 1, self.epoch + 1, 0)
        return Position(self.step + 1, self.epoch, self.batch + 1)


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``output_dir``, or None."""
    root = Path(output_dir) / "checkpoints"
    found = sorted(p for p in root.glob("step-*") if (p / "state.pt").is_file()) if root.is_dir() else []
    return found[-1] if found else None


def save_checkpoint(output_dir: str | Path, parts: dict[str, Any], position: Position, info: DistInfo, keep: int) -> Path:
    """Write a checkpoint from every process (collective). ``parts`` holds the unwrapped
    ``model``, ``optimizer`` and ``scheduler``."""
    final = checkpoint_dir(output_dir, position.step)
    tmp = final.with_name(final.name + ".tmp")
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(info)
    torch.save(_rng_state(), tmp / f"rng-{info.rank}.pt")
    if info.is_main:
        state = {
            "model": {k: v.detach().cpu() for k, v in trainable_parameters(parts["model"]).items()},
            "optimizer": parts["optimizer"].state_dict(),
            "scheduler": parts["scheduler"].state_dict(),
            "position": asdict(position),
            "world_size": info.world_size,
        }
        torch.save(state, tmp / "state.pt")
    barrier(info)
    if info.is_main:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _prune(Path(output_dir) / "checkpoints", keep)
    barrier(info)
    return final


def load_checkpoint(path: Path, parts: dict[str, Any], info: DistInfo) -> Position:
    """Restore weights, optimizer, scheduler and this process's RNG; return the position.

    Raises:
        CheckpointError: unreadable checkpoint, different process count, or weights that do
            not match the model's trainable parameters.
    """
    try:
        # weights_only=False: our own files hold numpy RNG state (a tuple with an array).
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
        rng = torch.load(path / f"rng-{info.rank}.pt", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if state["world_size"] != info.world_size:
        raise CheckpointError(
            f"{path} was written by {state['world_size']} processes, this run has {info.world_size}; "
            "resume with the same --nproc_per_node"
        )
    _load_trainable(parts["model"], state["model"], path)
    parts["optimizer"].load_state_dict(state["optimizer"])
    parts["scheduler"].load_state_dict(state["scheduler"])
    _set_rng_state(rng)
    return Position(**state["position"])


def _load_trainable(model: nn.Module, saved: dict[str, torch.Tensor], path: Path) -> None:
    params = trainable_parameters(model)
    if set(saved) != set(params):
        key = sorted(set(saved) ^ set(params))[0]
        raise CheckpointError(f"{path} does not match this run's trainable weights (first mismatch: {key})")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved[name])


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _prune(root: Path, keep: int) -> None:
    for old in sorted(root.glob("step-*"))[:-keep] if keep > 0 else []:
        if not old.name.endswith(".tmp"):
            shutil.rmtree(old, ignore_errors=True)
