"""Every click parameter of the ``lhama`` app, one line per attribute, to diff two trees' CLIs
(flags, defaults, help texts, order, types, panels) before and after a refactor.

    PYTHONPATH=/tmp/old/src python benchmarks/cli_params.py > before.txt   # e.g. a `git archive REV` tree
    PYTHONPATH=src python benchmarks/cli_params.py > after.txt
    diff before.txt after.txt
"""

from __future__ import annotations

import re

import typer

from lhama.cli import app


def walk(command, path: list[str]):  # noqa: ANN001, ANN201
    """(path, command) of ``command`` and every subcommand, depth first, by name."""
    yield path, command
    for name in sorted(getattr(command, "commands", None) or {}):
        yield from walk(command.commands[name], [*path, name])


def clean(value: object) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))  # object addresses differ run to run


def lines() -> list[str]:
    out = []
    for path, command in walk(typer.main.get_command(app), ["lhama"]):
        where = " ".join(path)
        out.append(f"{where} :: help = {command.help!r}")
        for order, param in enumerate(command.params):
            out.append(f"{where} :: {param.name} :: order = {order}")
            for key, value in sorted(vars(param).items()):
                if key == "type_descriptor":  # typer's annotation and its OptionInfo/ArgumentInfo
                    out.append(f"{where} :: {param.name} :: annotation = {clean(value.annotation)}")
                    out += [f"{where} :: {param.name} :: info.{k} = {clean(v)}" for k, v in sorted(vars(value.parameter_info).items())]
                else:
                    out.append(f"{where} :: {param.name} :: {key} = {clean(value)}")
    return out


if __name__ == "__main__":
    print("\n".join(lines()))
