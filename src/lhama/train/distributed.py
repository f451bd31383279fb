"""torchrun's environment -> a :class:`DistInfo` (returned and passed on, never global), the
process group, model wrapping (DDP or FSDP) and the few collectives the loop needs.

A plain ``python -m lhama train`` is world size 1 and touches no process group at all."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup() -> DistInfo:
    """Read torchrun's variables; start the process group (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, device)


def cleanup(info: DistInfo) -> None:
    """End the process group; every rank waits for the others first (a gloo group destroyed while
    another rank is still finishing can leave a worker hanging at exit: pytorch#75097)."""
    if info.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, strategy: str, info: DistInfo) -> nn.Module:
    """DDP (each process holds the model) or FSDP (parameters sharded); a no-op alone."""
    if not info.distributed:
        return model
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    if strategy == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel

        # use_orig_params: frozen and trainable parameters may share a flat shard (stage 1, LoRA).
        return FullyShardedDataParallel(model, device_id=info.device if device_ids else None, use_orig_params=True)
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def full_weights(model: nn.Module, info: DistInfo) -> contextlib.AbstractContextManager:
    """A context in which the unwrapped model holds its full (unsharded) weights: FSDP
    gathers them for saving; DDP and single processes already have them."""
    if info.distributed and hasattr(model, "summon_full_params"):
        return model.summon_full_params(model, writeback=False, rank0_only=True)
    return contextlib.nullcontext()


def unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def all_sum(value: float | int, info: DistInfo) -> float:
    """Sum a number over all processes (the value itself when alone)."""
    if not info.distributed:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=info.device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
