"""``lhama.serve.terminal.chat``: one config in; the session opened through the caller's
``load``, then one answer on stdout or the REPL (stdin replaced here). A tiny random model."""

from __future__ import annotations

import builtins
import io
import re
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from lhama.errors import ConfigError, DataError, ModelError
from lhama.model.build import LoadedModel
from lhama.serve.terminal import ChatConfig, chat, open_session
from tests.conftest import tiny_loaded


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return tiny_loaded(image=None)


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def test_one_shot_answers_on_stdout(loaded: LoadedModel, capsys: pytest.CaptureFixture) -> None:
    asked = []
    err, said = _console()
    config = ChatConfig("tiny", prompt="Olá", decoding={"max_new_tokens": 2}, guard=False, quant="int8")
    chat(config, lambda model, quant: asked.append((model, quant)) or loaded, err)
    assert asked == [("tiny", "int8")]
    assert capsys.readouterr().out.strip()  # the answer's text
    assert re.search(r"^2 tokens in", said.getvalue(), re.M)


def test_without_a_prompt_the_repl_runs_until_end_of_input(loaded: LoadedModel, capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lines = iter(["/help", "/audio /nao/existe.wav", "Oi", "/nada"])

    def fake_input(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(builtins, "input", fake_input)
    err, said = _console()
    chat(ChatConfig("tiny", decoding={"max_new_tokens": 3}, guard=False), lambda model, quant: loaded, err)
    text = said.getvalue()
    assert "lhama chat" in text and "/reset" in text and "unknown command /nada" in text
    banner = text.split("Commands:")[0]  # before /help's text: the first line says how to ask and attach
    assert all(word in banner for word in ("Type a question", "/image", "/audio", "/video", "/exit"))
    assert re.search(r"^error: .*existe\.wav", text, re.M)  # a bad attachment is one line; the chat goes on
    assert len(re.findall(r"^3 tokens in", text, re.M)) == 1 and capsys.readouterr().out.strip()


def test_media_attach_in_order_and_whisper_is_found_by_locate(tmp_path: Path) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(red)
    Image.new("RGB", (40, 30), (0, 0, 255)).save(blue)
    err, _ = _console()
    config = ChatConfig("tiny", media=(("image", blue), ("image", red)), guard=False)
    session = open_session(config, lambda model, quant: tiny_loaded(), err, locate=lambda name: tmp_path / name)
    first, second = session.pending_media["image"]
    assert first[2].mean() > first[0].mean() and second[0].mean() > second[2].mean()  # blue, then red
    assert session.transcriber.source() == tmp_path / "whisper-base-ptbr"
    with pytest.raises(ModelError, match="image"):  # a text-only model without a labeler
        open_session(config, lambda model, quant: tiny_loaded(image=None), err)


@pytest.mark.parametrize("fields, words", [({"media": (("smell", Path("x")),)}, "['smell'] are not branch kinds"),
                                           ({"decoding": {"top_p": 0.0}}, "top_p must be in (0, 1]"),
                                           ({"decoding": {"max_token": 3}}, "max_token")])
def test_a_bad_config_is_one_config_error(fields: dict, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        ChatConfig("tiny", **fields)
    assert words in str(error.value)


@pytest.mark.parametrize("fields, option", [({"media": (("image", "nope.jpg"),)}, "--image"),
                                            ({"media": (("audio", "nope.wav"),)}, "--audio"),
                                            ({"file": "nope.txt"}, "--file"), ({"tools": "nope.json"}, "--tools")])
def test_a_missing_file_fails_before_the_model_loads(tmp_path: Path, fields: dict, option: str) -> None:
    fields = {name: tuple((k, tmp_path / f) for k, f in value) if name == "media" else tmp_path / value
              for name, value in fields.items()}
    asked = []
    with pytest.raises(ConfigError if option == "--tools" else DataError) as error:
        open_session(ChatConfig("tiny", prompt="Oi", guard=False, **fields), lambda model, quant: asked.append(model), _console()[0])
    assert asked == []  # nothing loaded: a typo costs no load (nor a first-use prepare)
    assert str(error.value).startswith(f"{option} {tmp_path / 'nope'}") and "No such file" in str(error.value)


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_an_empty_question_is_an_error_not_an_answer(prompt: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the question is empty"):
        ChatConfig("tiny", prompt=prompt)
    image = tmp_path / "a.png"
    assert ChatConfig("tiny", prompt="", media=(("image", image),)).prompt == ""  # the image is the question
    assert ChatConfig("tiny").prompt is None  # no prompt at all: the REPL


@pytest.mark.parametrize("line", ["/image", "/audio   "])
def test_a_media_command_without_a_path_says_how_to_use_it(loaded: LoadedModel, line: str) -> None:
    from lhama.serve.session import ChatSession
    from lhama.serve.terminal import repl_line

    err, said = _console()
    assert repl_line(ChatSession(loaded), line, err)
    command = line.split()[0]
    assert f"{command} needs a file: {command} PATH" in said.getvalue() and "not found" not in said.getvalue()


@pytest.mark.parametrize("kind, words", [("image", "not an image file PIL can read"), ("audio", "has no audio stream"),
                                         ("video", "is a text file, not a video")])
def test_a_text_file_as_a_medium_fails_before_the_model_loads(tmp_path: Path, kind: str, words: str) -> None:
    notes = tmp_path / "notas.txt"
    notes.write_text("Comprar pão e leite.\n" * 40)
    asked = []
    with pytest.raises(DataError) as error:
        open_session(ChatConfig("tiny", prompt="Oi", guard=False, media=((kind, notes),)),
                     lambda model, quant: asked.append(model), _console()[0])
    assert asked == []  # read as its kind's header before any load: a wrong file costs no load
    message = str(error.value)
    assert words in message and str(notes) in message and "\n" not in message
