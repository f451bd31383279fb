"""Video content parts (lhama's ``video_url`` extension) through the real ``openai`` client and
a real uvicorn server running a tiny video model; and the 400s for each kind of bad video."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from PIL import Image

from lhama.data.video import video_to_tensor
from lhama.model.build import LoadedModel, load_model, save_model
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.conftest import tiny_video_loaded
from tests.data.video_files import audio_only, long_video, tiny_mp4, unknown_codec, with_audio_mp4
from tests.serve.helpers import png_data_uri, running
from tests.serve.test_app import client, expected_answer, post

VIDEO_SETTINGS = ServeSettings(max_tokens_cap=64, default_max_tokens=8, max_body_bytes=2_000_000,
                               max_video_bytes=1_000_000, max_videos=1)


def video_uri(data: bytes, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def video_message(uri: str, text: str = "O que acontece no vídeo?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": uri}}, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def video_model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(save_model(tiny_video_loaded(), tmp_path_factory.mktemp("models") / "tiny-video"))


@pytest.fixture(scope="module")
def video_server(video_model: LoadedModel) -> Iterator[str]:
    with running(Engine(video_model, VIDEO_SETTINGS), VIDEO_SETTINGS) as url:
        yield url


def test_video_part_answer_matches_direct_generation(video_server: str, video_model: LoadedModel, tmp_path: Path) -> None:
    data = tiny_mp4(tmp_path / "a.mp4").read_bytes()
    reply = client(video_server).chat.completions.create(model="tiny-video", messages=video_message(video_uri(data)),
                                                          max_tokens=6)
    frames = video_to_tensor(data, video_model.config.branches["video"].frames, video_model.specs["video"])[None]  # (1, F, 3, S, S)
    as_text = [{"role": "user", "content": "<video>\nO que acontece no vídeo?"}]
    expected = expected_answer(video_model, as_text, 6, {"video": frames})
    assert reply.choices[0].message.content == expected.text
    assert reply.usage.prompt_tokens == expected.prompt_tokens


def test_two_hour_video_and_one_with_sound_are_answered(video_server: str, tmp_path: Path) -> None:
    api = client(video_server)
    for path in (long_video(tmp_path / "long.mp4", minutes=120, fps=1), with_audio_mp4(tmp_path / "sound.mp4")):
        reply = api.chat.completions.create(model="tiny-video", messages=video_message(video_uri(path.read_bytes())),
                                            max_tokens=3)
        assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage.completion_tokens >= 1


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def _bad_cases(tmp_path: Path) -> list[tuple[list[dict], str, str]]:
    url = "messages[0].content[0].video_url.url"
    good = video_uri(tiny_mp4(tmp_path / "ok.mp4").read_bytes())
    two = [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": good}}] * 2}]
    return [
        (video_message(video_uri(tiny_mp4(tmp_path / "t.mp4").read_bytes()[:400])), url, "cannot read video"),
        (video_message(video_uri(unknown_codec(tmp_path / "u.mp4"))), url, "unsupported video codec"),
        (video_message(video_uri(audio_only())), url, "no video stream"),
        (video_message(png_data_uri()), url, "expected video/*"),
        (video_message(video_uri(_jpeg(), "video/mp4")), url, "is a still image, not a video; send it as an image"),
        (video_message("data:video/mp4;base64,@@@"), url, "not valid base64"),
        (video_message("https://example.com/v.mp4"), url, "--allow-remote-media"),
        (two, "messages[0].content[1]", "at most 1"),
    ]


def test_bad_videos_are_400s_naming_the_field(video_server: str, tmp_path: Path) -> None:
    for messages, param, words in _bad_cases(tmp_path):
        with pytest.raises(openai.BadRequestError) as bad:
            client(video_server).chat.completions.create(model="tiny-video", messages=messages, max_tokens=2)
        assert bad.value.body["param"] == param, (words, bad.value.body)
        assert words in bad.value.body["message"] and "\n" not in bad.value.body["message"]


def test_model_without_a_video_branch_is_a_400(server: str, tmp_path: Path) -> None:
    response = post(server, {"model": "tiny-vlm", "messages": video_message(video_uri(tiny_mp4(tmp_path / "a.mp4").read_bytes()))})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages[0].content[0]" and "no video branch" in error["message"]


def test_the_guard_sees_images_and_each_videos_middle_frame() -> None:
    import torch

    from lhama.model.branches import stills  # what the engine's and the chat session's guard caption

    images, videos = torch.zeros(1, 3, 32, 32), torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1, 1, 1).expand(2, 4, 3, 32, 32)
    seen = stills({"video": videos, "image": images, "audio": torch.ones(1, 81, 10)})  # merge order, audio unseen
    assert seen.shape == (3, 3, 32, 32)
    assert seen[:, 0, 0, 0].tolist() == [0.0, 2.0, 6.0]  # the image, then frame 2 of 4 of each video
    assert stills({}) is None
