"""``lhama chat``'s draft: the prompt lookup by default for greedy answers where it is exact, none for sampling or
where checks are not the one-row step's bits, ``--draft none`` to turn it off; the same answers either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from lhama.cli import app
from lhama.errors import ConfigError
from lhama.inference.quant import quantize_linears
from lhama.model.build import save_model
from lhama.serve import terminal
from lhama.serve.terminal import ChatConfig, open_session
from tests.conftest import tiny_loaded
from tests.serve.test_tools import UNITS, WEATHER
from tests.serve.tool_model import QWEN25_TEMPLATE

# lhama-default's own decoding settings (its lhama_generation.json), short answers
DEFAULT_SETTINGS = {"max_new_tokens": 24, "no_repeat_ngram": 6, "repetition_scope": "all"}
# questions that repeat words, so the lookup finds something to propose
QUESTIONS = ("Repita: a casa azul, a casa azul, a casa azul.", "E agora: o gato preto, o gato preto, o gato preto?",
             "Qual é a capital do Brasil? Qual é a capital do Brasil?")


@pytest.fixture(autouse=True)
def _no_guard_load(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(terminal, "load_guard", lambda spec, loaded=None: None)
    monkeypatch.setenv("LHAMA_PREFIX_DIR", str(tmp_path / "prefix-cache"))


def _int8(quant: str = "int8"):
    """A tiny text model with quantised weights, as lhama-default's (int4/int8): checks are the one-row steps' bits."""
    loaded = tiny_loaded(image=None)
    quantize_linears(loaded.model.language_model, quant)
    return loaded


def _session(draft: str | None = None, decoding: dict | None = None, tools: Path | None = None, loaded=None):
    loaded = loaded or _int8()
    config = ChatConfig("tiny", decoding=decoding if decoding is not None else dict(DEFAULT_SETTINGS), draft=draft,
                        guard=False, tools=tools)
    return open_session(config, lambda name, quant: loaded, Console(quiet=True))


def _conversation(session, questions=QUESTIONS) -> list[list[int]]:
    """The answers' ids, turn after turn in one conversation (the KV cache kept between turns)."""
    answers = []
    for question in questions:
        *_, done = session.ask(question)
        answers.append(done.token_ids)
    return answers


def test_greedy_chat_drafts_with_the_lookup_by_default_and_none_turns_it_off() -> None:
    default = _session()
    assert default.draft is not None and default.draft.model is None and default.draft.lookup is not None
    assert _session("none").draft is None
    named = _session("lookup", {"temperature": 0.7, "seed": 1})
    assert named.draft is not None and named.draft.lookup is not None  # named: kept (sampling then decodes plainly)


def test_sampling_gets_no_draft_by_default() -> None:
    assert _session(decoding={"temperature": 0.7, "seed": 3}).draft is None


def test_a_model_whose_checks_are_not_one_row_steps_gets_no_draft_by_default(monkeypatch) -> None:
    assert _session(loaded=_int8("bf16")).draft is not None
    assert _session(loaded=tiny_loaded(image=None)).draft is None  # fp32: several rows round otherwise than one
    assert _session("lookup", loaded=tiny_loaded(image=None)).draft is not None  # named: the user's choice
    monkeypatch.setenv("LHAMA_LEAN_DECODE", "0")  # checks would run the transformers forward: not proven exact
    assert _session().draft is None


def test_the_default_draft_gives_the_answers_of_no_draft_turn_after_turn() -> None:
    loaded = _int8()
    drafted = _session(loaded=loaded)
    assert _conversation(drafted) == _conversation(_session("none", loaded=loaded))
    assert drafted.draft.proposed > 0, "the repeated questions gave the lookup something to propose"


def test_sampled_answers_are_the_same_with_and_without_a_named_lookup() -> None:
    loaded, sampling = _int8(), {**DEFAULT_SETTINGS, "temperature": 0.8, "seed": 7}
    assert _conversation(_session("lookup", sampling, loaded=loaded)) == _conversation(_session("none", sampling, loaded=loaded))


def test_tools_chat_drafts_by_default_with_the_answers_of_no_draft(tmp_path: Path) -> None:
    tools = tmp_path / "ferramentas.json"
    tools.write_text(json.dumps([WEATHER, UNITS]), encoding="utf-8")
    loaded = _int8()
    loaded.tokenizer.chat_template = QWEN25_TEMPLATE  # a template with a tools section
    loaded.model.language_model.config.max_position_embeddings = 2048  # its tools text: ~700 tiny-tokenizer ids
    drafted = _session(tools=tools, loaded=loaded)
    assert drafted.tools is not None and drafted.draft is not None and drafted.draft.lookup is not None
    questions = QUESTIONS[:2]
    assert _conversation(drafted, questions) == _conversation(_session("none", tools=tools, loaded=loaded), questions)
    assert drafted.draft.proposed > 0


def test_draft_quant_without_a_draft_model_is_one_line_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"^--draft-quant sets the draft model's weights: add --draft MODEL .*"
                                          r"the prompt lookup, chat's default draft, has no model"):
        ChatConfig("m", draft_quant="int8")
    for named in ("none", "lookup"):
        with pytest.raises(ConfigError, match=f"^--draft-quant sets a draft model's weights, and --draft {named} has no model"):
            ChatConfig("m", draft=named, draft_quant="int8")


def test_the_cli_answers_the_same_with_the_default_draft_and_draft_none(tmp_path: Path) -> None:
    model = str(save_model(tiny_loaded(image=None), tmp_path / "tiny-lm"))
    answers = []
    for extra in ([], ["--draft", "none"]):
        result = CliRunner().invoke(app, ["chat", "--model", model, "--no-guard", "--quant", "int8", "--max-tokens", "20",
                                          *extra, QUESTIONS[0]])
        assert result.exit_code == 0, result.output
        answers.append(result.stdout.strip())
    assert answers[0] == answers[1] and answers[0]
    bad = CliRunner().invoke(app, ["chat", "--model", model, "--draft", "none", "--draft-quant", "int8", "oi"])
    assert isinstance(bad.exception, ConfigError) and "--draft none has no model" in str(bad.exception)
