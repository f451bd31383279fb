"""#30 session 11 dev data for a draft that reads the last N tokens before it joins (``Draft.reads_at_join``); one slot.

    /work/team/heavy -- python3 benchmarks/spec_dev_s11.py /tmp/30a/dev_s10.json --out /tmp/30a/dev_s11_join.json

Input: benchmarks/spec_dev_s10.py's file (the 30 dev prompts' target answers). Per prompt and join point S (the draft's
late start: it joins when the answer has S tokens), the int4-g32 0.5B draft's teacher-forced agreement flags at answer
positions >= S when it reads the last READS tokens before answer token S - 1 and then the answer from there (what
``speculative_ids`` gives it with ``reads_at_join``); the target is loaded only for its tokenizer and chat template, and
each prompt's length must match the dev file's (the same ids). benchmarks/spec_sim_s11_join.py simulates with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_spec import SYSTEM  # noqa: E402
from spec_dev_s10 import dev_prompts  # noqa: E402

from lhama.inference.quant_cache import load_for_inference  # noqa: E402
from lhama.weights.registry import REGISTRY  # noqa: E402

STARTS = (0, 4, 8, 12, 16, 20, 24, 32)


def join_flags(draft, ids: list[int], answer: list[int], reads: int, start: int) -> list[int | None]:
    """Per answer position: None before ``start`` (plain steps), else 1 where the draft, having read the last ``reads``
    ids before answer token ``start - 1`` (the prompt's for ``start`` <= 1) and the answer since, picks that token."""
    join = len(ids) + max(start, 1) - 1  # ids before the token it continues from when it joins
    cut = max(0, join - reads)
    seq = (ids + answer)[cut:]
    picks = draft.model.language_model(input_ids=torch.tensor([seq])).logits[0].argmax(-1).tolist()
    first = max(start, 1)
    return [None] * first + [int(picks[len(ids) + j - 1 - cut] == answer[j]) for j in range(first, len(answer))]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dev", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reads", type=int, default=24)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "1")))
    dev = json.loads(args.dev.read_text())
    home = Path(os.path.expanduser("~/.cache/lhama/models"))
    quant = next(s.quant for s in REGISTRY if s.name == "lhama-default")
    tok = load_for_inference(home / "lhama-default", quant).tokenizer
    draft = load_for_inference(home / "qwen2.5-coder-0.5b-instruct", "int4-g32")
    out, started = {"reads": args.reads, "starts": list(STARTS), "prompts": []}, time.time()
    with torch.inference_mode():
        for (pid, prompt), row in zip(dev_prompts(), dev["prompts"]):
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
            ids = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)).input_ids
            if pid != row["id"] or len(ids) != row["prompt_tokens"]:
                raise SystemExit(f"dev file row {row['id']} ({row['prompt_tokens']} ids) is not prompt {pid} ({len(ids)} ids)")
            flags = {str(s): join_flags(draft, ids, row["answer"], args.reads, s) for s in STARTS if s < len(row["answer"])}
            out["prompts"].append({"id": pid, "flags": flags})
            print(f"{time.time() - started:.0f}s {pid}: " + " ".join(
                f"s{s} {sum(x for x in f if x is not None)}/{sum(x is not None for x in f)}" for s, f in flags.items()),
                flush=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
