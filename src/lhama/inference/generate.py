"""Autoregressive generation with a KV cache: greedy or sampled (temperature, top-p, seed),
stop strings, and streaming text deltas as tokens arrive."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from lhama.errors import ModelError
from lhama.inference.kv import KVState, prefill
from lhama.inference.lean import lean_decoder, usable
from lhama.model.generation import GenerationConfig
from lhama.model.lhama import LhamaModel

if TYPE_CHECKING:
    from lhama.inference.speculative import Draft


@dataclass
class Completion:
    """What a finished generation produced."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "length"  # "stop" (EOS or stop string), "length" or "content_filter"
    prompt_tokens: int = 0
    categories: tuple[str, ...] = ()  # safety categories (S1-S14) when a guard cut the answer


@torch.inference_mode()
def generate_ids(
    model: LhamaModel,
    input_ids: Sequence[int],
    config: GenerationConfig,
    media: Mapping[str, torch.Tensor] | None = None,
    eos_ids: Sequence[int] = (),
    reference_ids: Sequence[int] | None = None,
    *,
    kv: KVState | None = None,
    draft: Draft | None = None,
) -> Iterator[int]:
    """Yield new token ids one at a time; stops after an EOS id, ``max_new_tokens``, or the end
    of the model's context window. ``reference_ids``: the same prompt without its media, for
    ``config.image_guidance`` (ignored when guidance is 0 or there is no media). ``kv``: a KV
    state to reuse (a chat keeps one across turns; only what follows the prefix it holds is
    prefilled). ``draft``: speculative decoding for greedy text prompts (same tokens, fewer
    steps of ``model``); other requests decode plainly.

    Raises:
        ModelError: the prompt alone fills the context window.
    """
    room = context_length(model) - len(input_ids)
    if room <= 0:
        raise ModelError(
            f"the prompt has {len(input_ids)} tokens but the model's context holds "
            f"{context_length(model)}; shorten the conversation (/reset in the chat)"
        )
    guided = config.image_guidance > 0 and bool(media) and reference_ids is not None
    if draft is not None and config.temperature == 0 and config.use_cache and not media:
        from lhama.inference.speculative import Turn, speculative_ids  # it builds on this module

        yield from speculative_ids(model, draft, Turn(input_ids, config, eos_ids), kv)
        return
    device = model.language_model.get_input_embeddings().weight.device
    sequence = torch.tensor([list(input_ids)], dtype=torch.long, device=device)  # (1, T)
    generator = new_generator(config.seed, device)
    if config.use_cache:  # a static cache for the whole answer (lhama.inference.kv)
        kv = kv if kv is not None else KVState()
        out = prefill(model, input_ids, media, kv, min(config.max_new_tokens, room))
    else:
        out = model(sequence, media=media, use_cache=False, logits_to_keep=1)
    reference = _TextOnly(model, reference_ids, device) if guided else None
    limit = min(config.max_new_tokens, room)
    for step in range(limit):
        logits = out.logits[0, -1]
        if reference is not None:
            logits = guided_logits(logits, reference.logits, config)
        token = next_token(logits, sequence[0], config, generator, len(input_ids))
        yield token
        if token in eos_ids or step == limit - 1:  # no forward for a token nothing follows
            return
        new_token = torch.tensor([[token]], device=device)
        sequence = torch.cat([sequence, new_token], dim=1)
        if reference is not None:
            reference.advance(new_token)
        if config.use_cache:
            out = decode_step(model.language_model, kv, token)
        else:
            out = model(sequence, media=media, use_cache=False, logits_to_keep=1)


def decode_step(language_model: torch.nn.Module, kv: KVState, token: int) -> Any:
    """Run one ``token`` through ``language_model`` into ``kv`` (appending it to ``kv.ids``);
    returns an output whose ``logits[0, -1]`` follow it. Llama-family decoders on a static cache
    take the lean step (:mod:`lhama.inference.lean`: the same logits, less overhead)."""
    lean = lean_decoder(language_model)
    if usable(lean, kv.cache):
        out = _Logits(lean.step(token, kv.cache)[None])  # (1, 1, V)
    else:
        device = language_model.get_input_embeddings().weight.device
        out = language_model(input_ids=torch.tensor([[token]], device=device), past_key_values=kv.cache,
                             use_cache=True, logits_to_keep=1)
    kv.ids.append(token)
    return out


@dataclass
class _Logits:
    logits: torch.Tensor


def guided_logits(logits: torch.Tensor, reference: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """Image-guided scores (V,) from the with-image logits and the without-image ``reference``
    logits: ``(1 + g) log p - g log p_ref`` where ``p >= plausibility * max p``, else -inf."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    log_ref = torch.log_softmax(reference.float(), dim=-1)
    mixed = (1 + config.image_guidance) * log_p - config.image_guidance * log_ref
    implausible = log_p < log_p.max() + math.log(config.plausibility)
    return mixed.masked_fill(implausible, float("-inf"))


class _TextOnly:
    """The prompt without its media, decoded alongside with its own KV cache (image guidance)."""

    def __init__(self, model: LhamaModel, input_ids: Sequence[int], device: torch.device) -> None:
        self.model = model
        out = model(torch.tensor([list(input_ids)], dtype=torch.long, device=device), use_cache=True, logits_to_keep=1)
        self.logits, self.past = out.logits[0, -1], out.past_key_values

    def advance(self, new_token: torch.Tensor) -> None:
        out = self.model.language_model(input_ids=new_token, past_key_values=self.past, use_cache=True, logits_to_keep=1)
        self.logits, self.past = out.logits[0, -1], out.past_key_values


def stream_text(
    tokenizer: Any,
    token_ids: Iterator[int],
    stop: Sequence[str] = (),
    eos_ids: Sequence[int] = (),
) -> Iterator[str]:
    """Turn a stream of token ids into text deltas, ending at the first stop string.

    Text that might be the start of a stop string, or an incomplete UTF-8 character, is held
    back until the next token decides it. Decoding the whole answer each step (rather than
    token by token) keeps multi-token characters and word-joining spaces right.
    """
    ids: list[int] = []
    emitted = ""
    for token in token_ids:
        if token in eos_ids:
            break
        ids.append(token)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        cut = _find_stop(text, stop)
        if cut is not None:
            yield text[len(emitted):cut]
            return
        safe = len(text) - _held_back(text, stop)
        if safe > len(emitted):
            yield text[len(emitted):safe]
            emitted = text[:safe]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if len(text) > len(emitted):
        yield text[len(emitted):]


def complete(
    model: LhamaModel,
    tokenizer: Any,
    input_ids: Sequence[int],
    config: GenerationConfig,
    media: Mapping[str, torch.Tensor] | None = None,
    reference_ids: Sequence[int] | None = None,
    *,
    kv: KVState | None = None,
    draft: Draft | None = None,
) -> Iterator[str | Completion]:
    """Stream text deltas, then yield one :class:`Completion` with the totals
    (``reference_ids``, ``kv``, ``draft``: see :func:`generate_ids`)."""
    eos_ids = eos_token_ids(model, tokenizer)
    produced: list[int] = []

    def counted() -> Iterator[int]:
        for token in generate_ids(model, input_ids, config, media, eos_ids, reference_ids, kv=kv, draft=draft):
            produced.append(token)
            yield token

    pieces = []
    for delta in stream_text(tokenizer, counted(), config.stop, eos_ids):
        pieces.append(delta)
        yield delta
    yield Completion("".join(pieces), produced, finish_reason(produced, config, eos_ids), len(input_ids))


def finish_reason(produced: Sequence[int], config: GenerationConfig, eos_ids: Sequence[int]) -> str:
    """``"stop"`` when the answer ended by itself (EOS or a stop string, i.e. before the token
    budget), else ``"length"``."""
    ended = bool(produced) and (produced[-1] in eos_ids or len(produced) < config.max_new_tokens)
    return "stop" if ended else "length"


def eos_token_ids(model: LhamaModel, tokenizer: Any) -> tuple[int, ...]:
    """Every id that ends a turn: the tokenizer's EOS plus the generation config's."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_config = getattr(model.language_model, "generation_config", None)
    configured = getattr(gen_config, "eos_token_id", None)
    if configured is not None:
        ids.update([configured] if isinstance(configured, int) else configured)
    return tuple(sorted(ids))


def context_length(model: LhamaModel) -> int:
    """Most positions the decoder accepts (prompt + answer)."""
    config = model.language_model.config
    return int(getattr(config, "max_position_embeddings", None) or 2048)


def next_token(
    logits: torch.Tensor,
    sequence: torch.Tensor,
    config: GenerationConfig,
    generator: torch.Generator | None,
    answer_from: int = 0,
) -> int:
    """Pick the next token from one row of logits (V,) exactly as :func:`generate_ids` does
    (repetition penalty over ``sequence`` (T,), or over its answer part ``sequence[answer_from:]``
    when ``config.repetition_scope`` is "answer"; n-gram blocking over the answer part; then
    greedy or sampled). Used by batched decoders."""
    counted = sequence[answer_from:] if config.repetition_scope == "answer" else sequence
    logits = _adjust_logits(logits.float(), counted, config)
    if config.no_repeat_ngram:
        banned = repeated_ngram_ends(sequence[answer_from:].tolist(), config.no_repeat_ngram)
        if banned:
            logits = logits.clone()
            logits[banned] = -math.inf
    return _pick(logits, config, generator)


def repeated_ngram_ends(answer: Sequence[int], n: int) -> list[int]:
    """The tokens that would make ``answer`` say an ``n``-token run for the second time: each
    token that followed an earlier occurrence of the answer's last ``n - 1`` tokens."""
    if len(answer) < n:
        return []
    tail = list(answer[len(answer) - n + 1:])
    return sorted({answer[i + n - 1] for i in range(len(answer) - n + 1) if list(answer[i:i + n - 1]) == tail})


def new_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """The sampling generator :func:`generate_ids` uses for ``seed`` (None: torch's global RNG)."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


def _adjust_logits(logits: torch.Tensor, sequence: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    if config.repetition_penalty != 1.0:
        logits = logits.clone()
        seen = torch.unique(sequence)
        scores = logits[seen]
        logits[seen] = torch.where(scores > 0, scores / config.repetition_penalty, scores * config.repetition_penalty)
    return logits


def _pick(logits: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None) -> int:
    if config.temperature == 0:
        return int(torch.argmax(logits))
    # Shift the best logit to 0 before dividing: a tiny temperature (or a tiny repetition penalty,
    # which divides positive logits by it) then sends the others to -inf instead of overflowing
    # the best to inf, which made NaN probabilities and killed the serving thread.
    # The temperature is floored at the dtype's smallest normal number, which 1e-300 rounds below.
    limits = torch.finfo(logits.dtype)
    finite = torch.nan_to_num(logits, posinf=limits.max, neginf=limits.min)
    probs = torch.softmax((finite - finite.max()) / max(config.temperature, limits.tiny), dim=-1)
    if config.top_p < 1.0:
        probs = _top_p_filter(probs, config.top_p)
    return int(torch.multinomial(probs, 1, generator=generator))


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability mass reaches ``top_p``."""
    sorted_probs, order = torch.sort(probs, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of strictly better tokens
    drop = before >= top_p
    drop[0] = False  # the best token always stays: a top_p below float32's range (1e-139 rounds to 0)
    # dropped every token and made 0/0 NaN probabilities (a 500 in serve)
    sorted_probs[drop] = 0.0
    filtered = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return filtered / filtered.sum()


def _find_stop(text: str, stop: Sequence[str]) -> int | None:
    positions = [text.find(s) for s in stop if s and s in text]
    return min(positions) if positions else None


def _held_back(text: str, stop: Sequence[str]) -> int:
    """How many trailing characters to keep back: an incomplete character, or a stop prefix."""
    if text.endswith("\ufffd"):
        return 1
    longest = 0
    for s in stop:
        for size in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:size]):
                longest = max(longest, size)
                break
    return longest
