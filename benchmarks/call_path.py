"""How straight is the path from `lhama chat --model M` to the weights read?

Traces every call into lhama's own source files while the CLI's model loader turns ``--model``
into a loaded model (a prepared, registered name: no conversion runs), up to the first call into
safetensors / ``from_pretrained``. Prints the calls, the files they visit, and how often the
path returns to a file it had already left (the architecture issue's measure).

    python benchmarks/call_path.py --model smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def trace(model: str) -> list[tuple[str, str]]:
    """(file, function) of each lhama call made while loading ``model``, in order."""
    import lhama
    from rich.console import Console

    from lhama.cli.common import load_with_progress

    root = str(Path(lhama.__file__).parent)
    calls: list[tuple[str, str]] = []
    done = False

    def profile(frame, event, arg):  # noqa: ANN001
        nonlocal done
        if event != "call" or done:
            return
        name = frame.f_code.co_filename
        if name.startswith(root):
            calls.append((name[len(root) + 1:], frame.f_code.co_name))
        elif "safetensors" in name or frame.f_code.co_name == "from_pretrained":
            done = True

    sys.setprofile(profile)
    try:
        load_with_progress(model, Console(stderr=True, quiet=True))
    finally:
        sys.setprofile(None)
    return [c for c in calls if not c[1].startswith("<")]  # no comprehensions/lambdas


def returns(files: list[str]) -> int:
    """How often the sequence re-enters a file it had already left."""
    seen, back, previous = set(), 0, None
    for f in files:
        if f != previous and f in seen:
            back += 1
        seen.add(f)
        previous = f
    return back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--show", action="store_true", help="print every call")
    args = parser.parse_args()
    calls = trace(args.model)
    files = [f for f, _ in calls]
    if args.show:
        for f, fn in calls:
            print(f"{f}:{fn}")
    print(f"| calls | files | returns to a visited file |\n|---|---|---|\n| {len(calls)} | {len(set(files))} | {returns(files)} |")


if __name__ == "__main__":
    main()
