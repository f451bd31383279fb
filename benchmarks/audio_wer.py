"""Word error rate on held-out spoken pt-BR sentences: the lhama model's audio branch vs
Whisper-base's own transcription (the ceiling: the same encoder with its trained decoder).

    lhama data speech runs/speech-ptbr
    lhama train --config stage1-audio
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/audio_wer.py \
        --model runs/stage1-audio/model --data runs/speech-ptbr/heldout.jsonl

Prints a table (system, sentences, WER, seconds per sentence) and a few examples; with --out,
every transcription as JSONL. WER: word-level edit distance / reference words, lowercase,
punctuation removed (lhama.eval.metrics.word_error_rate).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer

from lhama.data.audio import load_audio, log_mel
from lhama.data.dataset import DatasetConfig, load_samples
from lhama.eval.metrics import word_error_rate
from lhama.model.audio import Ct2WhisperEncoder, audio_spec
from lhama.model.build import load_model
from lhama.inference.generate import Completion, GenerationConfig
from lhama.weights.registry import models_dir
from lhama.serve.session import ChatSession

QUESTION = "O que foi dito?"


def model_transcripts(model_dir: Path, samples: list, max_tokens: int) -> list[str]:
    loaded = load_model(model_dir)
    texts = []
    for sample in samples:
        session = ChatSession(loaded, GenerationConfig(max_new_tokens=max_tokens), system_prompt="")
        session.attach("audio", sample.audio)
        done = [item for item in session.ask(QUESTION) if isinstance(item, Completion)][-1]
        texts.append(done.text.strip().splitlines()[0] if done.text.strip() else "")
    return texts


def whisper_transcripts(whisper_dir: Path, samples: list, window_frames: int) -> list[str]:
    tower = Ct2WhisperEncoder(whisper_dir, window_frames=window_frames)
    tokenizer = Tokenizer.from_file(str(whisper_dir / "tokenizer.json"))
    texts = []
    for sample in samples:
        packed = log_mel(load_audio(sample.audio, max_seconds=window_frames / 100), audio_spec(tower))
        texts.append(tokenizer.decode(tower.transcribe(packed[None, :-1])[0]).strip())
    return texts


def timed(run, *args) -> tuple[list[str], float]:
    started = time.perf_counter()
    texts = run(*args)
    return texts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a lhama model directory with an audio branch")
    parser.add_argument("--data", type=Path, default=Path("runs/speech-ptbr/heldout.jsonl"))
    parser.add_argument("--whisper", type=Path, default=models_dir() / "whisper-base")
    parser.add_argument("--limit", type=int, default=0, help="first N sentences only (0: all)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write every transcription here (JSONL)")
    args = parser.parse_args()
    samples = load_samples(DatasetConfig(path=str(args.data), strict=True)).samples
    samples = samples[: args.limit] if args.limit else samples
    references = [s.messages[-1]["content"] for s in samples]
    print(f"torch threads: {torch.get_num_threads()}, load average before: {os.getloadavg()[0]:.1f}")
    rows = {
        f"lhama {args.model.parent.name or args.model.name}": timed(model_transcripts, args.model, samples, args.max_tokens),
        "whisper-base (30 s window)": timed(whisper_transcripts, args.whisper, samples, 3000),
    }
    print(f"{'system':<32} {'sentences':>9} {'WER':>7} {'s/sentence':>11}")
    for name, (texts, seconds) in rows.items():
        print(f"{name:<32} {len(texts):>9} {word_error_rate(references, texts):>7.3f} {seconds / len(texts):>11.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    for i in range(min(5, len(samples))):
        print(f"\nref:     {references[i]}")
        for name, (texts, _) in rows.items():
            print(f"{name[:8]:<8} {texts[i]}")
    if args.out:
        lines = [json.dumps({"reference": r, **{n: t[i] for n, (t, _) in rows.items()}}, ensure_ascii=False)
                 for i, r in enumerate(references)]
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
