"""Files and lines per package of ``src/lhama`` (and of ``tests/``), the architecture issue's size
measure: Python files, their lines, the longest file and how many pass the house's ~400 lines.

    python benchmarks/package_size.py                          # this checkout
    python benchmarks/package_size.py --root /tmp/old          # another tree (e.g. `git archive REV | tar -x -C /tmp/old`)

A package is a directory directly under ``src/lhama`` (sub-packages count with it: ``data/translate``
is ``data``); modules directly in ``src/lhama`` are ``(top)``. Tests group by their first folder.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

LIMIT = 400  # STYLE rule 1: past ~400 lines, split the module


def sizes(base: Path) -> dict[str, list[int]]:
    """Package -> line count of each of its .py files."""
    found: dict[str, list[int]] = defaultdict(list)
    for path in sorted(base.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(base)
        package = rel.parts[0] if len(rel.parts) > 1 else "(top)"
        found[package].append(len(path.read_text(encoding="utf-8").splitlines()))
    return dict(found)


def table(title: str, found: dict[str, list[int]]) -> None:
    print(f"\n{title}\n\n| package | files | lines | longest file | files > {LIMIT} lines |\n|---|---:|---:|---:|---:|")
    for package in sorted(found):
        lines = found[package]
        print(f"| {package} | {len(lines)} | {sum(lines)} | {max(lines)} | {sum(n > LIMIT for n in lines)} |")
    every = [n for lines in found.values() for n in lines]
    print(f"| total | {len(every)} | {sum(every)} | {max(every)} | {sum(n > LIMIT for n in every)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout to measure (holds src/lhama and tests)")
    args = parser.parse_args()
    table(f"src/lhama ({args.root})", sizes(args.root / "src" / "lhama"))
    if (args.root / "tests").is_dir():
        table(f"tests ({args.root})", sizes(args.root / "tests"))


if __name__ == "__main__":
    main()
