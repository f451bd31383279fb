"""`lhama chat --tools` and `--file` on saved tiny models, through typer's runner in this process
(a `lhama` process costs seconds of imports; tests/cli/test_chat_cli.py runs real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lhama.errors import DataError
from lhama.inference.generate import GenerationConfig
from lhama.model.build import save_model
from lhama.serve.session import ChatSession
from typer.testing import CliRunner

from lhama.cli import app
from lhama.serve.terminal import read_prompt_file
from lhama.errors import ConfigError
from tests.conftest import tiny_loaded
from tests.serve.test_tools import UNITS, WEATHER
from tests.serve.tool_model import GENERATION_PROMPT, scripted_model

CALL = '<tool_call>\n{"name": "previsao_do_tempo", "arguments": {"cidade": "Recife"}}\n</tool_call>'


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(scripted_model({GENERATION_PROMPT: CALL}), tmp_path_factory.mktemp("qwen") / "tiny-qwen")


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_loaded(image=None), tmp_path_factory.mktemp("lm") / "tiny-lm")


@pytest.fixture
def tools_file(tmp_path: Path) -> Path:
    path = tmp_path / "ferramentas.json"
    path.write_text(json.dumps([WEATHER, UNITS]), encoding="utf-8")
    return path


def test_tools_prints_the_parsed_call(qwen_dir: Path, tools_file: Path) -> None:
    result = chat("--model", str(qwen_dir), "--tools", str(tools_file), "Vai chover em Recife?")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip()) == {"tool_call": "previsao_do_tempo", "arguments": {"cidade": "Recife"}}


def chat(*args: str):
    return CliRunner().invoke(app, ["chat", "--no-guard", *args])


def test_tools_errors_are_one_line(qwen_dir: Path, lm_dir: Path, tools_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "ruim.json"
    bad.write_text('[{"type": "function", "function": {"name": "tem espaço"}}]', encoding="utf-8")
    for model, path, words in [(qwen_dir, bad, "not a list of OpenAI tools"), (lm_dir, tools_file, "no tools section"),
                               (qwen_dir, tmp_path / "nada.json", "--tools")]:
        result = chat("--model", str(model), "--tools", str(path), "oi")
        assert isinstance(result.exception, ConfigError) and words in str(result.exception)
        assert "\n" not in str(result.exception)


def test_file_goes_in_front_of_the_question(lm_dir: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notas.txt"
    notes.write_text("Reunião adiada para sexta.\nLevar o relatório.\n", encoding="utf-8")
    result = chat("--model", str(lm_dir), "--max-tokens", "3", "--file", str(notes), "Resuma.")
    assert result.exit_code == 0, result.output
    loaded = tiny_loaded(image=None)
    session = ChatSession(loaded, GenerationConfig(max_new_tokens=2), system_prompt="")
    session.pending_notes.append(read_prompt_file(notes, loaded, 2))
    list(session.ask("Resuma."))
    assert session.history[0]["content"] == "Conteúdo do arquivo notas.txt:\nReunião adiada para sexta.\nLevar o relatório.\n\nResuma."


def test_bad_files_are_one_line_errors(lm_dir: Path, tmp_path: Path) -> None:
    binary = tmp_path / "foto.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Relatório de ação".encode("latin-1"))
    long = tmp_path / "longo.txt"
    long.write_text("Era uma vez um gato preto que dormia no sofá. " * 200, encoding="utf-8")
    for path, words in [(tmp_path / "sumiu.txt", "No such file"), (binary, "binary file"), (latin, "not UTF-8"),
                        (long, "exceeds the model's context of 512 tokens"), (tmp_path, "Is a directory")]:
        result = chat("--model", str(lm_dir), "--file", str(path), "Resuma.")
        assert isinstance(result.exception, DataError), result.output
        assert words in str(result.exception) and "\n" not in str(result.exception)


def test_read_prompt_file_counts_the_answer(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("palavra " * 20, encoding="utf-8")
    loaded = tiny_loaded(image=None)
    assert read_prompt_file(text, loaded, 10).startswith("Conteúdo do arquivo t.txt:\npalavra")
    with pytest.raises(DataError, match="with --max-tokens 500"):
        read_prompt_file(text, loaded, 500)
