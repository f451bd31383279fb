"""Images for a cascade model (lhama-default v2): no image branch, so the labeler's class names
go into the question as a note, in chat (ChatSession) and the API (build_prompt); unreadable
images are one-line errors (CLI exit 2 / HTTP 400)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from lhama.errors import DataError, ModelError
from lhama.model.build import LoadedModel, load_model
from lhama.serve.errors import RequestError
from lhama.serve.prompt import Target, build_prompt
from lhama.serve.schemas import ChatCompletionRequest
from lhama.serve.session import ChatSession
from lhama.serve.settings import ServeSettings
from tests.serve.helpers import png_data_uri
from tests.weights.test_cascade import tiny_cascade

OWL = Path(__file__).resolve().parents[2] / "examples" / "coruja.jpg"


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(tiny_cascade(tmp_path_factory.mktemp("cascade")))


def test_chat_tells_the_image_as_its_class_names(cascade: LoadedModel) -> None:
    session = ChatSession(cascade)
    session.attach("image", OWL)
    note = session.pending_notes[0]
    assert note.startswith("[Imagem anexada") and note.endswith("]")
    *_, done = session.ask("O que é isto?")
    assert session.history[0] == {"role": "user", "content": f"{note}\nO que é isto?"}
    assert not session.media  # nothing for an image branch: the note is all the LM gets
    assert done.prompt_tokens > 0


def test_chat_image_errors_are_one_line(cascade: LoadedModel, tmp_path: Path, tiny_lm: LoadedModel) -> None:
    broken = tmp_path / "quebrada.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(DataError, match="cannot read image .*quebrada.jpg"):
        ChatSession(cascade).attach("image", broken)
    with pytest.raises(DataError, match="image not found: .*nada.png"):
        ChatSession(cascade).attach("image", tmp_path / "nada.png")
    with pytest.raises(ModelError, match="text-only .*cannot see images"):
        ChatSession(tiny_lm).attach("image", OWL)


def _request(url: str) -> ChatCompletionRequest:
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "O que é isto?"}]
    return ChatCompletionRequest.model_validate({"model": "lhama-default", "messages": [{"role": "user", "content": content}]})


def test_api_tells_the_image_as_a_note_and_refuses_bad_ones(cascade: LoadedModel) -> None:
    target = Target(cascade, "lhama-default", ServeSettings(max_images=1, default_max_tokens=8, max_tokens_cap=16))
    prompt = build_prompt(_request(png_data_uri()), target)
    user = prompt.messages[-1]["content"]
    assert user.startswith("[Imagem anexada") and user.endswith("]\nO que é isto?") and prompt.media is None
    bad = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    with pytest.raises(RequestError) as caught:
        build_prompt(_request(bad), target)
    assert caught.value.param.endswith("image_url.url") and caught.value.code == "invalid_image"
    two = _request(png_data_uri())
    two.messages[0].content.insert(0, two.messages[0].content[0])
    with pytest.raises(RequestError, match="images") as caught:
        build_prompt(two, target)
    assert caught.value.code == "too_many_images"
