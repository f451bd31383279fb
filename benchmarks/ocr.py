"""OCR on rendered pt-BR images: character error rate of tesseract alone, time added per image,
text-free images that stay silent, and (with --model) questions about the text answered by a
text LM given lhama's OCR note -- the same "Texto na imagem: ..." line chat and serve add.

    python benchmarks/ocr_images.py /tmp/ocr_ptbr
    python benchmarks/ocr.py /tmp/ocr_ptbr
    python benchmarks/ocr.py /tmp/ocr_ptbr --model ~/.cache/lhama/models/qwen2.5-coder-1.5b-instruct
    python benchmarks/ocr.py /tmp/ocr_ptbr --model DIR --gguf FILE.gguf --threads 1   # tokens from llama.cpp

CER: Levenshtein distance between the recognised text and the rendered text (line breaks and
runs of spaces as one space; case and accents count) over the rendered text's length.
An answer is right when the expected answer appears in the reply (case and accents ignored;
"24,90" also matches "24.90").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import unicodedata
from pathlib import Path

import torch
from PIL import Image

from lhama.data.ocr import OcrConfig, ocr_note, read_text
from lhama.eval.metrics import edit_distance as levenshtein  # character level here
from ocr_images import DATA, items




def flat(text: str) -> str:
    return " ".join(text.replace("|", " ").split())


def loose(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().split())


def right(answer: str, reply: str) -> bool:
    options = {loose(answer), loose(answer).replace(",", ".")}
    return any(option in loose(reply) for option in options)


def ocr_rows(image_dir: Path, data: Path, config: OcrConfig) -> list[dict]:
    rows = []
    for item in items(data):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = read_text(Image.open(image_dir / f"{item['id']:02d}.png"), config)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime  # tesseract's own CPU time
        truth = flat("\n".join(item["lines"]))
        errors = levenshtein(flat(result.text), truth)
        rows.append({**item, "ocr": result.text, "seconds": result.seconds, "cpu_seconds": cpu, "errors": errors,
                     "chars": len(truth)})
    return rows


def answer_all(model: Path, rows: list[dict], max_tokens: int) -> None:
    """Ask each question with the OCR note in front, as lhama's chat does for an image."""
    from lhama.inference.generate import GenerationConfig
    from lhama.model.build import load_model
    from lhama.serve.session import ChatSession

    loaded = load_model(model)
    for row in rows:
        if not row["question"]:
            continue
        session = ChatSession(loaded, GenerationConfig(max_new_tokens=max_tokens))
        note = ocr_note(row["ocr"])
        *_, done = session.ask(f"{note}\n{row['question']}" if note else row["question"])
        row["reply"], row["right"] = done.text, right(row["answer"], done.text)
        print(json.dumps({k: row[k] for k in ("id", "question", "answer", "reply", "right")}, ensure_ascii=False),
              flush=True)


def answer_all_gguf(model: Path, gguf: Path, rows: list[dict], max_tokens: int, threads: int) -> None:
    """The same prompts (rendered by lhama as ChatSession does), tokens from llama.cpp."""
    from lhama.data.conversation import encode_prompt, render_prompt
    from tools import LlamaCpp

    backend = LlamaCpp(gguf, model, threads)
    system = [{"role": "system", "content": backend.system}] if backend.system else []
    for row in rows:
        if not row["question"]:
            continue
        note = ocr_note(row["ocr"])
        user = {"role": "user", "content": f"{note}\n{row['question']}" if note else row["question"]}
        ids = encode_prompt(backend.tokenizer, render_prompt(backend.tokenizer, [*system, user]))
        row["reply"] = backend.generate(ids, max_tokens)
        row["right"] = right(row["answer"], row["reply"])
        print(json.dumps({k: row[k] for k in ("id", "question", "answer", "reply", "right")}, ensure_ascii=False),
              flush=True)


def report(rows: list[dict]) -> None:
    texts = [r for r in rows if r["lines"]]
    blanks = [r for r in rows if not r["lines"]]
    cer = sum(r["errors"] for r in texts) / sum(r["chars"] for r in texts)
    per_image = sorted(r["errors"] / r["chars"] for r in texts)
    print(f"\nimages {len(rows)} ({len(texts)} with text, {len(blanks)} text-free); load {os.getloadavg()[0]:.1f}")
    print("| CER (pooled) | median CER per image | images with CER < 5% | text-free images read as empty | "
          "s / image (mean) | s / image (max) | CPU s / image (mean) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {cer:.3f} | {per_image[len(per_image) // 2]:.3f} | {sum(c < 0.05 for c in per_image)}/{len(texts)} "
          f"| {sum(not r['ocr'] for r in blanks)}/{len(blanks)} | {sum(r['seconds'] for r in rows) / len(rows):.2f} "
          f"| {max(r['seconds'] for r in rows):.2f} | {sum(r['cpu_seconds'] for r in rows) / len(rows):.2f} |")
    kinds = sorted({r["kind"] for r in texts})
    print("\n| kind | images | CER |")
    print("|---|---|---|")
    for kind in kinds:
        group = [r for r in texts if r["kind"] == kind]
        print(f"| {kind} | {len(group)} | {sum(r['errors'] for r in group) / sum(r['chars'] for r in group):.3f} |")
    asked = [r for r in rows if "right" in r]
    if asked:
        print(f"\nquestions answered right with the OCR note: {sum(r['right'] for r in asked)}/{len(asked)} "
              f"({100 * sum(r['right'] for r in asked) / len(asked):.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", type=Path, help="the folder benchmarks/ocr_images.py wrote")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", type=Path, default=None, help="a text LM directory to answer the questions")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write every row here (JSONL)")
    parser.add_argument("--gguf", type=Path, default=None, help="with --model: tokens from llama.cpp on this GGUF")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows = ocr_rows(args.images, args.data, OcrConfig())
    print(f"OCR of {len(rows)} images in {time.perf_counter() - started:.1f} s", flush=True)
    if args.model and args.gguf:
        answer_all_gguf(args.model, args.gguf, rows, args.max_tokens, args.threads)
    elif args.model:
        answer_all(args.model, rows, args.max_tokens)
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report(rows)


if __name__ == "__main__":
    main()
