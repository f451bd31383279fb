"""Every command's --help works and explains every option."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from lhama.cli import app


def _commands(group, path: tuple[str, ...] = ()) -> list:
    found = [(path, group)]
    for name, command in getattr(group, "commands", {}).items():
        found += _commands(command, path + (name,))
    return found


COMMANDS = _commands(typer.main.get_command(app))


@pytest.mark.parametrize("path, command", COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_help_explains_every_option(path: tuple[str, ...], command) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    options = [p for p in command.params if p.param_type_name == "option" and p.name != "help"]
    for option in options:
        assert option.help, f"lhama {' '.join(path)}: option {option.opts[0]} has no help text"
        assert option.opts[0] in result.output


def test_chat_help_lists_its_options() -> None:
    result = CliRunner().invoke(app, ["chat", "--help"])
    for option in ("--model", "--image", "--system", "--max-tokens", "--temperature", "--top-p", "--seed", "--stop"):
        assert option in result.output


def test_chat_is_a_command() -> None:
    assert ("chat",) in [p for p, _ in COMMANDS]
