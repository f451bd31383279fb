"""The serve batch's lean step (DecodeBatch.step on a Llama-family model) computes what the
reference path (the transformers forward, LHAMA_LEAN_DECODE=0) computes: the same logits, bit
for bit, hence the same greedy tokens, while rows join, finish and the key/value tensors grow."""

from __future__ import annotations

import pytest
import torch

from lhama.inference import lean
from lhama.inference.batch import DecodeBatch
from lhama.inference.generate import GenerationConfig
from lhama.inference.quant import quantize_linears
from lhama.serve.engine import Engine, Prompt
from lhama.serve.settings import ServeSettings
from tests.inference.tiny import prompt_ids, tiny_decoder
from tests.serve.test_engine import run_together


def _language_model(quant: str) -> torch.nn.Module:
    language_model = tiny_decoder(seed=3).model.language_model
    return quantize_linears(language_model, quant) if quant != "none" else language_model


def _prefilled(language_model: torch.nn.Module, ids: list[int]) -> tuple[object, int]:
    out = language_model(input_ids=torch.tensor([ids]), past_key_values=DecodeBatch.empty_cache(), use_cache=True)
    return out.past_key_values, int(out.logits[0, -1].argmax())


@torch.inference_mode()
def _scenario(language_model: torch.nn.Module) -> tuple[list[list[int]], list[torch.Tensor]]:
    """Greedy decoding of a changing batch: one row for 3 steps (no padding: no mask), two more
    join, the longest finishes after 5 steps, a late row joins, then 70 more steps (past the
    lean step's 64 spare columns). Each step's tokens and logits."""
    batch, tokens, steps, logits_seen = DecodeBatch(), [], [], []
    cache, token = _prefilled(language_model, prompt_ids(1, 11))
    batch.add(cache, 11)
    tokens.append(token)
    for _ in range(3):
        logits = batch.step(language_model, torch.tensor(tokens))
        tokens = logits.argmax(-1).tolist()
        steps.append(tokens)
        logits_seen.append(logits.float())
    for seed, length in ((2, 4), (3, 7)):
        cache, token = _prefilled(language_model, prompt_ids(seed, length))
        batch.add(cache, length)
        tokens.append(token)
    for step in range(76):
        if step == 5:
            batch.drop([1, 2])
            tokens = tokens[1:]
            cache, token = _prefilled(language_model, prompt_ids(9, 15))
            batch.add(cache, 15)
            tokens.append(token)
        logits = batch.step(language_model, torch.tensor(tokens))
        tokens = logits.argmax(-1).tolist()
        steps.append(tokens)
        logits_seen.append(logits.float())
    return steps, logits_seen


@pytest.mark.parametrize("quant", ["none", "bf16", "int8", "int4"])
def test_the_lean_batch_step_decodes_like_the_reference_path(quant: str, monkeypatch) -> None:
    language_model = _language_model(quant)
    calls = []
    original = lean.LeanDecoder.step_rows
    monkeypatch.setattr(lean.LeanDecoder, "step_rows", lambda self, *a: calls.append(1) or original(self, *a))
    monkeypatch.setenv("LHAMA_LEAN_DECODE", "0")
    want_tokens, want_logits = _scenario(language_model)
    assert not calls  # the reference path ran the transformers forward
    monkeypatch.setenv("LHAMA_LEAN_DECODE", "1")
    got_tokens, got_logits = _scenario(language_model)
    assert len(calls) == 79  # every step took the lean path
    assert got_tokens == want_tokens
    for got, want in zip(got_logits, want_logits):
        assert torch.equal(got, want)


@torch.inference_mode()
def test_the_lean_batch_step_matches_one_row_decoded_alone() -> None:
    """A row padded on the left in the batch gets the logits the one-row lean step gives it."""
    language_model = _language_model("none")
    batch, short = DecodeBatch(), prompt_ids(2, 4)
    for ids in (prompt_ids(1, 11), short):
        batch.add(_prefilled(language_model, ids)[0], len(ids))
    logits = batch.step(language_model, torch.tensor([5, 6]))
    alone = language_model(input_ids=torch.tensor([short + [6]])).logits[0, -1]
    torch.testing.assert_close(logits[1], alone, atol=1e-4, rtol=0)
    assert batch.mask.tolist()[1] == [0] * 7 + [1] * 5 and batch.positions.tolist() == [12, 5]


def test_the_engine_answers_the_same_with_and_without_the_lean_step(monkeypatch) -> None:
    loaded = tiny_decoder(seed=0)
    quantize_linears(loaded.model.language_model, "int4")
    prompts = [Prompt([], prompt_ids(seed, 6 + 3 * seed)) for seed in range(4)]
    configs = [GenerationConfig(max_new_tokens=n) for n in (12, 5, 9, 7)]
    answers = {}
    for switch in ("0", "1"):
        monkeypatch.setenv("LHAMA_LEAN_DECODE", switch)
        done = run_together(Engine(loaded, ServeSettings(max_batch=4)), prompts, configs)
        answers[switch] = [c.token_ids for c in done]
    assert answers["1"] == answers["0"]
    assert [len(a) for a in answers["1"]] == [12, 5, 9, 7]
