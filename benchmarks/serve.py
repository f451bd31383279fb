"""Serving throughput and latency of ``lhama serve`` on this machine.

Starts real ``lhama serve`` processes (uvicorn on loopback) and drives them with the openai
client from N threads (N concurrent clients, streaming so time to first token is seen):

* aggregate completion tokens/s at 1, 4 and 16 concurrent clients with continuous batching
  (``--max-batch 16``), and the same load with batching off (``--max-batch 1``: requests
  queue and run strictly one at a time);
* time to first token of a request with one image, on a model composed of the same LM and a
  randomly initialised CLIP ViT-B/16-sized tower (224 px, 196 image tokens): timing only.

Usage:
    LHAMA_HOME=/tmp/lh python benchmarks/serve.py --model smollm2-135m-instruct --threads 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
from openai import OpenAI

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["Qual é a capital do Brasil?", "Explique o que é fotossíntese.", "Dê três dicas para estudar melhor.",
             "O que é um número primo?", "Por que o céu é azul?", "Como funciona um motor elétrico?"]
IMAGE = ROOT.parent / "shared" / "data" / "tuxpaint_ptbr" / "images" / "animals_amphibians__frog.jpg"


def server_command(args: argparse.Namespace, model: str, max_batch: int, quant: str | None) -> list[str]:
    """``lhama serve`` for ``model``: ``--timeout`` is the benchmark's ``--request-timeout`` (a
    request queued behind 15 others' prefills on a 2-core CPU can take minutes: the server's own
    120 s default would end the run instead of measuring it)."""
    command = [sys.executable, "-m", "lhama", "serve", "--model", model, "--port", str(args.port),
               "--max-batch", str(max_batch), "--threads", str(args.threads), "--timeout", str(args.request_timeout)]
    if quant:
        command += ["--quant", quant]
    if not args.guard:
        command.append("--no-guard")  # the guard releases text a sentence at a time: TTFT would measure that
    return command


def start_server(command: list[str], port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lhama serve exited with {process.returncode}")
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx2.HTTPError:
            pass
        time.sleep(1)
    process.kill()
    raise RuntimeError("lhama serve did not start in 10 minutes")


def one_request(client: OpenAI, model: str, content: object, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to first content, total seconds, completion tokens) of one streamed request."""
    started, first, tokens = time.perf_counter(), None, 0
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}],
                                            max_tokens=max_tokens, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    total = time.perf_counter() - started
    return (first if first is not None else total), total, tokens


def load_level(url: str, model: str, clients: int, requests: int, max_tokens: int) -> dict:
    """Run ``requests`` requests from ``clients`` threads; aggregate numbers."""
    client = OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0, timeout=900)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda i: one_request(client, model, QUESTIONS[i % len(QUESTIONS)], max_tokens),
                                range(requests)))
    wall = time.perf_counter() - started
    tokens = sum(r[2] for r in results)
    latency = sorted(r[1] for r in results)
    per_client = sorted(r[2] / r[1] for r in results)  # each request's own tokens / its own seconds
    return {"clients": clients, "requests": requests, "tokens": tokens, "wall_s": wall, "tok_s": tokens / wall,
            "ttft_s": sorted(r[0] for r in results)[len(results) // 2],
            "client_tok_s": per_client[len(per_client) // 2], "latency_p50_s": latency[len(latency) // 2],
            "latency_p95_s": latency[min(len(latency) - 1, round(0.95 * (len(latency) - 1)))]}


def image_model(lm_dir: Path, out: Path) -> Path:
    """SmolLM2 + a random CLIP ViT-B/16-sized tower, saved as a lhama model directory."""
    sys.path.insert(0, str(ROOT / "src"))
    from transformers import AutoModelForCausalLM, AutoTokenizer, CLIPVisionConfig, CLIPVisionModel

    from lhama.model.build import compose, save_model
    from lhama.model.branches import lhama_config
    from lhama.model.config import ImageConfig

    tower = CLIPVisionModel(CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                             num_attention_heads=12, image_size=224, patch_size=16))
    lm = AutoModelForCausalLM.from_pretrained(lm_dir)
    loaded = compose(lhama_config(image=ImageConfig()), lm, AutoTokenizer.from_pretrained(lm_dir), {"image": tower})
    return save_model(loaded, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--levels", default="1,4,16", help="concurrent clients per run")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-image", action="store_true", help="leave out the image time-to-first-token run")
    parser.add_argument("--skip-load", action="store_true", help="leave out the concurrency runs")
    parser.add_argument("--guard", action="store_true", help="keep the safety guard on (default: --no-guard)")
    parser.add_argument("--quant", default=None, help="lhama serve --quant (default: the model's registry choice)")
    parser.add_argument("--max-batches", default="16,1", help="lhama serve --max-batch values to run")
    parser.add_argument("--requests", type=int, default=None, help="requests per level (default: max(clients, 4))")
    parser.add_argument("--request-timeout", type=float, default=900.0,
                        help="lhama serve --timeout: seconds a request may take from queueing to its last token")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1/5/15 min)")
    rows = []
    for max_batch in () if args.skip_load else [int(b) for b in args.max_batches.split(",")]:
        server = start_server(server_command(args, args.model, max_batch, args.quant), args.port)
        try:
            url = f"http://127.0.0.1:{args.port}"
            model = httpx2.get(f"{url}/v1/models").json()["data"][0]["id"]
            load_level(url, model, 1, 1, 4)  # warm-up
            for clients in [int(c) for c in args.levels.split(",")]:
                if max_batch == 1 and clients > 4:
                    continue  # one at a time: 16 clients only queue longer; bounded run time
                requests = args.requests or max(clients, 4)
                rows.append({"max_batch": max_batch, **load_level(url, model, clients, requests, args.max_tokens)})
                print(_row(rows[-1]), flush=True)
        finally:
            server.terminate()
            server.wait()
    if not args.skip_image:
        print(image_ttft(args))
    print(f"load after: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1/5/15 min)")
    print(_table(rows))
    print(_scaling(rows))


def image_ttft(args: argparse.Namespace) -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from lhama.weights.resolve import resolve

    import base64

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = image_model(resolve(args.model, args.model), Path(tmp) / "smollm2-clip-b16")
        server = start_server(server_command(args, str(model_dir), 16, None), args.port)
        try:
            client = OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key="bench", max_retries=0, timeout=900)
            uri = "data:image/jpeg;base64," + base64.b64encode(IMAGE.read_bytes()).decode()
            content = [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": "Descreva a imagem."}]
            text_only = [one_request(client, model_dir.name, "Descreva a imagem.", 1)[0] for _ in range(3)]
            with_image = [one_request(client, model_dir.name, content, 1)[0] for _ in range(3)]
        finally:
            server.terminate()
            server.wait()
    return (f"time to first token, one 224 px image (196 image tokens), median of 3: {sorted(with_image)[1]:.2f} s; "
            f"same question without the image: {sorted(text_only)[1]:.2f} s")


def _row(row: dict) -> str:
    return (f"max_batch={row['max_batch']:>2} clients={row['clients']:>2} requests={row['requests']:>2} "
            f"tokens={row['tokens']:>4} wall={row['wall_s']:7.1f}s  {row['tok_s']:6.2f} tok/s  "
            f"median TTFT {row['ttft_s']:.2f}s  per client {row['client_tok_s']:.2f} tok/s  "
            f"latency p50 {row['latency_p50_s']:.2f}s p95 {row['latency_p95_s']:.2f}s")


def _scaling(rows: list[dict]) -> str:
    """Aggregate tok/s of each level of continuous batching against one client (the issue's target: 16 clients >= 2x)."""
    batched = {r["clients"]: r["tok_s"] for r in rows if r["max_batch"] > 1}
    if 1 not in batched:
        return ""
    return "aggregate vs 1 client: " + ", ".join(f"{c} clients {t / batched[1]:.2f}x" for c, t in batched.items())


def _table(rows: list[dict]) -> str:
    lines = ["| batching | clients | requests | tokens | wall (s) | tokens/s | median TTFT (s) | per client tok/s (median) "
             "| latency p50 / p95 (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mode = "continuous (max 16)" if r["max_batch"] > 1 else "off (one at a time)"
        lines.append(f"| {mode} | {r['clients']} | {r['requests']} | {r['tokens']} | {r['wall_s']:.1f} | "
                     f"{r['tok_s']:.2f} | {r['ttft_s']:.2f} | {r['client_tok_s']:.2f} | "
                     f"{r['latency_p50_s']:.2f} / {r['latency_p95_s']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
