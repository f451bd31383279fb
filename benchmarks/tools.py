"""Tool calling on pt-BR requests: right function, right arguments, valid JSON, no call when none
is needed -- through lhama serve's own path (plan_tools -> build_prompt -> Engine -> parse, one
retry with the call's start forced), greedy, all six tools offered with tool_choice "auto".

    python benchmarks/tools.py --model ~/.cache/lhama/models/qwen2.5-coder-1.5b-instruct
    python benchmarks/tools.py --model DIR --limit 10 --out results.jsonl
    python benchmarks/tools.py --model DIR --gguf FILE.gguf     # tokens from llama.cpp (xllamacpp)

With --gguf the prompt is still rendered, tokenized and parsed (and retried) by lhama exactly as
the server does (plan_tools, render_with_tools, parse_reply, ToolPlan.retry), but the tokens are
generated greedily by llama.cpp from the GGUF file the model directory was prepared from (about
10x faster on a CPU than the fp32 torch engine); an answer that has not started a call
(``<tool_call>``, ``{`` or a code fence) within its first 24 tokens is cut there.

Data: benchmarks/data/tools_ptbr.jsonl (one request per line; ``call`` null when no tool is
needed; an argument's expected value is a string/number, {"any": [...]} or {"contains": [...]}),
tools in benchmarks/data/tools_ptbr_tools.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import unicodedata
from pathlib import Path

import torch

from lhama.model.build import load_model
from lhama.serve.engine import Engine
from lhama.serve.prompt import Target, build_prompt, generation_config
from lhama.serve.schemas import ChatCompletionRequest
from lhama.serve.settings import ServeSettings
from lhama.serve.toolrun import ToolRun
from lhama.serve.tools import ToolCallInvalid, parse_reply, plan_tools

DATA = Path(__file__).parent / "data"


def normal(value: object) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode().lower()
    return " ".join(text.replace("'", " ").split()).strip(" .!?")


def matches(expected: object, got: object) -> bool:
    if isinstance(expected, dict) and "any" in expected:
        return any(matches(e, got) for e in expected["any"])
    if isinstance(expected, dict) and "contains" in expected:
        return all(normal(word) in normal(got) for word in expected["contains"])
    if isinstance(expected, (int, float)):
        try:
            return abs(float(str(got).replace(",", ".")) - expected) < 1e-6
        except ValueError:
            return False
    return normal(expected) == normal(got)


def run_one(engine: Engine, target: Target, tools: list, item: dict, max_tokens: int) -> dict:
    """One request through the serving path; what was called and how it went."""
    request = ChatCompletionRequest(model=engine.model_id, messages=[{"role": "user", "content": item["prompt"]}],
                                    tools=tools, max_tokens=max_tokens)
    plan = plan_tools(request, target.loaded.tokenizer.chat_template, engine.model_id)
    config = generation_config(request, target)
    started = time.perf_counter()
    *_, done = engine.stream(engine.submit(build_prompt(request, target, plan), config))
    row = {"id": item["id"], "raw": done.text, "first_valid": True, "retried": False, "error": None, "calls": []}
    try:
        reply = parse_reply(plan.prefix + done.text, plan)
    except ToolCallInvalid as exc:
        row["first_valid"], row["retried"] = False, True
        try:
            reply, again = ToolRun(engine, request, target, plan, config).retry(exc)
            row["raw_retry"] = again.text
        except ToolCallInvalid as final:
            row["error"], reply = str(final), None
    if reply is not None:
        row["calls"] = [{"name": c.name, "arguments": json.loads(c.arguments)} for c in reply.calls]
        row["content"] = reply.content
    row["seconds"] = time.perf_counter() - started
    return row


class LlamaCpp:
    """Greedy generation from token ids with llama.cpp (prompt prefix cached between requests)."""

    def __init__(self, gguf: Path, model_dir: Path, threads: int) -> None:
        import xllamacpp
        from transformers import AutoTokenizer

        from lhama.model.generation import read_generation

        params = xllamacpp.CommonParams()
        params.model.path, params.n_ctx = str(gguf), 4096
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
        self.server = xllamacpp.Server(params)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.system = read_generation(model_dir).system_prompt

    def generate(self, ids: list[int], max_tokens: int) -> str:
        reply = self.server.handle_completions({"prompt": ids, "n_predict": max_tokens, "temperature": 0,
                                                "cache_prompt": True, "top_k": 1})
        return reply["choices"][0]["text"]

    def answer(self, messages: list[dict], plan, max_tokens: int, early: int = 24) -> str:
        from lhama.data.conversation import encode_prompt
        from lhama.serve.tools import render_with_tools

        ids = encode_prompt(self.tokenizer, render_with_tools(self.tokenizer, messages, plan))
        start = self.generate(ids, early)
        if plan.prefix or any(mark in start for mark in ("<tool_call>", "{", "```")):
            return self.generate(ids, max_tokens)
        return start


def run_one_gguf(backend: LlamaCpp, tools: list, item: dict, max_tokens: int) -> dict:
    """One request: lhama renders, llama.cpp generates, lhama parses (and retries once)."""
    request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": item["prompt"]}], tools=tools)
    plan = plan_tools(request, backend.tokenizer.chat_template, "m")
    messages = ([{"role": "system", "content": backend.system}] if backend.system else []) + [
        {"role": "user", "content": item["prompt"]}]
    started = time.perf_counter()
    raw = backend.answer(messages, plan, max_tokens)
    row = {"id": item["id"], "raw": raw, "first_valid": True, "retried": False, "error": None, "calls": []}
    try:
        reply = parse_reply(plan.prefix + raw, plan)
    except ToolCallInvalid as exc:
        row["first_valid"], row["retried"], retry = False, True, plan.retry(exc.raw)
        row["raw_retry"] = backend.answer(messages, retry, max_tokens)
        try:
            reply = parse_reply(retry.prefix + row["raw_retry"], retry)
        except ToolCallInvalid as final:
            row["error"], reply = str(final), None
    if reply is not None:
        row["calls"] = [{"name": c.name, "arguments": json.loads(c.arguments)} for c in reply.calls]
        row["content"] = reply.content
    row["seconds"] = time.perf_counter() - started
    return row


def score(item: dict, row: dict) -> dict:
    want = item["call"]
    attempted = bool(row["calls"]) or row["error"] is not None or "<tool_call>" in row["raw"]
    first = row["calls"][0] if row["calls"] else None
    chose = (first is None and row["error"] is None) if want is None else (first is not None and first["name"] == want["name"])
    args = chose and want is not None and all(k in first["arguments"] and matches(v, first["arguments"][k])
                                              for k, v in want["arguments"].items())
    return {"needed": want is not None, "chose": chose, "args": args, "attempted": attempted,
            "valid": attempted and row["error"] is None, "first_valid": attempted and row["first_valid"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA / "tools_ptbr.jsonl")
    parser.add_argument("--tools", type=Path, default=DATA / "tools_ptbr_tools.json")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=80)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write each request's row here (JSONL)")
    parser.add_argument("--gguf", type=Path, default=None, help="generate with llama.cpp from this GGUF file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(0).shuffle(items)  # a cut-short run still mixes every kind of request
    items = items[: args.limit]
    tools = json.loads(args.tools.read_text(encoding="utf-8"))
    if args.gguf:
        backend = LlamaCpp(args.gguf, args.model, args.threads)
        run = lambda item: run_one_gguf(backend, tools, item, args.max_tokens)  # noqa: E731
    else:
        loaded = load_model(args.model)
        settings = ServeSettings(max_tokens_cap=256, request_timeout_s=3600)
        engine = Engine(loaded, settings)
        target = Target(loaded, engine.model_id, settings)
        engine.start()
        run = lambda item: run_one(engine, target, tools, item, args.max_tokens)  # noqa: E731
    rows, scores = [], []
    for item in items:
        rows.append(run(item))
        scores.append(score(item, rows[-1]))
        print(json.dumps({**rows[-1], **scores[-1]}, ensure_ascii=False), flush=True)
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report(args.model.name + (" (llama.cpp tokens)" if args.gguf else ""), scores, rows)


def report(name: str, scores: list[dict], rows: list[dict]) -> None:
    needed = [s for s in scores if s["needed"]]
    unneeded = [s for s in scores if not s["needed"]]
    attempted = [s for s in scores if s["attempted"]]
    pct = lambda part, whole: f"{100 * len(part) / max(1, len(whole)):.1f}% ({len(part)}/{len(whole)})"  # noqa: E731
    print(f"\nmodel {name}; load {os.getloadavg()[0]:.1f}; {sum(r['seconds'] for r in rows) / len(rows):.1f} s/request")
    print("| tool choice right (all) | right function (tool needed) | arguments right (tool needed) | "
          "no call when none needed | valid JSON calls (after retry) | valid on first try |")
    print("|---|---|---|---|---|---|")
    print(f"| {pct([s for s in scores if s['chose']], scores)} | {pct([s for s in needed if s['chose']], needed)} "
          f"| {pct([s for s in needed if s['args']], needed)} | {pct([s for s in unneeded if s['chose']], unneeded)} "
          f"| {pct([s for s in attempted if s['valid']], attempted)} "
          f"| {pct([s for s in attempted if s['first_valid']], attempted)} |")


if __name__ == "__main__":
    main()
