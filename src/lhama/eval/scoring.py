"""Model log-likelihood of continuations: how likely is ``continuation`` after a chat prompt
(with optional media)? The scorer behind every multiple-choice evaluation in lhama.

A request is rendered with the model's chat template (``render_prompt``), encoded with its
media placeholders expanded (``encode_prompt``), the continuation's tokens are appended, and one
forward pass gives the log-probability of each continuation token. A request's media are keyed
by branch kind, as in a training batch (:class:`lhama.data.collate.Batch`), so scoring names no
kind; requests with the same number of items of each kind are batched (right-padded; the causal
mask keeps real positions exact).

:class:`PromptScorer` scores several continuations of ONE prompt (retrieval's candidate captions):
the prompt is prefilled once into a kept KV state (:func:`lhama.inference.kv.prefill`), each
continuation runs only its own tokens after it, and the next prompt prefills only what follows the
text it shares with this one (the system prompt; never past a media placeholder, whose pixels
differ from prompt to prompt).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from lhama.data.conversation import Message, encode_prompt, render_prompt
from lhama.errors import DataError, ModelError
from lhama.inference.kv import KVState, prefill, rewind, text_prefix
from lhama.model.build import LoadedModel


@dataclass(frozen=True)
class ScoreRequest:
    """A prompt (messages), the text whose likelihood is wanted, and the prompt's media."""

    messages: tuple[Message, ...]
    continuation: str
    # branch kind -> its items stacked in placeholder order, as ``LhamaModel.forward`` takes them
    # (e.g. pictures (n, 3, S, S) under the image kind; see ``model/pictures.pictures``)
    media: Mapping[str, torch.Tensor] = field(default_factory=dict)

    @property
    def counts(self) -> tuple[tuple[str, int], ...]:
        """How many items of each kind the prompt carries (requests batch together when equal)."""
        return tuple(sorted((kind, len(items)) for kind, items in self.media.items()))


@dataclass(frozen=True)
class Score:
    logprob: float  # sum of the continuation tokens' log-probabilities (nats)
    tokens: int

    @property
    def mean(self) -> float:
        """Per-token log-probability (length-normalised)."""
        return self.logprob / max(self.tokens, 1)


@torch.no_grad()
def score_continuations(
    loaded: LoadedModel,
    requests: Sequence[ScoreRequest],
    batch_size: int = 4,
    on_batch: Callable[[int], None] | None = None,
) -> list[Score]:
    """Log-likelihood of each request's continuation; ``on_batch(n)`` reports progress."""
    _require_branches(loaded, {kind for r in requests for kind in r.media})
    encoded = [_encode(loaded, r) for r in requests]
    scores: list[Score] = []
    for batch in _batches(list(zip(encoded, requests)), batch_size):
        scores.extend(_score_batch(loaded, batch))
        if on_batch is not None:
            on_batch(len(batch))
    return scores


def _require_branches(loaded: LoadedModel, kinds: set[str]) -> None:
    """A one-line error when a request carries media of a kind ``loaded`` has no branch for."""
    missing = sorted(kinds - set(loaded.config.branches))
    if missing:
        has = ", ".join(loaded.config.branches) or "text only"
        raise ModelError(f"the model {loaded.name or ''} has no {missing[0]} branch (it has: {has}), so it cannot "
                         f"score {missing[0]} inputs; use --text-only (captions) or a model directory with one")


def _encode(loaded: LoadedModel, request: ScoreRequest) -> tuple[list[int], list[int]]:
    tokenizer = loaded.tokenizer
    prompt = render_prompt(tokenizer, request.messages)
    prompt_ids = encode_prompt(tokenizer, prompt, loaded.expansions())
    # A transcript prompt ends in "Assistente:"; the answer then starts after a space. A chat
    # template ends in a newline or a role marker, and the answer follows directly.
    text = request.continuation if prompt[-1:].isspace() else " " + request.continuation
    continuation_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not continuation_ids:
        raise DataError(f"the continuation {request.continuation!r} encodes to no tokens")
    return prompt_ids, continuation_ids


def _batches(pairs: list, batch_size: int) -> list[list]:
    """Consecutive runs of at most ``batch_size`` requests with the same media counts."""
    batches: list[list] = []
    for pair in pairs:
        if batches and len(batches[-1]) < batch_size and batches[-1][0][1].counts == pair[1].counts:
            batches[-1].append(pair)
        else:
            batches.append([pair])
    return batches


def _score_batch(loaded: LoadedModel, batch: list) -> list[Score]:
    rows = [prompt + cont for (prompt, cont), _ in batch]
    width = max(len(r) for r in rows)
    pad = loaded.tokenizer.pad_token_id or 0
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])  # (B, T)
    attention_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    media = {kind: torch.cat([request.media[kind] for _, request in batch]) for kind in batch[0][1].media} or None
    # Only the positions that predict continuation tokens need logits: with a 262k vocabulary
    # (Gemma 3) full (B, T, V) logits cost gigabytes and dominate the time.
    wanted = sorted({t for (prompt, cont), _ in batch for t in range(len(prompt) - 1, len(prompt) + len(cont) - 1)})
    column = {t: k for k, t in enumerate(wanted)}
    out = loaded.model(input_ids, media=media, attention_mask=attention_mask, logits_to_keep=torch.tensor(wanted))
    logprobs = torch.log_softmax(out.logits.float(), dim=-1)  # (B, len(wanted), V)
    scores = []
    for row, ((prompt, cont), _) in enumerate(batch):
        columns = torch.tensor([column[t] for t in range(len(prompt) - 1, len(prompt) + len(cont) - 1)])
        picked = logprobs[row, columns, torch.tensor(cont)]
        scores.append(Score(float(picked.sum()), len(cont)))
    return scores


class PromptScorer:
    """Log-likelihood of continuations of one prompt at a time, on one KV state kept between
    prompts; the same scores as :func:`score_continuations` up to float rounding."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded, self.state = loaded, KVState()

    @torch.no_grad()
    def score(self, messages: tuple[Message, ...], continuations: Sequence[str],
              media: Mapping[str, torch.Tensor] | None = None) -> list[Score]:
        """Each continuation's score after ``messages`` (with ``media``, as :class:`ScoreRequest`'s)."""
        media = dict(media or {})
        _require_branches(self.loaded, set(media))
        encoded = [_encode(self.loaded, ScoreRequest(messages, c, media)) for c in continuations]
        prompt = encoded[0][0]
        first = self._prefill(prompt, media, max(len(cont) for _, cont in encoded))
        return [self._continue(first, cont) for _, cont in encoded]

    def _prefill(self, prompt: list[int], media: dict[str, torch.Tensor], room: int) -> torch.Tensor:
        """Prefill ``prompt`` (reusing the kept state's text prefix); log-probs of the next token."""
        model = self.loaded.model
        first_media = text_prefix(prompt, set(model.token_ids.values()))
        if len(self.state.ids) > first_media:
            rewind(self.state, first_media)  # equal placeholder ids are not equal pixels
        out = prefill(model, prompt, media or None, self.state, room)
        return torch.log_softmax(out.logits[0, -1].float(), dim=-1)

    def _continue(self, first: torch.Tensor, cont: list[int]) -> Score:
        """``cont``'s score: its first token from the prompt's last logits, the rest from one
        forward of ``cont[:-1]`` after the prompt; the state is rewound to the prompt after."""
        total = float(first[cont[0]])
        if len(cont) > 1:
            length = len(self.state.ids)
            device = self.loaded.model.language_model.get_input_embeddings().weight.device
            out = self.loaded.model(torch.tensor([cont[:-1]], device=device), past_key_values=self.state.cache,
                                    use_cache=True)
            self.state.ids.extend(cont[:-1])
            logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)  # (len(cont) - 1, V)
            total += float(logprobs[torch.arange(len(cont) - 1), torch.tensor(cont[1:])].sum())
            rewind(self.state, length)
        return Score(total, len(cont))
