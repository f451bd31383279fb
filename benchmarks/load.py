"""Model loading: GGUF (dequantised by transformers) vs the prepared safetensors directory.

    python benchmarks/load.py                              # gemma-3-270m, 3 prepared loads
    python benchmarks/load.py --model smollm2-135m-instruct --repeats 5

Prepares the model into $LHAMA_HOME first if needed (that one-time cost is printed too), then
times tokenizer + model loading both ways in this process, float32 on CPU. Each row also shows
the 1-minute load average, because the machine's cores may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from transformers import AutoModelForCausalLM, AutoTokenizer

from lhama.weights.convert import locate_gguf
from lhama.weights.prepare import prepare
from lhama.weights.registry import models_dir, registry_entry


def timed_load(directory: Path, gguf_file: str | None) -> float:
    """Seconds to load tokenizer and model from ``directory`` (from ``gguf_file`` if given)."""
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    start = time.perf_counter()
    AutoTokenizer.from_pretrained(directory, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs)
    seconds = time.perf_counter() - start
    del model
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="registered model name")
    parser.add_argument("--repeats", type=int, default=3, help="loads of the prepared directory")
    args = parser.parse_args()
    source = registry_entry(args.model)
    rows = []
    if not (models_dir() / source.name).exists():
        start = time.perf_counter()
        prepare(source.name)
        rows.append(("prepare (one-time: GGUF -> safetensors + verify)", time.perf_counter() - start, _load()))
    prepared = prepare(source.name)
    loads = []
    for i in range(args.repeats):
        loads.append(timed_load(prepared, None))
        rows.append((f"prepared safetensors dir, load {i + 1}", loads[-1], _load()))
    with tempfile.TemporaryDirectory() as scratch:
        gguf = locate_gguf(source, Path(scratch))
        rows.append(("GGUF via transformers (dequantise)", timed_load(gguf.parent, gguf.name), _load()))
    table = Table(title=f"{source.name}: tokenizer + model load, float32, CPU ({os.cpu_count()} cores)")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("load avg (1 min)", justify="right")
    for what, seconds, load in rows:
        table.add_row(what, f"{seconds:.1f}", f"{load:.2f}")
    table.add_row("prepared, median", f"{statistics.median(loads):.1f}", "")
    Console().print(table)


def _load() -> float:
    return os.getloadavg()[0]


if __name__ == "__main__":
    main()
