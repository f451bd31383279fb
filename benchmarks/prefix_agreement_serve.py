"""Does `lhama serve` answer a request from a reused prefix as it answers it from a fresh prefill? (#26, s14)

Starts `lhama serve` on a free local port and talks to it with the openai client, as a user's program would.
The server keeps the keys/values of the last prompt it prefilled (:class:`lhama.inference.prefix.PrefixCache`)
and the next request prefills only what follows the whole chunks the two prompts share.

- Fresh: before each question, a request with another system prompt (one token of answer) leaves the server
  nothing to reuse, so the question is prefilled whole.
- Reused: the questions again, one after another: each reuses the system prompt's chunks of the one before.
- Two turns: a second turn (the first answer in the history) asked fresh, and asked right after its first turn
  (reusing the first turn's prompt).

Printed per request: whether the answer is the same text, and each path's time to first token (streamed).

    python benchmarks/prefix_agreement_serve.py --model /path/to/lhama-default --quant int4-g32-grid-k+lossy6 --limit 4
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from openai import OpenAI
from rich.console import Console
from rich.table import Table

DEV = Path(__file__).with_name("data") / "everyday_fresh_s10.jsonl"
SESSION_12 = "Corrija a frase: eu vai na escola amanha de manha."
OTHER_SYSTEM = "Responda apenas: ok."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "lhama", "serve", "--model", args.model, "--port", str(port),
               "--threads", str(args.threads), "--no-guard"] + (["--quant", args.quant] if args.quant else [])
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"lhama serve exited ({server.returncode}): {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            time.sleep(1)
    server.terminate()
    raise SystemExit(f"lhama serve did not answer /health within {args.start_timeout} s")


class Asker:
    def __init__(self, client: OpenAI, model: str, max_tokens: int) -> None:
        self.client, self.model, self.max_tokens = client, model, max_tokens

    def __call__(self, messages: list[dict], max_tokens: int | None = None) -> tuple[str, float]:
        """The answer's text and the seconds to its first streamed text."""
        started, first, parts = time.perf_counter(), None, []
        stream = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0, stream=True,
                                                     max_tokens=max_tokens or self.max_tokens)
        for chunk in stream:
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                first = first if first is not None else time.perf_counter() - started
                parts.append(delta)
        return "".join(parts), first if first is not None else time.perf_counter() - started

    def fresh(self, messages: list[dict]) -> tuple[str, float]:
        self([{"role": "system", "content": OTHER_SYSTEM}, {"role": "user", "content": "oi"}], max_tokens=1)
        return self(messages)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def measure(ask: Asker, questions: list[str], pairs: int, console: Console) -> list[dict]:
    rows = [{"kind": "one turn", "question": q, "fresh": ask.fresh(user(q))} for q in questions]
    for row in rows:
        row["reused"] = ask(user(row["question"]))
        console.print(f"[dim]{row['question'][:40]}: {row['fresh'][0] == row['reused'][0]}[/]")
    for first, second in list(zip(questions, questions[1:]))[:pairs]:
        answer, _ = ask(user(first))  # the first turn: its prompt is kept for the second
        turns = [*user(first), {"role": "assistant", "content": answer}, *user(second)]
        reused = ask(turns)
        rows.append({"kind": "second turn", "question": f"{first} / {second}", "reused": reused,
                     "fresh": ask.fresh(turns)})
        console.print(f"[dim]{rows[-1]['question'][:40]}: {rows[-1]['fresh'][0] == reused[0]}[/]")
    return rows


def report(rows: list[dict], console: Console) -> None:
    table = Table(title="lhama serve: reused prefix vs fresh prefill (openai client, temperature 0)")
    for name in ("request", "question", "same answer", "TTFT fresh", "TTFT reused", "answer"):
        table.add_column(name)
    for row in rows:
        table.add_row(row["kind"], row["question"][:50], "yes" if row["fresh"][0] == row["reused"][0] else "NO",
                      f"{row['fresh'][1]:.2f} s", f"{row['reused'][1]:.2f} s", row["reused"][0][:60])
    console.print(table)
    same = sum(row["fresh"][0] == row["reused"][0] for row in rows)
    console.print(f"same answers {same}/{len(rows)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lhama-default", help="a prepared model's name or a model directory")
    parser.add_argument("--quant", default=None)
    parser.add_argument("--questions", type=Path, default=DEV)
    parser.add_argument("--limit", type=int, default=4, help="questions from the file (after the session 12 prompt)")
    parser.add_argument("--pairs", type=int, default=2, help="two-turn conversations")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--start-timeout", type=float, default=300)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args()
    rows_in = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [SESSION_12] + [row["question"] for row in rows_in[: args.limit]]
    console = Console(width=160)
    port = free_port()
    started = time.perf_counter()
    server = start_server(args, port)
    try:
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        model = client.models.list().data[0].id
        console.print(f"lhama serve ({model}) up in {time.perf_counter() - started:.1f} s on port {port}")
        ask = Asker(client, model, args.max_tokens)
        ask(user("Olá!"), max_tokens=1)  # warm the kernels before anything is timed
        rows = measure(ask, questions, args.pairs, console)
    finally:
        server.terminate()
        server.wait(timeout=60)
    report(rows, console)
    if args.out:
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
