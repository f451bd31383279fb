"""``lhama train``: user errors are one red line and exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lhama.cli import main


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["lhama", "train", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


def test_unknown_key_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {lm: x}\nbatch_size: 4\n")
    assert _run(monkeypatch, "--config", str(recipe)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown config key batch_size") and "micro_batch_size" in err
    assert len(err.splitlines()) == 1


def test_empty_dataset_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    from lhama.model.build import save_model
    from tests.conftest import tiny_loaded

    model = save_model(tiny_loaded(), tmp_path / "m")
    (tmp_path / "empty.json").write_text("[]")
    code = _run(monkeypatch, f"model.init={model}", f"data.path={tmp_path / 'empty.json'}", "~data.image_dir",
                f"output_dir={tmp_path / 'o'}")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "has no usable records" in err and len(err.splitlines()) == 1


def test_the_default_recipe_asks_for_its_data(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The shipped stage-1 recipe names no data folder (a user has none of the project's): a bare
    `lhama train` says, in one line, which keys to add."""
    assert _run(monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: stage1-tuxpaint.yaml needs data.path, data.image_dir: add data.path=... data.image_dir=... to the command"


def test_help_teaches() -> None:
    from typer.testing import CliRunner

    from lhama.cli import app

    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "--resume" in result.output and "torchrun" in result.output
