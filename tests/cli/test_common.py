"""cli/common: ``--model`` to a loaded model in one pass down the weights package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.call_path import returns, trace
from lhama.cli import common, main
from lhama.cli.common import load_with_progress, located
from lhama.errors import CheckpointError
from lhama.model.build import save_model
from lhama.weights import prepare as prepare_module
from lhama.weights.manifest import write_manifest
from lhama.weights.registry import registry_entry
from tests.conftest import tiny_loaded

NAME = "smollm2-135m-instruct"  # a plain causal-LM entry: its prepared copy needs only a manifest


@pytest.fixture
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny LM installed as the prepared copy of NAME under a fresh $LHAMA_HOME."""
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    path = save_model(tiny_loaded(image=None), tmp_path / "home" / "models" / NAME)
    write_manifest(path, {"test": True}, {})
    return path


def quiet() -> Console:
    return Console(stderr=True, quiet=True)


def test_a_registered_name_is_looked_up_once_and_prepared_by_its_entry(prepared, monkeypatch):
    given = []
    real = prepare_module.prepare
    monkeypatch.setattr(prepare_module, "prepare", lambda source, **kw: given.append(source) or real(source, **kw))
    assert located(NAME, quiet()) == (prepared, registry_entry(NAME))
    assert given == [registry_entry(NAME)]  # the entry itself, not its name to look up again


def test_a_path_is_checked_not_prepared(prepared, monkeypatch):
    monkeypatch.setattr(prepare_module, "prepare", lambda *a, **kw: pytest.fail("a path is never prepared"))
    assert located(str(prepared), quiet()) == (prepared, None)
    with pytest.raises(CheckpointError, match="unknown model 'gpt-5'; registered models: "):
        located("gpt-5", quiet())


def test_the_path_to_the_weights_never_returns_to_a_file(prepared):
    loaded = load_with_progress(NAME, quiet())
    assert loaded.name == NAME
    calls = trace(NAME)
    files = [file for file, _ in calls]
    assert files[0] == "cli/common.py" and files[-1] == "model/build.py"
    assert [call for call in calls if call[1] == "registry_entry"] == [("weights/registry.py", "registry_entry")]
    assert returns(files) == 0, calls


def test_a_quantised_load_checks_its_plan_once_and_goes_straight_on(prepared):
    """The CLI checks the quant plan where it picks it and hands the loader the checked plan, so
    the loader goes on with its cache without a detour back through the plan check."""
    load_with_progress(NAME, quiet(), "int8")  # quantises and caches quant-int8/ beside the model
    calls = trace(NAME, "int8")  # the cached load, up to its first weights read
    start = calls.index(("inference/quant_cache.py", "load_for_inference"))
    assert [call for call in calls if call[1] == "check_quant"] == [("inference/quant.py", "check_quant")]
    assert calls.index(("inference/quant.py", "check_quant")) < start
    assert calls[start + 1] == ("inference/quant_cache.py", "_cache_dir"), calls[start:start + 3]


@pytest.mark.parametrize("args", [["chat", "--model", "", "Oi"], ["chat", "-m", "  ", "Oi"], ["serve", "--model", ""],
                                  ["eval", "admire", "--data", "x.tsv", "--model", ""], ["eval", "vqa", "--model", ""],
                                  ["eval", "caption", "--data", "x.tsv", "--model", ""],
                                  ["bench", "decode", "--model", ""], ["prune", "--model", "", "--out", "x"]])
def test_an_empty_model_is_a_one_line_error_not_the_default(args, monkeypatch, capsys):
    monkeypatch.setattr(common, "located", lambda *a: pytest.fail("an empty --model was looked up"))
    monkeypatch.setattr(sys, "argv", ["lhama", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().splitlines() == ["error: --model is empty: give a prepared model name (`lhama models list`) or "
                                        "a model directory, or leave the option out"]


@pytest.mark.parametrize(("args", "flag", "tail"), [
    (["chat", "--draft", "", "Oi"], "--draft", ", or leave the option out"),
    (["bench", "decode", "--draft", " "], "--draft", ", or leave the option out"),
    (["distill", "--teacher", "", "--student", "s", "--data", "d.json", "--out", "o"], "--teacher", ""),
])
def test_an_empty_draft_or_teacher_is_a_one_line_error_naming_its_flag(args, flag, tail, monkeypatch, capsys):
    monkeypatch.setattr(common, "located", lambda *a: pytest.fail(f"an empty {flag} was looked up"))
    monkeypatch.setattr(sys, "argv", ["lhama", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().splitlines() == [f"error: {flag} is empty: give a prepared model name (`lhama models list`) or "
                                        f"a model directory{tail}"]
