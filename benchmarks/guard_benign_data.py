"""Build the guard's benign pt-BR measurement set, data/guard/benign/benign.jsonl (never trained on).

    python benchmarks/guard_benign_data.py --shared /work/shared/data

One sentence per line, as the stream guard judges an answer (split with ``lhama.guard.stream``'s
sentence rule), with its ``source`` category and a ``ref`` naming where it came from:

- ``tuxpaint_caption``: Tux Paint stamp captions, pt_BR and pt columns (SHARED/tuxpaint_ptbr/captions.tsv)
- ``admire_sentence``: AdMIRe pt-BR sentences, train and dev (SHARED/admire_pt/*.tsv)
- ``llava_answer_mt`` / ``llava_question_mt``: LLaVA-Instruct COCO conversations
  (SHARED/llava_instruct_en/coco_val_30x3.json) translated with lhama's own Bergamot model
- ``readme_prose_mt``: README prose of installed Python packages (data/guard/benign/readme_en.tsv,
  extracted from their METADATA) translated the same way
- ``everyday_prompt``: data/guard/benign/everyday_prompts.txt and data/guard/everyday.txt (written)
- ``assistant_answer``: sentences of data/guard/benign/assistant_answers.tsv (written answers)

Exact repeats (after lower-casing) and sentences within 0.5 word 3-gram Jaccard of a training item
(data/guard/train.jsonl) are dropped.
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
from lhama.guard.stream import split_sentences

ROOT = Path(__file__).resolve().parents[1]
BENIGN = ROOT / "data" / "guard" / "benign"

Row = tuple[str, str, str]  # (text, source, ref)


def tuxpaint(shared: Path) -> list[Row]:
    with open(shared / "tuxpaint_ptbr" / "captions.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r[col], "tuxpaint_caption", f"tuxpaint {r['file']} {col}") for r in rows for col in ("pt_BR", "pt")]


def admire(shared: Path) -> list[Row]:
    out = []
    for path in sorted((shared / "admire_pt").glob("*.tsv")):
        with open(path, encoding="utf-8") as f:
            out += [(r["sentence"], "admire_sentence", f"{path.name} {r['compound']}") for r in csv.DictReader(f, delimiter="\t")]
    return out


def translate(records: list[dict], work: Path, name: str) -> list[dict]:
    """``records`` (LLaVA JSON shape) translated en -> pt-BR with the bundled Bergamot model."""
    src, dst = work / f"{name}_en.json", work / f"{name}_pt.json"
    src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    translate_file(from_dict(TranslateConfig, {"input": src, "output": dst}))
    return json.loads(dst.read_text(encoding="utf-8"))


def llava(shared: Path, work: Path) -> list[Row]:
    records = json.loads((shared / "llava_instruct_en" / "coco_val_30x3.json").read_text(encoding="utf-8"))
    out = []
    for rec in translate(records, work, "llava"):
        for turn, t in enumerate(rec["conversations"]):
            text = t["value"].replace("<image>", "").strip()
            kind = "llava_answer_mt" if t["from"] == "gpt" else "llava_question_mt"
            out += [(s, kind, f"coco_val_30x3.json {rec['id']} turn {turn}") for s in split_sentences(text)]
    return out


def readme(work: Path) -> list[Row]:
    with open(BENIGN / "readme_en.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    records = [{"id": str(i), "conversations": [{"from": "human", "value": "Explain."}, {"from": "gpt", "value": r["sentence"]}]}
               for i, r in enumerate(rows)]
    done = translate(records, work, "readme")
    return [(rec["conversations"][1]["value"], "readme_prose_mt", f"readme_en.tsv row {int(rec['id']) + 1} ({rows[int(rec['id'])]['package']})")
            for rec in done]


def written() -> list[Row]:
    out = []
    for path in (BENIGN / "everyday_prompts.txt", ROOT / "data" / "guard" / "everyday.txt"):
        lines = path.read_text(encoding="utf-8").splitlines()
        out += [(t, "everyday_prompt", f"{path.name} line {i}") for i, t in enumerate(lines, 1) if t.strip()]
    with open(BENIGN / "assistant_answers.tsv", encoding="utf-8") as f:
        for i, (_, answer) in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            out += [(s, "assistant_answer", f"assistant_answers.tsv line {i}") for s in split_sentences(answer)]
    return out


def grams(text: str) -> frozenset:
    w = re.findall(r"\w+", text.lower())
    return frozenset(tuple(w[i : i + 3]) for i in range(max(0, len(w) - 2))) or frozenset([tuple(w)])


def near_train(text: str, index: dict, train: list) -> bool:
    """True when a training item comes within 0.5 word 3-gram Jaccard of ``text``."""
    g = grams(text)
    candidates = set().union(*(index.get(x, set()) for x in g))
    return any(len(g & train[i]) / len(g | train[i]) >= 0.5 for i in candidates)


def dedupe(rows: list[Row]) -> list[Row]:
    """Drop empty lines, exact repeats, and sentences near a training item (tests/guard/test_dataset.py)."""
    train = [grams(json.loads(line)["text"]) for line in (ROOT / "data/guard/train.jsonl").open(encoding="utf-8")]
    index: dict = {}
    for i, g in enumerate(train):
        for x in g:
            index.setdefault(x, set()).add(i)
    seen, out = set(), []
    for text, source, ref in rows:
        key = text.strip().lower()
        if key and key not in seen and not near_train(key, index, train):
            seen.add(key)
            out.append((text.strip(), source, ref))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, required=True, help="folder with tuxpaint_ptbr, admire_pt, llava_instruct_en")
    parser.add_argument("--out", type=Path, default=BENIGN / "benign.jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = tuxpaint(args.shared) + admire(args.shared) + llava(args.shared, Path(tmp)) + readme(Path(tmp)) + written()
    rows = dedupe(rows)
    lines = [json.dumps({"text": t, "source": s, "ref": r}, ensure_ascii=False) for t, s, r in rows]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {len(rows)} sentences to {args.out}: {dict(Counter(s for _, s, _ in rows))}")


if __name__ == "__main__":
    main()
