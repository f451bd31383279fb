"""The chat page in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
type a question, attach a real image, watch the streamed answer appear, save a screenshot."""

from __future__ import annotations

import shutil
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lhama.model.build import LoadedModel
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.serve.helpers import TUXPAINT, png_data_uri, running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

# Records the answer's length at every DOM change, to see it arrive in pieces.
WATCH_ANSWER = """() => {
  window.answerLengths = [];
  new MutationObserver(() => {
    const answer = document.querySelector('.mensagem.assistente .texto');
    if (answer) window.answerLengths.push(answer.textContent.length);
  }).observe(document.getElementById('conversa'), {subtree: true, childList: true, characterData: true});
}"""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture
def slow_server(vlm: LoadedModel) -> Iterator[str]:
    """The tiny model is so fast that its whole answer would reach the page in one network read:
    200 ms per decoder step (a forward hook) makes the streaming visible, as with a real model, even
    on a loaded 2-core CI machine (at 50 ms the few pieces of a short answer once arrived as one)."""
    settings = ServeSettings(max_tokens_cap=64, default_max_tokens=12)
    hook = vlm.model.language_model.register_forward_hook(lambda *_: time.sleep(0.2))
    try:
        with running(Engine(vlm, settings), settings) as url:
            yield url
    finally:
        hook.remove()


@contextmanager
def chat_page(url: str, tmp_path: Path) -> Iterator[Any]:
    """A Playwright page showing the chat page in a fresh headless Chromium profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#modelo:has-text('tiny-vlm')")
            yield page
        finally:
            browser.close()


def test_page_streams_an_answer_about_an_attached_image(slow_server: str, tmp_path: Path) -> None:
    photo = sorted((TUXPAINT / "images").glob("*.jpg"))[0]
    shot = tmp_path / "chat.png"
    with chat_page(slow_server, tmp_path) as page:
        page.set_input_files("#imagem", str(photo))
        page.wait_for_selector("#anexos img")
        page.fill("#pergunta", "O que há nesta imagem?")
        page.evaluate(WATCH_ANSWER)
        page.click("#enviar")
        page.wait_for_selector(".mensagem.assistente:not(.escrevendo) .nota", timeout=60_000)
        answer = page.inner_text(".mensagem.assistente .texto")
        sent_image = page.get_attribute(".mensagem.usuario img", "src")
        error = page.inner_text("#erro")
        lengths = page.evaluate("window.answerLengths")
        page.screenshot(path=str(shot))
    assert error == ""
    assert answer.strip(), "no streamed text reached the page"
    assert len({n for n in lengths if n > 0}) >= 2, f"the answer did not arrive in pieces: {lengths}"
    assert sent_image.startswith("data:image/jpeg;base64,")
    assert shot.stat().st_size > 5_000
    out = Path(__file__).resolve().parents[2] / "runs"
    if out.is_dir():  # keep the screenshot for people looking at a local run
        shutil.copy(shot, out / "serve_web_chat.png")


# Pastes a PNG into the question box the way a browser does for Ctrl+V of an image.
PASTE_IMAGE = """async (uri) => {
  const blob = await (await fetch(uri)).blob();
  const data = new DataTransfer();
  data.items.add(new File([blob], 'colado.png', {type: 'image/png'}));
  document.getElementById('pergunta').dispatchEvent(new ClipboardEvent('paste', {clipboardData: data}));
}"""


def test_pasted_image_is_attached_and_audio_errors_are_shown(slow_server: str, tmp_path: Path) -> None:
    clip = tmp_path / "fala.wav"
    with wave.open(str(clip), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\x00\x00" * 1600)
    with chat_page(slow_server, tmp_path) as page:
        page.evaluate(PASTE_IMAGE, png_data_uri())
        page.wait_for_selector("#anexos img[alt='imagem anexada 1']")
        page.set_input_files("#audio", str(clip))
        page.wait_for_selector("#anexos :text('fala.wav')")
        page.fill("#pergunta", "O que diz o áudio?")
        page.click("#enviar")
        page.wait_for_selector("#erro:has-text('Erro')", timeout=60_000)
        error = page.inner_text("#erro")
        bubbles = page.locator(".mensagem.assistente").count()
    assert "is silent" in error  # the server's 400 message, shown in the page
    assert bubbles == 0  # the failed turn left no empty answer behind
