"""Where does lhama's source name a modality outside the branch modules?

The architecture issue's measure ("number of places that name a modality outside its own branch
module: a handful"), counted on the syntax tree of every ``src/lhama`` file, per file:

* ``attr``: attribute reads ``x.image`` / ``x.video`` / ``x.audio`` (module paths in imports
  are not reads and are not counted);
* ``literal``: the string literals ``"image"``, ``"video"``, ``"audio"`` (kind names as keys);
* ``spec``: identifiers of per-kind preprocessing settings: ``image_spec``, ``video_spec``,
  ``audio_spec``, ``video_frames`` (names, attributes, parameters and keywords).

The branch modules (where naming the modality is the point) are left out: the kind table
``model/branches.py``, the encoders ``model/{encoders,video,audio}.py`` and ``model/towers/``,
and the medium decoders ``data/{media,video,audio}.py``. Reads a committed tree with ``--rev``
(so others' uncommitted work is not counted), else the working tree.

    python benchmarks/modality_names.py --rev HEAD
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
from pathlib import Path

KINDS = ("image", "video", "audio")
SPEC_NAMES = {"image_spec", "video_spec", "audio_spec", "video_frames"}
DATA_BUILDERS = "src/lhama/recipes/default/"
BRANCH_MODULES = re.compile(r"^src/lhama/(model/(branches|encoders|video|audio)\.py|model/towers/|data/(media|video|audio)\.py)")


def count(source: str) -> dict[str, list[int]]:
    """Category -> the line numbers where ``source`` names a modality (one entry per place)."""
    found: dict[str, list[int]] = {"attr": [], "literal": [], "spec": []}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in KINDS:
            found["attr"].append(node.lineno)
        if isinstance(node, ast.Constant) and node.value in KINDS:
            found["literal"].append(node.lineno)
        if _identifier(node) in SPEC_NAMES:
            found["spec"].append(node.lineno)
    return found


def _identifier(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.keyword):
        return node.arg
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name
    return None


def sources(root: Path, rev: str | None) -> dict[str, str]:
    """Path -> text of every ``src/lhama`` Python file, at ``rev`` (a commit) or in the working tree."""
    if rev is None:
        return {str(p.relative_to(root)): p.read_text() for p in sorted((root / "src/lhama").rglob("*.py"))}
    listing = subprocess.run(["git", "-C", str(root), "ls-tree", "-r", "--name-only", rev, "src/lhama"],
                             capture_output=True, text=True, check=True).stdout.split()
    return {path: subprocess.run(["git", "-C", str(root), "show", f"{rev}:{path}"], capture_output=True,
                                 text=True, check=True).stdout for path in listing if path.endswith(".py")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a commit to read (default: the working tree)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--lines", action="store_true", help="also print each place's line numbers")
    args = parser.parse_args()
    rows, branch_total = [], 0
    for path, text in sources(args.root, args.rev).items():
        found = count(text)
        total = sum(len(v) for v in found.values())
        if BRANCH_MODULES.match(path):
            branch_total += total
        elif total:
            rows.append((path, found, total))
    rows.sort(key=lambda row: -row[2])
    print(f"{'file':48} {'attr':>5} {'literal':>7} {'spec':>5} {'total':>6}")
    for path, found, total in rows:
        lines = "  " + ",".join(str(n) for n in sorted(sum(found.values(), []))) if args.lines else ""
        print(f"{path[len('src/lhama/'):]:48} {len(found['attr']):5} {len(found['literal']):7} "
              f"{len(found['spec']):5} {total:6}{lines}")
    sums = {key: sum(len(row[1][key]) for row in rows) for key in ("attr", "literal", "spec")}
    print(f"{'TOTAL outside branch modules (' + str(len(rows)) + ' files)':48} {sums['attr']:5} "
          f"{sums['literal']:7} {sums['spec']:5} {sum(sums.values()):6}")
    data = sum(row[2] for row in rows if row[0].startswith(DATA_BUILDERS))
    print(f"of which in {DATA_BUILDERS[len('src/lhama/'):]} (lhama's own data: JSONL record keys): {data}; "
          f"the rest: {sum(sums.values()) - data}")
    print(f"(inside the branch modules, not counted: {branch_total})")


if __name__ == "__main__":
    main()
