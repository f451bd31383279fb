"""Tool calling on pt-BR requests: right function, right arguments, valid JSON, no call when none
is needed -- through lhama serve's own path (plan_tools -> build_prompt -> Engine -> parse, one
retry with the call's start forced), greedy, all six tools offered with tool_choice "auto".

    python benchmarks/tools.py --model ~/.cache/lhama/models/qwen2.5-coder-1.5b-instruct
    python benchmarks/tools.py --model DIR --limit 10 --out results.jsonl

Data: benchmarks/data/tools_ptbr.jsonl (one request per line; ``call`` null when no tool is
needed; an argument's expected value is a string/number, {"any": [...]} or {"contains": [...]}),
tools in benchmarks/data/tools_ptbr_tools.json.
"""

from __future__ import annotations

import argparse
import json
import os
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = items[: args.limit]
    tools = json.loads(args.tools.read_text(encoding="utf-8"))
    loaded = load_model(args.model)
    settings = ServeSettings(max_tokens_cap=256, request_timeout_s=600)
    engine = Engine(loaded, settings)
    target = Target(loaded, engine.model_id, settings)
    engine.start()
    rows, scores = [], []
    for item in items:
        row = run_one(engine, target, tools, item, args.max_tokens)
        rows.append(row)
        scores.append(score(item, row))
        print(json.dumps({**row, **scores[-1]}, ensure_ascii=False), flush=True)
    engine.close()
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report(args.model.name, scores, rows)


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
