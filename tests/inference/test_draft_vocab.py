"""A draft with a trimmed output layer: kept ids score as before, bit for bit; answers stay greedy's."""

from __future__ import annotations

import pytest
import torch

from lhama.errors import ConfigError, ModelError
from lhama.inference import draft_vocab
from lhama.inference.draft_vocab import TrimmedHead, kept_ids, rows_of, special_ids, trim_head, unpack_int4
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.kv import KVState, prefill
from lhama.inference.lean import lean_decoder
from lhama.inference.quant import quantize_linears
from lhama.inference.speculative import Draft
from tests.inference.tiny import prompt_ids, tiny_decoder


def test_int4_bytes_unpack_to_the_values_packed() -> None:
    for rows, inputs in ((128, 64), (192, 256)):
        q = torch.randint(0, 16, (rows, inputs), dtype=torch.int32, generator=torch.Generator().manual_seed(rows))
        assert torch.equal(unpack_int4(torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)), q)


def test_kept_ids_are_the_first_the_special_and_the_extra_ones_in_whole_row_blocks() -> None:
    ids = kept_ids(1000, 100, special=(998, 999), extra=(500, 5, 4000))
    assert len(ids) == 128 and ids.tolist() == sorted(set(ids.tolist()))
    assert {*range(100), 500, 998, 999} <= set(ids.tolist()) and 4000 not in ids.tolist()
    assert ids.tolist()[100:125] == list(range(100, 125))  # filled up with the next ids
    for bad in (-1, 1001):
        with pytest.raises(ModelError, match=r"keeps the first 0\.\.1000 ids of 1000, got"):
            kept_ids(1000, bad)
    with pytest.raises(ModelError, match="must keep at least one id"):
        kept_ids(1000, 0, extra=(4000,))
    assert kept_ids(1000, 0, extra=(7,)).tolist()[:2] == [0, 1]  # one id, filled up from the start


@pytest.mark.parametrize("quant", ["none", "int8", "int4", "int4-g32-k"])
@pytest.mark.parametrize("chunk", [4096, 64])  # 64: the int4 rows are copied one 64-row chunk at a time
def test_kept_rows_give_the_same_logits_bit_for_bit_and_the_rest_minus_infinity(quant: str, chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(draft_vocab, "_CHUNK", chunk)
    loaded = tiny_decoder(seed=4, tie=True)
    language_model = quantize_linears(loaded.model.language_model, quant)
    ids = kept_ids(128, 40, special=(120, 70, 127))
    x = torch.randn(3, 64).to(language_model.model.embed_tokens.weight.dtype)
    full = language_model.lm_head(x)
    trimmed = TrimmedHead(rows_of(language_model.lm_head, ids), ids, 128)(x)
    assert torch.equal(trimmed[:, ids], full[:, ids])
    off = torch.ones(128, dtype=torch.bool)
    off[ids] = False
    assert off.sum() == 64 and torch.isneginf(trimmed[:, off]).all()
    backwards = torch.arange(127, -1, -1)  # every row, in another order: two 64-row chunks from other blocks
    assert torch.equal(TrimmedHead(rows_of(language_model.lm_head, backwards), backwards, 128)(x), full)


def test_a_trimmed_draft_keeps_plain_greedy_answers_and_its_lean_step_matches_the_forward() -> None:
    target, draft = tiny_decoder(seed=0), tiny_decoder(seed=0)
    for loaded in (target, draft):
        quantize_linears(loaded.model.language_model, "int4")
    ids = prompt_ids(3)
    kv = KVState()
    prefill(draft.model, ids, None, kv, 8)
    assert lean_decoder(draft.model.language_model) is not None  # built before the swap: dropped by it
    trim_head(draft.model.language_model, kept_ids(128, 60))
    lean = lean_decoder(draft.model.language_model)
    assert isinstance(lean.head.parts[0], TrimmedHead)
    plain = list(generate_ids(target.model, ids, GenerationConfig(max_new_tokens=24)))
    spec = Draft(draft.model, 2)
    assert list(generate_ids(target.model, ids, GenerationConfig(max_new_tokens=24), draft=spec)) == plain
    assert spec.proposed > 0 and 0 < spec.acceptance_rate < 1  # the draft is the model minus 64 ids


def test_an_output_layer_of_another_kind_is_a_one_line_error() -> None:
    with pytest.raises(ModelError, match="cannot trim an output layer of kind Identity"):
        rows_of(torch.nn.Identity(), torch.arange(64))


def test_load_draft_trims_to_a_named_vocabulary_and_the_special_tokens(tmp_path, monkeypatch) -> None:
    from lhama.inference.speculative import load_draft

    target, saved = tiny_decoder(seed=0), tiny_decoder(seed=0)
    saved.model.language_model.save_pretrained(tmp_path)
    saved.tokenizer.save_pretrained(tmp_path)
    monkeypatch.setitem(draft_vocab.VOCABS, "even", lambda tokenizer: list(range(4, 80, 2)))
    draft = load_draft(tmp_path, target, "int4", 1, vocab="even")
    head = draft.model.language_model.get_output_embeddings()
    special = special_ids(target.tokenizer)
    assert isinstance(head, TrimmedHead) and len(head.ids) == 64 and special
    assert set(range(4, 80, 2)) | set(special) <= set(head.ids.tolist())
    with pytest.raises(ConfigError, match="unknown draft vocabulary 'cjk'; choose one of: latin, even"):
        load_draft(tmp_path, target, "int4", vocab="cjk")
    ids, config = prompt_ids(5), GenerationConfig(max_new_tokens=16)
    assert list(generate_ids(target.model, ids, config, draft=draft)) == list(generate_ids(target.model, ids, config))


def test_the_latin_vocabulary_keeps_portuguese_and_drops_other_scripts() -> None:
    class Tokenizer:
        pieces = ["a", " não", "ção", "123", "\ufffd", "—", "中文", "привет", "ok!", "é中"]

        def __len__(self) -> int:
            return len(self.pieces)

        def decode(self, ids: list[int]) -> str:
            return self.pieces[ids[0]]

    assert draft_vocab.latin_ids(Tokenizer()) == [0, 1, 2, 3, 4, 5, 8]
