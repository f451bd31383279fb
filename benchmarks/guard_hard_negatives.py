"""Fifth round of guard training data (issue #29): benign hard negatives and English items,
appended to data/guard/train.jsonl after an overlap check.

    python benchmarks/guard_hard_negatives.py            # writes data/guard/hardneg/round5.jsonl
    python benchmarks/guard_hard_negatives.py --append   # ... and appends it to train.jsonl

Sources (data/guard/hardneg/):
- ``written_pt.txt``: everyday pt-BR sentences with trigger-looking words, written for #29
  ("bateria", "atirar a bola", "matar a saudade", planets, traffic signs, recipes with knives,
  history, games, short replies such as "Não."), safe, model-output role.
- ``en_sources.tsv``: English prose of the Python reference (500 sentences of pydoc topics), the
  README sentences of installed packages that the benign set does not use (same packages, other
  sentences) and 1000 ImageNet-12k class definitions (timm's synset files), translated en -> pt-BR
  with lhama's bundled Bergamot model; safe, model-output role.
- ``english.tsv``: English unsafe requests (intent only, S1-S14) and benign look-alikes, written.
- ``written_pt_labelled.tsv``: everyday pt-BR requests opening like unsafe ones ("Me dá", "Me diz",
  "Me conta", "Me ajuda"; look-alikes) and pt-BR unsafe requests (intent only) for the categories
  weakest out of fold (S8, S10, S4, S9, S12, S1), written.


Every item whose word 3-gram Jaccard similarity to a benign measurement sentence
(data/guard/benign/benign.jsonl) or a test item reaches 0.3, or that repeats a training item, is
dropped (counted, never printed), so the measurement set and the test split stay unseen.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import tempfile
from collections import Counter
from pathlib import Path

from lhama.config import from_dict
from lhama.data.translate import TranslateConfig, translate_file
from lhama.files import atomic_write_text

DATA = Path(__file__).resolve().parents[1] / "data" / "guard"
HARD = DATA / "hardneg"
LIMIT = 0.3


def grams(text: str) -> frozenset:
    w = re.findall(r"\w+", text.lower())
    return frozenset(tuple(w[i : i + 3]) for i in range(max(0, len(w) - 2))) or frozenset([tuple(w)])


def translated() -> list[dict]:
    with open(HARD / "en_sources.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    records = [{"id": str(i), "conversations": [{"from": "human", "value": "Explain."}, {"from": "gpt", "value": r["sentence"]}]}
               for i, r in enumerate(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "en.json", Path(tmp) / "pt.json"
        src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        translate_file(from_dict(TranslateConfig, {"input": src, "output": dst}))
        done = json.loads(dst.read_text(encoding="utf-8"))
    return [_record(rec["conversations"][1]["value"], "pt", role="assistant",
                    source="mt-" + rows[int(rec["id"])]["source"].split(":")[0]) for rec in done]


def written() -> list[dict]:
    lines = (HARD / "written_pt.txt").read_text(encoding="utf-8").splitlines()
    out = [_record(t, "pt", role="assistant", source="written-pt") for t in lines if t.strip()]
    for name, lang in (("english.tsv", "en"), ("written_pt_labelled.tsv", "pt")):
        with open(HARD / name, encoding="utf-8") as f:
            for label, cat, text in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                unsafe = label == "unsafe"
                out.append(_record(text, lang, categories=[cat] if unsafe else [], lookalike=not unsafe,
                                   source=f"written-{lang}-labelled"))
    return out


def _record(text: str, lang: str, role: str = "user", categories: list | None = None,
            lookalike: bool = False, source: str = "") -> dict:
    cats = categories or []
    return {"text": text.strip(), "lang": lang, "label": "unsafe" if cats else "safe", "categories": cats,
            "lookalike": lookalike, "role": role, "round": 5, "source": source}


def keep_unseen(items: list[dict], extra_held: list[str] = (), train: list[dict] | None = None) -> tuple[list[dict], int]:
    """Items far (< LIMIT) from every benign measurement sentence, test item and ``extra_held`` text,
    not repeating train (``train``'s rows, or data/guard/train.jsonl) or each other."""
    held = [json.loads(line)["text"] for name in ("benign/benign.jsonl", "test.jsonl") for line in (DATA / name).open(encoding="utf-8")]
    held_grams = [grams(t) for t in [*held, *extra_held]]
    if train is None:
        train = [json.loads(line) for line in (DATA / "train.jsonl").open(encoding="utf-8") if line.strip()]
    seen = {r["text"].lower() for r in train}
    kept = []
    for item in items:
        g = grams(item["text"])
        near = max(len(g & h) / len(g | h) for h in held_grams)
        if near < LIMIT and item["text"].lower() not in seen:
            seen.add(item["text"].lower())
            kept.append(item)
    return kept, len(items) - len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", action="store_true", help="append the kept items to data/guard/train.jsonl")
    args = parser.parse_args()
    kept, dropped = keep_unseen(written() + translated())
    write_round(kept, HARD / "round5.jsonl", args.append)
    print(f"kept {len(kept)} ({dict(Counter(item['source'] for item in kept))}), dropped {dropped} near a benign/test "
          "sentence or repeating train" + ("; appended to train.jsonl" if args.append else ""))


def write_round(kept: list[dict], path: Path, append: bool) -> None:
    """The kept items as JSONL at ``path`` (atomically), and at the end of train.jsonl with ``append``."""
    lines = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in kept)
    atomic_write_text(path, lines)
    if append:
        atomic_write_text(DATA / "train.jsonl", (DATA / "train.jsonl").read_text(encoding="utf-8") + lines)


if __name__ == "__main__":
    main()
