"""How thin the CLI is: lines per ``src/lhama/cli`` module, and for each command function its
parameters and length (signature and docstring included), plus the options typer shows.

    PYTHONPATH=src python benchmarks/cli_shape.py            # this checkout
    PYTHONPATH=src python benchmarks/cli_shape.py --src /tmp/old/src/lhama/cli   # another tree's files

A command function is one decorated with ``@app.command``/``@command`` or registered by name in
``cli/__init__.py`` (chat, serve, train, guard, prune, distill).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

REGISTERED = {"chat.py": "chat", "serve.py": "serve", "train.py": "train", "guard.py": "guard",
              "prune.py": "prune", "distill.py": "distill"}


def commands(tree: ast.Module, module: str) -> list[tuple[str, int, int]]:
    """(name, parameters, lines) of each command function in a module."""
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorated = any("command" in ast.unparse(d) for d in node.decorator_list)
        if decorated or REGISTERED.get(module) == node.name:
            params = len(node.args.args) + len(node.args.kwonlyargs)
            found.append((node.name, params, node.end_lineno - node.lineno + 1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "lhama" / "cli")
    args = parser.parse_args()
    print("| module | lines | command functions (parameters, lines) |\n|---|---:|---|")
    total, most = 0, 0
    for path in sorted(args.src.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        found = commands(ast.parse(text), path.name)
        total += len(text.splitlines())
        most = max([most, *(params for _, params, _ in found)])
        cells = ", ".join(f"{name} ({params}, {lines})" for name, params, lines in found) or "-"
        print(f"| {path.name} | {len(text.splitlines())} | {cells} |")
    print(f"| total | {total} | most parameters of one command function: {most} |")


if __name__ == "__main__":
    main()
