"""Calibration text and importance scores."""

from __future__ import annotations

import json

import pytest
import torch

from lhama.errors import DataError
from lhama.train.importance import measure, read_calibration
from tests.conftest import tiny_tokenizer
from tests.train.students import CALIBRATION, tiny_decoder


def test_calibration_reads_text_records_and_chat_turns(tmp_path):
    path = tmp_path / "calib.jsonl"
    rows = [{"text": "Um gato."}, {"conversations": [{"from": "human", "value": "Oi"}, {"from": "gpt", "value": "Olá!"}]},
            {"messages": [{"role": "user", "content": "Tchau"}]}, {"other": 1}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    assert read_calibration(path) == ["Um gato.", "Oi\nOlá!", "Tchau"]
    with pytest.raises(DataError, match="not found"):
        read_calibration(tmp_path / "missing.txt")


def test_scores_have_one_value_per_layer_channel_and_head():
    model = tiny_decoder("llama", layers=3, hidden=32, heads=4, kv=2)
    with torch.no_grad():
        model.model.layers[2].self_attn.o_proj.weight[:, 8:16] = 0  # head 1 of the last layer writes nothing
    score = measure(model, tiny_tokenizer(), CALIBRATION)
    assert len(score.block_influence) == 3 and all(b > 0 for b in score.block_influence)
    assert [len(c) for c in score.mlp_channels] == [64] * 3 and [len(h) for h in score.heads] == [4] * 3
    assert score.heads[2][1] == 0 and (score.heads[2][[0, 2, 3]] > 0).all()
    assert score.tokens > 20 and 0 < score.nll < 10
