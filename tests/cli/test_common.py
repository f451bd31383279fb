"""cli/common: ``--model`` to a loaded model in one pass down the weights package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.call_path import returned, returns, returns_split, trace
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


def test_the_tracer_names_each_return_and_whether_its_file_was_still_on_the_stack():
    calls = [("a.py", "f", frozenset()), ("b.py", "g", frozenset({"a.py"})),  # f calls g, g returns
             ("a.py", "h", frozenset({"a.py"})),  # f carries on: h, in f's file
             ("c.py", "k", frozenset({"a.py"})), ("b.py", "m", frozenset({"a.py", "c.py"}))]  # b entered again
    assert returned(calls) == [(3, "a.py", "h", True), (5, "b.py", "m", False)]
    assert returns_split(calls) == (1, 1) and returns([file for file, *_ in calls]) == 2


# lhama-default's path, step by step (docs/architecture.md, #25): the files in the order the path enters them, a file
# written again where the path returns to it. The returns left are argued there: quant_cache carrying on after this
# machine's part of its cache key (native.cache_key, one question), and the typed loader (config) with each settings
# class's own __post_init__ (generation, labeler).
DEFAULT_SHAPE = [
    "cli/common.py",  # CLI
    "weights/resolve.py", "weights/registry.py",  # resolve
    "weights/prepare.py", "home.py", "weights/manifest.py", "weights/cascade.py", "config.py",  # verify
    "inference/quant.py",  # quant plan
    "inference/quant_cache.py", "inference/native.py", "inference/quant_cache.py",  # cached load
    "model/config.py", "model/lhama.py", "model/branches.py",  # compose
    "model/generation.py", "config.py", "model/generation.py", "model/labeler.py", "config.py", "model/labeler.py",
    "model/towers/efficientnet_lite.py", "model/towers/common.py",  # first weights read: the labeler's tower
]


def test_lhama_defaults_path_keeps_its_shape(tmp_path, monkeypatch):
    """A tiny lhama-default (a cascade: tiny LM + a 1280-wide EfficientNet-Lite labeler, the shipped settings and quant
    plan), prepared in a fresh $LHAMA_HOME and loaded once (its cache written), then traced from the CLI's loader:
    each step is entered once and in order, and the path returns only where DEFAULT_SHAPE says."""
    from lhama.inference import quant_cache
    from tests.weights.test_cascade import tiny_parts

    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    entry = registry_entry("lhama-default")
    parts, prepare = dict(zip(entry.parts, tiny_parts(tmp_path, 1280))), prepare_module.prepare
    with monkeypatch.context() as parts_prepared:  # the parts as if already prepared: only the cascade is assembled
        parts_prepared.setattr(prepare_module, "prepare", lambda part, home=None: parts[part])
        prepare("lhama-default")
    loaded = load_with_progress("lhama-default", quiet())  # quantises as the registry says and caches it
    assert loaded.labeler is not None and quant_cache.is_cached(tmp_path / "home" / "models" / "lhama-default", entry.quant)
    files = [file for file, _ in trace("lhama-default")]
    entered = [file for i, file in enumerate(files) if i == 0 or files[i - 1] != file]
    # the kernel library's folder ($LHAMA_HOME/kernels) is asked where the library is first loaded in a process
    shape = [file for i, file in enumerate(entered) if not (file == "home.py" and entered[i - 1] == "inference/native.py")]
    assert shape == DEFAULT_SHAPE, entered


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
