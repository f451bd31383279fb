"""The teacher-logit cache: right rows per item, an interrupted build resumes at the missing
shard only, and a cache built from other data is refused."""

from __future__ import annotations

import pytest
import torch

from lhama.data.collate import Batch, Encoded
from lhama.data.conversation import IGNORE_INDEX
from lhama.errors import CheckpointError
from lhama.train.logit_cache import SHARD, build_cache, cache_key, cached_vocabulary, load_cache, teacher_topk
from tests.conftest import tiny_tokenizer
from tests.train.students import save_decoder, tiny_decoder


class CountingTeacher(torch.nn.Module):
    """Wraps a causal LM the way LhamaModel does (input_ids, logits_to_keep) and counts calls."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm, self.calls = lm, 0

    def forward(self, input_ids, logits_to_keep=0, **kwargs):
        self.calls += 1
        return self.lm(input_ids=input_ids, logits_to_keep=logits_to_keep)


def items(n: int) -> list[Encoded]:
    found = []
    for i in range(n):
        ids = torch.arange(5, 5 + 6 + i % 3)
        labels = torch.full_like(ids, IGNORE_INDEX)
        labels[3:] = ids[3:]  # the last tokens are supervised
        found.append(Encoded(ids, labels))
    return found


def rows_of(teacher: CountingTeacher, k: int = 4):
    return lambda item: teacher_topk(teacher, Batch(item.input_ids[None], torch.ones_like(item.input_ids)[None], item.labels[None]), k)


@pytest.fixture
def teacher_dir(tmp_path):
    return save_decoder(tiny_decoder("qwen2", layers=1), tmp_path / "teacher", tiny_tokenizer())


def test_rows_follow_items_and_a_lost_shard_is_rebuilt_alone(tmp_path, teacher_dir):
    data = items(40)  # two shards of 32 and 8
    key = cache_key(teacher_dir, data, 4, tiny_tokenizer())
    teacher = CountingTeacher(tiny_decoder("qwen2", layers=1).eval())
    cache = build_cache(rows_of(teacher), data, tmp_path / "cache", key)
    assert teacher.calls == 40 and cached_vocabulary(tmp_path / "cache", key) == key.vocabulary
    values, indices = cache.rows([1, 0])
    supervised = [int((item.labels[1:] != IGNORE_INDEX).sum()) for item in data[:2]]
    assert values.shape == (supervised[1] + supervised[0], 4) and indices.dtype == torch.int32
    with torch.no_grad():
        logits = teacher.lm(input_ids=data[0].input_ids[None]).logits[0]
    first = logits[2:-1].topk(4, dim=-1)  # positions 2..: their next token is supervised
    assert torch.equal(cache.rows([0])[1], first.indices.int())
    assert torch.allclose(cache.rows([0])[0].float(), first.values, atol=1e-2)
    (tmp_path / "cache" / SHARD.format(1)).unlink()
    teacher.calls = 0
    rebuilt = build_cache(rows_of(teacher), data, tmp_path / "cache", key)
    assert teacher.calls == 8 and torch.equal(rebuilt.indices, cache.indices)
    assert torch.equal(load_cache(tmp_path / "cache").offsets, cache.offsets)


def test_a_cache_for_other_data_is_refused(tmp_path, teacher_dir):
    teacher = CountingTeacher(tiny_decoder("qwen2", layers=1).eval())
    build_cache(rows_of(teacher), items(3), tmp_path / "cache", cache_key(teacher_dir, items(3), 4, tiny_tokenizer()))
    with pytest.raises(CheckpointError, match="another teacher, data or top_k"):
        build_cache(rows_of(teacher), items(4), tmp_path / "cache", cache_key(teacher_dir, items(4), 4, tiny_tokenizer()))
