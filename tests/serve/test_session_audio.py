"""ChatSession with audio: attached files and a video's sound track reach the audio branch
(a model without one hears through Whisper: tests/serve/test_cascade.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhama.errors import DataError, ModelError
from lhama.inference.generate import Completion, GenerationConfig
from lhama.serve.session import ChatSession
from tests.audio_fixtures import tiny_audio_loaded, write_wav
from tests.conftest import tiny_loaded
from tests.data.test_audio import _encode


def test_audio_question_puts_the_placeholder_and_features_in_order(tmp_path: Path) -> None:
    session = ChatSession(tiny_audio_loaded(image=False), GenerationConfig(max_new_tokens=3), system_prompt="")
    session.attach("audio", write_wav(tmp_path / "fala.wav"))
    *_, done = session.ask("O que foi dito?")
    assert isinstance(done, Completion)
    assert session.history[0]["content"] == "<audio>\nO que foi dito?"
    assert len(session.media["audio"]) == 1 and session.media["audio"][0].shape == (81, 200) and not session.pending_media
    session.reset()
    assert not session.media and not session.history


def test_video_sound_track_is_attached_or_skipped(tmp_path: Path) -> None:
    session = ChatSession(tiny_audio_loaded(image=False))
    assert session.attach_track("audio", _encode(tmp_path / "clipe.mp4", "aac", 1.0, video=True))
    assert not session.attach_track("audio", _encode(tmp_path / "mudo.mp4", "aac", 1.0, video=True, audio=False))
    assert len(session.pending_media["audio"]) == 1
    (tmp_path / "quebrado.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42garbage")
    with pytest.raises(DataError, match="quebrado.mp4"):
        session.attach_track("audio", tmp_path / "quebrado.mp4")


def test_video_and_its_sound_track_in_one_question(tmp_path: Path) -> None:
    from lhama.model.build import add_branch
    from lhama.model.config import VideoConfig

    loaded = add_branch(tiny_audio_loaded(image=True), "video", VideoConfig(frames=2, num_queries=4, qformer_heads=2))
    session = ChatSession(loaded, GenerationConfig(max_new_tokens=2), system_prompt="")
    clip = _encode(tmp_path / "clipe.mp4", "aac", 1.0, video=True)
    session.attach("video", clip)  # its sound track too, as `lhama chat --video` and `/video` do
    *_, done = session.ask("O que acontece?")
    assert isinstance(done, Completion)
    assert session.history[0]["content"] == "<video>\n<audio>\nO que acontece?"


def test_media_are_kept_by_kind_and_placed_in_merge_order(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 90)).save(tmp_path / "foto.png")
    session = ChatSession(tiny_audio_loaded(image=True), GenerationConfig(max_new_tokens=2), system_prompt="")
    session.attach("audio", write_wav(tmp_path / "fala.wav"))  # attached before the image
    session.attach("image", tmp_path / "foto.png")
    assert list(session.pending_media) == ["audio", "image"]
    *_, done = session.ask("O que é isto?")
    assert isinstance(done, Completion)
    assert session.history[0]["content"] == "<image>\n<audio>\nO que é isto?"  # images first, as the model merges
    assert session.media["image"][0].shape == (3, 32, 32) and session.media["audio"][0].shape == (81, 200)
    session.attach("audio", write_wav(tmp_path / "fala.wav"))
    *_, done = session.ask("E agora?")
    assert [len(session.media[k]) for k in ("image", "audio")] == [1, 2] and not session.pending_media
    assert session.history[2]["content"] == "<audio>\nE agora?"
