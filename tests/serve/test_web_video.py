"""The chat page's attach control takes a video too: it goes to the server as a video_url part."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.video_files import tiny_mp4
from tests.serve.test_web import CHROMIUM, chat_page, slow_server  # noqa: F401 (slow_server is a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


def test_attached_video_is_sent_and_the_servers_error_is_shown(slow_server: str, tmp_path: Path) -> None:  # noqa: F811
    clip = tiny_mp4(tmp_path / "passeio.mp4")
    with chat_page(slow_server, tmp_path) as page:
        page.set_input_files("#imagem", str(clip))
        page.wait_for_selector("#anexos :text('passeio.mp4')")
        page.click("#enviar")  # no text: the page asks its default video question
        page.wait_for_selector("#erro:has-text('Erro')", timeout=60_000)
        error = page.inner_text("#erro")
        question = page.inner_text(".mensagem.usuario")
    assert "no video branch" in error  # the image-only model's 400, from the video_url part
    assert "O que acontece no vídeo?" in question
