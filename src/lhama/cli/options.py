"""Typer commands whose options are one frozen dataclass.

A command declares its options once, as the fields of a frozen dataclass whose annotations
carry typer's metadata::

    @dataclass(frozen=True)
    class Limits:
        PANEL: ClassVar[str] = "Limits"
        max_batch: Annotated[int, typer.Option(help="Requests decoded together.")] = 8

A field whose type is itself such a dataclass is a *group*: its options keep their own flags
(``--max-batch``, not ``--limits.max-batch``) and are listed under the group's ``PANEL`` in
``--help``. :func:`command` turns ``run(options)`` into the function typer registers: one
keyword parameter per option, the dataclass built from them, ``run``'s docstring as the help.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from copy import copy
from typing import Any, TypeVar

from typer.models import ParameterInfo

from lhama.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")


def command(options: type[T]) -> Callable[[Callable[[T], R]], Callable[..., R]]:
    """Decorate ``run(options: T)``; the result takes ``T``'s options (groups flattened) as
    keywords, builds ``T`` (a ``ValueError`` from its checks becomes a one-line ConfigError) and
    returns ``run(T(...))``."""

    def wrap(run: Callable[[T], R]) -> Callable[..., R]:
        def entry(**values: Any) -> R:
            return run(build(options, values))

        parameters = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
                      for name, hint, default in flat_options(options)]
        entry.__signature__ = inspect.Signature(parameters)  # what typer reads
        entry.__annotations__ = {p.name: p.annotation for p in parameters}
        entry.__name__, entry.__qualname__, entry.__doc__ = run.__name__, run.__qualname__, run.__doc__
        entry.__module__, entry.run = run.__module__, run
        return entry

    return wrap


def flat_options(options: type, panel: str | None = None) -> list[tuple[str, Any, Any]]:
    """(name, typer annotation, default) of every option of ``options``, groups inlined in order."""
    found = []
    for field, hint in _fields(options):
        if _is_group(hint):
            found += flat_options(hint, getattr(hint, "PANEL", None))
            continue
        default = field.default if field.default is not dataclasses.MISSING else inspect.Parameter.empty
        found.append((field.name, _in_panel(hint, panel), default))
    names = [name for name, _, _ in found]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    assert not duplicated, f"{options.__name__}: option names used twice: {duplicated}"
    return found


def build(options: type[T], values: dict[str, Any]) -> T:
    """``options`` from flat option values (as typer passes them)."""
    kwargs = {field.name: build(hint, values) if _is_group(hint) else values[field.name]
              for field, hint in _fields(options)}
    try:
        return options(**kwargs)
    except ValueError as exc:  # the config's own checks
        raise ConfigError(str(exc)) from None


def as_typed(error: Exception, flags: dict[str, str]) -> ValueError:
    """A config check's error ("max_new_tokens must be >= 1, got 0") with its leading field name
    as the user typed it (``flags``: field -> flag, e.g. "--max-tokens must be >= 1, got 0")."""
    name, _, rest = str(error).partition(" ")
    return ValueError(f"{flags.get(name, name)} {rest}")


def _fields(options: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(options, include_extras=True)
    return [(field, hints[field.name]) for field in dataclasses.fields(options) if field.init]


def _is_group(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _in_panel(hint: Any, panel: str | None) -> Any:
    """``hint`` with its typer Option/Argument listed under ``panel`` in ``--help``."""
    if panel is None or typing.get_origin(hint) is not typing.Annotated:
        return hint
    base, *extras = typing.get_args(hint)
    moved = []
    for extra in extras:
        if isinstance(extra, ParameterInfo):
            extra = copy(extra)
            extra.rich_help_panel = panel
        moved.append(extra)
    return typing.Annotated[(base, *moved)]
