"""Speech -> pt-BR text with Whisper's own decoder (CTranslate2), set up the way Whisper's
authors decode long-form audio:

* the prompt ``<|startoftranscript|><|pt|><|transcribe|><|notimestamps|>``: Portuguese, no
  language detection, no translation, no timestamp tokens;
* beam search (5 beams) and ``no_repeat_ngram_size`` against repetition loops;
* temperature fallback: a window whose text compresses too well (gzip ratio above 2.4: a loop)
  or whose mean token log-probability is below -1 is decoded again by sampling at the next
  temperature (0.4, then 0.8, best of 3); when every try fails, the most likely one is kept;
* a window Whisper marks as silence (no-speech probability above 0.6 and a low log-probability)
  gives no text;
* audio longer than 30 s is cut into consecutive 30-s windows (``data.audio.speech_windows``),
  each encoded once and decoded as above; ``progress(done, total)`` after each window.

The decision functions (:func:`compression_ratio`, :func:`needs_fallback`, :func:`decode_window`)
are pure, so they are tested without weights; :class:`Transcriber` opens the real model lazily.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lhama.data.audio import SAMPLE_RATE, AudioSpec, log_mel, speech_windows
from lhama.errors import CheckpointError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TranscribeConfig:
    """How Whisper decodes. The defaults are lhama's settings; :data:`WHISPER_GREEDY` is
    Whisper run plainly (greedy, no fallback), the baseline measured in docs/benchmarks.md."""

    language: str = "pt"
    beam_size: int = 5
    no_repeat_ngram_size: int = 3  # 0: off
    # 0 = beam search. Whisper's own ladder is 0, 0.2 ... 1.0 with best of 5; on a 2-core CPU each
    # step is a whole decode of the window, so lhama climbs in three steps with best of 3.
    temperatures: tuple[float, ...] = (0.0, 0.4, 0.8)
    best_of: int = 3  # samples drawn at a temperature above 0; the most likely is kept
    compression_ratio_threshold: float = 2.4  # above: a repetition loop
    logprob_threshold: float = -1.0  # mean token log-probability below this: unsure
    no_speech_threshold: float = 0.6
    max_length: int = 224  # tokens per 30-s window (Whisper's own limit is 448 with the prompt)
    tokens_per_second: float = 8.0  # a window of s seconds gets at most 16 + 8 s tokens (0: no cap):
    # speech is ~5 tokens/s, so a short clip cannot run into a long hallucinated loop
    window_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be a non-empty list of values >= 0, got {self.temperatures}")
        if self.beam_size < 1 or self.best_of < 1:
            raise ValueError("beam_size and best_of must be >= 1")

    @property
    def prompt(self) -> list[str]:
        return ["<|startoftranscript|>", f"<|{self.language}|>", "<|transcribe|>", "<|notimestamps|>"]


WHISPER_GREEDY = TranscribeConfig(beam_size=1, no_repeat_ngram_size=0, temperatures=(0.0,), max_length=128,
                                  tokens_per_second=0)


@dataclass(frozen=True)
class Attempt:
    """One decoding of one window."""

    text: str
    temperature: float
    avg_logprob: float  # mean log-probability per token (end token included)
    no_speech_prob: float = 0.0
    tries: int = 1  # decodings of the window, this one included (above 1: temperature fallback)

    @property
    def compression_ratio(self) -> float:
        return compression_ratio(self.text)


@dataclass(frozen=True)
class Transcript:
    text: str  # the windows' texts joined by spaces
    windows: tuple[Attempt, ...]  # the attempt kept for each window
    seconds: float  # length of the audio


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression: about 1-2 for speech, high for loops."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def max_tokens(seconds: float, config: TranscribeConfig) -> int:
    """Tokens a window of ``seconds`` may produce: ``config.max_length``, capped by its length."""
    if config.tokens_per_second <= 0:
        return config.max_length
    return min(config.max_length, 16 + int(np.ceil(config.tokens_per_second * seconds)))


def needs_fallback(attempt: Attempt, config: TranscribeConfig) -> bool:
    """A loop (compression ratio too high) or an unsure decoding (log-probability too low)."""
    return (attempt.compression_ratio > config.compression_ratio_threshold
            or attempt.avg_logprob < config.logprob_threshold)


def is_silence(attempt: Attempt, config: TranscribeConfig) -> bool:
    """Whisper's own test: it says "no speech" and is unsure of what it wrote."""
    return attempt.no_speech_prob > config.no_speech_threshold and attempt.avg_logprob < config.logprob_threshold


def decode_window(decode: Callable[[float], Attempt], config: TranscribeConfig) -> Attempt:
    """Decode at each temperature in turn until an attempt needs no fallback (or is silence,
    which gives empty text); if none passes, the attempt with the best mean log-probability,
    preferring those that are not loops."""
    tries: list[Attempt] = []
    for temperature in config.temperatures:
        attempt = replace(decode(temperature), tries=len(tries) + 1)
        if is_silence(attempt, config):
            return replace(attempt, text="")
        if not needs_fallback(attempt, config):
            return attempt
        tries.append(attempt)
    not_loops = [a for a in tries if a.compression_ratio <= config.compression_ratio_threshold]
    return replace(max(not_loops or tries, key=lambda a: a.avg_logprob), tries=len(tries))


WhisperSource = str | Path | Callable[[], str | Path]


class Transcriber:
    """Whisper (CTranslate2) as a transcriber. Cheap to create: the model is opened on the
    first :meth:`transcribe` (so a chat that never hears audio never loads it).

    ``source``: a registered name, a CTranslate2 Whisper directory, or a function returning
    one, called on first use (the CLI prepares ``whisper-base`` there on a first run)."""

    def __init__(self, source: WhisperSource = "whisper-base", config: TranscribeConfig = TranscribeConfig()) -> None:
        self.source = source
        self.config = config
        self._whisper = None
        self._tokenizer = None
        self._opening = threading.Lock()  # server threads may ask at once: open the model once

    def transcribe(self, samples: np.ndarray, progress: Progress | None = None) -> Transcript:
        """Mono 16 kHz samples -> the transcript, window by window (``progress(done, total)``).

        Raises:
            CheckpointError: the Whisper model is not prepared or does not load.
        """
        windows = speech_windows(samples, self.config.window_seconds)
        kept = []
        for done, window in enumerate(windows, 1):
            encoded = self._encode(window)
            seconds = window.size / SAMPLE_RATE
            kept.append(decode_window(lambda t: self._decode(encoded, seconds, t), self.config))
            if progress:
                progress(done, len(windows))
        text = " ".join(a.text for a in kept if a.text)
        return Transcript(text, tuple(kept), samples.size / SAMPLE_RATE)

    def _encode(self, window: np.ndarray):
        import ctranslate2

        whisper = self._model()
        spec = AudioSpec(n_mels=whisper.n_mels, n_frames=round(self.config.window_seconds * 100))
        mel = log_mel(window, spec)[None, :-1].numpy()  # (1, n_mels, 3000): the mask row dropped
        return whisper.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)))

    def _decode(self, encoded, seconds: float, temperature: float) -> Attempt:
        config = self.config
        search = ({"beam_size": config.beam_size} if temperature == 0 else
                  {"beam_size": 1, "num_hypotheses": config.best_of, "sampling_topk": 0,
                   "sampling_temperature": temperature})
        result = self._model().generate(
            encoded, [config.prompt], max_length=max_tokens(seconds, config), return_scores=True, return_no_speech_prob=True,
            no_repeat_ngram_size=config.no_repeat_ngram_size, **search)[0]
        best = int(np.argmax(result.scores)) if temperature > 0 else 0
        ids = result.sequences_ids[best]
        # CTranslate2's score is the summed log-probability over length (length_penalty 1);
        # Whisper's mean counts the end token too.
        avg = result.scores[best] * len(ids) / (len(ids) + 1)
        return Attempt(self._text(ids), temperature, float(avg), float(result.no_speech_prob))

    def _text(self, ids: Sequence[int]) -> str:
        end = self._tokenizer.token_to_id("<|endoftext|>")
        return self._tokenizer.decode([i for i in ids if i < end]).strip()

    def _model(self):
        with self._opening:
            if self._whisper is None:
                self._whisper, self._tokenizer = open_whisper(self.source() if callable(self.source) else self.source)
        return self._whisper


def open_whisper(source: str | Path):
    """The CTranslate2 Whisper model and its tokenizer: a registered name (``lhama models
    prepare whisper-base``) or a CTranslate2 Whisper directory.

    Raises:
        CheckpointError: not prepared, missing, or not a CTranslate2 Whisper directory.
    """
    import ctranslate2
    from tokenizers import Tokenizer

    from lhama.model.audio import encoder_dir  # the audio tower's resolver: one place for names

    path = encoder_dir(str(source))
    if not (path / "model.bin").is_file() or not (path / "tokenizer.json").is_file():
        raise CheckpointError(f"{path} is not a CTranslate2 Whisper directory (model.bin and tokenizer.json)")
    try:
        whisper = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="float32",
                                             intra_threads=torch.get_num_threads())
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot load the CTranslate2 Whisper model in {path}: {exc}") from None
    return whisper, Tokenizer.from_file(str(path / "tokenizer.json"))
