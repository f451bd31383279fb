"""How straight is the path from `lhama chat --model M` to the weights read?

Traces every call into lhama's own source files while the CLI's model loader turns ``--model``
into a loaded model (a prepared, registered name: no conversion runs), up to the first weights
read (safetensors, or a transformers model's ``from_pretrained``; a config or tokenizer read goes
on). Prints the calls, the files they visit, and how often the path returns to a file it had
already left (the architecture issue's measure); since session 12 also how many of those returns
re-enter a file that was still on the call stack (a caller carrying on after a helper in another
file, or a class's ``__post_init__`` called back by the loader it called) and how many enter again
a file the path had left for good (the same counts, split; the total is unchanged). ``tests/cli/test_common.py`` keeps the path of a
prepared plain LM straight.

    python benchmarks/call_path.py --model smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


# transformers' model loaders; AutoConfig/AutoTokenizer.from_pretrained read no weights
MODEL_LOADERS = ("modeling_utils.py", "auto_factory.py")


class WeightsRead(BaseException):
    """Ends the load at its first weights read (a BaseException: no ``except Exception`` on the
    way up turns it into a user error), so a trace never holds a whole model in memory."""


def trace(model: str, quant: str | None = None) -> list[tuple[str, str]]:
    """(file, function) of each lhama call made while loading ``model`` (as ``--quant quant``;
    None: the registry's choice), in order (see :func:`trace_stacked`)."""
    return [(file, function) for file, function, _ in trace_stacked(model, quant)]


def trace_stacked(model: str, quant: str | None = None) -> list[tuple[str, str, frozenset[str]]]:
    """(file, function, the lhama files on the call stack below it) of each lhama call made while
    loading ``model`` (as ``--quant quant``; None: the registry's choice), in order.

    Calls made while a module is being imported (the CLI imports library code inside its
    functions) are not the path: they are skipped, and so is the import of safetensors itself;
    the trace ends at the first weights read by running code: a ``safe_open`` method, Python code
    in the safetensors package, or a transformers model's ``from_pretrained``. The load stops
    there (:class:`WeightsRead`)."""
    import lhama
    from rich.console import Console

    from lhama.cli.common import load_with_progress

    root = str(Path(lhama.__file__).parent)
    calls: list[tuple[str, str, frozenset[str]]] = []
    done = False
    top = sys._getframe()

    def importing(frame) -> bool:  # noqa: ANN001
        while frame is not None and frame is not top:
            if frame.f_code.co_name == "<module>":
                return True
            frame = frame.f_back
        return False

    def profile(frame, event, arg):  # noqa: ANN001
        nonlocal done
        if done or event not in ("call", "c_call"):
            return
        if event == "c_call":  # safe_open(...).get_tensor is Rust: only its C calls are seen
            done = getattr(arg, "__qualname__", "").startswith("safe_open") and not importing(frame)
            if done:
                raise WeightsRead
            return
        name, function = frame.f_code.co_filename, frame.f_code.co_name
        mine = name.startswith(root)
        weights = "safetensors" in name or (function == "from_pretrained" and name.endswith(MODEL_LOADERS))
        if not (mine or weights) or importing(frame):
            return
        if mine:
            calls.append((name[len(root) + 1:], function, _callers(frame.f_back, top, root)))
            return
        done = True
        raise WeightsRead

    sys.setprofile(profile)
    try:
        load_with_progress(model, Console(stderr=True, quiet=True), quant)
    except WeightsRead:
        pass
    finally:
        sys.setprofile(None)
    return [c for c in calls if not c[1].startswith("<")]  # no comprehensions/lambdas


def _callers(frame, top, root: str) -> frozenset[str]:  # noqa: ANN001
    """The lhama files (relative to ``root``) of the frames from ``frame`` down to ``top``."""
    files = set()
    while frame is not None and frame is not top:
        if frame.f_code.co_filename.startswith(root):
            files.add(frame.f_code.co_filename[len(root) + 1:])
        frame = frame.f_back
    return frozenset(files)


def check_prepared(model: str) -> None:
    """Exit unless a registered ``model`` is prepared and current: the trace follows the path of a
    prepared model, and it stops the load at the first weights read, which would cut a
    preparation short (harmless, it works in a temporary directory, but not the path measured)."""
    from lhama.weights.prepare import is_current
    from lhama.weights.resolve import registered_name

    name = registered_name(model, model)
    if name is not None and not is_current(name):
        sys.exit(f"{name} is not prepared or out of date for this lhama: run `lhama models prepare {name}` first")


def returns(files: list[str]) -> int:
    """How often the sequence re-enters a file it had already left."""
    seen, back, previous = set(), 0, None
    for f in files:
        if f != previous and f in seen:
            back += 1
        seen.add(f)
        previous = f
    return back


def returned(calls: list[tuple[str, str, frozenset[str]]]) -> list[tuple[int, str, str, bool]]:
    """Each return of :func:`returns`, in order: (the call's number from 1, its file, its function, whether that file
    was still on the call stack)."""
    seen, found, previous = set(), [], None
    for number, (file, function, callers) in enumerate(calls, 1):
        if file != previous and file in seen:
            found.append((number, file, function, file in callers))
        seen.add(file)
        previous = file
    return found


def returns_split(calls: list[tuple[str, str, frozenset[str]]]) -> tuple[int, int]:
    """:func:`returns` of the calls' files, split: (re-entries of a file still on the call stack,
    re-entries of a file the path had left for good)."""
    stacked = [on_stack for *_, on_stack in returned(calls)]
    return stacked.count(True), stacked.count(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--show", action="store_true", help="print every call")
    args = parser.parse_args()
    check_prepared(args.model)
    calls = trace_stacked(args.model)
    files = [f for f, _, _ in calls]
    if args.show:
        for f, fn, _ in calls:
            print(f"{f}:{fn}")
    print(f"| calls | files | returns to a visited file |\n|---|---|---|\n| {len(calls)} | {len(set(files))} | {returns(files)} |")
    resumed, again = returns_split(calls)
    print(f"of the returns: {resumed} into a file still on the call stack (its code carrying on), "
          f"{again} into a file the path had left for good")
    if args.show:
        for number, file, function, on_stack in returned(calls):
            print(f"  call {number}: {file}:{function} ({'still on the stack' if on_stack else 'left for good'}; "
                  f"after {calls[number - 2][0]})")


if __name__ == "__main__":
    main()
