"""/v1/moderations against `lhama guard` on the guard's test split: both must give the same F1.

    python benchmarks/moderation.py                  # pt-BR items of data/guard/test.jsonl
    python benchmarks/moderation.py --lang all

`lhama guard --input FILE --jsonl` runs as a real process on the messages (one per line); the
endpoint is a real `lhama serve` app (uvicorn on a free port, a tiny random model: text
moderation does not use the served model) asked with the `openai` client, 32 texts per request.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import uvicorn
from openai import OpenAI
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

from lhama.guard import load_guard
from lhama.guard.dataset import read_examples
from lhama.guard.metrics import binary_scores
from lhama.model.build import compose
from lhama.model.config import LhamaConfig
from lhama.serve.app import create_app
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[1]


def tiny_engine(guard) -> Engine:
    """An engine around a 2-layer random model (the guard, not the model, answers moderation)."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>")
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=16, max_position_embeddings=256)
    torch.manual_seed(0)
    loaded = compose(LhamaConfig(), AutoModelForCausalLM.from_config(config), tokenizer)
    return Engine(loaded, ServeSettings(), guard=guard)


def serve(engine: Engine) -> tuple[str, uvicorn.Server]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1", server


def cli_flags(texts: list[str]) -> list[bool]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    done = subprocess.run([sys.executable, "-m", "lhama", "guard", "--input", f.name, "--jsonl"],
                          capture_output=True, text=True, cwd=ROOT)
    os.unlink(f.name)
    return [json.loads(line)["verdict"] == "unsafe" for line in done.stdout.splitlines()]


def api_flags(url: str, texts: list[str], batch: int) -> list[bool]:
    client = OpenAI(base_url=url, api_key="-", max_retries=0)
    flags = []
    for start in range(0, len(texts), batch):
        response = client.moderations.create(input=texts[start:start + batch], model="omni-moderation-latest")
        flags.extend(r.flagged for r in response.results)
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", type=Path, default=ROOT / "data" / "guard" / "test.jsonl")
    parser.add_argument("--lang", default="pt", help="pt, en, or all")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    examples = read_examples(args.test, None if args.lang == "all" else args.lang)
    texts, truth = [e.text for e in examples], np.array([e.unsafe for e in examples])
    started = time.perf_counter()
    cli = cli_flags(texts)
    cli_s = time.perf_counter() - started
    url, server = serve(tiny_engine(load_guard()))
    started = time.perf_counter()
    api = api_flags(url, texts, args.batch)
    api_s = time.perf_counter() - started
    server.should_exit = True
    print(f"items {len(texts)} (unsafe {int(truth.sum())}); same verdict on {sum(a == c for a, c in zip(api, cli))}"
          f"/{len(texts)}; load {os.getloadavg()[0]:.1f}")
    print("| path | precision | recall | F1 | FPR | seconds |")
    print("|---|---|---|---|---|---|")
    for name, flags, seconds in (("lhama guard --input --jsonl", cli, cli_s), ("POST /v1/moderations", api, api_s)):
        s = binary_scores(truth, np.array(flags))
        print(f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.fpr:.3f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
