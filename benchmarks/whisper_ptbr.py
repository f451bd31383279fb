"""Tune Whisper-base's decoder (LoRA) to synthetic pt-BR speech, in three resumable steps.

    # 1. the text split (committed: src/lhama/recipes/default/whisper_ptbr_texts.tsv)
    PYTHONPATH=src python benchmarks/whisper_ptbr.py split
    # 2. speak + encode the training and dev windows (shards; a rerun resumes)
    /work/team/heavy -- env PYTHONPATH=src python benchmarks/whisper_ptbr.py data --out runs/whisper-ptbr
    # 3. train the adapter (checkpoints; --resume continues), written to --adapter
    /work/team/heavy -- env PYTHONPATH=src python benchmarks/whisper_ptbr.py train --out runs/whisper-ptbr --resume
    # session 5: `data --more 320` adds 320 windows in 44 more voices and a dev-voices split;
    # `dev --splits dev dev-voices` decodes both dev sets (and pooled)
    # session 6: `data --mid` + `train --encoder-ffn` (LoRA on the last encoder layer's fc1/fc2 too)
    # session 7: `data --pre` + `train --encoder-attn` (the whole last encoder layer, attention included)
    # session 8: `data --pre --layers 2` + `train --encoder-attn --encoder-layers 2` (the top two layers, whole)
    # session 9: `data --pre --layers 3` + `train --encoder-attn --encoder-layers 3` (the top three: shipped)

Texts come from the repository's own pt-BR sentences (the guard's benign set: Tux Paint
captions, AdMIRe sentences, translated LLaVA questions and answers, everyday prompts and
answers; the distillation prompts; the everyday questions), minus everything the speech
benchmark holds out (see lhama.recipes.default.whisper_ptbr).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

SKIP_SOURCES = {"readme_prose_mt"}  # machine-translated software docs: code names, brackets


def source_texts() -> list[str]:
    """The repository's pt-BR sentences, spoken-friendly ones only (no digits, symbols, URLs)."""
    texts = []
    for line in (ROOT / "data/guard/benign/benign.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["source"] not in SKIP_SOURCES:
            texts.append(row["text"])
    for line in (ROOT / "benchmarks/data/distill_prompts_ptbr.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            texts.append(line.strip())
    for line in (ROOT / "benchmarks/data/everyday_ptbr.jsonl").read_text(encoding="utf-8").splitlines():
        texts.append(json.loads(line)["question"])
    texts += (ROOT / "data/guard/everyday.txt").read_text(encoding="utf-8").splitlines()
    return [t for t in (" ".join(t.split()) for t in texts) if _speakable(t)]


def _speakable(text: str) -> bool:
    return 3 <= len(text) <= 200 and not re.search(r'[0-9\[\]{}<>/\\_@#*=|~^`$%&+"\t]', text)


def cmd_split(args: argparse.Namespace) -> None:
    from speech import REQUESTS

    from lhama.files import atomic_open
    from lhama.recipes.default.whisper_ptbr import TEXTS, split_texts

    rows = split_texts(source_texts(), [r for r, _ in REQUESTS], dev=args.dev)
    with atomic_open(TEXTS) as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["split", "text"])
        writer.writerows(rows)
    counts = {s: sum(r[0] == s for r in rows) for s in ("train", "dev", "test")}
    print(f"{TEXTS}: {counts}")


def bar(label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


DEV = {"windows": 30, "max_sentences": 1, "seed": 1}  # one dev sentence per window, its own draw
DEV_VOICES_SPLIT = {"windows": 30, "max_sentences": 1, "seed": 3}  # the dev texts in the DEV_VOICES


def data_plan(args: argparse.Namespace) -> list:
    """(folder, texts split, voices, config) of every set the data step builds: dev, train, then
    with ``--more N`` N more training windows in MORE_VOICES (shards numbered after train's) and
    the dev-voices split (the dev texts read by DEV_VOICES, for the dev-only ship rule)."""
    from dataclasses import replace

    from lhama.recipes.default.whisper_ptbr import DEV_VOICES, MORE_VOICES, TRAIN_VOICES, WindowConfig

    base = WindowConfig(windows=args.windows)
    plan = [("dev", "dev", TRAIN_VOICES, replace(WindowConfig(), **DEV)), ("train", "train", TRAIN_VOICES, base)]
    if args.more:
        first = -(-base.windows // base.shard_size)
        plan += [("train", "train", MORE_VOICES, WindowConfig(windows=args.more, seed=2, first_shard=first)),
                 ("dev-voices", "dev", DEV_VOICES, replace(WindowConfig(), **DEV_VOICES_SPLIT))]
    return plan


def mid_plan(args: argparse.Namespace) -> list:
    """``data --mid``: the same windows as the shipped adapter's data (dev, dev-voices, then the
    ``--windows`` training windows; same seeds, so the same audio), stored as mids."""
    from dataclasses import replace

    from lhama.recipes.default.whisper_ptbr import DEV_VOICES, TRAIN_VOICES, WindowConfig

    return [("dev", "dev", TRAIN_VOICES, replace(WindowConfig(), **DEV)),
            ("dev-voices", "dev", DEV_VOICES, replace(WindowConfig(), **DEV_VOICES_SPLIT)),
            ("train", "train", TRAIN_VOICES, WindowConfig(windows=args.windows))]


def mid_encoder(whisper_dir: Path, key: str = "mid"):
    """(window samples -> {key: ...}, the encoder's top): the torch encoder built from the
    CTranslate2 weights, and the part of it :class:`EncoderTop` recomputes from ``key`` ("mid":
    the last feed-forward block; "pre": the whole last layer; "pre<n>": the top n layers)."""
    import torch

    from lhama.data.audio import AudioSpec, log_mel
    from lhama.train.whisper import encoder_inner
    from lhama.weights.whisper_ct2 import load_encoder, read_ct2

    torch.set_num_threads(1)
    encoder = load_encoder(read_ct2(whisper_dir / "model.bin"))
    spec = AudioSpec(n_mels=encoder.config.num_mel_bins, n_frames=2 * encoder.config.max_source_positions)

    def encode_mid(samples):
        return {key: encoder_inner(encoder, log_mel(samples, spec)[None, :-1])[key][0].to(torch.float16)}

    return encode_mid, top_for(encoder, key)


def top_for(encoder, key: str):
    """The :class:`EncoderTop` of ``encoder`` that recomputes the output from stored ``key`` tensors."""
    from lhama.train.whisper import PRE, EncoderTop

    layers = int(key.removeprefix(PRE) or 1) if key.startswith(PRE) else 1
    return EncoderTop(encoder, attention=key.startswith(PRE), layers=layers)


def check_mid(whisper, encode_mid, top, window, config) -> None:
    """The torch encoder agrees with CTranslate2's on one window (top(mid) vs its output)."""
    import torch

    from lhama.recipes.default.whisper_ptbr import encode, speak

    samples, _ = speak(window, config, config.seed * 1_000_003)
    (key, stored), = encode_mid(samples).items()
    with torch.no_grad():
        ours = top(stored.float()[None])[0]
    theirs = encode(whisper, samples).float()
    print(f"check: torch top({key}) vs CTranslate2 encoder output: max |diff| {float((ours - theirs).abs().max()):.4f}, "
          f"mean {float((ours - theirs).abs().mean()):.5f} (states mean |x| {float(theirs.abs().mean()):.3f})", flush=True)
    if float((ours - theirs).abs().mean()) > 0.02:
        raise SystemExit(f"the torch encoder does not compute what CTranslate2's does: {key} states not written")


def cmd_data(args: argparse.Namespace) -> None:
    from lhama.model.audio import encoder_dir
    from lhama.model.transcribe import open_whisper
    from lhama.recipes.default.whisper_ptbr import build_windows, draw_windows, read_texts

    whisper, _ = open_whisper(args.whisper)
    from lhama.train.whisper import pre_key

    inner = args.mid or args.pre
    key = pre_key(args.layers) if args.pre else "mid"
    encode_mid, top = mid_encoder(Path(encoder_dir(args.whisper)), key) if inner else (None, None)
    for n, (split, texts, voices, config) in enumerate(mid_plan(args) if inner else data_plan(args)):
        windows = draw_windows(read_texts(texts), config, voices)
        if inner and n == 0:
            check_mid(whisper, encode_mid, top, windows[0], config)
        with bar(f"{split} windows") as progress:
            task = progress.add_task(split, total=len(windows))
            build_windows(whisper, windows, args.out / split, config,
                          lambda done, total: progress.update(task, completed=done), encode_mid)
        print(f"{split}: {len(windows)} windows in {args.out / split}", flush=True)


def cmd_train(args: argparse.Namespace) -> None:
    from lhama.model.audio import encoder_dir
    from lhama.train.whisper import CROSS_KV_TARGETS, TARGETS, WhisperTuneConfig, tune_whisper

    config = WhisperTuneConfig(data_dir=str(args.out), whisper_dir=str(encoder_dir(args.whisper)),
                               output_dir=str(args.run or args.out / "run"), epochs=args.epochs, max_minutes=args.max_minutes,
                               targets=CROSS_KV_TARGETS if args.cross_kv else TARGETS, encoder_ffn=args.encoder_ffn,
                               encoder_attn=args.encoder_attn, encoder_layers=args.encoder_layers)
    Path(config.output_dir).parent.mkdir(parents=True, exist_ok=True)  # a new --run's folder (its metrics.jsonl)
    with bar("tuning Whisper") as progress, (Path(config.output_dir).parent / "metrics.jsonl").open("a", encoding="utf-8") as log:
        task = progress.add_task("steps", total=None)

        def report(row: dict) -> None:
            progress.update(task, completed=row["step"], total=row["of"])
            log.write(json.dumps(row) + "\n")
            log.flush()
            if "dev_loss" in row:
                progress.console.print(json.dumps(row))

        adapter = tune_whisper(config, resume=args.resume, report=report)
    print(f"adapter: {adapter}" if adapter else "stopped at the time limit: run again with --resume", flush=True)


def cmd_build(args: argparse.Namespace) -> None:
    """The tuned CTranslate2 model (what `lhama models prepare whisper-base-ptbr` builds) from a trained adapter."""
    from lhama.model.audio import check_ct2_whisper, encoder_dir
    from lhama.weights.whisper_ct2 import build_tuned

    checked = build_tuned(encoder_dir(args.whisper), args.adapter, args.model)
    print(json.dumps({**checked, **check_ct2_whisper(args.model)}), f"-> {args.model}", flush=True)


def cmd_dev(args: argparse.Namespace) -> None:
    """WER and content recall of Whisper models on the ``--splits`` (dev: training voices, dev
    texts; dev-voices: the dev texts in DEV_VOICES; and pooled): the stored encoder states decoded
    with lhama's beam settings (no fallback), optionally after an initial prompt."""
    import ctranslate2
    import torch

    from lhama.model.transcribe import TranscribeConfig, max_tokens, open_whisper

    sets, key = {}, "states"
    for split in args.splits:
        shards = [torch.load(p, weights_only=True) for p in sorted((args.out / split).glob("shard-*.pt"))]
        key = next((k for k in sorted(shards[0], reverse=True) if k.startswith(("pre", "mid"))), key)  # stored alike
        sets[split] = ([t for s in shards for t in s["texts"]], torch.cat([s[key] for s in shards]))
    settings = TranscribeConfig()
    for source in args.models:
        whisper, tokenizer = open_whisper(source)
        states_of = _states_of(source, key)
        for prompt_text in [None, *([args.prompt] if args.prompt else [])]:
            prompt = list(settings.prompt)
            if prompt_text:
                prompt = ["<|startofprev|>", *tokenizer.encode(" " + prompt_text, add_special_tokens=False).tokens, *prompt]
            pooled = ([], [])
            for split, (texts, stored) in sets.items():
                out = []
                for row in states_of(stored):
                    result = whisper.generate(ctranslate2.StorageView.from_array(row[None]), [prompt],
                                              beam_size=settings.beam_size, no_repeat_ngram_size=settings.no_repeat_ngram_size,
                                              max_length=max_tokens(8.0, settings) + len(prompt))[0]
                    end = tokenizer.token_to_id("<|endoftext|>")
                    out.append(tokenizer.decode([i for i in result.sequences_ids[0] if i < end]).strip())
                pooled[0].extend(texts)
                pooled[1].extend(out)
                _dev_row(f"{source} prompt={prompt_text!r} {split}", texts, out)
                for r, h in list(zip(texts, out))[:5]:
                    print(f"   {r!r} -> {h!r}")
            if len(sets) > 1:
                _dev_row(f"{source} prompt={prompt_text!r} {'+'.join(sets)}", *pooled)


def _states_of(source: str, key: str):
    """Stored tensors -> the encoder states ``source`` decodes: as stored ("states"), or through
    the top of ``source``'s own encoder (its merged weights): for "mid" the last feed-forward
    block and final norm, for "pre" the whole last layer and final norm."""
    import torch

    from lhama.model.audio import encoder_dir
    from lhama.weights.whisper_ct2 import load_encoder, read_ct2

    if key == "states":
        return lambda stored: stored.float().numpy()
    top = top_for(load_encoder(read_ct2(Path(encoder_dir(source)) / "model.bin")), key)

    def through(stored):
        with torch.no_grad():
            for row in stored:
                yield top(row.float()[None])[0].numpy()
    return through


def _dev_row(label: str, texts: list[str], out: list[str]) -> None:
    from lhama.eval.metrics import content_words, word_error_rate

    found = sum(len(content_words(r) & content_words(h)) for r, h in zip(texts, out))
    total = sum(len(content_words(r)) for r in texts)
    print(f"{label}: WER {word_error_rate(texts, out):.3f}, content {found / total:.3f} ({len(texts)} windows)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    split = sub.add_parser("split")
    split.add_argument("--dev", type=int, default=30)
    data = sub.add_parser("data")
    data.add_argument("--out", type=Path, default=Path("runs/whisper-ptbr"))
    data.add_argument("--whisper", default="whisper-base")
    data.add_argument("--windows", type=int, default=480)
    data.add_argument("--mid", action="store_true", help="store the encoder's last-layer mids (for train "
                      "--encoder-ffn): dev, dev-voices and --windows training windows, as the shipped adapter's")
    data.add_argument("--pre", action="store_true", help="store the states entering the encoder's last layer "
                      "(for train --encoder-attn), for the same windows as --mid")
    data.add_argument("--layers", type=int, default=1, help="with --pre: the states entering the top this many "
                      "layers (2: \"pre2\", for train --encoder-layers 2)")
    data.add_argument("--more", type=int, default=0, help="this many more training windows in new voices (MORE_VOICES), "
                      "and the dev-voices split")
    train = sub.add_parser("train")
    train.add_argument("--out", type=Path, default=Path("runs/whisper-ptbr"))
    train.add_argument("--whisper", default="whisper-base")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--max-minutes", type=float, default=35.0, help="stop after a checkpoint; --resume continues")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--run", type=Path, help="checkpoints and adapter (default: OUT/run)")
    train.add_argument("--cross-kv", action="store_true", help="LoRA on the cross-attention's keys and values too")
    train.add_argument("--encoder-ffn", action="store_true", help="LoRA on the last encoder layer's fc1/fc2 too "
                       "(data from `data --mid`)")
    train.add_argument("--encoder-attn", action="store_true", help="LoRA on the whole last encoder layer "
                       "(self-attention q/k/v/out and fc1/fc2; data from `data --pre`)")
    train.add_argument("--encoder-layers", type=int, default=1, help="with --encoder-attn: the top this many "
                       "encoder layers, whole (data from `data --pre --layers N`)")
    build = sub.add_parser("build")
    build.add_argument("--whisper", default="whisper-base")
    build.add_argument("--adapter", type=Path, default=Path("runs/whisper-ptbr/run/adapter"))
    build.add_argument("--model", type=Path, default=Path("runs/whisper-ptbr/model"))
    dev = sub.add_parser("dev")
    dev.add_argument("--out", type=Path, default=Path("runs/whisper-ptbr"))
    dev.add_argument("--models", nargs="+", default=["whisper-base"])
    dev.add_argument("--splits", nargs="+", default=["dev"], help="folders of OUT to decode (dev, dev-voices)")
    dev.add_argument("--prompt", help="also decode after this initial prompt (<|startofprev|>)")
    args = parser.parse_args()
    {"split": cmd_split, "data": cmd_data, "train": cmd_train, "build": cmd_build, "dev": cmd_dev}[args.command](args)


if __name__ == "__main__":
    main()
