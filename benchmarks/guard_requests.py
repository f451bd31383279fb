"""Sixth round of guard training data (issue #29): everyday requests in the request form
("Me dá…", "Me diz…", "Me ajuda a…", "Give me…") as look-alikes, and the input head's own training
requests translated (pt-BR -> English and English -> pt-BR), for the input head.

    python benchmarks/guard_requests.py            # writes data/guard/hardneg/round6.jsonl
    python benchmarks/guard_requests.py --append   # ... and appends it to data/guard/train.jsonl

Why: the input head flags everyday requests for their opening ("Me dá uma ideia de lanche…" scores
0.75–0.92 with no category above 0.25, docs/guard.md) because in its training data those openings
came mostly with harmful requests. Here every opening comes with many harmless tasks.

Sources: ``data/guard/hardneg/requests/{pt,en}_{np,clause,inf}.txt`` hold harmless tasks written
for this round (noun phrases, "what/how/why" clauses, infinitives), some with trigger-looking words
("atirar a bola", "matar a saudade", "bateria", planets, traffic signs). Each task is combined with
a few openings of its frame (seeded) and a random ending. Translations: the English and pt-BR user
requests of the input head's data (the first ``--first`` lines of train.jsonl) with lhama's bundled
Bergamot models, labels and categories copied.

Kept apart: an item whose word 3-gram Jaccard similarity reaches 0.3 to a benign measurement
sentence (data/guard/benign/benign.jsonl, which holds the measured everyday prompts), a test item
or a dev item (the fifth round's user requests, benchmarks/guard_dev.py), or that repeats a
training item, is dropped (counted, never printed).
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter

from guard_hard_negatives import DATA, write_round
from guard_hard_negatives import keep_unseen as unseen


REQUESTS = DATA / "hardneg" / "requests"
OPENERS = {
    ("pt", "np"): ["Me dá", "Me passa", "Me sugere", "Me recomenda", "Me manda", "Me mostra", "Me arruma",
                   "Me indica", "Me escreve", "Me faz", "Me dê", "Gera", "Cria", "Faz", "Escreve", "Quero",
                   "Pode me dar", "Você pode me passar", "Manda aí", "Dá"],
    ("pt", "clause"): ["Me diz", "Me explica", "Me conta", "Me fala", "Me responde", "Quero saber", "Pode me dizer",
                       "Você sabe", "Me diz aí", "Me lembra", "Me tira uma dúvida:", "Fala pra mim"],
    ("pt", "inf"): ["Me ajuda a", "Me ensina a", "Como eu faço para", "Quero aprender a", "Pode me ajudar a",
                    "Me explica como", "Qual o melhor jeito de", "Me mostra como", "Tem como", "Como faço pra",
                    "Me diz como", "Me ajuda aqui a"],
    ("en", "np"): ["Give me", "Send me", "Show me", "Suggest", "Write me", "Make me", "I need", "Can you give me",
                   "Tell me", "Get me"],
    ("en", "clause"): ["Tell me", "Explain", "Can you tell me", "I want to know", "Quick question:", "Do you know"],
    ("en", "inf"): ["Help me", "Teach me how to", "How do I", "Show me how to", "What's the best way to",
                    "Can you help me", "Tell me how to"],
}
ENDINGS = {"pt": [".", "?", " pra mim.", " por favor.", ", por favor?", " rapidinho.", "", " aí?"],
           "en": [".", "?", " please.", ", please?", "", " for me."]}
PER_TASK = {"pt": 4, "en": 3}


def templated(seed: int = 0) -> list[dict]:
    """Every task with ``PER_TASK`` openings of its frame (seeded), as safe look-alike requests; then the
    fifth session's tasks (``{lang}_{frame}_s5.txt``, source ``template-{lang}-s5``) with their own seed,
    so the earlier rows stay the same."""
    return _templated("", "", random.Random(seed)) + _templated("_s5", "-s5", random.Random(seed + 5))


def _templated(file_suffix: str, source_suffix: str, rng: random.Random) -> list[dict]:
    out = []
    for (lang, frame), openers in OPENERS.items():
        path = REQUESTS / f"{lang}_{frame}{file_suffix}.txt"
        if not path.is_file():
            continue
        for task in filter(None, map(str.strip, path.read_text(encoding="utf-8").splitlines())):
            for opener in rng.sample(openers, PER_TASK[lang]):
                text = f"{opener} {task}{rng.choice(ENDINGS[lang])}"
                text = text if rng.random() > 0.15 else text.lower()  # typed casually
                out.append(_record(text, lang, [], True, f"template-{lang}{source_suffix}"))
    return out


def translated(train: list[dict]) -> list[dict]:
    """The user requests of ``train`` in the other language (Bergamot), labels copied."""
    from lhama.data.translate.bergamot import BergamotBackend

    out = []
    for src, dst in (("pt", "en"), ("en", "pt")):
        rows = [r for r in train if r["lang"] == src and r.get("role", "user") == "user"]
        texts = BergamotBackend(f"{src}-{dst}").translate_batch([r["text"] for r in rows])
        out += [_record(t, dst, r["categories"], bool(r.get("lookalike")), f"mt-{src}-train") for r, t in zip(rows, texts)]
    return out


def _record(text: str, lang: str, categories: list, lookalike: bool, source: str) -> dict:
    return {"text": text.strip(), "lang": lang, "label": "unsafe" if categories else "safe",
            "categories": list(categories), "lookalike": lookalike, "role": "user", "round": 6, "source": source}


def keep_unseen(items: list[dict], train: list[dict]) -> tuple[list[dict], int]:
    """Items under ``LIMIT`` from every benign, test and dev sentence, not repeating train or each other."""
    dev = [r["text"] for r in train if r.get("round") == 5 and r.get("role") == "user"]  # the dev split
    return unseen(items, dev, train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", action="store_true", help="append the kept items to data/guard/train.jsonl")
    parser.add_argument("--first", type=int, default=2561, help="lines of train.jsonl that are the input head's data")
    args = parser.parse_args()
    train = [json.loads(line) for line in (DATA / "train.jsonl").open(encoding="utf-8") if line.strip()]
    if any(r.get("round") == 6 for r in train):
        raise SystemExit("train.jsonl already holds round 6")
    kept, dropped = keep_unseen(templated() + translated(train[: args.first]), train)
    write_round(kept, DATA / "hardneg" / "round6.jsonl", args.append)
    print(f"kept {len(kept)} ({dict(Counter(item['source'] for item in kept))}), dropped {dropped} near a "
          "benign/test/dev sentence or repeating train" + ("; appended to train.jsonl" if args.append else ""))


if __name__ == "__main__":
    main()
