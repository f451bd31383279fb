"""Speculative decoding: a small draft model proposes tokens, the model checks them in one step.

Each step the draft (same tokenizer, e.g. Qwen2.5-Coder-0.5B for the 1.5B) decodes up to ``tokens``
greedy tokens on its own, after catching up on the kept tokens it did not propose (lean rows on its
own cache, sized once per answer); the model then runs the last accepted token plus the proposal in one
forward (k + 1 rows: the weights are read once, but each row adds its arithmetic; 4 rows cost ~1.4-1.6
one-row steps on a 2-core CPU, so short proposals pay: one by default, :data:`DRAFT_TOKENS`) and keeps the
proposal up to the first token it would not have chosen itself, plus its own choice there. Every kept token is the model's own greedy choice (repetition penalty included), and each
checked row's logits are the one-row decode step's bit for bit (:func:`check_logits`), so the
answer equals plain greedy decoding token for token, near-ties included; only the number of model
steps changes. The acceptance rate (kept / proposed) decides the speed-up. Sampling, image guidance and prompts with media
decode plainly.

When the draft works is its :class:`Pace`: it joins only once the answer has ``start`` tokens (its own prompt
prefill, a fixed cost, is then paid only by answers long enough to repay it), and it sits out ``rest`` tokens
whenever fewer than ``below`` of its last ``window`` proposals were kept (a check then costs more than the
steps it saves); the model decodes plainly meanwhile, and the draft catches up on its own cache when it
resumes; with a ``streak`` it proposes one token at first and one more after each ``streak`` whole proposals kept in
a row (up to ``Draft.tokens``), one again after a rejection. It may also read only the prompt's last ``Draft.reads``
tokens (and the answer): a shorter prefill of its own, which short answers cannot repay when it reads a whole long
prompt; with a late start, the last ``Draft.reads`` tokens before it joins (``Draft.reads_at_join``), so joining late
costs no longer a prefill. The answer is the same whatever the pace and the reading.

A draft may also be a prompt lookup (:func:`lookup_draft`, :class:`~lhama.inference.lookup.Lookup`): no model, its
proposals the ids that followed the latest earlier occurrence of the sequence's last few ids; a step where it
finds none is the model's plain step. ``lhama chat`` drafts with it by default where :func:`exact_checks` holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from lhama.errors import ConfigError, ModelError
from lhama.inference.draft_vocab import VOCABS, kept_ids, special_ids, trim_head
from lhama.inference.generate import GenerationConfig, context_length, decode_step, next_token
from lhama.inference.kv import KVState, prefill, rewind, shared_prefix
from lhama.inference.lookup import Lookup
from lhama.inference.lean import lean_decoder, usable
from lhama.inference.qlinear import Int4KLinear, Int4Linear, Int6KLinear, Int8Linear
from lhama.inference.quant import check_quant
from lhama.inference.quant_cache import load_for_inference
from lhama.model.build import LoadedModel
from lhama.model.lhama import LhamaModel

# The draft's weights under a quantised model, unless told (``draft_quant``): the 0.5B at int4-g32 costs
# 0.17-0.30 of a 1.5B step against 0.40 at int8, at about the same acceptance (docs/distill.md, sessions 7-8).
DRAFT_QUANT = "int4-g32"
# Proposed per step at most, unless told: on the shipped int4 1.5B with the 0.5B int4-g32 draft (2 threads, 8
# held-out prompts) k = 1 gave x1.107 plain decoding's speed, k = 2 x1.036, k = 3 x0.963: a check of k + 1 rows
# costs more than one step, so short proposals pay (docs/distill.md, session 8; chosen by a rule committed first).
DRAFT_TOKENS = 1
_QUANTISED = (Int4KLinear, Int4Linear, Int6KLinear, Int8Linear)


@dataclass(frozen=True)
class Pace:
    """When the draft proposes: not before the answer has ``start`` tokens, and not for ``rest`` tokens
    after ``window`` proposals in a row of which a share below ``below`` was kept (0: never rests); and how
    many: with ``streak`` > 0, one at first, one more (up to ``Draft.tokens``) after each ``streak`` checks in
    a row that kept the whole proposal, one again after a check that did not (0: always ``Draft.tokens``)."""

    start: int = 0
    below: float = 0.0
    window: int = 4
    rest: int = 8
    streak: int = 0

    def __post_init__(self) -> None:
        if self.start < 0 or self.window < 1 or self.rest < 1 or not 0 <= self.below <= 1 or self.streak < 0:
            raise ConfigError(f"bad draft pace {self}: start >= 0, window >= 1, rest >= 1, 0 <= below <= 1, streak >= 0")


# The default pace: from the first token, no rests (session 9's dev simulation: a later start or rests only
# lowered the speed-up on 24 dev prompts, where the 0.5B's acceptance seldom falls below the ~0.40 break-even).
DRAFT_PACE = Pace()
# Prompt tokens the draft reads, unless told (``Draft.reads``; 0: the whole prompt): the last 24. On the shipped int4
# 1.5B (2 threads, 8 held-out prompts, 3 interleaved rounds) the 0.5B int4-g32 k1 draft reading them gave x1.066 plain
# decoding's speed (median; short answers x1.068, long x1.103) against x1.031 (x0.982, x1.068) reading the whole
# prompt: its own prefill is what short answers could not repay (docs/distill.md, session 9; a rule committed first).
DRAFT_READS = 24


@dataclass
class Draft:
    """A draft model (or a prompt lookup, ``lookup``, with no model), its own KV state, and how many of its
    proposals were kept."""

    model: LhamaModel | None
    tokens: int = DRAFT_TOKENS  # proposed per step at most: the model checks tokens + 1 rows
    kv: KVState = field(default_factory=KVState)
    # A proposal ends before the first draft token whose probability (softmax of the draft's
    # logits) is below this, the first token included (a step may then check the model's own
    # token alone): fewer rows to check and fewer draft steps on tokens the model would likely
    # reject. 0: always ``tokens``.
    confidence: float = 0.0
    pace: Pace = DRAFT_PACE  # when it proposes (the model decodes plainly otherwise)
    # It reads only the last this many prompt tokens (and the answer), 0: the whole prompt. A shorter
    # prefill of its own, perhaps worse proposals; the answer is the same either way.
    reads: int = DRAFT_READS
    # With a late start (``Pace.start``): True, the ``reads`` tokens are the last ones before it joins (prompt and
    # answer so far), so a late join costs what a join at the first token costs; False, the prompt's last ``reads``
    # and the whole answer so far. The same either way for a draft joining at the first token.
    reads_at_join: bool = False
    skip: int = 0  # leading ids of the current prompt that its cache leaves out (set per answer)
    lookup: Lookup | None = None  # instead of a model: proposals found in the sequence itself (no model steps)
    proposed: int = 0
    accepted: int = 0

    def __post_init__(self) -> None:
        if self.reads < 0:
            raise ConfigError(f"a draft reads the last N >= 0 prompt tokens (0: all), got {self.reads}")
        if (self.model is None) == (self.lookup is None):
            raise ConfigError("a draft is a model or a prompt lookup (Draft.lookup), one of the two")

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0


def load_draft(model_dir: str | Path, target: LoadedModel, quant: str = "none",
               tokens: int = DRAFT_TOKENS, vocab: str | None = None) -> Draft:
    """Load ``model_dir`` as a draft for ``target``, its language model as ``quant`` (see
    :func:`~lhama.inference.quant_cache.load_for_inference`; :func:`draft_quant` picks one for a target).
    ``vocab``: its output layer keeps the ids of that named vocabulary and the special tokens only
    (:data:`~lhama.inference.draft_vocab.VOCABS`: "latin", the Latin-script ids; a cheaper draft step,
    the same answer). Raises ConfigError: an unknown vocabulary name.

    Raises:
        ModelError: the draft's tokenizer differs from the target's (the ids would mean other text).
    """
    _check_tokens(tokens)
    if vocab is not None and vocab not in VOCABS:
        raise ConfigError(f"unknown draft vocabulary {vocab!r}; choose one of: {', '.join(VOCABS)}")
    draft = draft_for(target, load_for_inference(model_dir, quant), tokens)
    if vocab is not None:
        language_model = draft.model.language_model
        size = language_model.get_output_embeddings().out_features
        trim_head(language_model, kept_ids(size, 0, special_ids(target.tokenizer), VOCABS[vocab](target.tokenizer)))
    return draft


# ``--draft lookup``: a prompt lookup with no model, 3 ids per step (matches of the last 4..2 ids); ``lhama chat``'s draft when
# none is named (serve.terminal.chat_draft): x1.030 plain decoding's wall on 60 everyday questions, same outputs (docs/distill.md).
LOOKUP = "lookup"
LOOKUP_TOKENS = 3
NO_DRAFT = "none"


def exact_checks(target: LoadedModel) -> bool:
    """Whether a check of several rows gives each row the one-row decode step's bits on ``target`` (so a draft cannot
    change an answer): its language model takes the lean step (:meth:`~lhama.inference.lean.LeanDecoder.step_seq`) with
    quantised or bf16 products (tests/inference/test_speculative_rows.py). fp32 products of several rows round
    otherwise than one row's (other key/value bits from the first check on: tests/inference/test_lookup.py)."""
    language_model = target.model.language_model
    floats = {module.weight.dtype for module in language_model.modules() if isinstance(module, torch.nn.Linear)}
    return lean_decoder(language_model) is not None and floats <= {torch.bfloat16}


def lookup_draft(tokens: int = DRAFT_TOKENS, lookup: Lookup = Lookup(), pace: Pace = DRAFT_PACE) -> Draft:
    """A draft with no model: up to ``tokens`` ids found by ``lookup`` in the whole sequence (prompt and answer)."""
    _check_tokens(tokens)
    return Draft(None, tokens, pace=pace, reads=0, lookup=lookup)


def open_draft(draft: str | Path | None, target: LoadedModel, load: Callable[[str | Path, str], LoadedModel],
               quant: str | None = None, tokens: int = DRAFT_TOKENS) -> Draft | None:
    """The speculative draft ``draft`` names for ``target`` (``--draft``): none (None or :data:`NO_DRAFT`), the prompt lookup
    (:data:`LOOKUP`, no model, :data:`LOOKUP_TOKENS` per step) or a model, opened by the caller's
    ``load(draft, quant)`` (``lhama chat``: the CLI's loader, a name prepared on first use; ``lhama bench
    decode``: a located directory) with ``quant`` as :func:`draft_quant` picks it, proposing up to ``tokens``.

    Raises:
        ModelError: ``tokens`` < 1 (before any load), or the draft's tokenizer is not ``target``'s.
        ConfigError: a ``quant`` this machine cannot run."""
    if draft is None or draft == NO_DRAFT:
        return None
    if draft == LOOKUP:
        return lookup_draft(LOOKUP_TOKENS)
    _check_tokens(tokens)
    return draft_for(target, load(draft, draft_quant(target, quant)), tokens)


def _check_tokens(tokens: int) -> None:
    if tokens < 1:
        raise ModelError(f"the draft must propose at least 1 token per step, got {tokens}")


def check_draft_options(draft: str | None, quant: str | None) -> None:
    """``--draft`` / ``--draft-quant`` as given: a draft quant needs a draft model to apply to (the prompt lookup, chat's
    draft when none is named, has none).

    Raises:
        ConfigError: a quant with no draft named, with ``--draft lookup`` or ``none``, or one this machine cannot run."""
    if quant is None:
        return
    if draft is None:
        raise ConfigError("--draft-quant sets the draft model's weights: add --draft MODEL (e.g. qwen2.5-coder-0.5b-instruct), "
                          "or leave --draft-quant out (the prompt lookup, chat's default draft, has no model)")
    if draft in (LOOKUP, NO_DRAFT):
        raise ConfigError(f"--draft-quant sets a draft model's weights, and --draft {draft} has no model: leave it out")
    check_draft_quant(quant)


def draft_quant(target: LoadedModel, given: str | None = None) -> str:
    """The quant to load a draft of ``target`` with: ``given`` (checked, :func:`check_draft_quant`),
    else :data:`DRAFT_QUANT` when ``target``'s language model is quantised (int8, int4 plans), else
    the target's own float weights (none, or bf16), as a float target was always drafted."""
    if given is not None:
        return check_draft_quant(given)
    language_model = target.model.language_model
    if any(isinstance(module, _QUANTISED) for module in language_model.modules()):
        return DRAFT_QUANT
    return "bf16" if language_model.get_input_embeddings().weight.dtype == torch.bfloat16 else "none"


def check_draft_quant(quant: str) -> str:
    """``quant`` unchanged if a draft can be loaded with it here; else ConfigError (one line, naming
    ``--draft-quant`` and the choices)."""
    check_quant(quant, option="--draft-quant")
    return quant


def draft_for(target: LoadedModel, draft: LoadedModel, tokens: int = DRAFT_TOKENS) -> Draft:
    """``draft`` (loaded) as the draft of ``target``. Raises ModelError: another tokenizer."""
    check_same_tokenizer(target, draft)
    return Draft(draft.model, tokens)


def check_same_tokenizer(target: LoadedModel, draft: LoadedModel) -> None:
    """Raise ModelError (one line) unless the draft's vocabulary is the target's (the target's own
    media placeholder tokens aside)."""
    placeholders = set(target.config.placeholders.values())
    want = {t: i for t, i in target.tokenizer.get_vocab().items() if t not in placeholders}
    got = {t: i for t, i in draft.tokenizer.get_vocab().items() if t not in placeholders}
    if want != got:
        differ = sorted(set(want.items()) ^ set(got.items()), key=str)[:1]
        raise ModelError(
            f"the draft model {draft.name or ''} has another tokenizer than {target.name or 'the model'} "
            f"({len(got)} vs {len(want)} tokens; e.g. {differ[0][0]!r}); pick a draft of the same family "
            "(e.g. qwen2.5-coder-0.5b-instruct for qwen2.5-coder-1.5b-instruct)"
        )


@dataclass(frozen=True)
class Turn:
    """One answer to decode greedily: the prompt's ids (text only), the generation settings, and the
    ids that end the answer."""

    input_ids: Sequence[int]
    config: GenerationConfig
    eos_ids: Sequence[int] = ()


@dataclass(frozen=True)
class _Checker:
    """The model that checks the draft's proposals, its KV state, and its own choice after a sequence."""

    model: LhamaModel
    kv: KVState
    pick: Callable[..., int]


@torch.inference_mode()
def speculative_ids(model: LhamaModel, draft: Draft, turn: Turn, kv: KVState | None = None) -> Iterator[int]:
    """Yield the greedy answer to ``turn`` token by token, as :func:`~lhama.inference.generate.generate_ids`
    would (``kv``: a KV state to reuse), checking ``draft``'s proposals when its :class:`Pace` lets it
    propose and taking the model's plain step otherwise."""
    input_ids, eos_ids = turn.input_ids, turn.eos_ids
    kv = kv if kv is not None else KVState()
    budget = min(turn.config.max_new_tokens, context_length(model) - len(input_ids))
    end = len(input_ids) + budget + draft.tokens + 1  # a draft model's cache is sized once to hold this many positions
    # The model's cache gets the room plain decoding gives it (a check never runs past the budget): the lean step and
    # the prefill attend over the whole cache, and another cache size rounds rows differently (lhama.inference.kv).
    out = prefill(model, input_ids, None, kv, budget)
    # the model's own choice after a sequence (its answer starts after input_ids: n-gram blocking)
    checker = _Checker(model, kv, partial(next_token, config=turn.config, generator=None, answer_from=len(input_ids)))
    token = checker.pick(out.logits[0, -1], _tensor(kv.ids))
    produced, pacer, joined = 1, _Pacer(draft.pace), False
    draft.skip = max(0, len(input_ids) - draft.reads) if draft.reads else 0
    yield token
    while token not in eos_ids and produced < budget:
        count, proposal = min(pacer.tokens(draft.tokens), budget - produced - 1), None
        if count and pacer.drafting(produced):
            if draft.reads and draft.reads_at_join and not joined:
                draft.skip = max(0, len(kv.ids) - draft.reads)  # the last ``reads`` ids before ``token`` (read too)
            proposal, joined = _propose(draft, [*kv.ids, token], count, checker.pick, end), True
        if proposal or (proposal is not None and draft.lookup is None):  # a lookup that found nothing: plain step
            kept = _check(checker, token, proposal, draft)
            pacer.record(len(proposal), len(kept) - 1, produced)
        else:
            logits = decode_step(model.language_model, kv, token).logits[0, -1]
            kept = [checker.pick(logits, _tensor(kv.ids))]
        for token in kept:
            produced += 1
            yield token
            if token in eos_ids:
                return


class _Pacer:
    """A :class:`Pace` applied to one answer: the kept/proposed outcomes of the latest proposals."""

    def __init__(self, pace: Pace) -> None:
        self.pace, self.outcomes, self.resume_at = pace, [], pace.start
        self.size, self.run = 1, 0  # proposals per step (with a streak), and whole proposals kept in a row

    def drafting(self, produced: int) -> bool:
        """Whether the draft proposes after ``produced`` answer tokens."""
        return produced >= self.resume_at

    def tokens(self, most: int) -> int:
        """How many tokens the draft proposes now, ``most`` at most."""
        return min(self.size, most) if self.pace.streak else most

    def record(self, proposed: int, kept: int, produced: int) -> None:
        """Note a check (``kept`` of ``proposed``, made after ``produced`` tokens); rest if the window fell short,
        and size the next proposal by the streak."""
        self.run = self.run + 1 if kept == proposed else 0
        if kept < proposed:
            self.size = 1
        elif self.pace.streak and self.run >= self.pace.streak:
            self.size, self.run = self.size + 1, 0
        self.outcomes = (self.outcomes + [1] * kept + [0] * (proposed - kept))[-self.pace.window:]
        if self.pace.below and len(self.outcomes) == self.pace.window and \
                sum(self.outcomes) < self.pace.below * self.pace.window:
            self.resume_at, self.outcomes = produced + kept + 1 + self.pace.rest, []


def _propose(draft: Draft, ids: list[int], count: int, pick: Callable[..., int], end: int) -> list[int]:
    """Up to ``count`` greedy tokens of the draft after ``ids`` (fewer: see ``Draft.confidence``)."""
    if count == 0:
        return []
    if draft.lookup is not None:
        return draft.lookup.propose(ids[draft.skip:], count)
    logits = _catch_up(draft, ids[draft.skip:], end - draft.skip)
    proposal: list[int] = []
    while not draft.confidence or float(torch.softmax(logits.float(), dim=-1).max()) >= draft.confidence:
        proposal.append(pick(logits, _tensor(ids + proposal)))
        if len(proposal) == count:
            break
        logits = decode_step(draft.model.language_model, draft.kv, proposal[-1]).logits[0, -1]
    return proposal


def _catch_up(draft: Draft, ids: list[int], end: int) -> torch.Tensor:
    """The draft's logits (V,) after ``ids`` (what it reads of the sequence), its cache brought in
    step. Only the ids its cache lacks are run: 1-2 after a check (the kept tokens it did not
    propose itself), as the rows of :func:`check_logits` (the lean rows for a Llama-family draft,
    no transformers forward); more after a rest, as a prefill of those ids on the same cache. A new
    prompt, or a cache too small to hold ``end`` positions, is prefilled whole, sized to hold ``end``."""
    kv = draft.kv
    held = shared_prefix(kv.ids, ids)
    if held and len(ids) - held <= draft.tokens + 1 and (not kv.capacity or kv.capacity >= end):  # 0: a dynamic cache
        rewind(kv, held)
        return check_logits(draft.model.language_model, kv, ids[held:])[-1]
    return prefill(draft.model, ids, None, kv, max(end - len(ids), draft.tokens + 1)).logits[0, -1]


def _check(checker: _Checker, token: int, proposal: list[int], draft: Draft) -> list[int]:
    """Run ``token`` + ``proposal`` through the model in one forward; return the kept proposal
    tokens plus the model's own next choice, with its KV state rewound to what they imply."""
    kv = checker.kv
    base = len(kv.ids)
    feed = [token, *proposal]
    rows = check_logits(checker.model.language_model, kv, feed)  # (k + 1, V): row i follows feed[: i + 1]
    kept: list[int] = []
    for i in range(len(feed)):
        choice = checker.pick(rows[i], _tensor(kv.ids[: base + i + 1]))
        kept.append(choice)
        if i == len(proposal) or choice != proposal[i]:
            break
    draft.proposed += len(proposal)
    draft.accepted += len(kept) - 1
    rewind(kv, base + len(kept))
    return kept


def check_logits(language_model: torch.nn.Module, kv: KVState, feed: Sequence[int]) -> torch.Tensor:
    """Run ``feed`` through ``language_model`` after ``kv``'s ids in one forward, appending it to
    ``kv``; returns the logits (len(feed), V), row i following ``feed[: i + 1]``. Where decoding
    takes the lean step, so does the check (:meth:`~lhama.inference.lean.LeanDecoder.step_seq`):
    each row is then the one-row step's logits bit for bit, so ties break as in plain decoding."""
    lean = lean_decoder(language_model)
    if usable(lean, kv.cache):
        logits = lean.step_seq(feed, kv.cache)
    else:
        device = language_model.get_input_embeddings().weight.device
        ids = torch.tensor([feed], device=device)
        logits = language_model(input_ids=ids, past_key_values=kv.cache, use_cache=True).logits[0]
    kv.ids.extend(feed)
    return logits


def _tensor(ids: Sequence[int]) -> torch.Tensor:
    return torch.tensor(ids, dtype=torch.long)
