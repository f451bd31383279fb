"""Batch plans: deterministic per (seed, epoch), disjoint, length-grouped, split per process."""

from __future__ import annotations

import pytest

from lhama.errors import DataError
from lhama.train.batches import micro_batches, plan_epoch


def test_plan_is_deterministic_disjoint_and_drops_the_tail() -> None:
    lengths = [(i * 37) % 101 for i in range(103)]
    plan = plan_epoch(lengths, 8, seed=1, epoch=0, group_by_length=True)
    flat = [i for batch in plan for i in batch]
    assert len(plan) == 12 and len(flat) == len(set(flat)) == 96
    assert plan == plan_epoch(lengths, 8, seed=1, epoch=0, group_by_length=True)
    assert plan != plan_epoch(lengths, 8, seed=1, epoch=1, group_by_length=True)
    assert all(lengths[b[0]] >= lengths[b[-1]] for b in plan)  # grouped: sorted within a batch


def test_micro_batches_partition_the_global_batch() -> None:
    batch = list(range(12))
    parts = [micro_batches(batch, 2, 3, 2, rank) for rank in range(2)]
    assert sorted(i for rank in parts for micro in rank for i in micro) == batch
    assert parts[0][0] == [0, 1] and parts[1][0] == [2, 3]


def test_too_few_samples_is_an_error() -> None:
    with pytest.raises(DataError, match="fewer than one global batch"):
        plan_epoch([5, 6], 4, seed=0, epoch=0, group_by_length=False)
