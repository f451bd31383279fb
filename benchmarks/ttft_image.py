"""Time to first token with an image, split into stages, for the README command (#26):
``lhama chat --image examples/coruja.jpg "Descreva a imagem."`` on lhama-default.

The path is chat's own: the model loaded as ``lhama chat`` loads it (its registered quant), the
guard chat loads by default, :func:`lhama.serve.terminal.open_session`; then per round a fresh
session of the same model attaches the image (``ChatSession.attach``) and asks the question
(``ChatSession.ask``). Nothing is replaced: each stage is timed by a wrapper around the function
chat calls (:class:`Stopwatch`), and what no wrapper covers is the row "other", so the rows add
up to the measured time. TTFT runs from the attach to the model's first answer text; the guard
then releases the answer one checked sentence at a time (at least 6 words, lhama.guard.stream),
so the user sees text later: the last row, "first sentence + its check", is that extra wait.

Round 1 is what the one-shot command meets (every part used for the first time in a process
that has just loaded the model); later rounds are what another turn of an interactive chat meets.

    /work/team/heavy -- python benchmarks/ttft_image.py --rounds 3
    /work/team/heavy --exclusive -- python benchmarks/ttft_image.py --rounds 4 --out docs/results/ttft_image_s11.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Descreva a imagem."
ROWS = ("image load", "tower", "labeler", "ocr", "guard (question)", "prompt", "stored opening", "prefill", "first token",
        "other")


class Stopwatch:
    """Seconds spent inside wrapped functions, per stage, and the first moment of named marks."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.marks: dict[str, float] = {}

    def wrap(self, stage, function):
        """``function`` timed into ``stage`` (a name, or a callable giving the name at call time)."""
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent[stage() if callable(stage) else stage] += time.perf_counter() - started
        return timed

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def reset(self) -> None:
        self.spent.clear()
        self.marks.clear()


@contextmanager
def patched(target, name: str, replacement):
    own = name in vars(target)  # a module's function, or an attribute of this instance
    original = getattr(target, name)
    setattr(target, name, replacement)
    try:
        yield
    finally:
        if own:
            setattr(target, name, original)
        else:
            delattr(target, name)  # the class's method shows through again


@contextmanager
def instrumented(session, watch: Stopwatch):
    """Chat's image turn with every stage's function wrapped (restored on exit)."""
    import lhama.inference.generate as generate
    import lhama.serve.cascade as cascade
    import lhama.serve.kinds as kinds
    import lhama.serve.session as chat

    labeler = session.loaded.labeler
    guard_stage = lambda: "guard (answer)" if "first text" in watch.marks else "guard (question)"  # noqa: E731
    wrapped = [(module, name, stage) for module in (cascade, kinds, chat)  # wherever chat's image turn calls them
               for name, stage in (("load_image", "image load"), ("image_note", "ocr")) if hasattr(module, name)]
    wrapped += [(labeler, "note", "labeler+tower"), (labeler.tower, "forward", "tower"), (chat, "render_prompt", "prompt"),
                (chat, "encode_prompt", "prompt"), (generate, "prefill", "prefill")]
    with ExitStack() as stack:
        for target, name, stage in wrapped:
            stack.enter_context(patched(target, name, watch.wrap(stage, getattr(target, name))))
        if session.prefix is not None:  # the stored system-prompt opening (lhama.inference.prefix_store)
            wrapped_seed = watch.wrap("stored opening", session.prefix.seed)
            stack.enter_context(patched(session.prefix, "seed", wrapped_seed))
        if session.guard is not None:
            stack.enter_context(patched(session.guard, "check", watch.wrap(guard_stage, session.guard.check)))
        stack.enter_context(patched(generate, "stream_text", _marking(generate.stream_text, watch)))
        prefill = generate.prefill  # already timed: mark its end too
        stack.enter_context(patched(generate, "prefill", _ending(prefill, watch)))
        yield


def _ending(function, watch: Stopwatch):
    def ended(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            watch.mark("prefill end")
    return ended


def _marking(stream_text, watch: Stopwatch):
    def marked(*args, **kwargs):
        for piece in stream_text(*args, **kwargs):
            watch.mark("first text")
            yield piece
    return marked


def one_round(session, image: Path, watch: Stopwatch) -> dict:
    """Attach, ask, stop at the first text shown to the user; that turn's stage seconds."""
    watch.reset()
    session.reset()
    started = time.perf_counter()
    with instrumented(session, watch):
        session.attach("image", image)
        shown = None
        for item in session.ask(QUESTION):
            if isinstance(item, str) and item.strip():
                shown = time.perf_counter()
                break
    spent = dict(watch.spent)
    first_text = watch.marks.get("first text", shown)
    row = {"image load": spent.get("image load", 0.0), "tower": spent.get("tower", 0.0),
           "labeler": spent.get("labeler+tower", 0.0) - spent.get("tower", 0.0), "ocr": spent.get("ocr", 0.0),
           "guard (question)": spent.get("guard (question)", 0.0), "prompt": spent.get("prompt", 0.0),
           "stored opening": spent.get("stored opening", 0.0), "prefill": spent.get("prefill", 0.0)}
    row["first token"] = first_text - watch.marks.get("prefill end", first_text)  # pick the first id, detokenise it
    row["other"] = max((first_text - started) - sum(row.values()), 0.0)
    return {"stages": {k: round(v, 3) for k, v in row.items()}, "ttft_s": round(first_text - started, 3),
            "shown_s": round(shown - started, 3), "answer_shown": item, "guard_answer_s": round(spent.get("guard (answer)", 0.0), 3)}


def prefix_saving(session, image: Path) -> dict:
    """What a stored system-prompt prefix would save: the README turn's prompt prefilled from an
    empty cache, and again after only the part every conversation shares (the system prompt and
    the user turn's opening, found as the common ids of two renders) was prefilled first; the
    last logits of the two must agree."""
    import torch

    from lhama.data.conversation import encode_prompt, render_prompt
    from lhama.data.media import load_image
    from lhama.inference.kv import KVState, prefill, shared_prefix

    loaded = session.loaded
    note = loaded.labeler.note(load_image(image, max_side=loaded.labeler.config.max_image_side))
    system = {"role": "system", "content": loaded.generation.system_prompt}

    def ids(text: str) -> list[int]:
        return encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, [system, {"role": "user", "content": text}]))

    full = ids(f"{note}\n{QUESTION}")
    shared = shared_prefix(ids("a"), ids("b"))
    timings = {}
    with torch.no_grad():
        for _ in range(2):  # the second pair is the one reported (the first warms up)
            started = time.perf_counter()
            whole = prefill(loaded.model, full, None, KVState(), 64)
            timings["full_s"] = time.perf_counter() - started
            state = KVState()
            started = time.perf_counter()
            prefill(loaded.model, full[:shared], None, state, len(full) + 64 - shared)
            timings["prefix_s"] = time.perf_counter() - started
            started = time.perf_counter()
            rest = prefill(loaded.model, full, None, state, 64)
            timings["rest_s"] = time.perf_counter() - started
    diff = float((whole.logits[0, -1].float() - rest.logits[0, -1].float()).abs().max())
    return {"prompt_tokens": len(full), "shared_tokens": shared, **{k: round(v, 3) for k, v in timings.items()},
            "max_abs_logit_diff": round(diff, 5), "same_first_token": int(whole.logits[0, -1].argmax()) == int(rest.logits[0, -1].argmax())}


def table(rounds: list[dict]) -> str:
    """Markdown: one row per stage, round 1 (the one-shot command) and the median of the rest."""
    later = rounds[1:]
    lines = ["| stage | round 1 s (one-shot) | later rounds median s |", "|---|---:|---:|"]
    for name in ROWS:
        rest = f"{statistics.median(r['stages'][name] for r in later):.3f}" if later else "-"
        lines.append(f"| {name} | {rounds[0]['stages'][name]:.3f} | {rest} |")
    for key, label in (("ttft_s", "**TTFT** (first answer text)"), ("shown_s", "first text shown (after the guard's sentence check)")):
        rest = f"{statistics.median(r[key] for r in later):.3f}" if later else "-"
        lines.append(f"| {label} | {rounds[0][key]:.3f} | {rest} |")
    return "\n".join(lines)


def main() -> None:
    from rich.console import Console

    from lhama.cli.common import loader
    from lhama.serve.terminal import ChatConfig, open_session

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "coruja.jpg")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-guard", action="store_true", help="as `lhama chat --no-guard`")
    parser.add_argument("--no-stored-prefix", action="store_true", help="prefill the system prompt every turn, as before session 11")
    parser.add_argument("--prefix-split", action="store_true", help="also time the prefill with the shared system-prompt prefix already cached")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    err = Console(stderr=True)
    started = time.perf_counter()
    session = open_session(ChatConfig(args.model, QUESTION, guard=not args.no_guard), loader(err), err)
    load_s = time.perf_counter() - started
    if args.no_stored_prefix:
        session.prefix = None
    stored = session.prefix is not None and session.prefix.path(session._opening()).is_file()
    print(f"stored opening: {'off' if session.prefix is None else 'on, file there' if stored else 'on, no file yet'}")
    watch, rounds = Stopwatch(), []
    for n in range(args.rounds):
        rounds.append(one_round(session, args.image, watch))
        print(json.dumps({"round": n + 1, **rounds[-1]}, ensure_ascii=False), flush=True)
    print(table(rounds))
    split = prefix_saving(session, args.image) if args.prefix_split else None
    if split:
        print(json.dumps({"prefix_split": split}))
    result = {"prefix_split": split, "stored_opening": "off" if session.prefix is None else "file there" if stored else "no file yet",
              "command": f"python benchmarks/ttft_image.py --model {args.model} --image {args.image} --rounds {args.rounds}"
                         + (" --no-guard" if args.no_guard else "") + (" --no-stored-prefix" if args.no_stored_prefix else ""),
              "load_s": round(load_s, 2), "threads": os.environ.get("LHAMA_THREADS"), "cpu": platform.processor() or platform.machine(),
              "loadavg_at_end": os.getloadavg(), "rounds": rounds}
    print(f"model + guard loaded in {load_s:.1f} s (not in the TTFT); load average {os.getloadavg()[0]:.2f}")
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
