"""How thin the CLI is: lines per ``src/lhama/cli`` module, and for each command function its
parameters, its length (signature and docstring included) and the calls its body makes.

    PYTHONPATH=src python benchmarks/cli_shape.py            # this checkout
    PYTHONPATH=src python benchmarks/cli_shape.py --src /tmp/old/src/lhama/cli   # another tree's files

A command function is one decorated with ``@app.command``/``@command`` or registered by name in
``cli/__init__.py`` (chat, serve, train, guard, prune, distill). Its calls are counted in three
kinds (every call in the body, nested ones too; a ``with`` or a lambda's body included):

* lib: a name imported from the library (``lhama.*`` outside ``lhama.cli``): what the issue's
  "calls one public function" counts;
* cli: a name defined in the same ``cli`` module or imported from another (``load_with_progress``,
  ``open_session``, a progress bar): the composing the command still does itself;
* all: every call, methods (``options.task()``, ``err.print``) and third-party ones included;
* lib reached: the lib calls of the body and of the module's own functions it calls, followed
  down (``chat`` -> ``open_session`` -> ``load_guard``...), each helper once.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

REGISTERED = {"chat.py": "chat", "serve.py": "serve", "train.py": "train", "guard.py": "guard",
              "prune.py": "prune", "distill.py": "distill"}


def _origins(nodes: list[ast.stmt]) -> dict[str, str]:
    """name -> "lib" or "cli" for names these statements import from lhama (not nested defs)."""
    found = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lhama."):
            kind = "cli" if node.module.startswith("lhama.cli") else "lib"
            found.update({alias.asname or alias.name: kind for alias in node.names})
    return found


def calls(node: ast.FunctionDef, module: dict[str, str], helpers: dict[str, ast.FunctionDef]) -> dict[str, int]:
    """How many calls of each kind (lib, cli, all) the function's body makes, and "reach": the
    lib calls of the body and of the module's own functions it calls, followed down."""
    origins, counts = module | _origins(_body(node)), {"lib": 0, "cli": 0, "all": 0}
    for inner in _body(node):
        if isinstance(inner, ast.Call):
            counts["all"] += 1
            if isinstance(inner.func, ast.Name) and inner.func.id in origins:
                counts[origins[inner.func.id]] += 1
    counts["reach"] = _reach(node, module, helpers, set())
    return counts


def _body(node: ast.FunctionDef) -> list[ast.AST]:
    return [inner for statement in node.body for inner in ast.walk(statement)]  # not the decorators


def _reach(node: ast.FunctionDef, module: dict[str, str], helpers: dict[str, ast.FunctionDef], seen: set[str]) -> int:
    origins, total = module | _origins(_body(node)), 0
    for inner in _body(node):
        if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)):
            continue
        name = inner.func.id
        if origins.get(name) == "lib":
            total += 1
        elif name in helpers and name not in seen:
            seen.add(name)
            total += _reach(helpers[name], module, helpers, seen)
    return total


def commands(tree: ast.Module, module: str) -> list[tuple[str, int, int, dict[str, int]]]:
    """(name, parameters, lines, calls) of each command function in a module."""
    origins = _origins(tree.body)
    origins.update({n.name: "cli" for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))})
    helpers = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorated = any("command" in ast.unparse(d) for d in node.decorator_list)
        if decorated or REGISTERED.get(module) == node.name:
            params = len(node.args.args) + len(node.args.kwonlyargs)
            found.append((node.name, params, node.end_lineno - node.lineno + 1, calls(node, origins, helpers)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "lhama" / "cli")
    args = parser.parse_args()
    print("| module | lines | command functions (parameters, lines; calls lib/cli/all, lib reached) |\n|---|---:|---|")
    total, most, longest = 0, 0, (0, "")
    for path in sorted(args.src.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        found = commands(ast.parse(text), path.name)
        total += len(text.splitlines())
        most = max([most, *(params for _, params, _, _ in found)])
        longest = max([longest, *((lines, f"{path.stem}.{name}") for name, _, lines, _ in found)])
        cells = ", ".join(f"{name} ({params}, {lines}; {c['lib']}/{c['cli']}/{c['all']}, {c['reach']})"
                          for name, params, lines, c in found) or "-"
        print(f"| {path.name} | {len(text.splitlines())} | {cells} |")
    print(f"| total | {total} | most parameters of one command function: {most}; "
          f"longest: {longest[1]} ({longest[0]} lines) |")


if __name__ == "__main__":
    main()
