"""Text in images reaches the model: serve's prompt and the chat session add tesseract's reading
("Texto na imagem: ...") after the image placeholder; text-free images add nothing."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from lhama.data.ocr import tesseract_available
from lhama.inference.generate import GenerationConfig
from lhama.model.build import LoadedModel
from lhama.serve.engine import Engine
from lhama.serve.prompt import Target, build_prompt
from lhama.serve.schemas import ChatCompletionRequest
from lhama.serve.session import ChatSession
from lhama.serve.settings import ServeSettings
from tests.data.test_ocr import sign
from tests.serve.helpers import png_data_uri, running
from tests.serve.test_app import client, image_message

pytestmark = pytest.mark.skipif(not tesseract_available(), reason="apt install tesseract-ocr tesseract-ocr-por")
SETTINGS = ServeSettings(max_tokens_cap=8, default_max_tokens=2, max_image_bytes=400_000)
NOTE = "Texto na imagem: FARMÁCIA SÃO JOÃO | Aberta 24 horas"


def uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def user_text(loaded: LoadedModel, image_uri: str, settings: ServeSettings) -> str:
    request = ChatCompletionRequest(model="tiny-vlm", messages=image_message(image_uri, "O que diz a placa?"))
    return build_prompt(request, Target(loaded, "tiny-vlm", settings)).messages[-1]["content"]


def test_prompt_gets_the_text_after_the_image(vlm: LoadedModel) -> None:
    text_image = uri(sign(["FARMÁCIA SÃO JOÃO", "Aberta 24 horas"]))
    assert user_text(vlm, text_image, SETTINGS) == f"<image>\n{NOTE}\nO que diz a placa?"
    assert user_text(vlm, png_data_uri(), SETTINGS) == "<image>\nO que diz a placa?"  # no text: nothing added
    off = ServeSettings(max_image_bytes=400_000, ocr=False)
    assert user_text(vlm, text_image, off) == "<image>\nO que diz a placa?"


def test_the_api_counts_the_text_tokens(vlm: LoadedModel) -> None:
    messages = image_message(uri(sign(["PROIBIDO ESTACIONAR"])), "O que diz a placa?")
    counts = []
    for settings in (SETTINGS, ServeSettings(max_tokens_cap=8, default_max_tokens=2, max_image_bytes=400_000, ocr=False)):
        with running(Engine(vlm, settings), settings) as url:
            counts.append(client(url).chat.completions.create(model="tiny-vlm", messages=messages).usage.prompt_tokens)
    assert counts[0] > counts[1]


def test_chat_session_adds_the_text(vlm: LoadedModel, tmp_path: Path) -> None:
    sign(["FARMÁCIA SÃO JOÃO", "Aberta 24 horas"]).save(tmp_path / "placa.png")
    Image.new("RGB", (64, 48), (30, 90, 160)).save(tmp_path / "azul.png")
    session = ChatSession(vlm, GenerationConfig(max_new_tokens=2))
    session.attach("image", tmp_path / "placa.png")
    session.attach("image", tmp_path / "azul.png")
    list(session.ask("O que diz a placa?"))
    assert session.history[0]["content"] == f"<image>\n<image>\n{NOTE}\nO que diz a placa?"
    quiet = ChatSession(vlm, GenerationConfig(max_new_tokens=2), ocr=False)
    quiet.attach("image", tmp_path / "placa.png")
    list(quiet.ask("O que diz a placa?"))
    assert quiet.history[0]["content"] == "<image>\nO que diz a placa?"


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    from lhama.model.build import load_model
    from tests.weights.test_cascade import tiny_cascade

    return load_model(tiny_cascade(tmp_path_factory.mktemp("cascade")))


def test_a_cascade_model_gets_the_text_after_the_class_names(cascade: LoadedModel, tmp_path: Path) -> None:
    """lhama-default (v2) has no image branch: its labeler's note, then the OCR note."""
    image = sign(["FARMÁCIA SÃO JOÃO", "Aberta 24 horas"])
    image.save(tmp_path / "placa.png")
    session = ChatSession(cascade, GenerationConfig(max_new_tokens=2))
    session.attach("image", tmp_path / "placa.png")
    labels, note = session.pending_notes
    assert labels.startswith("[Imagem anexada") and note == NOTE
    request = ChatCompletionRequest(model="m", messages=image_message(uri(image), "O que diz a placa?"))
    user = build_prompt(request, Target(cascade, "m", SETTINGS)).messages[-1]["content"]
    assert user.startswith("[Imagem anexada") and user.endswith(f"]\n{NOTE}\nO que diz a placa?")


def test_the_api_reads_a_photo_upright_as_chat_does(vlm: LoadedModel, tmp_path: Path) -> None:
    """A phone photo stored upside down with EXIF orientation 3 (shown upright): the API reads its
    text as the image is shown and as chat reads the same file, through one ServedKind.text."""
    stored = sign(["FARMÁCIA SÃO JOÃO", "Aberta 24 horas"]).rotate(180)
    exif = Image.Exif()
    exif[0x0112] = 3  # Orientation: rotate 180 to show
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    (tmp_path / "placa.jpg").write_bytes(buffer.getvalue())
    photo = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert user_text(vlm, photo, SETTINGS) == f"<image>\n{NOTE}\nO que diz a placa?"
    session = ChatSession(vlm, GenerationConfig(max_new_tokens=2))
    session.attach("image", tmp_path / "placa.jpg")
    assert session.pending_notes == [NOTE]
