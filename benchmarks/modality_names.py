"""Where does lhama's source name a modality outside the branch modules, and why?

The architecture issue's measure ("number of places that name a modality outside its own branch
module: a handful"), counted on the syntax tree of every ``src/lhama`` file, per file. A *place*
is one of:

* an attribute read ``x.image`` / ``x.video`` / ``x.audio`` (module paths in imports are not
  reads and are not counted);
* a string literal ``"image"``, ``"video"``, ``"audio"`` (also the pieces of an f-string);
* an identifier of a per-kind preprocessing setting: ``image_spec``, ``video_spec``,
  ``audio_spec``, ``video_frames`` (names, attributes, parameters, keywords, definitions).

The branch modules (where naming the modality is the point) are left out: the kind table
``model/branches.py`` and its file-format column ``model/branch_files.py`` (each kind's entry for
how it is saved and loaded besides its weights; it sits beside the table only because those
entries use transformers' formats and ``LoadedModel``, and until 2026-12-06 it was part of
``model/build.py``, where its 3 table keys counted as logic and ``_write_image``'s 3 places as
interface: the move took those 6 places out of the count, a bookkeeping change, no code naming a
kind went away), the encoders ``model/{encoders,video,audio}.py`` and ``model/towers/``, and the medium
decoders ``data/{media,video,audio}.py``. Since 2026-12-06 (session 5) serve's column of the table,
``serve/kinds.py`` (each kind's stand-in note and API part rules, which were ``NOTES``/``TRACK_NOTES``
in ``serve/cascade.py`` and ``IMAGES``/``VIDEOS``/``SOUNDS`` in ``serve/prompt.py``), is one too:
its 3 record names are left out as the table's own are (a bookkeeping change: the count with
them in is printed too).

The kind names are the registry's (``lhama.model.branches.KIND``, the built-in kinds when this
runs; the same three for every tree measured so far).

Each place is classified by the definition it sits in (the enclosing function or class, or the
module-level name it is assigned to):

* **interface**: a name a user reads or writes, which has to say the kind: a CLI flag's value, an
  API field's value, a key or column of a data record (JSONL, CSV, YAML) or the dataclass field
  that holds it, a saved file's layout, text shown to the user. A definition counts as interface
  only when it is listed in ``INTERFACE`` below with the format it serves, and it is listed only
  when *every* place in it is such a name; every place in ``recipes/default/`` (which writes
  lhama's own JSONL files: record keys and folder names) is interface too.
* **logic**: every other place: code that decides or dispatches by kind (``"image" in
  config.branches``, ``sample.image is None``, one handler per kind, per-kind limits and error
  codes), or an image-only path that picks a branch by its name. Logic is the default, so a new
  place is counted as logic until someone lists its definition, with a reason.

Not counted above, and printed as a line of its own since 2026-12-06 (session 7): the branch
parts' *attribute* names (``vision_tower``, ``multi_modal_projector``, ``video_temporal``... every
``BranchKind.attributes``) read or written as an attribute or a string outside the branch modules
(and ``model/lhama.py``, which holds them): wiring by name that a count of kind names misses (a
hand list such as distillation's projectors, before it read the table).

The goal "a handful" is about the logic places: the interface ones stay as long as the formats
name the kind. Reads a committed tree with ``--rev`` (so others' uncommitted work is not counted),
else the working tree; ``--lines`` prints each place as ``line:class``.

    python benchmarks/modality_names.py --rev HEAD
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
from pathlib import Path

from lhama.model.branches import KIND

KINDS = tuple(KIND)  # the built-in kinds: image, video, audio
SPEC_NAMES = {"image_spec", "video_spec", "audio_spec", "video_frames"}
DATA_BUILDERS = "src/lhama/recipes/default/"
BRANCH_MODULES = re.compile(r"^src/lhama/(model/(branches|branch_files|encoders|video|audio)\.py|model/towers/"
                            r"|data/(media|video|audio)\.py|serve/kinds\.py)")
SERVE_TABLE = "src/lhama/serve/kinds.py"
MODEL = "src/lhama/model/lhama.py"  # LhamaModel: holds the parts by attribute (for the part-name line)

# (file under src/lhama/, definition) -> the user-facing format every place in it names
INTERFACE = {
    ("cli/chat.py", "open_session"): "the --image/--video/--audio flags' values (ChatMedia fields)",
    ("data/collate.py", "SAMPLE_MEDIA"): "the Sample fields, i.e. the JSONL record keys image/video/audio",
    ("data/dataset.py", "_record_id"): "JSONL record key 'image'",
    ("data/dataset.py", "_to_sample"): "JSONL record keys 'image' (LLaVA and lhama records) and 'audio'",
    ("data/dataset.py", "_video"): "JSONL record key 'video'",
    ("data/dataset.py", "_audio_path"): "JSONL record key 'audio'",
    ("eval/admire.py", "_candidate_columns"): "ADMIRE's CSV columns image{n}_name/_caption",
    ("eval/admire.py", "_caption_column"): "ADMIRE's CSV columns image{n}_caption(_pt)",
    ("eval/admire.py", "_candidates"): "ADMIRE's CSV column image{n}_name",
    ("eval/naming.py", "COLUMNS"): "the naming set's CSV column 'image'",
    ("eval/naming.py", "item_path"): "NamingItem.image, the CSV's image column",
    ("eval/vqa.py", "_llava_record"): "the VQA JSONL key 'image'",
    ("eval/vqa.py", "evaluate_vqa"): "VqaItem.image, the VQA record's image file",
    ("eval/caption.py", "evaluate_captions"): "CaptionItem.image, the caption record's image file",
    ("eval/retrieval.py", "_scores"): "CaptionItem.image, the caption record's image file",
    ("eval/report.py", "render_report"): "the HTML report's 'image' track label",
    # listed in session 12 (classification only; s11 counted it as logic): the name is a saved key and shown text
    ("eval/runner.py", "_rankers"): "the model ranker's name 'MODEL (image)': the system's key in the results JSON "
                                    "and the prediction cache, and its progress label",
    # trees before model/branch_files.py (2026-12-06) had it in build.py; kept so that they count as before
    ("model/build.py", "_write_image"): "the LLaVA directory layout (image_token_index, preprocessor_config.json)",
    ("serve/moderation.py", "_parts_result"): "the moderation API's result kind 'image'",
    ("train/config.py", "PrealignConfig"): "the recipe YAML key prealign.branch, whose default names the image branch",
    ("train/config.py", "ModelSpec.convert_old_keys"): "the recipe YAML keys model.image/.video/.audio from before branches:",
    ("train/config.py", "ModelSpec.encoders"): "the recipe YAML key model.vision, the image branch's tower (session 12)",
}


def classify(source: str, path: str) -> list[tuple[int, str, str]]:
    """Each place in ``source`` (the file ``path`` under the repo root) as (line, definition, class)."""
    short = path.removeprefix("src/lhama/")
    return [(line, where, "interface" if path.startswith(DATA_BUILDERS) or (short, where) in INTERFACE
             else "logic") for line, where in _places(ast.parse(source))]


def _places(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        where = _definition(node, where)
        if _names_a_kind(node):
            found.append((node.lineno, where or "<module>"))
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, "")
    return found


def _definition(node: ast.AST, where: str) -> str:
    """The qualified name of the definition ``node`` opens, else ``where`` (its parent's)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return f"{where}.{node.name}" if where else node.name
    if not where and isinstance(node, (ast.Assign, ast.AnnAssign)):
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        return getattr(target, "id", "")
    return where


def _names_a_kind(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and node.attr in KINDS:
        return True
    if isinstance(node, ast.Constant) and node.value in KINDS:
        return True
    return _identifier(node) in SPEC_NAMES


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


def part_names(source: str) -> list[int]:
    """Lines in ``source`` that name a branch part by its model attribute (see the module docstring)."""
    parts = {name for kind in KIND.values() for name in kind.attributes}
    return sorted(node.lineno for node in ast.walk(ast.parse(source))
                  if (isinstance(node, ast.Attribute) and node.attr in parts)
                  or (isinstance(node, ast.Constant) and node.value in parts))


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
    parser.add_argument("--lines", action="store_true", help="also print each place as line:class (i/l)")
    args = parser.parse_args()
    rows, branch_total, serve_table, parts = [], 0, 0, {}
    for path, text in sources(args.root, args.rev).items():
        places = classify(text, path)
        if not BRANCH_MODULES.match(path) and path != MODEL and part_names(text):
            parts[path[len("src/lhama/"):]] = part_names(text)
        if BRANCH_MODULES.match(path):
            branch_total += len(places)
            serve_table += len(places) if path == SERVE_TABLE else 0
        elif places:
            rows.append((path, places))
    rows.sort(key=lambda row: (-sum(c == "logic" for *_, c in row[1]), -len(row[1]), row[0]))
    print(f"{'file':40} {'interface':>9} {'logic':>6} {'total':>6}")
    for path, places in rows:
        logic = sum(c == "logic" for *_, c in places)
        lines = "  " + ",".join(f"{n}:{c[0]}" for n, _, c in sorted(places)) if args.lines else ""
        print(f"{path[len('src/lhama/'):]:40} {len(places) - logic:9} {logic:6} {len(places):6}{lines}")
    total = sum(len(p) for _, p in rows)
    logic = sum(c == "logic" for _, p in rows for *_, c in p)
    print(f"{'TOTAL (' + str(len(rows)) + ' files)':40} {total - logic:9} {logic:6} {total:6}")
    logic_files = sum(any(c == "logic" for *_, c in p) for _, p in rows)
    print(f"logic places in {logic_files} files; interface places: {total - logic} "
          f"({sum(len(p) for f, p in rows if f.startswith(DATA_BUILDERS))} of them recipes/default's JSONL keys)")
    print(f"(inside the branch modules, not counted: {branch_total}; of them in {SERVE_TABLE}: {serve_table}, "
          f"which as logic would make {logic + serve_table} logic, {total + serve_table} in all)")
    print(f"branch parts named by attribute outside the branch modules and {MODEL}: "
          f"{sum(len(v) for v in parts.values())} in {len(parts)} files"
          + (": " + "; ".join(f"{f} {','.join(map(str, v))}" for f, v in sorted(parts.items())) if args.lines else ""))


if __name__ == "__main__":
    main()
