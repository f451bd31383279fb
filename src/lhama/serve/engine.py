"""The serving engine: one loaded model, one worker thread, a queue of requests decoded together.

Callers :meth:`Engine.submit` a :class:`Prompt` and iterate :meth:`Engine.stream` (text
deltas, then a :class:`~lhama.inference.generate.Completion`). The worker thread owns the model:
it prefills each new request alone, then advances every active request by one token per
forward step (:class:`~lhama.inference.batch.DecodeBatch`), admitting queued requests between
steps (continuous batching). Token ids go to each request's own queue; detokenising and stop
strings run in the caller's thread, which cancels the request when its answer is complete.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from lhama.data.conversation import Message
from lhama.guard import Guard, StreamGuard, Verdict, refusal_text
from lhama.model.branches import stills
from lhama.model.build import LoadedModel
from lhama.inference.generate import (
    Completion,
    GenerationConfig,
    eos_token_ids,
    finish_reason,
    guided_logits,
    new_generator,
    next_token,
    stream_text,
)
from lhama.inference.batch import DecodeBatch
from lhama.inference.prefix import PrefixCache
from lhama.serve.captions import CAPTION_CONFIG, caption_prompt
from lhama.serve.errors import RequestTimeout, ServerBusy
from lhama.serve.settings import ServeSettings

_DONE = None  # end-of-stream marker in a job's token queue


@dataclass(frozen=True)
class Prompt:
    """A request ready for the model: its messages (for the guard), token ids and media."""

    messages: list[Message]
    input_ids: list[int]
    media: dict[str, torch.Tensor] | None = None
    reference_ids: list[int] | None = None  # the prompt without its media, for image guidance
    told: str | None = None  # the answer, given without the model (a transcription request: lhama.serve.verbatim)


@dataclass
class Job:
    """One submitted request. The worker puts token ids on ``tokens``, then ``_DONE``."""

    prompt: Prompt
    config: GenerationConfig
    deadline: float  # time.monotonic() after which the caller gives up
    tokens: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    refusal: Verdict | None = None  # the guard refused the input: answer with a refusal, generate nothing

    def cancel(self) -> None:
        self.cancelled.set()

    def token_ids(self) -> Iterator[int]:
        """Token ids as the worker produces them; raises RequestTimeout past the deadline."""
        while True:
            try:
                item = self.tokens.get(timeout=max(0.0, self.deadline - time.monotonic()))
            except queue.Empty:
                self.cancel()
                raise RequestTimeout("the request took longer than the server's timeout", None, "timeout") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


@dataclass
class _Active:
    """A job in the decode batch."""

    job: Job
    sequence: torch.Tensor  # (T,) prompt + answer so far (for the repetition penalty)
    generator: torch.Generator | None
    produced: int = 0
    guided: bool = False  # image guidance: the row after this job's holds its text-only prompt

    @property
    def rows(self) -> int:
        return 2 if self.guided else 1


class Engine:
    def __init__(self, loaded: LoadedModel, settings: ServeSettings | None = None, guard: Guard | None = None) -> None:
        self.loaded = loaded
        self.settings = settings or ServeSettings()
        self.guard = guard
        self.eos_ids = eos_token_ids(loaded.model, loaded.tokenizer)
        self._pending: queue.Queue = queue.Queue(maxsize=self.settings.max_queue)
        self._thread: threading.Thread | None = None
        self._prefix = PrefixCache()  # the worker's prefills (lhama.inference.prefix)

    @property
    def model_id(self) -> str:
        return self.loaded.name or "lhama"

    @property
    def queued(self) -> int:
        return self._pending.qsize()

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lhama-engine", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the worker after the current step; waiting requests end with no tokens."""
        if self._thread is not None:
            self._pending.put(_DONE)
            self._thread.join()
            self._thread = None

    def submit(self, prompt: Prompt, config: GenerationConfig) -> Job:
        """Queue a request. Raises ServerBusy (queue full). An input the guard refuses gives a
        job that answers with a Portuguese refusal (finish_reason ``content_filter``); with
        images, the guard also reads the model's own caption of them (one extra short
        generation through the same queue)."""
        deadline = time.monotonic() + self.settings.request_timeout_s
        if self.guard is not None:
            verdict = self._check_input(prompt)
            if not verdict.safe:
                return Job(prompt, config, deadline, refusal=verdict)
        if prompt.told is not None:
            return self._told(Job(prompt, config, deadline))
        return self._enqueue(Job(prompt, config, deadline))

    def _told(self, job: Job) -> Job:
        """A job whose answer is ``prompt.told``: its tokens (up to the budget, then EOS) are queued
        at once, so it streams, is guarded and counted like a generated answer (word for word
        with a byte-level tokenizer: Qwen2.5's, SmolLM2's, Gemma's byte fallback)."""
        ids = self.loaded.tokenizer.encode(job.prompt.told, add_special_tokens=False)[: job.config.max_new_tokens]
        for token in ids + ([self.eos_ids[0]] if len(ids) < job.config.max_new_tokens and self.eos_ids else []):
            job.tokens.put(token)
        job.tokens.put(_DONE)
        return job

    def _enqueue(self, job: Job) -> Job:
        try:
            self._pending.put_nowait(job)
        except queue.Full:
            raise ServerBusy(f"the server is busy ({self.settings.max_queue} requests waiting); retry later",
                             None, "server_busy") from None
        return job

    def judge(self, prompt: Prompt) -> Verdict:
        """The guard's verdict on ``prompt``'s input, judged as :meth:`submit` judges it (images
        through the model's own caption); needs a guard and, with images, the started worker."""
        return self._check_input(prompt)

    def _check_input(self, prompt: Prompt) -> Verdict:
        images = stills(prompt.media or {})  # the images, and each video's middle frame
        if images is None:
            return self.guard.check(prompt.messages, "user")
        request = Prompt(*caption_prompt(self.loaded, images))
        caption_job = self._enqueue(Job(request, CAPTION_CONFIG, time.monotonic() + self.settings.request_timeout_s))
        *_, caption = self._stream_tokens(caption_job, guarded=False)
        return self.guard.check_with_caption(prompt.messages, caption.text)

    def stream(self, job: Job) -> Iterator[str | Completion]:
        """Text deltas of ``job``'s answer, then one Completion (usage and finish reason).
        With a guard, text is released a checked sentence at a time and cut at the first unsafe
        one. Closing this iterator early cancels the job."""
        if job.refusal is not None:
            text = refusal_text(job.refusal)
            yield text
            yield Completion(text, [], "content_filter", len(job.prompt.input_ids), job.refusal.categories)
            return
        yield from self._stream_tokens(job, guarded=self.guard is not None)

    def _stream_tokens(self, job: Job, guarded: bool) -> Iterator[str | Completion]:
        produced: list[int] = []

        def counted() -> Iterator[int]:
            for token in job.token_ids():
                produced.append(token)
                yield token

        watch = StreamGuard(self.guard, job.prompt.messages) if guarded else None
        shown: list[str] = []
        try:
            for delta in stream_text(self.loaded.tokenizer, counted(), job.config.stop, self.eos_ids):
                text = watch.feed(delta).text if watch else delta
                if text:
                    shown.append(text)
                    yield text
                if watch and watch.blocked:
                    break
            if watch and not watch.blocked:
                tail = watch.finish().text
                if tail:
                    shown.append(tail)
                    yield tail
        finally:
            job.cancel()
        refused = watch.verdict if watch and watch.blocked else None
        reason = "content_filter" if refused else finish_reason(produced, job.config, self.eos_ids)
        yield Completion("".join(shown), produced, reason, len(job.prompt.input_ids),
                         refused.categories if refused else ())

    # --- the worker thread -------------------------------------------------------------

    def _run(self) -> None:
        active: list[_Active] = []
        batch = DecodeBatch()
        with torch.inference_mode():
            while self._admit(active, batch):
                if active:
                    try:
                        self._step(active, batch)
                    except Exception as exc:  # a bug: fail every active request, keep serving
                        for state in active:
                            state.job.tokens.put(exc)
                        active.clear()
                        batch = DecodeBatch()
        for state in active:
            state.job.tokens.put(_DONE)

    def _admit(self, active: list[_Active], batch: DecodeBatch) -> bool:
        """Prefill queued jobs into the batch while there is room; wait if idle. False: closing."""
        while len(active) < self.settings.max_batch:
            try:
                job = self._pending.get(block=not active)
            except queue.Empty:
                return True
            if job is _DONE:
                return False
            state = self._prefill(job, batch)
            if state is not None:
                active.append(state)
        return True

    def _prefill(self, job: Job, batch: DecodeBatch) -> _Active | None:
        """Run the prompt alone, emit the first token; the state if the job goes on."""
        if job.cancelled.is_set():
            job.tokens.put(_DONE)
            return None
        model = self.loaded.model
        device = model.language_model.get_input_embeddings().weight.device
        ids = torch.tensor([job.prompt.input_ids], dtype=torch.long, device=device)  # (1, T)
        # Anything raised here (a LhamaError such as a media mismatch, or a bug) fails this job
        # only: the caller raises it, and the worker thread lives on to serve the others.
        try:
            out = self._prefix.prefill(model, job.prompt.input_ids, job.prompt.media)  # reuses the shared system prompt
            guided = bool(job.config.image_guidance and job.prompt.media and job.prompt.reference_ids)
            state = _Active(job, ids[0], new_generator(job.config.seed, device), guided=guided)
            logits = out.logits[0, -1]
            if guided:
                reference_ids = torch.tensor([job.prompt.reference_ids], dtype=torch.long, device=device)
                reference = model(reference_ids, use_cache=True, past_key_values=DecodeBatch.empty_cache(),
                                  logits_to_keep=1)
                logits = guided_logits(logits, reference.logits[0, -1], job.config)
            if not self._emit(state, logits):
                return None
            batch.add(out.past_key_values, len(job.prompt.input_ids))
            if guided:
                batch.add(reference.past_key_values, len(job.prompt.reference_ids))
        except Exception as exc:
            job.tokens.put(exc)
            return None
        return state

    def _step(self, active: list[_Active], batch: DecodeBatch) -> None:
        """One decode step for every active job (two rows for a guided one); drop the finished ones."""
        last = torch.stack([state.sequence[-1] for state in active for _ in range(state.rows)])  # (rows,)
        logits = batch.step(self.loaded.model.language_model, last)  # (rows, V)
        keep_jobs, keep_rows, row = [], [], 0
        for state in active:
            scores = guided_logits(logits[row], logits[row + 1], state.job.config) if state.guided else logits[row]
            if self._emit(state, scores):
                keep_jobs.append(state)
                keep_rows.extend(range(row, row + state.rows))
            row += state.rows
        active[:] = keep_jobs
        batch.drop(keep_rows)

    def _emit(self, state: _Active, logits: torch.Tensor) -> bool:
        """Pick and hand over one token; False when the job is finished (and told so)."""
        job = state.job
        token = next_token(logits, state.sequence, job.config, state.generator, len(job.prompt.input_ids))
        state.sequence = torch.cat([state.sequence, state.sequence.new_tensor([token])])
        state.produced += 1
        job.tokens.put(token)
        done = token in self.eos_ids or state.produced >= job.config.max_new_tokens or job.cancelled.is_set()
        if done:
            job.tokens.put(_DONE)
        return not done

