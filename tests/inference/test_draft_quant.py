"""The draft's own weights (``--draft-quant``), chosen apart from the model's: library choice and the CLIs."""

from __future__ import annotations

import pytest
from rich.console import Console
from typer.testing import CliRunner

from lhama.cli import app
from lhama.errors import ConfigError
from lhama.inference.quant import quantize_linears
from lhama.inference.speculative import DRAFT_QUANT, check_draft_quant, draft_quant
from lhama.serve import terminal
from lhama.serve.terminal import ChatConfig
from tests.inference.tiny import tiny_decoder


def _quantised(quant: str):
    loaded = tiny_decoder(seed=1)
    quantize_linears(loaded.model.language_model, quant)
    return loaded


def test_a_quantised_model_gets_the_cheap_draft_and_a_float_one_its_own_weights() -> None:
    assert DRAFT_QUANT == "int4-g32"
    assert draft_quant(_quantised("int8")) == draft_quant(_quantised("int4")) == "int4-g32"
    assert draft_quant(tiny_decoder(seed=1)) == "none"
    assert draft_quant(_quantised("bf16")) == "bf16"
    assert draft_quant(_quantised("int4"), "int8") == "int8"  # told: kept as given


@pytest.mark.parametrize("bad, says", [("int3", "unknown --draft-quant 'int3'; choose one of: none, bf16, int8, int4"),
                                       ("int4-g48", "--draft-quant: int4 group size must be one of (32, 64, 128), got 48")])
def test_a_bad_draft_quant_is_one_line_naming_the_option(bad: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_draft_quant(bad)
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


def test_every_check_names_the_draft_option_and_quotes_the_value_as_given(monkeypatch) -> None:
    from lhama.inference import quant

    with pytest.raises(ConfigError, match="^unknown --draft-quant '--quant'; choose"):
        check_draft_quant("--quant")  # the value is the user's, not rewritten as an option name
    monkeypatch.setitem(quant._KERNELS, "int8", ("_no_such_int8_kernel",))
    with pytest.raises(ConfigError, match="^--draft-quant int8 needs .*_no_such_int8_kernel"):
        check_draft_quant("int8")
    with pytest.raises(ConfigError, match="^--draft-quant int4-g64\\+head keeps layers int8, which"):
        check_draft_quant("int4-g64+head")
    with pytest.raises(ConfigError, match="^int4 group size must be one of"):
        quant.check_quant("int4-g48")  # the model's own --quant reads as it always has

def test_the_chat_loads_the_draft_with_its_own_quant(monkeypatch) -> None:
    target, loads = _quantised("int4"), []

    def load(model: str, quant: str | None):
        loads.append((model, quant))
        return target if model == "big" else tiny_decoder(seed=2)

    monkeypatch.setattr(terminal, "load_guard", lambda spec: None)
    for given, want in ((None, "int4-g32"), ("int8", "int8")):
        session = terminal.open_session(ChatConfig("big", draft="small", draft_quant=given, guard=False), load,
                                        Console(quiet=True))
        assert loads[-2:] == [("big", None), ("small", want)] and session.draft is not None


def test_draft_quant_without_a_draft_or_with_a_bad_value_fails_before_loading() -> None:
    with pytest.raises(ConfigError, match="--draft-quant sets the draft model's weights: add --draft MODEL"):
        ChatConfig("m", draft_quant="int8")
    result = CliRunner().invoke(app, ["chat", "--model", "/no/such/model", "--draft", "d", "--draft-quant", "int3", "oi"])
    assert isinstance(result.exception, ConfigError) and "unknown --draft-quant 'int3'" in str(result.exception)
    result = CliRunner().invoke(app, ["bench", "decode", "--model", "/no/such", "--draft-quant", "int8"])
    assert isinstance(result.exception, ConfigError) and "add --draft MODEL" in str(result.exception)
    result = CliRunner().invoke(app, ["bench", "decode", "--model", "/no/such", "--draft", "d", "--draft-quant", "int4-g48"])
    assert "--draft-quant: int4 group size must be one of" in str(result.exception)


def test_both_helps_describe_the_option() -> None:
    for command in (["chat", "--help"], ["bench", "decode", "--help"]):
        text = CliRunner().invoke(app, command, env={"COLUMNS": "400"}).output
        assert "--draft-quant" in text and "chosen apart from --quant" in text and "Default: int4-g32" in text


class _DraftLoaded(Exception):
    """Stops bench_decode once the draft is asked for: only its load is under test."""


def test_bench_decode_loads_the_draft_with_its_own_quant(monkeypatch, tmp_path) -> None:
    from lhama.inference import bench

    target, draft_dir = _quantised("int8"), tmp_path / "draft"

    def load(path, quant):  # the model loads; the draft's load stops the bench, its quant kept
        if path == draft_dir:
            raise _DraftLoaded(quant)
        return target

    monkeypatch.setattr(bench, "load_for_inference", load)
    monkeypatch.setattr(bench, "is_cached", lambda path, quant: True)
    for given, want in ((None, "int4-g32"), ("int8", "int8")):
        with pytest.raises(_DraftLoaded) as caught:
            bench.bench_decode(bench.BenchConfig(tmp_path, 8, "int8", draft_dir, baseline=False, threads=1,
                                                 draft_quant=given))
        assert caught.value.args == (want,)
    request = bench.DecodeBench("big", 8, "int8", "small", False, "int8")
    monkeypatch.setattr(bench, "bench_decode", lambda config: config)
    assert bench.bench_models(request, lambda name: tmp_path / name).draft_quant == "int8"


def test_open_draft_is_chat_and_bench_one_way_to_open_a_draft() -> None:
    """None, the prompt lookup (no load) or a model opened by the caller's loader with the chosen quant."""
    from lhama.errors import ModelError
    from lhama.inference.speculative import LOOKUP, LOOKUP_TOKENS, open_draft

    target, loads = _quantised("int4"), []

    def load(model, quant):
        loads.append((model, quant))
        return tiny_decoder(seed=2)

    assert open_draft(None, target, load) is None
    lookup = open_draft(LOOKUP, target, load, tokens=5)
    assert lookup.model is None and lookup.lookup is not None and lookup.tokens == LOOKUP_TOKENS and loads == []
    draft = open_draft("small", target, load, tokens=2)
    assert loads == [("small", "int4-g32")] and draft.model is not None and draft.tokens == 2
    assert open_draft("small", target, load, "int8").tokens == 1 and loads[-1] == ("small", "int8")
    with pytest.raises(ModelError, match="at least 1 token per step, got 0"):
        open_draft("small", target, load, tokens=0)
    assert len(loads) == 2  # refused before any load
