"""Speculative decoding with a distilled draft, timed on real prompts (issue #30, docs/distill.md).

    python benchmarks/distill_spec.py --target ~/.cache/lhama/models/qwen2.5-coder-1.5b-instruct \\
        --draft "0.5B=~/.cache/lhama/models/qwen2.5-coder-0.5b-instruct" \\
        --draft "0.5B distilled=runs/distill/d2-0.5b/model" \\
        --draft "0.5B k2=~/.cache/lhama/models/qwen2.5-coder-0.5b-instruct@2" \\
        --draft "0.5B k4 sure=~/.cache/lhama/models/qwen2.5-coder-0.5b-instruct@4:0.6" \\
        --quant int8 [--draft-quant int4-g32] --prompts 8 --out /tmp/spec.json \\
        [--llama-cpp ~/.cache/lhama/gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf]

One process: the target and every draft loaded once (lhama's engine, ``--quant``), then, for each
of the first ``--prompts`` held-out distillation prompts (benchmarks/data/distill_prompts.jsonl,
under the distillation's system prompt), greedy decoding up to ``--tokens`` new tokens, stopping
at the end of the turn, once plainly and once with each draft. The order of the runs rotates from
prompt to prompt, so a slow spell of the machine does not fall on one of them only. Per run: new
tokens, wall time (prefill included), time to first token; per draft: proposals kept. Every run of
a prompt must give the same tokens (speculative decoding is exact): a mismatch is reported, not
hidden. Peak RSS is the whole process (target + all drafts). A draft given as ``DIR@K`` proposes K
tokens per step (default ``--draft-tokens``, the library's DRAFT_TOKENS), ``DIR@K:P`` at most K, ending a proposal before a
draft token of probability below P (``Draft.confidence``); a ``#QUANT`` suffix (``DIR@2#int8``)
quantises that draft as QUANT, the others as ``--draft-quant`` (default: ``--quant``); a ``~VOCAB`` suffix
(``DIR@1#int4-g32~latin``) trims its output layer to that named vocabulary and the special tokens
(``load_draft(..., vocab=VOCAB)``); drafts of one directory, quant and vocabulary share one loaded model.
``--llama-cpp GGUF`` adds, after the lhama runs, llama.cpp's plain greedy decoding (PyPI
``xllamacpp``) of the same chat messages, up to the same token count, as a reference: its own
timings (``predicted_per_second``, ``prompt_ms``); its tokens are not compared (other weights).
``--forward-check NAME`` (repeat) runs that draft's checks through the transformers forward, as
before session 6, instead of the lean rows (``LeanDecoder.step_seq``): the before/after of the
exactness fix in one process. ``--old-catch-up NAME`` (repeat): that draft catches up as before
session 7, a transformers prefill of the ids its cache lacks each step (room for one proposal),
instead of the lean rows on a cache sized once. Per draft, ``first_difference`` lists (prompt,
first token that differs from plain decoding). ``--pace NAME=START,BELOW,WINDOW,REST[,STREAK]`` (repeat) gives that draft
its own :class:`~lhama.inference.speculative.Pace` (the others: the library's ``DRAFT_PACE``); ``--reads
NAME=N`` has it read only the last N prompt tokens, 0 all (``Draft.reads``; the others: ``DRAFT_READS``); ``NAME=N@join``
the last N before it joins (``Draft.reads_at_join``: with a late start, the prompt's end and the answer so far). ``--rounds R``
runs the whole interleaved loop R times over the same prompts (the order rotated by one more each round), so
slow spells fall on every configuration; ``rounds`` then holds each round's totals and tokens/s ratios to plain
decoding, their medians, and the same split by answer length (``--short-below``: plain answers of fewer tokens
are "short"), and ``first_difference`` lists [prompt, token] for every round. ``--longcopy N`` adds the first N held-out
long-copy prompts (benchmarks/data/spec_longcopy.jsonl: a paragraph to translate, summarise, correct or rewrite) after
the distillation ones; ``rounds`` then also splits them out as "copy". A draft ``NAME=lookup[L-S][@K]`` is a prompt lookup
with no model (``lookup_draft``: the ids that followed the latest earlier occurrence of the last L .. S ids; default 4-2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lhama.inference.generate import GenerationConfig, eos_token_ids, generate_ids
from lhama.inference.kv import KVState
from lhama.inference.quant_cache import load_for_inference
from lhama.inference.runtime import peak_rss_mb
from lhama.inference import speculative
from lhama.inference.lookup import Lookup
from lhama.inference.speculative import DRAFT_PACE, DRAFT_READS, DRAFT_TOKENS, Draft, Pace, load_draft, lookup_draft

DATA = Path(__file__).resolve().parent / "data"
SYSTEM = "Você é um assistente prestativo. Responda sempre em português do Brasil, de forma breve e correta."


def held_out_prompts(count: int, longcopy: int = 0) -> list[str]:
    """The first ``count`` held-out prompts of the distillation split (never trained on), then the first ``longcopy``
    held-out long-copy prompts (benchmarks/data/spec_longcopy.jsonl: translate, summarise, correct or rewrite a
    paragraph the prompt gives)."""
    rows = [json.loads(line) for line in (DATA / "distill_prompts.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [r["prompt"] for r in rows if r["split"] == "heldout"][:count] + long_copy_prompts("heldout")[:longcopy]


def long_copy_prompts(split: str) -> list[str]:
    """The long-copy prompts of ``split`` ("dev": for choices, "heldout": for timing only), in file order."""
    rows = [json.loads(line) for line in (DATA / "spec_longcopy.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [r["prompt"] for r in rows if r["split"] == split]


def timed_run(loaded, ids: list[int], tokens: int, eos: tuple[int, ...], draft: Draft | None) -> dict:
    """One greedy decode: the tokens, wall seconds (prefill included), time to first token, and the
    draft's proposals kept/made during this run (its KV state starts empty, like the target's)."""
    if draft is not None:
        draft.kv = KVState()
    before = (draft.accepted, draft.proposed) if draft else (0, 0)
    started, first, out = time.perf_counter(), None, []
    for token in generate_ids(loaded.model, ids, GenerationConfig(max_new_tokens=tokens), eos_ids=eos, draft=draft):
        first = first or time.perf_counter()
        out.append(token)
    wall = time.perf_counter() - started
    kept = (draft.accepted - before[0], draft.proposed - before[1]) if draft else (0, 0)
    return {"ids": out, "wall_s": wall, "ttft_s": first - started, "accepted": kept[0], "proposed": kept[1]}


def summary(runs: list[dict]) -> dict:
    """Totals of one configuration over the prompts: tokens/s end to end and after the first token."""
    tokens, wall = sum(len(r["ids"]) for r in runs), sum(r["wall_s"] for r in runs)
    decode = sum(r["wall_s"] - r["ttft_s"] for r in runs)
    accepted, proposed = sum(r["accepted"] for r in runs), sum(r["proposed"] for r in runs)
    return {"tokens": tokens, "wall_s": round(wall, 2), "tok_s": round(tokens / wall, 3),
            "decode_tok_s": round((tokens - len(runs)) / decode, 3), "accepted": accepted, "proposed": proposed,
            "acceptance": round(accepted / proposed, 3) if proposed else None}


@dataclass(frozen=True)
class SpecRun:
    """What to time: the target, the drafts by name, the quantisation, how many held-out prompts,
    new tokens at most per answer, and where to write the results (rewritten after every prompt,
    so a run stopped early keeps what it measured)."""

    target: str
    drafts: dict[str, str]
    quant: str = "int8"
    prompts: int = 8
    tokens: int = 48
    out: Path | None = None
    draft_tokens: dict[str, int] = field(default_factory=dict)  # per draft name; absent: DRAFT_TOKENS
    draft_confidence: dict[str, float] = field(default_factory=dict)  # per draft name; absent: 0 (off)
    draft_quant: str | None = None  # None: the target's quant
    draft_quants: dict[str, str] = field(default_factory=dict)  # per draft name; absent: draft_quant
    draft_vocab: dict[str, str] = field(default_factory=dict)  # per draft name: trimmed output layer; absent: full
    forward_check: frozenset[str] = frozenset()  # drafts whose checks run the transformers forward
    old_catch_up: frozenset[str] = frozenset()  # drafts that catch up with a transformers prefill
    draft_pace: dict[str, Pace] = field(default_factory=dict)  # per draft name; absent: DRAFT_PACE
    rounds: int = 1  # the interleaved loop over the prompts, this many times
    short_below: int = 32  # a plain answer of fewer tokens is "short" in the per-round split
    draft_reads: dict[str, int] = field(default_factory=dict)  # per draft name: the prompt's last N tokens; absent: all
    longcopy: int = 0  # held-out long-copy prompts after the ``prompts`` distillation ones
    reads_at_join: frozenset[str] = frozenset()  # drafts that read the last N ids before they join (Draft.reads_at_join)


def load_drafts(run: SpecRun, target) -> dict[str, Draft]:
    """Every draft of ``run`` for ``target``; drafts of one directory and quant share the model loaded first."""
    drafts: dict[str, Draft] = {}
    for name, path in run.drafts.items():
        tokens, sure = run.draft_tokens.get(name, DRAFT_TOKENS), run.draft_confidence.get(name, 0.0)
        if path.startswith("lookup") and not os.path.exists(path):
            drafts[name] = lookup_draft(tokens, _lookup(path), run.draft_pace.get(name, DRAFT_PACE))
            continue
        same = next((drafts[n] for n, p in run.drafts.items() if p == path and n in drafts
                     and (_draft_quant(run, n), run.draft_vocab.get(n)) == (_draft_quant(run, name), run.draft_vocab.get(name))),
                    None)
        vocab = run.draft_vocab.get(name)
        model = same.model if same else load_draft(path, target, _draft_quant(run, name), tokens,
                                                   **({"vocab": vocab} if vocab else {})).model
        drafts[name] = Draft(model, tokens, confidence=sure, pace=run.draft_pace.get(name, DRAFT_PACE),
                             reads=run.draft_reads.get(name, DRAFT_READS), reads_at_join=name in run.reads_at_join)
    return drafts


def _lookup(text: str) -> Lookup:
    """``lookup`` or ``lookupL-S`` -> Lookup(longest=L, shortest=S)."""
    sizes = text[len("lookup"):]
    return Lookup(*map(int, sizes.split("-"))) if sizes else Lookup()


def _draft_quant(run: SpecRun, name: str) -> str:
    return run.draft_quants.get(name) or run.draft_quant or run.quant


def bench(run: SpecRun) -> dict:
    """The benchmark in the module docstring; returns per-configuration totals and per-prompt runs."""
    target = load_for_inference(run.target, run.quant)
    configs: dict[str, Draft | None] = {"plain": None}
    configs.update(load_drafts(run, target))
    eos = eos_token_ids(target.model, target.tokenizer)
    prompts = held_out_prompts(run.prompts, run.longcopy)
    messages = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}] for p in prompts]
    texts = [target.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages]
    inputs = [target.tokenizer(text).input_ids for text in texts]
    run = replace(run, prompts=len(inputs))
    for draft in configs.values():  # warm-up: first-call allocations, thread pools
        timed_run(target, inputs[0], 4, eos, draft)
    names, runs = list(configs), {name: [] for name in configs}
    for turn in range(run.rounds):
        for index, ids in enumerate(inputs):
            shift = (index + turn) % len(names)
            for name in names[shift:] + names[:shift]:
                with _forward_check(name in run.forward_check), _old_catch_up(name in run.old_catch_up):
                    runs[name].append(timed_run(target, list(ids), run.tokens, eos, configs[name]))
            found = _results(run, runs)
            line = ", ".join(f"{n} {len(runs[n][-1]['ids'])} tok {runs[n][-1]['wall_s']:.2f} s" for n in names)
            print(f"round {turn} prompt {index}: {line}" + ("" if found["identical_outputs"] else "  OUTPUTS DIFFER"),
                  flush=True)
            if run.out is not None:
                run.out.write_text(json.dumps(found, ensure_ascii=False) + "\n", encoding="utf-8")
    return found


def by_round(runs: dict[str, list[dict]], prompts: int, short_below: int, longcopy: int = 0) -> dict:
    """Per round (``prompts`` runs each, in order): each configuration's totals and its tokens/s ratio to
    plain decoding, for all prompts and split into short (plain answer of fewer than ``short_below`` tokens)
    and long answers, and the last ``longcopy`` prompts ("copy", also counted in short/long); and the median
    ratio over the rounds of each."""
    plain = runs["plain"]
    short = [i for i in range(prompts) if len(plain[i]["ids"]) < short_below]
    parts = {"all": list(range(prompts)), "short": short, "long": [i for i in range(prompts) if i not in short],
             "copy": list(range(prompts - longcopy, prompts)) if longcopy else []}
    rounds = []
    for start in range(0, len(plain) - prompts + 1, prompts):
        row = {}
        for part, chosen in parts.items():
            totals = {n: summary([r[start + i] for i in chosen]) for n, r in runs.items()} if chosen else {}
            row[part] = {n: {"tok_s": t["tok_s"], "x_plain": round(t["tok_s"] / totals["plain"]["tok_s"], 3),
                             "acceptance": t["acceptance"]} for n, t in totals.items()}
        rounds.append(row)
    median = {part: {n: round(statistics.median(r[part][n]["x_plain"] for r in rounds), 3) for n in runs}
              for part in parts if parts[part]} if rounds else {}
    return {"short_prompts": short, "rounds": rounds, "median_x_plain": median}


@contextlib.contextmanager
def _forward_check(on: bool):
    """With ``on``, speculative checks run the transformers forward (no lean decoder for them);
    plain decoding keeps the lean step."""
    if not on:
        yield
        return
    lean = speculative.lean_decoder
    speculative.lean_decoder = lambda language_model: None
    try:
        yield
    finally:
        speculative.lean_decoder = lean


@contextlib.contextmanager
def _old_catch_up(on: bool):
    """With ``on``, the draft catches up as before session 7: a transformers prefill of the ids its
    cache lacks, with room for one proposal (its cache regrown in blocks as the answer grows)."""
    if not on:
        yield
        return
    new = speculative._catch_up
    speculative._catch_up = lambda draft, ids, room: speculative.prefill(
        draft.model, ids, None, draft.kv, draft.tokens + 1).logits[0, -1]
    try:
        yield
    finally:
        speculative._catch_up = new


def first_differences(runs: dict[str, list[dict]]) -> dict[str, list[list[int]]]:
    """Per configuration: [run, index of the first token differing from plain decoding] (the run is the
    prompt's index in the first round; round r's prompt i is run r * prompts + i)."""
    found: dict[str, list[list[int]]] = {}
    for name, rows in runs.items():
        for prompt, (got, want) in enumerate(zip(rows, runs["plain"])):
            a, b = got["ids"], want["ids"]
            if a != b:
                at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                found.setdefault(name, []).append([prompt, at])
    return found


def _results(run: SpecRun, runs: dict[str, list[dict]]) -> dict:
    done = min(len(runs["plain"]), run.prompts)
    differ = first_differences(runs)
    return {"target": run.target, "drafts": run.drafts, "draft_tokens": {n: run.draft_tokens.get(n, DRAFT_TOKENS) for n in run.drafts},
            "draft_confidence": {n: run.draft_confidence.get(n, 0.0) for n in run.drafts},
            "draft_quant": run.draft_quant or run.quant, "draft_quants": {n: _draft_quant(run, n) for n in run.drafts},
            "draft_vocab": run.draft_vocab,
            "forward_check": sorted(run.forward_check), "old_catch_up": sorted(run.old_catch_up),
            "draft_pace": {n: vars(run.draft_pace.get(n, DRAFT_PACE)) for n in run.drafts},
            "draft_reads": {n: run.draft_reads.get(n, DRAFT_READS) for n in run.drafts},
            "reads_at_join": sorted(run.reads_at_join),
            "rounds": by_round(runs, done, run.short_below, min(run.longcopy, done)) if run.rounds > 1 else None,
            "first_difference": differ,
            "quant": run.quant, "tokens": run.tokens, "prompts": done,
            "threads": torch.get_num_threads(), "peak_rss_mb": round(peak_rss_mb()), "identical_outputs": not differ,
            "summary": {n: summary(r) for n, r in runs.items()}, "runs": runs}


def llama_cpp_runs(gguf: str, prompts: list[str], tokens: int, threads: int) -> dict:
    """llama.cpp (xllamacpp) greedy on each prompt (the distillation's system prompt, up to ``tokens``
    new tokens, stopping at the end of the turn) after one warm-up call: totals of its own timings."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.n_ctx = 1024
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)
    requests = [{"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}], "max_tokens": tokens,
                 "temperature": 0, "cache_prompt": False} for p in prompts]
    server.handle_chat_completions(requests[0])  # warm-up
    timings = [server.handle_chat_completions(r)["timings"] for r in requests]
    produced, decode_ms = sum(t["predicted_n"] for t in timings), sum(t["predicted_ms"] for t in timings)
    wall = sum(t["predicted_ms"] + t["prompt_ms"] for t in timings) / 1000
    return {"gguf": gguf, "threads": threads, "prompts": len(prompts), "tokens": produced, "wall_s": round(wall, 2),
            "tok_s": round(produced / wall, 3), "decode_tok_s": round(produced / (decode_ms / 1000), 3),
            "ttft_s_mean": round(sum(t["prompt_ms"] for t in timings) / 1000 / len(timings), 3)}


def _draft_arg(text: str, tokens: int) -> tuple[str, str, int, float, str, str]:
    """``NAME=DIR[@K[:P]][#QUANT][~VOCAB]`` -> (name, expanded dir, proposals per step at most, confidence,
    quant or "", vocabulary name or "")."""
    name, path = text.split("=", 1)
    head, _, vocab = path.rpartition("~")
    path, vocab = (head, vocab) if head and vocab.isalpha() else (path, "")  # a home "~/..." stays a path
    path, _, quant = path.partition("#")
    path, _, k = path.partition("@")
    k, _, sure = k.partition(":")
    return name, os.path.expanduser(path), int(k) if k else tokens, float(sure) if sure else 0.0, quant, vocab


def _pace_arg(text: str) -> tuple[str, Pace]:
    """``NAME=START,BELOW,WINDOW,REST[,STREAK]`` -> (name, Pace)."""
    name, _, values = text.partition("=")
    start, below, window, rest, *streak = values.split(",")
    return name, Pace(int(start), float(below), int(window), int(rest), int(streak[0]) if streak else 0)


def _print_rounds(rounds: dict) -> None:
    print(f"x plain per round (short answers: prompts {rounds['short_prompts']}):")
    for part, medians in rounds["median_x_plain"].items():
        for name, median in medians.items():
            each = " ".join(f"{r[part][name]['x_plain']:.3f}" for r in rounds["rounds"])
            print(f"  {part:<6}{name:<24}{each}   median {median:.3f}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True)
    parser.add_argument("--draft", action="append", required=True, help="NAME=DIR[@K[:P]][#QUANT][~VOCAB] (repeat)")
    parser.add_argument("--draft-tokens", type=int, default=DRAFT_TOKENS, help="draft tokens proposed per step (DIR@K overrides)")
    parser.add_argument("--llama-cpp", default=None, help="a GGUF: llama.cpp plain decoding of the same prompts too")
    parser.add_argument("--quant", default="int8")
    parser.add_argument("--draft-quant", default=None, help="the drafts' quantisation (default: --quant)")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48, help="at most this many new tokens per answer")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--forward-check", action="append", default=[], metavar="NAME",
                        help="this draft's checks run the transformers forward (the pre-session-6 check)")
    parser.add_argument("--old-catch-up", action="append", default=[], metavar="NAME",
                        help="this draft catches up with a transformers prefill each step (before session 7)")
    parser.add_argument("--pace", action="append", default=[], metavar="NAME=START,BELOW,WINDOW,REST[,STREAK]",
                        help="that draft's Pace (default: the library's DRAFT_PACE)")
    parser.add_argument("--reads", action="append", default=[], metavar="NAME=N[@join]",
                        help="that draft reads only the prompt's last N tokens, 0: all (default: DRAFT_READS); "
                             "@join: the last N before it joins")
    parser.add_argument("--rounds", type=int, default=1, help="the interleaved loop over the prompts, this many times")
    parser.add_argument("--short-below", type=int, default=32, help="plain answers of fewer tokens are 'short'")
    parser.add_argument("--longcopy", type=int, default=0, help="also the first N held-out long-copy prompts")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "2")))
    parsed = [_draft_arg(d, args.draft_tokens) for d in args.draft]
    drafts, tokens = {n: p for n, p, *_ in parsed}, {n: k for n, _, k, *_ in parsed}
    sure, quants = {n: c for n, _, _, c, *_ in parsed if c}, {n: q for n, *_, q, _ in parsed if q}
    vocab = {n: v for n, *_, v in parsed if v}
    pace = dict(_pace_arg(text) for text in args.pace)
    reads_given = [(name, *n.partition("@")[::2]) for name, _, n in (text.partition("=") for text in args.reads)]
    reads, at_join = {name: int(n) for name, n, _ in reads_given}, frozenset(n for n, _, at in reads_given if at == "join")
    unknown = (set(args.forward_check) | set(args.old_catch_up) | set(pace) | set(reads)) - set(drafts)
    if unknown:
        parser.error(f"--forward-check/--old-catch-up/--pace/--reads names no --draft: {', '.join(sorted(unknown))}")
    found = bench(SpecRun(os.path.expanduser(args.target), drafts, args.quant, args.prompts, args.tokens, args.out, tokens,
                          sure, args.draft_quant, quants, vocab, frozenset(args.forward_check), frozenset(args.old_catch_up),
                          pace, args.rounds, args.short_below, reads, args.longcopy, at_join))
    if args.llama_cpp:
        found["llama_cpp"] = llama_cpp_runs(os.path.expanduser(args.llama_cpp), held_out_prompts(args.prompts, args.longcopy), args.tokens,
                                            torch.get_num_threads())
        args.out.write_text(json.dumps(found, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{'run':<24}{'tokens':>8}{'wall s':>9}{'tok/s':>9}{'decode tok/s':>14}{'acceptance':>12}")
    for name, s in found["summary"].items():
        print(f"{name:<24}{s['tokens']:>8}{s['wall_s']:>9.1f}{s['tok_s']:>9.2f}{s['decode_tok_s']:>14.2f}"
              f"{'-' if s['acceptance'] is None else format(s['acceptance'], '.3f'):>12}")
    if "llama_cpp" in found:
        cpp = found["llama_cpp"]
        print(f"{'llama.cpp (same prompts)':<24}{cpp['tokens']:>8}{cpp['wall_s']:>9.1f}{cpp['tok_s']:>9.2f}"
              f"{cpp['decode_tok_s']:>14.2f}{'-':>12}")
    for name, where in found["first_difference"].items():
        print(f"{name}: differs from plain on run(s) {', '.join(f'{p} (token {t})' for p, t in where)}")
    if found["rounds"]:
        _print_rounds(found["rounds"])
    print(f"identical outputs: {found['identical_outputs']}; peak RSS {found['peak_rss_mb']} MB (lhama, before llama.cpp); "
          f"{found['threads']} threads")


if __name__ == "__main__":
    main(sys.argv[1:])
