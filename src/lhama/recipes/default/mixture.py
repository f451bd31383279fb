"""The default model's training data, built from real sources on this machine.

Sources (each record keeps its origin in ``source``):

* Tux Paint stamps (``tuxpaint``): human pt-BR captions, *train part only* — the committed
  hold-out (``data/tuxpaint/heldout.txt``) is removed before anything else happens.
* easy-vqa (``easyvqa``): the package's *train* images with their English Q/A, translated by
  lhama's own pipeline (its test images stay for ``lhama eval vqa``).
* AdMIRe subtask A *train* images (``admire``): their English captions, translated.
* Emoji artwork (``emoji``, optional): CLDR's human Portuguese names of clip-art emoji
  (:mod:`lhama.recipes.default.emoji`); one rendering style for stage 1 and another for stage 2, so the two
  stages see different images of each concept.
* Text-only Portuguese turns (``text``): translation requests built from Tux Paint's en/pt_BR
  pairs, idiomatic-vs-literal questions on AdMIRe's pt-BR train sentences, and a few greetings,
  so the tuned model keeps chatting without an image.

Stage 1 (projector alignment) gets image-text pairs; stage 2 gets the instruction mix
(describe / answer / compare two stamps side by side + text-only). Both are LLaVA-Instruct JSONL with absolute image
paths, readable by ``lhama train`` (``data.path=...``).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from lhama.recipes.default.emoji import emoji_answer, emoji_rows
from lhama.recipes.default.splits import read_caption_rows, read_file_list, select_rows
from lhama.errors import DataError
from lhama.files import atomic_open, read_jsonl, write_jsonl

Record = dict[str, Any]
Translate = Callable[[list[Record]], list[Record]]  # English LLaVA records -> Portuguese ones

SHORT_PROMPTS = ("Descreva a imagem.", "O que aparece nesta imagem?", "O que é isto?",
                 "Descreva a imagem brevemente.", "O que você vê na imagem?")
LONG_PROMPTS = ("Descreva a imagem em detalhes.", "Descreva a cena com detalhes.")
COMPARE_PROMPTS = ("Compare as duas figuras: o que há à esquerda e à direita?",
                   "O que aparece à esquerda e o que aparece à direita?")
NEGATED = re.compile(r"\b(not|no)\b")
# Bergamot leaves "teal" in English; the pipeline's glossary forces a Portuguese word.
GLOSSARY = "teal\tazul-petróleo\n"
# easy-vqa answers are a closed set of 13 words; MT on a one-word sentence gives "Green (em
# inglês).", so answers come from this table and only the questions go through MT.
EASY_VQA_ANSWERS = {
    "yes": "Sim.", "no": "Não.", "circle": "Um círculo.", "rectangle": "Um retângulo.", "triangle": "Um triângulo.",
    "red": "Vermelha.", "green": "Verde.", "blue": "Azul.", "yellow": "Amarela.", "black": "Preta.",
    "gray": "Cinza.", "brown": "Marrom.", "teal": "Azul-petróleo.",
}
STAGE1_PROMPT = "Descreva a imagem brevemente."
CATEGORY_PROMPT = "De que tipo é esta figura?"
# Tux Paint's top-level folders in Portuguese: a coarse label the frozen tower separates well
# (linear probe ~0.80), asked as a second turn so the projector must carry it.
TUX_CATEGORIES = {
    "animals": "Animais", "clothes": "Roupas", "food": "Comida", "hobbies": "Passatempos",
    "household": "Objetos da casa", "medical": "Medicina", "military": "Militar",
    "naturalforces": "Forças da natureza", "people": "Pessoas", "plants": "Plantas",
    "seasonal": "Datas comemorativas", "space": "Espaço", "sports": "Esportes", "symbols": "Símbolos",
    "town": "Cidade", "vehicles": "Veículos",
}
# AdMIRe captions open with "The image depicts ..."; the short answer keeps only what is depicted,
# so a short description reads like a Tux Paint caption whatever the source.
DEPICTS = re.compile(r"^A imagem (?:retrata|descreve|mostra|apresenta|exibe|é)\s+", re.IGNORECASE)
COLOR_ANSWERS = frozenset({"red", "green", "blue", "yellow", "black", "gray", "brown", "teal"})
ARTICLES = {"Um", "Uma", "Uns", "Umas", "O", "A", "Os", "As", "Dois", "Duas", "Três", "Quatro", "Cinco"}
GREETINGS = (
    ("Olá!", "Olá! Posso descrever imagens e responder perguntas sobre elas. Como posso ajudar?"),
    ("Bom dia, tudo bem?", "Bom dia! Tudo bem, obrigado. Em que posso ajudar?"),
    ("Quem é você?", "Sou um assistente que fala português e consegue ver imagens."),
    ("Obrigado!", "De nada! Se quiser, envie outra imagem."),
)


@dataclass(frozen=True)
class MixConfig:
    tuxpaint_dir: str  # captions.tsv + images/
    admire_tsv: str  # AdMIRe subtask A train TSV (train split only)
    admire_pt_tsv: str  # AdMIRe pt-BR train targets
    heldout: str = "data/tuxpaint/heldout.txt"  # Tux Paint files never trained on
    easy_vqa_images: int = 500  # easy-vqa train images used (of 4000)
    questions_per_image: int = 2
    compare_pairs: int = 150
    translation_turns: int = 150
    emoji_stage1: str = ""  # an unpacked emoji-datasource-<style> package ("" = no emoji)
    emoji_stage2: str = ""  # another style for stage 2 ("" = no emoji in stage 2)
    cldr_annotations: str = ""  # unpacked cldr-annotations-full (needed with either emoji package)
    seed: int = 0


@dataclass
class MixSummary:
    stage1: int = 0
    stage2: int = 0
    by_source: dict[str, Counter] = field(default_factory=dict)  # stage -> source -> records
    translated_in: int = 0
    translation_rejected: int = 0
    heldout_excluded: int = 0
    emoji_unusable: dict[str, int] = field(default_factory=dict)  # stage -> emoji without a name or image

    def lines(self) -> list[str]:
        rows = [f"translation: {self.translated_in} records in = "
                f"{self.translated_in - self.translation_rejected} kept + {self.translation_rejected} rejected",
                f"Tux Paint hold-out excluded: {self.heldout_excluded} images"]
        rows += [f"{stage} emoji left out (no Portuguese name or no image in that style): {n}"
                 for stage, n in self.emoji_unusable.items()]
        for stage, counts in self.by_source.items():
            parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            rows.append(f"{stage}: {sum(counts.values())} records ({parts})")
        return rows


def build_mix(cfg: MixConfig, out_dir: Path, translate: Translate) -> MixSummary:
    """Write ``stage1.jsonl``, ``stage2.jsonl``, ``heldout.jsonl`` (evaluation only) and
    ``summary.json`` under ``out_dir``."""
    rng = random.Random(cfg.seed)
    tux, held = tuxpaint_rows(cfg), heldout_records(cfg)
    emoji_rng = random.Random(cfg.seed + 1)  # its own stream: adding emoji changes no other record
    # read before the (slow) translation, so a wrong emoji folder fails at once
    emoji = {"stage1": emoji_records(cfg, cfg.emoji_stage1, emoji_rng),
             "stage2": emoji_records(cfg, cfg.emoji_stage2, emoji_rng, prompts=SHORT_PROMPTS)}
    english = easy_vqa_records(cfg, rng) + admire_records(cfg)
    portuguese = [table_answers(r) for r in translate(english)]
    summary = MixSummary(translated_in=len(english), translation_rejected=len(english) - len(portuguese),
                         heldout_excluded=len(held),
                         emoji_unusable={stage: left_out for stage, (records, left_out) in emoji.items() if records})
    stage1 = stage1_records(tux, portuguese) + emoji["stage1"][0]
    out_dir.mkdir(parents=True, exist_ok=True)
    stage2 = stage2_records(cfg, tux, portuguese, rng, out_dir / "compare")
    if emoji["stage2"][0]:
        stage2 += emoji["stage2"][0]
        emoji_rng.shuffle(stage2)
    write_jsonl(out_dir / "heldout.jsonl", held)
    for name, records in (("stage1", stage1), ("stage2", stage2)):
        write_jsonl(out_dir / f"{name}.jsonl", records)
        summary.by_source[name] = Counter(r["source"] for r in records)
    summary.stage1, summary.stage2 = len(stage1), len(stage2)
    with atomic_open(out_dir / "summary.json", "w") as handle:
        json.dump({"lines": summary.lines(), "stage1": summary.stage1, "stage2": summary.stage2}, handle, indent=1)
    return summary


def build_default_mix(cfg: MixConfig, out_dir: Path, progress: Callable[[int, int, int], None] | None = None) -> MixSummary:
    """``lhama data default-mix``'s one call: :func:`build_mix` with lhama's own translation
    pipeline (:func:`pipeline_translator`, resumable, working in ``out_dir/translate``);
    ``progress(done, total, words)`` as the translation goes."""
    return build_mix(cfg, out_dir, pipeline_translator(out_dir / "translate", progress))


def tuxpaint_rows(cfg: MixConfig, heldout: bool = False) -> list[Record]:
    """Tux Paint rows minus (or, ``heldout=True``, only) the committed hold-out, with
    absolute image paths."""
    root = Path(cfg.tuxpaint_dir)
    rows = select_rows(read_caption_rows(root), read_file_list(Path(cfg.heldout)), keep=heldout)
    for row in rows:
        row["image"] = str((root / "images" / row["file"]).resolve())
    return rows


def heldout_records(cfg: MixConfig) -> list[Record]:
    """The hold-out as stage-1 caption pairs: for held-out loss during training, never a step."""
    return [_single(f"tux-{r['file']}", r["image"], "tuxpaint", STAGE1_PROMPT, r["pt_BR"])
            for r in tuxpaint_rows(cfg, heldout=True)]


def easy_vqa_records(cfg: MixConfig, rng: random.Random) -> list[Record]:
    """English single-image Q/A conversations on easy-vqa *train* images."""
    if cfg.easy_vqa_images <= 0:
        return []
    if importlib.util.find_spec("easy_vqa") is None:
        raise DataError("easy-vqa is not installed (pip install easy-vqa==1.0)")
    from easy_vqa import get_train_image_paths, get_train_questions

    questions, answers, image_ids = get_train_questions()
    paths = get_train_image_paths()
    by_image: dict[int, list[tuple[str, str]]] = {}
    for q, a, i in zip(questions, answers, image_ids):
        if not NEGATED.search(q):  # "is there not a circle?" -> "Não." is ambiguous in Portuguese
            by_image.setdefault(i, []).append((q, a))
    chosen = rng.sample(sorted(by_image), min(cfg.easy_vqa_images, len(by_image)))
    records = []
    for image_id in chosen:
        pairs = rng.sample(by_image[image_id], min(cfg.questions_per_image, len(by_image[image_id])))
        turns = _qa_turns([(q[0].upper() + q[1:], a.capitalize() + ".") for q, a in pairs])
        records.append({"id": f"easyvqa-{image_id}", "image": str(Path(paths[image_id]).resolve()),
                        "source": "easyvqa", "answers": [a for _, a in pairs], "conversations": turns})
    return records


def admire_records(cfg: MixConfig) -> list[Record]:
    """English caption records for every AdMIRe train image: the first sentence and the first
    three sentences (the long answer), as two gpt turns of one conversation."""
    tsv = Path(cfg.admire_tsv)
    if not tsv.is_file():
        raise DataError(f"AdMIRe train TSV not found: {tsv}")
    with tsv.open(encoding="utf-8", newline="") as handle:
        items = list(csv.DictReader(handle, delimiter="\t"))
    records, seen = [], set()
    for item in items:
        for n in range(1, 6):
            name, caption = item[f"image{n}_name"], item[f"image{n}_caption"]
            path = (tsv.parent / item["compound"] / name).resolve()
            if name in seen or not path.is_file() or not caption.strip():
                continue
            seen.add(name)
            sentences = split_sentences(caption)
            turns = _qa_turns([("Short.", sentences[0]), ("Long.", " ".join(sentences[:3]))])
            records.append({"id": f"admire-{Path(name).stem}", "image": str(path), "source": "admire",
                            "conversations": turns})
    return records


def emoji_records(cfg: MixConfig, package: str, rng: random.Random,
                  prompts: Sequence[str] = (STAGE1_PROMPT,)) -> tuple[list[Record], int]:
    """Caption records (+ the category turn where the emoji's subcategory maps to one) for the
    emoji of ``package`` and the count left out (see :func:`emoji_rows`); none when ``package``
    is empty."""
    if not package:
        return [], 0
    if not cfg.cldr_annotations:
        raise DataError("emoji need their Portuguese names: pass the cldr-annotations-full folder too")
    rows, unusable = emoji_rows(Path(package), Path(cfg.cldr_annotations))
    return [_caption_record(row["id"], row["image"], "emoji", rng.choice(prompts), emoji_answer(row["name"]),
                            row["category"]) for row in rows], unusable


def stage1_records(tux: Sequence[Record], translated: Sequence[Record]) -> list[Record]:
    """Image-text pairs: Tux Paint captions, AdMIRe first sentences, one easy-vqa Q/A each."""
    records = [_tux_record(r, STAGE1_PROMPT) for r in tux]
    for rec in translated:
        answers = [t["value"] for t in rec["conversations"] if t["from"] == "gpt"]
        if rec["source"] == "admire":
            records.append(_single(rec["id"], rec["image"], "admire", STAGE1_PROMPT, short_caption(answers[0])))
        else:
            question = rec["conversations"][0]["value"].replace("<image>", "").strip()
            records.append(_single(rec["id"], rec["image"], "easyvqa", question, answers[0]))
    return records


def stage2_records(cfg: MixConfig, tux: Sequence[Record], translated: Sequence[Record], rng: random.Random,
                   image_dir: Path) -> list[Record]:
    """The instruction mix: describe (short and long), answer, compare, text-only turns."""
    records = [_tux_record(r, rng.choice(SHORT_PROMPTS)) for r in tux]
    for rec in translated:
        if rec["source"] == "admire":
            short, long = [t["value"] for t in rec["conversations"] if t["from"] == "gpt"]
            short = short_caption(short)
            prompt, answer = (rng.choice(LONG_PROMPTS), long) if rng.random() < 0.5 else (rng.choice(SHORT_PROMPTS), short)
            records.append(_single(rec["id"], rec["image"], "admire", prompt, answer))
        else:
            records.append(dict(rec))
    records += compare_records(tux, cfg.compare_pairs, rng, image_dir)
    records += text_only_records(cfg, tux, rng)
    rng.shuffle(records)
    return records


def compare_records(tux: Sequence[Record], count: int, rng: random.Random, image_dir: Path) -> list[Record]:
    """Two Tux Paint stamps side by side in one composed image (written to ``image_dir``);
    the answer names both, left then right, from their captions."""
    records = []
    image_dir.mkdir(parents=True, exist_ok=True)
    for k in range(count if len(tux) >= 2 else 0):
        a, b = rng.sample(list(tux), 2)
        path = image_dir / f"compare-{k}.jpg"
        side_by_side(Path(a["image"]), Path(b["image"]), path)
        answer = f"À esquerda, {_phrase(a['pt_BR'])}; à direita, {_phrase(b['pt_BR'])}."
        records.append(_single(f"compare-{k}", str(path.resolve()), "compare", rng.choice(COMPARE_PROMPTS), answer))
    return records


def side_by_side(left: Path, right: Path, out: Path, side: int = 224) -> None:
    """Paste two images, each fitted into a ``side`` x ``side`` white square, left and right."""
    canvas = Image.new("RGB", (2 * side, side), "white")
    for slot, path in enumerate((left, right)):
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((side, side))
            canvas.paste(img, (slot * side + (side - img.width) // 2, (side - img.height) // 2))
    with atomic_open(out, "wb") as handle:
        canvas.save(handle, format="JPEG", quality=90)


def text_only_records(cfg: MixConfig, tux: Sequence[Record], rng: random.Random) -> list[Record]:
    """Portuguese turns without an image: translation, idiom sense, greetings."""
    records = []
    for k, row in enumerate(rng.sample(list(tux), min(cfg.translation_turns, len(tux)))):
        records.append(_text(f"translate-{k}", f'Traduza para o português: "{row["en"]}"', row["pt_BR"]))
    for k, item in enumerate(_admire_pt(Path(cfg.admire_pt_tsv))):
        sense = "idiomático" if item["sentence_type"] == "idiomatic" else "literal"
        question = f'Na frase "{item["sentence"]}", a expressão "{item["compound"]}" tem sentido idiomático ou literal?'
        records.append(_text(f"idiom-{k}", question, f'Sentido {sense}.'))
    records += [_text(f"greeting-{k}", q, a) for k, (q, a) in enumerate(GREETINGS)]
    return records


def short_caption(sentence: str) -> str:
    """'A imagem retrata uma maçã podre.' -> 'Uma maçã podre.'"""
    rest = DEPICTS.sub("", sentence.strip(), count=1)
    return rest[:1].upper() + rest[1:] if rest else sentence.strip()


def tux_category(row: Record) -> str | None:
    """The Portuguese name of a Tux Paint row's top-level category, if it has a known one."""
    return TUX_CATEGORIES.get(row.get("category", "").split("/", 1)[0])


def _tux_record(row: Record, prompt: str) -> Record:
    return _caption_record(f"tux-{row['file']}", row["image"], "tuxpaint", prompt, row["pt_BR"], tux_category(row))


def _caption_record(record_id: str, image: str, source: str, prompt: str, caption: str,
                    category: str | None) -> Record:
    """A caption turn, then (when the category is known) the category turn."""
    pairs = [(prompt, caption)] + ([(CATEGORY_PROMPT, f"{category}.")] if category else [])
    return {"id": record_id, "image": image, "source": source, "conversations": _qa_turns(pairs)}


def split_sentences(text: str) -> list[str]:
    """Sentences of an English caption (at ". ", "! ", "? ")."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()]
    return parts or [text.strip()]


def table_answers(record: Record) -> Record:
    """easy-vqa records get their Portuguese answers from :data:`EASY_VQA_ANSWERS`."""
    if record.get("source") != "easyvqa":
        return record
    turns = list(record["conversations"])
    for n, answer in enumerate(record["answers"]):
        question, reply = turns[2 * n], turns[2 * n + 1]
        if answer in COLOR_ANSWERS and "cor" not in question["value"].lower():
            # Bergamot turns "What color is the shape?" into "Qual é a forma?"; one shape per image
            image = "<image>\n" if question["value"].startswith("<image>") else ""
            turns[2 * n] = dict(question, value=f"{image}Qual é a cor da forma?")
        turns[2 * n + 1] = dict(reply, value=EASY_VQA_ANSWERS[answer])
    return {k: v for k, v in record.items() if k != "answers"} | {"conversations": turns}


def _admire_pt(path: Path) -> list[Record]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _phrase(caption: str) -> str:
    """'Um sapo.' -> 'um sapo' (to embed a caption inside a sentence); names keep their case."""
    text = caption.strip().rstrip(".")
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first in ARTICLES else text


def _qa_turns(pairs: Sequence[tuple[str, str]]) -> list[Record]:
    turns = []
    for n, (question, answer) in enumerate(pairs):
        turns.append({"from": "human", "value": f"<image>\n{question}" if n == 0 else question})
        turns.append({"from": "gpt", "value": answer})
    return turns


def _single(record_id: str, image: str, source: str, prompt: str, answer: str) -> Record:
    return {"id": record_id, "image": image, "source": source,
            "conversations": _qa_turns([(prompt, answer)])}


def _text(record_id: str, question: str, answer: str) -> Record:
    return {"id": record_id, "source": "text",
            "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}


def pipeline_translator(work_dir: Path, progress: Callable[[int, int, int], None] | None = None) -> Translate:
    """A :data:`Translate` running lhama's own translation pipeline (Bergamot en->pt, protected
    spans, structure checks) on a JSONL file under ``work_dir``; resumable like any run.
    Rejected records are left out (counted by the caller) and kept in ``*.rejected.jsonl``."""
    from lhama.data.translate import TranslateConfig, translate_file

    def translate(records: list[Record]) -> list[Record]:
        work_dir.mkdir(parents=True, exist_ok=True)
        source, target = work_dir / "sources_en.jsonl", work_dir / "sources_pt.jsonl"
        if not (target.is_file() and source.is_file() and read_jsonl(source) == records):
            write_jsonl(source, records)
            glossary = work_dir / "glossary.tsv"
            glossary.write_text(GLOSSARY, encoding="utf-8")
            translate_file(TranslateConfig(input=source, output=target, glossary=glossary,
                                           report=work_dir / "translate_report.json"), progress)
        return read_jsonl(target)

    return translate
