"""Issue #26 session 14: does naming a picture's colours in the labeler note raise 5-way caption retrieval?

    python benchmarks/retrieval_s14_colour.py run --data /tmp/26b/s13/fresh --cache /tmp/26b/s14/dev/colour.jsonl \\
        [--colour/--no-colour] [--start 0 --stop 143]
    python benchmarks/retrieval_s14_colour.py table --data DIR --scores CACHE.jsonl --priors READ.jsonl [--notes NOTES.tsv]

lhama-default's note names a class, a kind or nothing, never a colour, so a caption that differs from
another only by colour ("Uma lata de tinta verde.") cannot be chosen from the note. :func:`colours` names
the main colours of a picture's pixels in pt-BR (no model: HSV bins); ``run`` scores the trials of
``lhama eval retrieval`` (``make_trials``, seed 0) with each note followed by ``Cores: verde e branco.``
inside its brackets, and the summed log-probability only: the caption-only prior does not depend on
the note, so PMI is formed in ``table`` with the priors of a read's cache over the same trials (the
candidates are checked to be the same). ``--no-colour --scoring pmi --start A --stop B`` is the shipped
scoring of ``lhama eval retrieval`` (the same ``evaluate_retrieval``) on a slice of the same trials, so a
read can run in two slots at once. The rule: docs/results/retrieval_s14_rule.md.

Nothing here changes the shipped note: the colour is added by wrapping the loaded labeler's ``note``
in this script only.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import sys
from collections import Counter
from pathlib import Path

from PIL import Image

SIDE = 96  # pictures are named from a thumbnail this size
PAGE = 235  # a pixel with every channel at least this light is the white page of a drawing
BORDER_PAGE = 0.6  # a picture whose border is this much page is a drawing on a page (page pixels left out)
SHARE = 0.2  # a colour covering at least this share of the counted pixels is named
MOST = 2  # at most this many colours are named
HUES = ((15, "vermelho"), (40, "laranja"), (70, "amarelo"), (170, "verde"), (260, "azul"), (290, "roxo"),
        (340, "rosa"), (361, "vermelho"))  # upper hue bound (degrees) -> name


def pixel_colour(r: int, g: int, b: int) -> str:
    """The pt-BR name of one RGB pixel's colour (eleven names: the hue bins of :data:`HUES`, marrom,
    preto, branco, cinza)."""
    h, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
    if v < 0.2:
        return "preto"
    if s < 0.15:
        return "branco" if v > 0.85 else "cinza" if v > 0.3 else "preto"
    hue = h * 360
    if 10 <= hue < 40 and v < 0.6:
        return "marrom"
    name = next(n for bound, n in HUES if hue < bound)
    if name == "vermelho" and s < 0.5 and v > 0.7:
        return "rosa"
    return name


def colours(image: Image.Image) -> list[str]:
    """The picture's main colours, most covered first: each covering :data:`SHARE` of its pixels (at
    most :data:`MOST`; the most covered one when none does). On a drawing whose border is mostly
    white page, the page pixels are not counted."""
    small = image.convert("RGB")
    small.thumbnail((SIDE, SIDE))
    w, h = small.size
    px = list(small.getdata())
    border = [px[i] for i in range(w)] + [px[(h - 1) * w + i] for i in range(w)] + \
             [px[j * w] for j in range(h)] + [px[j * w + w - 1] for j in range(h)]
    on_page = sum(min(p) >= PAGE for p in border) >= BORDER_PAGE * len(border)
    counted = [p for p in px if not (on_page and min(p) >= PAGE)] or px
    shares = Counter(pixel_colour(*p) for p in counted).most_common()
    named = [name for name, n in shares if n >= SHARE * len(counted)][:MOST]
    return named or [shares[0][0]]


def with_colours(note: str, names: list[str]) -> str:
    """``[Imagem anexada: parece ser X.]`` -> ``[Imagem anexada: parece ser X. Cores: verde e branco.]``."""
    said = f"Cor: {names[0]}." if len(names) == 1 else f"Cores: {', '.join(names[:-1])} e {names[-1]}."
    return f"{note[:-1]} {said}]" if note.endswith("]") else f"{note} {said}"


def colour_notes(labeler) -> None:
    """Make ``labeler.note`` add the picture's colours to every note (this script's experiment only)."""
    plain = labeler.note
    labeler.note = lambda image: with_colours(plain(image), colours(image))


def run(args: argparse.Namespace) -> None:
    from rich.console import Console

    from lhama.cli.common import load_with_progress
    from lhama.eval.cache import open_cache
    from lhama.eval.caption import load_captions
    from lhama.eval.retrieval import evaluate_retrieval, make_trials

    out = args.cache.resolve()
    if not str(out).startswith("/tmp/"):
        sys.exit(f"error: the cache must be under /tmp/, got {out}")
    trials = make_trials(load_captions(args.data, "pt_BR"), 5, 0)[args.start:args.stop]
    loaded = load_with_progress(args.model, Console(stderr=True))
    if args.colour:
        colour_notes(loaded.labeler)
    cache = open_cache({"task": "retrieval_s14_colour", "data": str(args.data), "colour": args.colour, "scoring": args.scoring,
                        "system": loaded.generation.system_prompt}, out)
    result = evaluate_retrieval(loaded, trials, cache, scoring=args.scoring)
    print(f"{result.n} trials, {args.scoring} top-1 {result.top1:.3f} (colour {args.colour})")


def table(args: argparse.Namespace) -> dict:
    """PMI top-1 of ``--scores`` (this script's cache) with the priors of ``--priors`` (a read's cache),
    overall and by the hand judgement of the note (``--judged``: file -> R/K/W/N)."""
    from lhama.eval.caption import load_captions

    own = {i.file: i.reference for i in load_captions(args.data, "pt_BR")}
    priors = _records(args.priors)
    judged = dict(line.split("\t")[:2] for line in args.judged.read_text(encoding="utf-8").splitlines()) if args.judged else {}
    right, n, groups = 0, 0, {}
    for item, record in _records(args.scores).items():
        prior = priors[item]
        if prior["candidates"] != record["candidates"]:
            sys.exit(f"error: {item}: the two caches hold other candidates")
        pmi = [s - p for s, p in zip(record["scores"], prior["prior"])]
        ok = record["candidates"][max(range(len(pmi)), key=pmi.__getitem__)] == own[item]
        right, n = right + ok, n + 1
        group = groups.setdefault(judged.get(item, "-"), [0, 0])
        group[0], group[1] = group[0] + ok, group[1] + 1
    out = {"right": right, "n": n, "top1": round(right / max(n, 1), 4), "by_note": groups}
    print(json.dumps(out, ensure_ascii=False))
    return out


def _records(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["item"]: r for r in rows if "item" in r}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--model", default="lhama-default")
    p.add_argument("--colour", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--stop", type=int, default=None)
    p.add_argument("--scoring", choices=("logprob", "pmi"), default="logprob",
                   help="pmi also scores the caption-only priors (the shipped read of a slice of the trials)")
    t = sub.add_parser("table")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--scores", type=Path, required=True)
    t.add_argument("--priors", type=Path, required=True)
    t.add_argument("--judged", type=Path)
    args = parser.parse_args(argv)
    run(args) if args.command == "run" else table(args)


if __name__ == "__main__":
    main()
