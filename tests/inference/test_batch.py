"""DecodeBatch: left padding, masks, positions and trimming; a batched step gives each row
the logits it would get alone."""

from __future__ import annotations

import torch

from lhama.inference.batch import DecodeBatch
from tests.conftest import tiny_loaded


def prefill(lm: torch.nn.Module, ids: list[int]) -> tuple[object, torch.Tensor]:
    out = lm(input_ids=torch.tensor([ids]), past_key_values=DecodeBatch.empty_cache(), use_cache=True)
    return out.past_key_values, out.logits[0, -1]


def solo_next_logits(lm: torch.nn.Module, ids: list[int], token: int) -> torch.Tensor:
    return lm(input_ids=torch.tensor([ids + [token]])).logits[0, -1]


@torch.inference_mode()
def test_rows_of_different_lengths_decode_like_alone() -> None:
    lm = tiny_loaded(image=None).model.language_model
    rows = [[1, 5, 9, 14, 20, 33], [1, 7], [1, 40, 41, 42]]
    batch = DecodeBatch()
    for ids in rows:
        cache, _ = prefill(lm, ids)
        batch.add(cache, len(ids))
    assert batch.mask.tolist() == [[1] * 6, [0] * 4 + [1] * 2, [0] * 2 + [1] * 4]
    assert batch.positions.tolist() == [6, 2, 4]
    logits = batch.step(lm, torch.tensor([50, 51, 52]))  # (3, V)
    for i, (ids, token) in enumerate(zip(rows, [50, 51, 52])):
        torch.testing.assert_close(logits[i], solo_next_logits(lm, ids, token), atol=1e-5, rtol=1e-5)
    assert batch.positions.tolist() == [7, 3, 5] and batch.mask.shape == (3, 7)


@torch.inference_mode()
def test_drop_trims_padding_and_a_late_row_joins() -> None:
    lm = tiny_loaded(image=None).model.language_model
    rows = [[1, 5, 9, 14, 20, 33], [1, 7]]
    batch = DecodeBatch()
    for ids in rows:
        batch.add(prefill(lm, ids)[0], len(ids))
    batch.step(lm, torch.tensor([50, 51]))
    batch.drop([1])  # the long row finishes: its extra columns are trimmed away
    assert batch.mask.tolist() == [[1, 1, 1]] and len(batch) == 1
    assert batch.layers()[0][0].shape[2] == 3
    late = [1, 8, 9, 10, 11]
    batch.add(prefill(lm, late)[0], len(late))
    assert batch.mask.tolist() == [[0, 0, 1, 1, 1], [1] * 5]
    logits = batch.step(lm, torch.tensor([60, 61]))
    torch.testing.assert_close(logits[0], solo_next_logits(lm, [1, 7, 51], 60), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[1], solo_next_logits(lm, late, 61), atol=1e-5, rtol=1e-5)
