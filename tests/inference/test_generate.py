from __future__ import annotations

import pytest
import torch

from lhama.data.conversation import encode_prompt
from lhama.inference.generate import (
    Completion,
    GenerationConfig,
    complete,
    generate_ids,
    guided_logits,
    new_generator,
    next_token,
    stream_text,
)
from tests.conftest import tiny_loaded


def _run(loaded, config: GenerationConfig, with_image: bool = True) -> list[int]:
    text = "<image>\nDescreva a imagem." if with_image else "Qual é a capital do Brasil?"
    ids = encode_prompt(loaded.tokenizer, text, loaded.expansions())
    torch.manual_seed(3)
    media = {"image": torch.randn(1, 3, 32, 32)} if with_image else None
    return list(generate_ids(loaded.model, ids, config, media))


@pytest.mark.parametrize("with_image", [True, False])
def test_cached_greedy_equals_uncached_greedy(tiny_vlm, with_image: bool) -> None:
    cached = _run(tiny_vlm, GenerationConfig(max_new_tokens=20), with_image)
    uncached = _run(tiny_vlm, GenerationConfig(max_new_tokens=20, use_cache=False), with_image)
    assert len(cached) == 20
    assert cached == uncached


def test_sampling_is_reproducible_with_a_seed_and_varies_without(tiny_vlm) -> None:
    config = GenerationConfig(max_new_tokens=15, temperature=1.5, seed=7)
    first, second = _run(tiny_vlm, config), _run(tiny_vlm, config)
    other = _run(tiny_vlm, GenerationConfig(max_new_tokens=15, temperature=1.5, seed=8))
    assert first == second
    assert first != other


def test_tiny_top_p_is_greedy(tiny_vlm) -> None:
    sampled = _run(tiny_vlm, GenerationConfig(max_new_tokens=10, temperature=1.0, top_p=1e-6, seed=1))
    assert sampled == _run(tiny_vlm, GenerationConfig(max_new_tokens=10))


class CharTokenizer:
    """Decodes ids as characters, to test streaming and stop strings exactly."""

    eos_token_id = 0

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


def test_stream_text_stops_at_stop_string_and_holds_back_prefixes() -> None:
    ids = [ord(c) for c in "Brasília.\nUsuário: e depois?"]
    deltas = list(stream_text(CharTokenizer(), iter(ids), stop=("\nUsuário:",)))
    assert "".join(deltas) == "Brasília."
    assert all("\n" not in d for d in deltas)  # "\n" waited until it proved to be a stop prefix


def test_stream_text_stops_at_eos_and_flushes_held_text() -> None:
    ids = [ord(c) for c in "ok\nU"] + [0] + [ord("x")]
    assert "".join(stream_text(CharTokenizer(), iter(ids), stop=("\nUsuário:",), eos_ids=(0,))) == "ok\nU"


def test_complete_reports_finish_reason_and_counts(tiny_vlm) -> None:
    ids = encode_prompt(tiny_vlm.tokenizer, "Qual é a capital do Brasil?", {})
    *deltas, done = complete(tiny_vlm.model, tiny_vlm.tokenizer, ids, GenerationConfig(max_new_tokens=5))
    assert isinstance(done, Completion)
    assert done.text == "".join(deltas)
    assert done.prompt_tokens == len(ids) and len(done.token_ids) <= 5
    assert done.finish_reason in ("length", "stop")


@pytest.mark.parametrize("bad", [{"max_new_tokens": 0}, {"temperature": -1}, {"top_p": 0}, {"image_guidance": -1},
                                 {"plausibility": 0}, {"plausibility": 1.5}])
def test_invalid_generation_config(bad) -> None:
    with pytest.raises(ValueError):
        GenerationConfig(**bad)


def test_generation_stops_at_the_context_window(tiny_lm) -> None:
    from lhama.errors import ModelError

    window = tiny_lm.model.language_model.config.max_position_embeddings
    ids = [5] * (window - 3)
    produced = list(generate_ids(tiny_lm.model, ids, GenerationConfig(max_new_tokens=50)))
    assert len(produced) == 3
    with pytest.raises(ModelError, match=f"context holds {window}"):
        list(generate_ids(tiny_lm.model, [5] * window, GenerationConfig()))


def test_extreme_sampling_settings_pick_a_token_instead_of_nan() -> None:
    """Schema fuzzing sent temperature ~1e-300 and repetition penalties near 0 (both allowed by the
    API): the scaled logits overflowed to inf and multinomial raised on NaN probabilities."""
    logits = torch.tensor([1.0, 3.0, -2.0, 2.5])
    seen = torch.tensor([0, 3])  # a penalty near 0 divides their positive logits by it: both overflow
    cases = [(1e-300, 1.0, {1}), (1e-45, 1.0, {1}), (1.0, 1e-300, {0, 3}), (1e-300, 1e-300, {0, 3})]
    for temperature, penalty, allowed in cases:
        config = GenerationConfig(max_new_tokens=1, temperature=temperature, repetition_penalty=penalty, seed=0)
        for seed in range(5):
            assert next_token(logits, seen, config, new_generator(seed, logits.device)) in allowed


def test_image_guidance_prefers_the_token_the_image_supports() -> None:
    with_image = torch.tensor([2.0, 1.9, -5.0, -9.0])
    without = torch.tensor([3.0, 0.0, -20.0, 0.0])  # the text prompt alone already says token 0
    scores = guided_logits(with_image, without, GenerationConfig(image_guidance=1.0, plausibility=0.1))
    assert int(scores.argmax()) == 1  # token 1 gains most from the image
    assert torch.isinf(scores[2]) and torch.isinf(scores[3])  # implausible under the image: never picked,
    # however much less likely the image-less prompt makes them
    plain = guided_logits(with_image, without, GenerationConfig(image_guidance=0.0))
    assert int(plain.argmax()) == 0


def test_image_guided_decoding_equals_recomputing_both_prompts_each_step(tiny_vlm) -> None:
    """The cached two-stream decoder against a slow one: both full sequences rerun every step."""
    ids = encode_prompt(tiny_vlm.tokenizer, "<image>\nDescreva a imagem.", tiny_vlm.expansions())
    reference_ids = encode_prompt(tiny_vlm.tokenizer, "Descreva a imagem.", tiny_vlm.expansions())
    torch.manual_seed(3)
    media = {"image": torch.randn(1, 3, 32, 32)}
    config = GenerationConfig(max_new_tokens=12, image_guidance=2.0, plausibility=1e-3)
    fast = list(generate_ids(tiny_vlm.model, ids, config, media, reference_ids=reference_ids))
    slow: list[int] = []
    with torch.no_grad():
        for _ in range(12):
            image_logits = tiny_vlm.model(torch.tensor([ids + slow]), media=media).logits[0, -1]
            text_logits = tiny_vlm.model(torch.tensor([reference_ids + slow])).logits[0, -1]
            slow.append(int(guided_logits(image_logits, text_logits, config).argmax()))
    plain = list(generate_ids(tiny_vlm.model, ids, GenerationConfig(max_new_tokens=12), media))
    assert fast == slow
    assert fast != plain  # guidance 2 changes this tiny model's answer (else the test shows nothing)


def test_top_p_far_below_rounding_keeps_the_best_token() -> None:
    """A top_p below float32's range (1e-139 rounds to 0 against the probabilities) keeps the best token."""
    from lhama.inference.generate import _top_p_filter

    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(50_000) * 3, dim=-1)
    kept = _top_p_filter(probs, 2.66e-139)
    assert torch.isfinite(kept).all() and int(kept.argmax()) == int(probs.argmax()) and float(kept.max()) == 1.0
