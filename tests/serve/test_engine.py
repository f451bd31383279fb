"""The engine's batching must not change answers: a request decoded in a batch with others
produces exactly the tokens it produces alone."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
import torch

from lhama.model.build import LoadedModel
from lhama.inference.generate import Completion, GenerationConfig, eos_token_ids, generate_ids
from lhama.guard import Guard, Verdict
from lhama.serve.engine import Engine, Prompt
from lhama.serve.errors import RequestTimeout, ServerBusy
from lhama.serve.settings import ServeSettings
from tests.conftest import tiny_loaded

TEXTS = ["Qual é a capital do Brasil?", "olá", "Descreva a imagem. Um gato preto dorme sobre o sofá da sala.",
         "The quick brown fox", "A capital do Brasil é Brasília. Usuário: olá! Assistente:"]


def solo(loaded: LoadedModel, ids: list[int], config: GenerationConfig, media: dict | None = None) -> list[int]:
    return list(generate_ids(loaded.model, ids, config, media, eos_token_ids(loaded.model, loaded.tokenizer)))


def run_together(engine: Engine, prompts: Sequence[Prompt], configs: Sequence[GenerationConfig]) -> list[Completion]:
    """Submit everything before the worker starts, so the requests really share decode steps."""
    jobs = [engine.submit(p, c) for p, c in zip(prompts, configs)]
    results: list[Completion | None] = [None] * len(jobs)

    def consume(i: int) -> None:
        *_, results[i] = engine.stream(jobs[i])

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    engine.start()
    for thread in threads:
        thread.join(timeout=120)
    engine.close()
    return results


def test_batched_greedy_tokens_equal_solo_tokens() -> None:
    loaded = tiny_loaded(image=None)
    prompts = [Prompt([], loaded.tokenizer(t)["input_ids"]) for t in TEXTS]
    configs = [GenerationConfig(max_new_tokens=n) for n in (24, 5, 30, 17, 24)]  # rows leave at different steps
    got = run_together(Engine(loaded, ServeSettings(max_batch=3)), prompts, configs)  # 3 + later joins
    for prompt, config, completion in zip(prompts, configs, got):
        assert completion.token_ids == solo(loaded, prompt.input_ids, config)
        assert completion.prompt_tokens == len(prompt.input_ids)


def test_batched_image_prompts_and_seeded_sampling_equal_solo() -> None:
    loaded = tiny_loaded()
    token = loaded.model.token_ids["image"]
    torch.manual_seed(1)
    pictures = [torch.randn(1, 3, 32, 32) for _ in range(2)]
    prompts = [Prompt([], [1] + [token] * 16 + loaded.tokenizer(t)["input_ids"], {"image": p})
               for t, p in zip(TEXTS[:2], pictures)]
    prompts.append(Prompt([], loaded.tokenizer(TEXTS[2])["input_ids"]))
    configs = [GenerationConfig(max_new_tokens=12), GenerationConfig(max_new_tokens=12, temperature=0.9, seed=3),
               GenerationConfig(max_new_tokens=12, temperature=1.2, top_p=0.8, seed=5, repetition_penalty=1.3)]
    got = run_together(Engine(loaded, ServeSettings(max_batch=8)), prompts, configs)
    for prompt, config, completion in zip(prompts, configs, got):
        assert completion.token_ids == solo(loaded, prompt.input_ids, config, prompt.media)


def test_image_guided_requests_batched_with_plain_ones_equal_solo() -> None:
    """A guided request takes two rows (its prompt and the prompt without the image); mixed with
    plain requests that leave at other steps, every answer is what it would be alone."""
    loaded = tiny_loaded()
    token = loaded.model.token_ids["image"]
    torch.manual_seed(2)
    pictures = [torch.randn(1, 3, 32, 32) for _ in range(2)]
    texts = [loaded.tokenizer(t)["input_ids"] for t in TEXTS[:2]]
    prompts = [Prompt([], [1] + [token] * 16 + ids, {"image": p}, reference_ids=[1] + ids) for ids, p in zip(texts, pictures)]
    prompts += [Prompt([], loaded.tokenizer(TEXTS[2])["input_ids"]), Prompt([], [1] + [token] * 16 + texts[0], {"image": pictures[1]})]
    guided = GenerationConfig(max_new_tokens=14, image_guidance=1.5, plausibility=1e-3)
    configs = [guided, GenerationConfig(max_new_tokens=6, image_guidance=0.7, temperature=0.9, seed=4),
               GenerationConfig(max_new_tokens=9), GenerationConfig(max_new_tokens=11)]
    got = run_together(Engine(loaded, ServeSettings(max_batch=3)), prompts, configs)
    for prompt, config, completion in zip(prompts, configs, got):
        expected = list(generate_ids(loaded.model, prompt.input_ids, config, prompt.media,
                                     eos_token_ids(loaded.model, loaded.tokenizer), prompt.reference_ids))
        assert completion.token_ids == expected
    plain = solo(loaded, prompts[0].input_ids, GenerationConfig(max_new_tokens=14), prompts[0].media)
    assert got[0].token_ids != plain  # the guidance really changed this answer


def test_full_queue_is_refused_and_cancelled_jobs_end() -> None:
    loaded = tiny_loaded(image=None)
    engine = Engine(loaded, ServeSettings(max_queue=2))
    prompt = Prompt([], loaded.tokenizer("olá")["input_ids"])
    first, second = engine.submit(prompt, GenerationConfig()), engine.submit(prompt, GenerationConfig())
    with pytest.raises(ServerBusy):
        engine.submit(prompt, GenerationConfig())
    first.cancel()
    engine.start()
    assert list(first.token_ids()) == []  # cancelled before it was prefilled: no tokens
    *_, done = engine.stream(second)
    engine.close()
    assert done.token_ids and done.finish_reason in ("stop", "length")


def test_timeout_raises_request_timeout() -> None:
    loaded = tiny_loaded(image=None)
    engine = Engine(loaded, ServeSettings(request_timeout_s=0.05))
    job = engine.submit(Prompt([], loaded.tokenizer("olá")["input_ids"]), GenerationConfig())
    with pytest.raises(RequestTimeout):  # the worker was never started
        list(engine.stream(job))
    assert job.cancelled.is_set()


class WordGuard(Guard):
    """A test double with the real guard interface: a message containing ``word`` is unsafe (S1)."""

    def __init__(self, word: str) -> None:
        self.word = word

    def check(self, messages, role="user") -> Verdict:
        last = messages if isinstance(messages, str) else messages[-1]["content"]
        return Verdict(False, ("S1",)) if self.word in last else Verdict(True)


def test_guard_refuses_input_in_portuguese_and_cuts_streamed_output() -> None:
    loaded = tiny_loaded(image=None)
    prompt = Prompt([{"role": "user", "content": "olá"}], loaded.tokenizer("olá")["input_ids"])
    engine = Engine(loaded, ServeSettings())
    engine.start()
    *_, free = engine.stream(engine.submit(prompt, GenerationConfig(max_new_tokens=12)))
    refused = Engine(loaded, guard=WordGuard("olá"))
    *deltas, done = refused.stream(refused.submit(prompt, GenerationConfig()))
    assert done.finish_reason == "content_filter" and done.categories == ("S1",)
    assert "".join(deltas) == done.text and done.text.startswith("Desculpe, não posso ajudar")
    assert done.token_ids == []  # nothing was generated
    engine.guard = WordGuard(free.text[2:4])  # a word the unguarded answer contains
    *deltas, guarded = engine.stream(engine.submit(prompt, GenerationConfig(max_new_tokens=12)))
    engine.close()
    assert guarded.finish_reason == "content_filter" and guarded.categories == ("S1",)
    shown, _, notice = guarded.text.rpartition("[Resposta interrompida")  # the cut says so, in Portuguese
    assert free.text[2:4] not in shown and free.text.startswith(shown.rstrip("\n"))
    assert notice.startswith(" pelo filtro de segurança: crimes violentos (S1)")
    assert "".join(deltas) == guarded.text


def test_a_failing_request_fails_alone_and_the_worker_keeps_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug hit while picking a request's first token (prefill) or a later one (decode) ends
    that request with the error; the worker thread survives and answers the next request."""
    import lhama.serve.engine as engine_module

    loaded = tiny_loaded(image=None)
    prompt = Prompt([], loaded.tokenizer("olá")["input_ids"])
    config = GenerationConfig(max_new_tokens=4)
    real_next_token, calls = engine_module.next_token, []

    def next_token_failing_on(*fail_at: int):
        def pick(*args, **kwargs):
            calls.append(1)
            if len(calls) in fail_at:
                raise RuntimeError("injected bug")
            return real_next_token(*args, **kwargs)
        return pick

    engine = Engine(loaded, ServeSettings(request_timeout_s=10))  # a dead worker: a timeout, not a hang
    engine.start()
    for fail_at in (1, 2):  # 1: the prefill's token, 2: the first decode step's
        calls.clear()
        monkeypatch.setattr(engine_module, "next_token", next_token_failing_on(fail_at))
        with pytest.raises(RuntimeError, match="injected bug"):
            list(engine.stream(engine.submit(prompt, config)))
        *_, after = engine.stream(engine.submit(prompt, config))
        assert after.token_ids == solo(loaded, prompt.input_ids, config)
    engine.close()
