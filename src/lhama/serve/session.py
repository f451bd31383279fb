"""A multi-turn chat with one loaded model: history, attached images, streamed answers.

Used by ``lhama chat`` (one-shot and the REPL). It knows nothing about terminals or HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lhama.data.conversation import Message, encode_prompt, encode_without_media, render_prompt, stop_strings
from lhama.guard import Guard, StreamGuard, Verdict, refusal_text
from lhama.model.branches import KIND, stills
from lhama.model.build import LoadedModel
from lhama.model.transcribe import Progress, Transcriber
from lhama.inference.generate import Completion, GenerationConfig, complete
from lhama.inference.kv import KVState, shared_prefix
from lhama.inference.prefix_store import StoredPrefix
from lhama.inference.speculative import Draft
from lhama.serve.captions import CAPTION_CONFIG, caption_prompt
from lhama.serve.tools import ToolPlan, render_with_tools
from lhama.serve.cascade import Cascade, whisper_transcriber
from lhama.serve.kinds import SERVED
from lhama.serve.verbatim import verbatim_answer


@dataclass
class ChatSession:
    loaded: LoadedModel
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    system_prompt: str | None = None  # None: the model's own (its lhama_generation.json); "": none
    history: list[Message] = field(default_factory=list)
    # Branch kind -> its items in history order: "image" (3, S, S), "video" (F, 3, S, S), "audio" (n_mels + 1, F).
    media: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    pending_media: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # attached, not yet asked about
    guard: Guard | None = None  # checks each question (and the model's caption of its images) and answer
    # The conversation's KV cache: a turn prefills only what is new, in chunks, so it holds a fresh prefill's bits.
    kv: KVState = field(default_factory=lambda: KVState(chunked=True))
    draft: Draft | None = None  # speculative decoding (greedy text turns; lhama.inference.speculative)
    # Speech and video a model has no branch for, as text (lhama.serve.cascade): notes for the next question.
    pending_notes: list[str] = field(default_factory=list)
    transcriber: Transcriber = field(default_factory=whisper_transcriber)  # opens (prepares) Whisper on first use
    progress: Progress | None = None  # (done, total) windows while a long recording is transcribed
    ocr: bool | None = None  # read text in attached images (lhama.data.ocr); None: when tesseract is installed
    tools: ToolPlan | None = None  # functions the model may call (lhama.serve.tools); answers hold <tool_call>s
    prefix: StoredPrefix | None = None  # a new conversation's opening keys/values from disk (lhama.inference.prefix_store)

    def attach(self, kind: str, path: str | Path) -> None:
        """Read a medium of branch ``kind`` (``model/branches.py``: "image", "video", "audio" or a
        registered one) now, so errors show at once, for the next question: the tensor for the
        model's branch, else the note that stands in for it (lhama.serve.cascade: an image's
        labels, a video's frame names, speech's Whisper transcript, whole file up to 10 min).
        The tracks its file carries follow it (a video's sound track: :meth:`attach_track`),
        then, for an image with OCR on, the text tesseract reads in it.

        Raises:
            ModelError: no branch and nothing to tell it with (a text-only model and an image).
            DataError: an unreadable medium. CheckpointError: no Whisper.
        """
        seen, told = self._cascade().take(kind, path), len(self.pending_notes)
        for carried in KIND[kind].carries:
            self.attach_track(carried, path)
        self._keep(kind, seen, told)  # what is seen, then what is heard
        read_text = getattr(SERVED.get(kind), "text", None)  # an image's text, read by tesseract
        if read_text is not None and self.ocr is not False:
            note = read_text(path, self.ocr)
            self.pending_notes.extend([note] if note else [])

    def attach_track(self, kind: str, path: str | Path) -> bool:
        """Attach the ``kind`` track of another medium's file for the next question (a video's
        sound track, as Video-LLaMA feeds it to the audio branch; a model without one gets its
        transcript as text). Skipped (False) when the file has no such track or a silent one;
        True when attached.

        Raises:
            DataError: the file cannot be read.
        """
        item = self._cascade().take(kind, path, track=True)
        self._keep(kind, item, len(self.pending_notes))
        return item is not None

    def _cascade(self) -> Cascade:
        return Cascade(self.loaded, self.transcriber, self.progress)

    def _keep(self, kind: str, item: torch.Tensor | str | None, at: int) -> None:
        """A medium read for the ``kind`` branch, for the next question; a note that stands in for
        it goes into the question's notes at ``at``; None (no sound track) is skipped."""
        if isinstance(item, torch.Tensor):
            self.pending_media.setdefault(kind, []).append(item)
        elif item is not None:
            self.pending_notes.insert(at, item)

    def reset(self) -> None:
        """Forget the conversation and any attached images, videos and audio."""
        self.history.clear()
        self.kv.reset()
        self.media.clear()
        self.pending_media.clear()
        self.pending_notes.clear()

    def ask(self, text: str) -> Iterator[str | Completion]:
        """Add a user turn and stream the answer: text deltas, then a :class:`Completion`.

        A question the guard refuses gets a Portuguese refusal (finish_reason
        ``content_filter``); an answer is cut at its first unsafe sentence. A request for the
        words of speech attached to this turn ("Transcreva o que foi dito.") is answered with
        its transcript itself, not by the model (:mod:`lhama.serve.verbatim`). If the caller stops
        early (Ctrl-C), the partial answer stays in the history.
        """
        placeholders = self.loaded.config.placeholders  # in merge order: images, then videos, then audio
        content = "".join(f"{text}\n" for kind, text in placeholders.items() for _ in self.pending_media.get(kind, []))
        heard = "".join(f"{note}\n" for note in self.pending_notes) + text.strip()  # the guard reads the notes too
        content += heard
        told = verbatim_answer(text, self.pending_notes)  # "Transcreva...": the transcript itself (lhama.serve.verbatim)
        self.pending_notes.clear()
        verdict = self._check_question(heard)
        self.history.append({"role": "user", "content": content})
        for kind, items in self.pending_media.items():
            self.media.setdefault(kind, []).extend(items)
        self.pending_media.clear()
        stream = self._refuse(verdict) if verdict is not None else self._told(told) if told else self._generate()
        answer: list[str] = []
        try:
            for item in stream:
                if isinstance(item, str):
                    answer.append(item)
                yield item
        finally:
            self.history.append({"role": "assistant", "content": "".join(answer).strip()})

    def _check_question(self, text: str) -> Verdict | None:
        """The guard's unsafe verdict on the question (and its new images), else None."""
        if self.guard is None:
            return None
        messages = [*self.history, {"role": "user", "content": text}]
        seen = stills({kind: torch.stack(items) for kind, items in self.pending_media.items() if items})
        if seen is not None:  # the images, and each video's middle frame
            verdict = self.guard.check_with_caption(messages, self._caption(seen))
        else:
            verdict = self.guard.check(messages, "user")
        return None if verdict.safe else verdict

    def _caption(self, images: torch.Tensor) -> str:
        _, input_ids, media = caption_prompt(self.loaded, images)
        *_, done = complete(self.loaded.model, self.loaded.tokenizer, input_ids, CAPTION_CONFIG, media)
        return done.text

    def _refuse(self, verdict: Verdict) -> Iterator[str | Completion]:
        text = refusal_text(verdict)
        yield text
        yield Completion(text, [], "content_filter", 0, verdict.categories)

    def _told(self, text: str) -> Iterator[str | Completion]:
        """An answer the cascade gives itself (lhama.serve.verbatim), checked by the guard like the model's."""
        stream = iter([text, Completion(text, [], "stop", 0)])
        return stream if self.guard is None else _guarded(stream, StreamGuard(self.guard, self.history))

    def _generate(self) -> Iterator[str | Completion]:
        tokenizer = self.loaded.tokenizer
        messages = self._messages()
        prompt = render_with_tools(tokenizer, messages, self.tools) if self.tools else render_prompt(tokenizer, messages)
        input_ids = encode_prompt(tokenizer, prompt, self.loaded.expansions())
        media = {kind: torch.stack(items) for kind, items in self.media.items() if items}  # (n, ...) per kind
        config = replace(self.generation, stop=self.generation.stop + stop_strings(tokenizer))
        reference_ids = None
        if media and config.image_guidance:  # the same conversation as text alone (lhama.inference.generate)
            reference_ids = encode_without_media(tokenizer, self._messages(), self.loaded.config.placeholders.values(),
                                                 self.loaded.expansions())
        if self.prefix is not None and not self.kv.ids and self.tools is None and _seedable(self.draft):
            self.kv = self.prefix.seed(self.loaded.model, self._opening())  # the prefill then starts after it
        stream = complete(self.loaded.model, tokenizer, input_ids, config, media or None, reference_ids,
                          kv=self.kv, draft=self.draft)
        if self.guard is None:
            return stream
        return _guarded(stream, StreamGuard(self.guard, self.history))

    def _opening(self) -> list[int]:
        """The prompt ids every conversation of this session begins with: the system prompt and
        the user turn's opening (the ids two renders with different user words share)."""
        tokenizer = self.loaded.tokenizer
        ids = [encode_prompt(tokenizer, render_prompt(tokenizer, [*self._system(), {"role": "user", "content": word}]))
               for word in ("a", "b")]
        return ids[0][: shared_prefix(*ids)]

    def _messages(self) -> list[Message]:
        return self._system() + self.history

    def _system(self) -> list[Message]:
        system = self.loaded.generation.system_prompt if self.system_prompt is None else self.system_prompt
        return [{"role": "system", "content": system}] if system else []


def _guarded(stream: Iterator[str | Completion], watch: StreamGuard) -> Iterator[str | Completion]:
    """Release the answer one checked sentence at a time; stop at the first unsafe one."""
    shown: list[str] = []
    for item in stream:
        step = watch.finish() if isinstance(item, Completion) else watch.feed(item)
        if step.text:
            shown.append(step.text)
            yield step.text
        if watch.blocked:
            stream.close()
            yield Completion("".join(shown), [], "content_filter", 0, watch.verdict.categories)
            return
        if isinstance(item, Completion):
            yield replace(item, text="".join(shown))


def _seedable(draft: Draft | None) -> bool:
    """Whether a new conversation may start from the stored opening: with no draft, or a prompt lookup (no model of its
    own whose keys/values would have to be built for the same ids); a draft model reads the prompt itself."""
    return draft is None or draft.model is None
