"""The loop's loss is the LM's own token-mean cross-entropy, computed on supervised positions only."""

from __future__ import annotations

import torch

from lhama.config import load
from lhama.data.collate import CollateConfig, Collator
from lhama.data.dataset import Sample
from lhama.train.config import TrainConfig
from lhama.train.distributed import DistInfo
from lhama.train.loop import token_loss_sum
from tests.conftest import tiny_loaded


def test_token_loss_matches_the_lm_loss() -> None:
    loaded = tiny_loaded(image=None)
    collator = Collator(loaded.tokenizer, {}, None, CollateConfig(system_prompt=""))
    samples = [
        Sample("a", ({"role": "user", "content": "Qual é a capital do Brasil?"}, {"role": "assistant", "content": "Brasília."})),
        Sample("b", ({"role": "user", "content": "Oi"}, {"role": "assistant", "content": "Olá, como posso ajudar você hoje?"})),
    ]
    batch = collator([collator.encode(s) for s in samples])
    cfg = load(TrainConfig, None, ["model.lm=x"])
    with torch.no_grad():
        ours = token_loss_sum(loaded.model, batch, cfg, DistInfo()) / batch.target_tokens
        reference = loaded.model(batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
    assert batch.target_tokens > 10
    assert torch.allclose(ours, reference, atol=1e-5)
