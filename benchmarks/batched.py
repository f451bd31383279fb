"""Greedy answers to many prompts at once through lhama's serving engine (continuous batching):
decoding on a CPU is bound by reading the weights, so stepping 8-16 answers together costs about
as much per step as one. Used by the benchmarks that ask a model hundreds of questions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from lhama.data.conversation import Message, encode_prompt, render_prompt, stop_strings
from lhama.inference.generate import Completion, GenerationConfig
from lhama.model.build import LoadedModel
from lhama.serve.engine import Engine, Prompt
from lhama.serve.settings import ServeSettings


def overridden(model_own: GenerationConfig, args) -> GenerationConfig:
    """The model's own decoding settings with a benchmark's ``--repetition-penalty``,
    ``--repetition-scope`` and ``--no-repeat-ngram`` (None or absent: keep the model's)."""
    changes = {"repetition_penalty": args.repetition_penalty, "no_repeat_ngram": args.no_repeat_ngram,
               "repetition_scope": getattr(args, "repetition_scope", None)}
    return replace(model_own, **{k: v for k, v in changes.items() if v is not None})


def answer_all(loaded: LoadedModel, conversations: Sequence[list[Message]], max_new_tokens: int,
               batch: int = 8, decoding: GenerationConfig | None = None) -> list[Completion]:
    """One greedy Completion per conversation (each ends with a user turn), in order. Decoded
    with ``decoding``'s settings (repetition penalty...), by default the model's own
    (``lhama_generation.json``, as chat uses them), always greedy."""
    settings = ServeSettings(max_batch=batch, max_queue=len(conversations) + 1, request_timeout_s=1e9,
                             max_tokens_cap=max_new_tokens, default_max_tokens=max_new_tokens)
    config = replace(decoding or loaded.generation, max_new_tokens=max_new_tokens, temperature=0.0,
                     stop=stop_strings(loaded.tokenizer))
    engine = Engine(loaded, settings)
    engine.start()
    try:
        jobs = []
        for messages in conversations:
            ids = encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, messages), loaded.expansions())
            jobs.append(engine.submit(Prompt(list(messages), ids), config))
        return [next(item for item in engine.stream(job) if isinstance(item, Completion)) for job in jobs]
    finally:
        engine.close()
