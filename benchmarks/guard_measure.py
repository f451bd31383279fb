"""Issue #29's numbers for one guard, in one run: test-split F1 (pt-BR and English), benign pt-BR
sentences flagged (per source), everyday prompts flagged, streamed answers cut, latency.

    python benchmarks/guard_measure.py                                   # shipped head, stream judges the answer so far
    python benchmarks/guard_measure.py --guard classifier:OLD.safetensors --sentence-stream   # the guard before #29
    python benchmarks/guard_measure.py --guard translated:classifier+llama-guard:DIR,int4   # + the judge on flagged items
    python benchmarks/guard_measure.py --guard translated:classifier --latency-only   # latency table only (no test read)

Benign sentences come from data/guard/benign/benign.jsonl (built by guard_benign_data.py, never
trained on); prompts are checked as user input, every other sentence as model output. Streamed
answers: the written answers and the translated LLaVA answers, each fed in 4-character deltas to
:class:`StreamGuard` after its question. Stream recall: the unsafe pt-BR test items streamed as an
answer, alone and after a benign opening sentence.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from lhama.guard import Guard, StreamGuard, Verdict, load_guard
from lhama.guard.base import as_chat
from lhama.guard.cascade import CascadeGuard
from lhama.guard.dataset import read_examples
from lhama.guard.evaluate import evaluate
from lhama.guard.translate import TranslatingGuard

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ("everyday_prompt", "llava_question_mt")
OPENER = "Claro, posso explicar isso com calma. "


class TimedGuard(Guard):
    """Wraps a guard (the judge) and records the seconds of each check it really runs. With
    ``cache``, verdicts are also appended to that JSONL file and replayed on a rerun, so a long
    measurement stopped halfway resumes where it stopped (replays are not timed)."""

    def __init__(self, guard: Guard, cache: Path | None = None) -> None:
        self.guard, self.seconds, self.cache, self.done = guard, [], cache, {}
        if cache is not None and cache.is_file():
            for line in cache.open(encoding="utf-8"):
                d = json.loads(line)
                self.done[d["key"]] = Verdict(d["safe"], tuple(d["categories"]))
                self.seconds.append(d["seconds"])

    def check(self, messages, role="user"):
        key = json.dumps([as_chat(messages, role), role], ensure_ascii=False)
        if key in self.done:
            return self.done[key]
        start = time.perf_counter()
        verdict = self.done[key] = self.guard.check(messages, role)
        self.seconds.append(time.perf_counter() - start)
        if self.cache is not None:
            with self.cache.open("a", encoding="utf-8") as f:
                record = {"key": key, "safe": verdict.safe, "categories": list(verdict.categories), "seconds": self.seconds[-1]}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return verdict


def benign_rates(guard: Guard, rows: list[dict], show: int) -> None:
    by_source: dict[str, list[bool]] = defaultdict(list)
    flagged = []
    for row in rows:
        v = guard.check(row["text"], "user" if row["source"] in PROMPTS else "assistant")
        by_source[row["source"]].append(not v.safe)
        if not v.safe:
            flagged.append((row["source"], row["text"], ",".join(v.categories)))
    print("| source | sentences | flagged | rate |\n|---|---|---|---|")
    for source, hits in sorted(by_source.items()):
        print(f"| {source} | {len(hits)} | {sum(hits)} | {100 * sum(hits) / len(hits):.2f}% |")
    answers = [h for s, hs in by_source.items() if s not in PROMPTS for h in hs]
    print(f"| **all model-output sentences** | {len(answers)} | {sum(answers)} | {100 * sum(answers) / len(answers):.2f}% |")
    total = [h for hs in by_source.values() for h in hs]
    print(f"| **all benign sentences** | {len(total)} | {sum(total)} | {100 * sum(total) / len(total):.2f}% |")
    every = by_source.get("everyday_prompt", [])  # the dev half (even rows) chose #29's fourth-session head
    print(f"everyday prompts flagged: dev half (even rows) {sum(every[0::2])} of {len(every[0::2])}, "
          f"held-out half (odd rows) {sum(every[1::2])} of {len(every[1::2])}")
    for source, text, cats in flagged[:show]:
        print(f"  flagged [{source}] {cats}: {text}")


def answers(rows: list[dict]) -> list[tuple[str, str]]:
    """(question, answer) pairs: written answers and translated LLaVA answers, regrouped by ref."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["source"] in ("llava_answer_mt", "llava_question_mt"):
            grouped[row["ref"]].append(row["text"])
    pairs = []
    for ref, sentences in grouped.items():
        rec, _, turn = ref.rpartition(" turn ")
        question = grouped.get(f"{rec} turn {int(turn) - 1}")
        if int(turn) % 2 and question:
            pairs.append((" ".join(question), " ".join(sentences)))
    with open(ROOT / "data/guard/benign/assistant_answers.tsv", encoding="utf-8") as f:
        pairs += [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]
    return pairs


def stream_cut(guard: Guard, pairs: list[tuple[str, str]], args: argparse.Namespace) -> tuple[float, float]:
    """Share of answers the stream guard cuts, and ms per answer."""
    cut, start = 0, time.perf_counter()
    for question, answer in pairs:
        sg = StreamGuard(guard, [{"role": "user", "content": question}], **_stream_kwargs(args))
        for i in range(0, len(answer), 4):
            sg.feed(answer[i : i + 4])
        sg.finish()
        cut += sg.blocked
    return cut / len(pairs), 1000 * (time.perf_counter() - start) / len(pairs)


def _stream_kwargs(args: argparse.Namespace) -> dict:
    return {"hold_words": 0, "whole_answer": False} if args.sentence_stream else {}


def latency(guard: Guard, rows: list[dict], train: Path, n: int = 200) -> None:
    """ms per message, one message at a time as chat checks a turn (median and mean over ``n``):
    the classifier alone on pt-BR user prompts of the benign set, and the guard as given on the same
    prompts and on English requests (the dev split's, never the test split), which a translating
    guard also judges through their Bergamot translation."""
    pt = [r["text"] for r in rows if r["source"] in PROMPTS][:n]
    en = [r["text"] for r in map(json.loads, train.open(encoding="utf-8")) if r.get("round") == 5
          and r.get("role") == "user" and r["lang"] == "en"][:n]
    inner = guard.guard if isinstance(guard, TranslatingGuard) else guard
    print("\n| path | messages | ms / message (median) | mean |\n|---|---|---|---|")
    for name, g, texts in (("classifier alone, pt-BR", inner, pt), ("as given, pt-BR", guard, pt),
                           ("as given, English", guard, en)):
        g.check(texts[0])  # warm-up: the first English message loads the translation model
        secs = []
        for t in texts:
            start = time.perf_counter()
            g.check(t)
            secs.append(1000 * (time.perf_counter() - start))
        print(f"| {name} | {len(texts)} | {np.median(secs):.2f} | {np.mean(secs):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guard", default=None, help="guard spec (default: shipped classifier)")
    parser.add_argument("--benign", type=Path, default=ROOT / "data/guard/benign/benign.jsonl")
    parser.add_argument("--test", type=Path, default=ROOT / "data/guard/test.jsonl")
    parser.add_argument("--sentence-stream", action="store_true", help="judge each streamed sentence alone (before #29)")
    parser.add_argument("--judge-cache", type=Path, default=None,
                        help="JSONL of the judge's verdicts: replayed on a rerun, so a stopped run resumes")
    parser.add_argument("--show", type=int, default=40, help="flagged benign sentences to print")
    parser.add_argument("--train", type=Path, default=ROOT / "data/guard/train.jsonl", help="for the dev English requests timed")
    parser.add_argument("--latency-only", action="store_true", help="only the latency table (the test split is not read)")
    args = parser.parse_args()
    guard = load_guard(args.guard)
    if isinstance(guard, CascadeGuard):  # time the judge on what the first stage flags
        guard.judge = TimedGuard(guard.judge, args.judge_cache)
    print(f"guard {args.guard or 'shipped classifier'}; load {os.getloadavg()[0]:.1f}\n")
    rows = [json.loads(line) for line in args.benign.open(encoding="utf-8")]
    if not isinstance(guard, CascadeGuard):
        latency(guard, rows, args.train)
    if args.latency_only:
        return
    print("| split | items | precision | recall | F1 | FPR (safe) | ms / message |\n|---|---|---|---|---|---|---|")
    for lang in ("pt", "en"):
        r = evaluate(guard, read_examples(args.test, lang))
        o = r.overall
        print(f"| test {lang} | {r.n} | {o.precision:.3f} | {o.recall:.3f} | {o.f1:.3f} | {o.fpr:.3f} | {r.ms_per_message:.2f} |")
    print()
    benign_rates(guard, rows, args.show)
    pairs = answers(rows)
    rate, ms = stream_cut(guard, pairs, args)
    print(f"\nstreamed benign answers cut: {100 * rate:.1f}% of {len(pairs)} ({ms:.1f} ms per answer)")
    unsafe = [e.text for e in read_examples(args.test, "pt") if e.unsafe]
    alone, _ = stream_cut(guard, [("Pode me ajudar?", t) for t in unsafe], args)
    opened, _ = stream_cut(guard, [("Pode me ajudar?", OPENER + t) for t in unsafe], args)
    print(f"stream recall on the {len(unsafe)} unsafe pt-BR test items as answers: alone {alone:.3f}, "
          f"after a benign opening sentence {opened:.3f}")
    if isinstance(guard, CascadeGuard):
        secs = guard.judge.seconds
        print(f"judge: {len(guard.judge.done)} distinct checks (flagged by the first stage), {np.mean(secs):.2f} s "
              f"per check (median {np.median(secs):.2f}); the ms / message column replays cached verdicts when "
              "--judge-cache is given: add the judge's seconds for each flagged message")


if __name__ == "__main__":
    main()
