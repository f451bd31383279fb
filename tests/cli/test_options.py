"""cli/options.py: a frozen dataclass (with groups) becomes a typer command's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Optional

import pytest
import typer
from typer.testing import CliRunner

from lhama.cli.options import build, command, flat_options
from lhama.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    PANEL: ClassVar[str] = "Limits"
    batch: Annotated[int, typer.Option(help="Rows per step.")] = 8
    cap: Annotated[Optional[int], typer.Option("--cap-tokens", help="Most tokens.")] = None


@dataclass(frozen=True)
class Options:
    name: Annotated[str, typer.Argument(help="Who.")]
    loud: Annotated[bool, typer.Option("--loud", help="Shout.")] = False
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.limits.batch < 1:
            raise ValueError(f"--batch must be >= 1, got {self.limits.batch}")


seen: list[Options] = []


@command(Options)
def greet(options: Options) -> None:
    """Say hello. Example: greet Ana --batch 2"""
    seen.append(options)
    print(f"{'OLÁ' if options.loud else 'olá'} {options.name}")


def _app() -> typer.Typer:
    app = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False)
    app.command("greet")(greet)
    app.command("other")(lambda: None)  # two commands: typer keeps the command name
    return app


def test_flags_build_the_nested_frozen_config() -> None:
    seen.clear()
    result = CliRunner().invoke(_app(), ["greet", "Ana", "--loud", "--batch", "2", "--cap-tokens", "5"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "OLÁ Ana\n"
    assert seen == [Options(name="Ana", loud=True, limits=Limits(batch=2, cap=5))]
    with pytest.raises(AttributeError):
        seen[0].loud = False  # frozen


def test_defaults_and_help_panel_and_docstring() -> None:
    seen.clear()
    assert CliRunner().invoke(_app(), ["greet", "Bia"]).exit_code == 0
    assert seen == [Options(name="Bia")]
    help_text = CliRunner().invoke(_app(), ["greet", "--help"], env={"COLUMNS": "120"}).output
    assert "Say hello. Example: greet Ana --batch 2" in help_text
    assert "╭─ Limits" in help_text and "--cap-tokens" in help_text and "Rows per step." in help_text


def test_a_failed_check_is_a_config_error_before_the_command_runs() -> None:
    seen.clear()
    result = CliRunner().invoke(_app(), ["greet", "Ana", "--batch", "0"])
    assert isinstance(result.exception, ConfigError) and str(result.exception) == "--batch must be >= 1, got 0"
    assert seen == []


def test_flat_options_inline_groups_in_order_and_build_inverts_them() -> None:
    flat = flat_options(Options)
    assert [name for name, _, _ in flat] == ["name", "loud", "batch", "cap"]
    values = {"name": "Caio", "loud": False, "batch": 3, "cap": None}
    assert build(Options, values) == Options(name="Caio", limits=Limits(batch=3))
