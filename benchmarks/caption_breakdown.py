"""Where does a caption chrF come from? Splits the saved held-out captions of
``benchmarks/default_model.py`` runs into the letter stamps ("A letra q.", "O gesto para a letra
O na Linguagem Americana de Sinais.") and everything else (objects, animals, plants), because
corpus chrF rewards the letter references' shared form so much that a constant letter-style
answer scores 20 on this hold-out.

Per system: chrF overall / on letter references / on the others; how often the answer has the
letter form on each part (seeing *that* it is a letter); the right letter (case ignored); how
many other answers share a content word with their reference (naming the object;
``lhama.eval.metrics.content_word_match``); distinct answers; answers over 15 words (a caption
that did not stop). Then, per result file, the first system's chrF gap over each other system on
the non-letter references alone, with default_model.py's paired bootstrap over images.

    python benchmarks/caption_breakdown.py docs/results/default_model.json docs/results/default_model_v4.json

Seconds; reads only the result files and the references.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lhama.recipes.default.splits import read_file_list
from lhama.eval.caption import load_captions
from lhama.eval.metrics import chrf, content_word_match

from default_model import chrf_difference  # benchmarks/ is on the path when run as a script

LETTER_FORM = re.compile(r"^A letra\b|gesto para a letra\b")
LETTER_NAME = re.compile(r"letra (\w)\b")  # one letter: "A letra q." ("A letra alemã sz." names none)


def is_letter(text: str) -> bool:
    return LETTER_FORM.search(text) is not None


def letter_of(text: str) -> str | None:
    """The single letter a letter-style caption names (lower case), else None."""
    match = LETTER_NAME.search(text) if is_letter(text) else None
    return match.group(1).lower() if match else None


def breakdown(captions: dict[str, str], references: dict[str, str]) -> dict:
    files = [f for f in references if f in captions]
    letters = [f for f in files if is_letter(references[f])]
    others = [f for f in files if not is_letter(references[f])]

    def score(part: list[str]) -> float:
        return chrf([captions[f] for f in part], [[references[f] for f in part]])

    return {
        "n": len(files), "letters": len(letters), "others": len(others),
        "chrf": score(files), "chrf_letters": score(letters), "chrf_others": score(others),
        "letter_form_on_letters": sum(is_letter(captions[f]) for f in letters),
        "letter_form_on_others": sum(is_letter(captions[f]) for f in others),
        "right_letter": sum(letter_of(references[f]) is not None and letter_of(captions[f]) == letter_of(references[f])
                            for f in letters),
        "named_others": round(content_word_match([captions[f] for f in others], [references[f] for f in others]) * len(others)),
        "distinct": len({captions[f] for f in files}),
        "over_15_words": sum(len(captions[f].split()) > 15 for f in files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON written by benchmarks/default_model.py --out")
    parser.add_argument("--data", default="../shared/data/tuxpaint_ptbr")
    parser.add_argument("--split", default="data/tuxpaint/heldout.txt")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()

    missing = [str(path) for path in args.results if not path.is_file()]
    if missing:
        parser.error(f"no such result file: {', '.join(missing)}")
    references = {i.file: i.reference for i in load_captions(args.data, only=read_file_list(args.split))}
    results = {path: [s for s in json.loads(path.read_text())["rows"] if s.get("captions")] for path in args.results}
    rows = [{"results": str(path), "system": system["system"]} | breakdown(system["captions"], references)
            for path, systems in results.items() for system in systems]
    if not rows:
        parser.error("no captions in the given result files (run default_model.py without --retrieval-only)")

    first = rows[0]
    table = Table(title=f"held-out captions: {first['letters']} letter references, {first['others']} others")
    for column in ("results", "system", "chrF", "chrF letters", "chrF others", "letter form (letters)",
                   "right letter", "letter form (others)", "others named", "distinct", "> 15 words"):
        table.add_column(column)
    for r in rows:
        table.add_row(Path(r["results"]).stem, r["system"], f"{r['chrf']:.1f}", f"{r['chrf_letters']:.1f}", f"{r['chrf_others']:.1f}",
                      f"{r['letter_form_on_letters']}/{r['letters']}", f"{r['right_letter']}/{r['letters']}",
                      f"{r['letter_form_on_others']}/{r['others']}", f"{r['named_others']}/{r['others']}",
                      str(r["distinct"]), str(r["over_15_words"]))
    Console().print(table)
    gaps = []
    others = {f: r for f, r in references.items() if not is_letter(r)}
    for path, systems in results.items():
        for baseline in systems[1:]:
            gap = chrf_difference(systems, systems[0]["system"], baseline["system"], others)
            gaps.append({"results": str(path), "system": systems[0]["system"]} | gap)
            print(f"{path.stem}: chrF on the {len(others)} non-letter references, {systems[0]['system']} minus "
                  f"{baseline['system']}: {gap['difference']:+.1f} (95% paired bootstrap {gap['ci95'][0]:+.1f} .. {gap['ci95'][1]:+.1f})")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "chrf_gaps_others": gaps}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
