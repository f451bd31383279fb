"""Which samples go in which batch: a seeded order per epoch (optionally grouped by length, as
LLaVA does, to cut padding), split into global batches and then into each process's micro
batches. Everything derives from (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lhama.errors import DataError

MEGABATCH = 50  # global batches sorted together when grouping by length


def plan_epoch(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """Global batches (lists of sample indices) for one epoch; an incomplete last one is dropped.

    Raises:
        DataError: fewer samples than one global batch.
    """
    if len(lengths) < batch_size:
        raise DataError(
            f"{len(lengths)} training samples is fewer than one global batch of {batch_size} "
            "(micro_batch_size x grad_accum x processes); lower micro_batch_size or grad_accum"
        )
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if group_by_length:
        mega = batch_size * MEGABATCH
        order = [i for k in range(0, len(order), mega) for i in sorted(order[k : k + mega], key=lambda i: -lengths[i])]
    batches = [order[k : k + batch_size] for k in range(0, len(order) - batch_size + 1, batch_size)]
    if group_by_length:  # otherwise every epoch would start with its longest batch
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def micro_batches(global_batch: Sequence[int], micro: int, accum: int, world: int, rank: int) -> list[list[int]]:
    """This process's ``accum`` micro batches of one global batch (rank-interleaved, so each
    accumulation step spreads similar lengths over all processes)."""
    return [list(global_batch[(a * world + rank) * micro : (a * world + rank + 1) * micro]) for a in range(accum)]
