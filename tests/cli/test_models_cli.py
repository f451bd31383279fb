"""Tests of ``lhama models list`` / ``lhama models prepare`` through the real entry point."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from lhama.cli import main


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run ``lhama ARGS`` in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["lhama", *args])
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich does not fold paths
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_list_shows_registry_and_prepared_state(smollm2_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LHAMA_HOME", str(smollm2_dir.parents[1]))
    code, out, _ = run_cli(["models", "list"], monkeypatch, capsys)
    assert code == 0
    rows = {line.split()[1]: line.split("│")[2:-1] for line in out.splitlines() if line.startswith("│")}
    assert [cell.strip() for cell in rows["smollm2-135m-instruct"][:2]] == ["0.1.2", "yes"]
    assert rows["smollm2-135m-instruct"][2].strip().endswith(" MB")
    assert [cell.strip() for cell in rows["gemma-3-270m"]] == ["1.0.0", "no", "-", "no"]
    assert "license: Gemma Terms of Use" in out
    assert f"path: {smollm2_dir}" in out


def test_prepare_again_prints_the_path(smollm2_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LHAMA_HOME", str(smollm2_dir.parents[1]))
    code, out, _ = run_cli(["models", "prepare", "smollm2-135m-instruct"], monkeypatch, capsys)
    assert code == 0
    assert f"smollm2-135m-instruct: {smollm2_dir}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "prepare", "nope"], "error: unknown model 'nope'; registered models: gemma-3-270m, smollm2-135m-instruct"),
        (["models", "prepare"], "error: name a model to prepare"),
        (["models", "prepare", "--all", "gemma-3-270m"], "error: give model names or --all, not both"),
    ],
)
def test_prepare_user_errors_are_one_line(args, message, monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path))
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 2
    assert err.strip().startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_help_teaches_with_examples(monkeypatch, capsys) -> None:
    code, out, _ = run_cli(["models", "prepare", "--help"], monkeypatch, capsys)
    assert code == 0
    assert "lhama models prepare smollm2-135m-instruct" in out
    assert "--force" in out and "--all" in out and "LHAMA_HOME" in out


def test_prepare_all_skips_packages_that_are_not_installed(smollm2_dir: Path, monkeypatch, capsys) -> None:
    from lhama.weights import registry

    smol = registry.registry_entry("smollm2-135m-instruct")
    ghost = dataclasses.replace(smol, name="ghost", package="lhama_no_such_package")
    monkeypatch.setattr(registry, "REGISTRY", (ghost, smol))
    monkeypatch.setenv("LHAMA_HOME", str(smollm2_dir.parents[1]))
    code, out, _ = run_cli(["models", "prepare", "--all"], monkeypatch, capsys)
    assert code == 0
    assert f"smollm2-135m-instruct: {smollm2_dir}" in out
    assert "ghost" not in out


def test_export_adapter_writes_a_float16_copy(monkeypatch, capsys, tmp_path: Path) -> None:
    import json

    import torch
    from safetensors.torch import load_file, save_file

    src = tmp_path / "adapter"
    src.mkdir()
    save_file({"multi_modal_projector.linear_1.weight": torch.randn(4, 4)}, src / "adapter_model.safetensors")
    (src / "adapter_config.json").write_text(json.dumps({"base_model": "x", "lora": None, "lhama": {"system_prompt": "Oi."}}))
    code, out, _ = run_cli(["models", "export-adapter", str(src), str(tmp_path / "ship"), "--system-prompt", ""],
                           monkeypatch, capsys)
    assert code == 0 and f"adapter written to {tmp_path / 'ship'}" in out and "float16" in out
    assert load_file(tmp_path / "ship" / "adapter_model.safetensors")["multi_modal_projector.linear_1.weight"].dtype == torch.float16
    assert json.loads((tmp_path / "ship" / "adapter_config.json").read_text())["generation"]["system_prompt"] == ""
    code, _, err = run_cli(["models", "export-adapter", str(src), str(tmp_path / "x"), "--dtype", "int8"], monkeypatch, capsys)
    assert code == 2 and err.strip() == "error: --dtype must be one of float16, bfloat16, float32, got 'int8'"
    code, _, err = run_cli(["models", "export-adapter", str(tmp_path), str(tmp_path / "x")], monkeypatch, capsys)
    assert code == 2 and "not a lhama adapter directory" in err and len(err.strip().splitlines()) == 1
