"""`lhama chat` decodes with the model's own settings (its lhama_generation.json) and overrides
only the options given; the options are one frozen, grouped config. In-process (typer's runner)
on a saved tiny model; tests/cli/test_chat_cli.py runs real processes."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from lhama.cli import app
from lhama.cli.chat import ChatOptions, Decoding, Media, Safety
from lhama.cli.common import loader
from lhama.cli.options import build, flat_options
from lhama.errors import ConfigError
from lhama.inference.generate import GenerationConfig
from lhama.model.build import save_model
from lhama.serve.terminal import open_session
from tests.conftest import tiny_loaded

MODEL_SETTINGS = GenerationConfig(system_prompt="Seja breve.", max_new_tokens=5, repetition_penalty=1.3,
                                  image_guidance=0.5, stop=("FIM",))


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    loaded = tiny_loaded(image=None)
    loaded.generation = MODEL_SETTINGS
    return save_model(loaded, tmp_path_factory.mktemp("lm") / "tiny-lm")


def _session(model: Path, decoding: Decoding = Decoding()):
    options = ChatOptions(model=str(model), decoding=decoding, safety=Safety(no_guard=True))
    err = Console(file=io.StringIO())
    return open_session(options.config(), loader(err), err)


def test_left_out_options_keep_the_model_settings(lm_dir: Path) -> None:
    session = _session(lm_dir)
    assert session.generation == MODEL_SETTINGS
    assert session.system_prompt is None  # None: the session uses the model's own ("Seja breve.")


def test_given_options_override_only_themselves(lm_dir: Path) -> None:
    session = _session(lm_dir, Decoding(system="", max_tokens=3, repetition_penalty=1.0, stop=["PARE"]))
    assert session.generation == replace(MODEL_SETTINGS, max_new_tokens=3, repetition_penalty=1.0, stop=("PARE",))
    assert session.system_prompt == ""  # --system '' sends none


def _tokens(*args: str) -> int:
    result = CliRunner().invoke(app, ["chat", "--no-guard", *args, "Olá"])
    assert result.exit_code == 0, result.output
    used = re.search(r"(\d+) tokens in", result.stderr)
    assert used, result.stderr
    return int(used.group(1))


def test_the_command_answers_within_the_model_limit_unless_told(lm_dir: Path) -> None:
    # The tiny random model never picks its end token in these few greedy steps: it stops at the limit.
    assert _tokens("--model", str(lm_dir)) == 5
    assert _tokens("--model", str(lm_dir), "--max-tokens", "2") == 2


def test_bad_decoding_option_fails_before_the_model_loads() -> None:
    result = CliRunner().invoke(app, ["chat", "--model", "/no/such/model", "--repetition-penalty", "0", "oi"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == "--repetition-penalty must be > 0, got 0.0"
    for flag, value, words in [("--max-tokens", "0", "--max-tokens must be >= 1, got 0"), ("--top-p", "0", "--top-p must be in (0, 1]")]:
        result = CliRunner().invoke(app, ["chat", "--model", "/no/such/model", flag, value, "oi"])
        assert isinstance(result.exception, ConfigError) and str(result.exception).startswith(words)


def test_options_are_grouped_and_flags_unchanged() -> None:
    names = [name for name, _, _ in flat_options(ChatOptions)]
    assert names == ["prompt", "model", "image", "video", "audio", "system", "max_tokens", "temperature", "top_p",
                     "repetition_penalty", "seed", "stop", "image_guidance", "no_guard", "guard", "tools", "file",
                     "quant", "draft", "draft_quant"]
    values = {name: default for name, _, default in flat_options(ChatOptions)} | {"max_tokens": 9, "no_guard": True}
    options = build(ChatOptions, values)
    assert options.decoding.max_tokens == 9 and options.safety.no_guard and options.model == "lhama-default"
    assert options.decoding.overrides() == {"max_new_tokens": 9}
    help_text = CliRunner().invoke(app, ["chat", "--help"], env={"COLUMNS": "200"}).output
    assert "Decoding (left out: the model's own" in help_text and "--repetition-penalty" in help_text


def test_the_options_become_one_library_config() -> None:
    media = Media(image=[Path("b.png"), Path("a.png")], video=[Path("v.mp4")], audio=[Path("s.wav")])
    config = ChatOptions(prompt="Oi", model="m", media=media, decoding=Decoding(system="", max_tokens=4),
                         safety=Safety(guard="g")).config()
    assert config.media == (("image", Path("b.png")), ("image", Path("a.png")), ("video", Path("v.mp4")), ("audio", Path("s.wav")))
    assert (config.prompt, config.model, config.system, config.decoding) == ("Oi", "m", "", {"max_new_tokens": 4})
    assert config.guard and config.guard_spec == "g" and not ChatOptions(safety=Safety(no_guard=True)).config().guard
