"""Does a quantised LM still give the fp32 model's answers? Greedy agreement and perplexity.

    python benchmarks/decode_quality.py --model qwen2.5-coder-1.5b-instruct --quants int8 int4 int4-g32+head \\
        --sentences ../shared/data/admire_pt/a_pt_train_targets.tsv ../shared/data/admire_pt/a_pt_dev_targets.tsv \\
        --reference /tmp/fp32-reference.pt     # keeps the fp32 answers and stats for the next run

Held-out text: the Portuguese sentences of the given AdMIRe TSVs (column ``sentence``; no model
here trained on them). For each quantisation of the language model (lhama.inference.quant):
- perplexity of each sentence (mean token NLL over all sentences, exp), and its ratio to fp32;
- teacher-forced top-1 agreement with fp32 on the sentences (same next-token argmax);
- the same two on the decode path ("decode"): each sentence token by token through the KV
  cache, as decoding computes them (lean step; for int4 the native kernel, or PyTorch's with
  ``int4:aten``); the prompt path above runs whole sentences (PyTorch's kernels);
- greedy agreement on held-out chat prompts (each sentence's idiom explained): fp32 decodes
  ``--answer-tokens`` greedy tokens; the quantised model is fed the same prompt + answer, one
  answer token at a time (the decode path), and its argmax at each answer position is compared
  (teacher-forced, so one early difference does not count every later token twice); plus how
  many free-running greedy answers are identical;
- both top-1s and ppl ratios also without each sentence's first prediction ("after opening"): every
  sentence starts from the same lone first token, so that one prediction would count once per sentence;
- both top-1s over distinct contexts (``*_top1_distinct``): a prediction whose context (the sentence's
  tokens so far) an earlier sentence already had is the same prediction, so it counts once.

With ``--system-from MODEL`` each sentence is scored the way the model is used: as a user message inside
the chat template, after MODEL's system prompt (its ``lhama_generation.json``; e.g. ``lhama-default``), not
after a lone eos; the chat prompts use that system prompt too.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from pathlib import Path

import torch

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.inference.generate import GenerationConfig, decode_step, generate_ids
from lhama.inference.kv import KVState, prefill
from lhama.inference.quant_cache import load_for_inference
from lhama.inference.runtime import use_physical_cores
from lhama.weights.resolve import resolve


def read_sentences(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            rows.extend(csv.DictReader(f, delimiter="\t"))
    return rows


@torch.inference_mode()
def token_stats(model, prefix: list[int], continuation: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(argmax, NLL) of each token of ``continuation`` after ``prefix``, one forward (the prompt path)."""
    ids = [*prefix, *continuation]
    logits = model(torch.tensor([ids])).logits[0, len(prefix) - 1 : -1].float()  # (len(continuation), V)
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(continuation), reduction="none")
    return logits.argmax(-1), nll


CHAT_PROMPT_SYSTEM = "Responda em português do Brasil."  # the chat prompts' system prompt without --system-from


def chat_ids(loaded, row: dict, system: str | None = None) -> list[int]:
    question = f"Explique em uma frase o sentido de \"{row['compound']}\" nesta frase: {row['sentence']}"
    messages = [{"role": "system", "content": system or CHAT_PROMPT_SYSTEM}, {"role": "user", "content": question}]
    return encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, messages))


def sentence_ids(tok, sentence: str, system: str | None) -> tuple[list[int], list[int]]:
    """(prefix, sentence tokens): after a lone first token (bos, else eos), or with ``system`` the chat
    template's text before the user message's content (system turn, then the user turn's header)."""
    if system is None:
        first = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        return [first], tok(sentence, add_special_tokens=False)["input_ids"]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": sentence}]
    text = render_prompt(tok, messages)
    head = text[: text.index(sentence)]
    prefix, ids = encode_prompt(tok, head), encode_prompt(tok, head + sentence)
    if ids[: len(prefix)] != prefix:
        raise ValueError(f"the chat template's tokens before the sentence change with it: {sentence!r}")
    return prefix, ids[len(prefix) :]


def distinct_contexts(sentences: list[list[int]]) -> torch.Tensor:
    """True for each prediction whose context (the sentence's tokens before it) no earlier one had."""
    seen, keep = set(), []
    for s in sentences:
        for i in range(len(s)):
            keep.append(tuple(s[:i]) not in seen)
            seen.add(tuple(s[:i]))
    return torch.tensor(keep)


@torch.inference_mode()
def step_stats(model, prefix: list[int], continuation: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(argmax, NLL) of each token of ``continuation`` after ``prefix``, as decoding computes
    them: ``prefix`` prefilled, then one token at a time through the KV cache (the decode step:
    lhama's lean step and, for int4, the native kernel where it runs)."""
    kv = KVState()
    logits = [prefill(model, prefix, None, kv, len(continuation)).logits[0, -1]]
    for token in continuation[:-1]:
        logits.append(decode_step(model.language_model, kv, token).logits[0, -1])
    stacked = torch.stack(logits).float()  # (len(continuation), V)
    nll = torch.nn.functional.cross_entropy(stacked, torch.tensor(continuation), reduction="none")
    return stacked.argmax(-1), nll


def text_stats(loaded, rows: list[dict], steps: bool = False, system: str | None = None) -> dict:
    """Next-token argmax and NLL over every held-out sentence (after :func:`sentence_ids`' prefix): one
    forward per sentence (the prompt path), or with ``steps`` token by token (the decode path, :func:`step_stats`)."""
    pairs = [sentence_ids(loaded.tokenizer, r["sentence"], system) for r in rows]
    stats = [(step_stats if steps else token_stats)(loaded.model, p, s) for p, s in pairs]
    opening = torch.cat([torch.arange(len(s[0])) == 0 for s in stats])  # each sentence's first prediction
    return {"argmax": torch.cat([s[0] for s in stats]), "nll": torch.cat([s[1] for s in stats]), "opening": opening,
            "distinct": distinct_contexts([s for _, s in pairs])}


def answer_stats(loaded, prompts: list[list[int]], answers: list[list[int]], tokens: int) -> dict:
    """Teacher-forced argmax at fp32's answer positions, decoded step by step (one early
    difference does not count every later token twice), and this model's own greedy answers."""
    forced = [step_stats(loaded.model, p, a)[0] for p, a in zip(prompts, answers)]  # predicts a
    free = [list(generate_ids(loaded.model, p, GenerationConfig(max_new_tokens=tokens))) for p in prompts]
    agree = torch.cat([(f == torch.tensor(a)).float() for f, a in zip(forced, answers)])
    return {"greedy_agreement": round(float(agree.mean()), 4), "answer_tokens": int(agree.numel()),
            "identical_answers": f"{sum(f == a for f, a in zip(free, answers))}/{len(answers)}"}


def compare_text(base: dict, other: dict, steps: dict | None = None) -> dict:
    """Perplexity (prompt path) and its ratio to fp32; with ``steps``, the same on the decode path."""
    result = {
        "perplexity": round(math.exp(float(other["nll"].mean())), 3),
        "perplexity_ratio": round(math.exp(float(other["nll"].mean() - base["nll"].mean())), 4),
        "text_top1_agreement": round(float((other["argmax"] == base["argmax"]).float().mean()), 4),
        "text_tokens": int(other["nll"].numel()),
    }
    if steps is not None:
        result["decode_perplexity_ratio"] = round(math.exp(float(steps["nll"].mean() - base["nll"].mean())), 4)
        result["decode_top1_agreement"] = round(float((steps["argmax"] == base["argmax"]).float().mean()), 4)
    for path, stats in (("text", other), ("decode", steps)):
        if stats is not None and "opening" in stats:
            result.update(_after_opening(path, base, stats))
        if stats is not None and "distinct" in stats:
            same = stats["argmax"][stats["distinct"]] == base["argmax"][stats["distinct"]]
            result[f"{path}_top1_distinct"] = round(float(same.float().mean()), 4)
            result["distinct_tokens"] = int(stats["distinct"].sum())
    return result


def _after_opening(path: str, base: dict, stats: dict) -> dict:
    """Top-1 agreement and ppl ratio without each sentence's first prediction: every sentence starts from the
    same lone first token, so that one prediction counts once per sentence (docs/benchmarks.md, session 9 #27:
    the whole 3-point top-1 gap of k-scales v4 against v3 was that prediction)."""
    later = ~stats["opening"]
    same = (stats["argmax"][later] == base["argmax"][later]).float().mean()
    ratio = math.exp(float(stats["nll"][later].mean() - base["nll"][later].mean()))
    return {f"{path}_top1_after_opening": round(float(same), 4), f"{path}_perplexity_ratio_after_opening": round(ratio, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--quants", nargs="+", default=["int4", "int4:aten"],
                        help="int8, int4 (native decode kernel where it runs), int4:aten (PyTorch's int4 kernel)")
    parser.add_argument("--sentences", nargs="+", type=Path, required=True)
    parser.add_argument("--prompts", type=int, default=12, help="chat prompts (from the first N sentences)")
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--reference", type=Path, default=None,
                        help="file keeping the fp32 reference (answers, per-token NLL and argmax): written by the "
                             "first run, read by later runs with the same model, sentences and prompts")
    parser.add_argument("--system-from", default=None, metavar="MODEL",
                        help="score each sentence as a user message in the chat template after MODEL's system prompt "
                             "(its lhama_generation.json, e.g. lhama-default); the chat prompts use it too")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch (and native kernel) threads; default: physical cores (pass 1 in a scheduler slot)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        use_physical_cores()
    model_dir = resolve(args.model, "lhama-default")
    args.system = system_prompt(args.system_from)
    rows = read_sentences(args.sentences)
    prompts, answers, base = reference(args, model_dir, rows)
    results = {"none": {**compare_text(base, base), "greedy_agreement": 1.0, "identical_answers": "-"}}
    for spec in args.quants:  # "int4" (native decode kernel where it runs) or "int4:aten" (PyTorch's)
        quant, _, kernel = spec.partition(":")  # quant: also an int4 plan, e.g. int4-g64+head
        os.environ["LHAMA_INT4_KERNEL"] = kernel or "vnni"  # read at each product
        loaded = load_for_inference(model_dir, quant, progress=print)
        results[spec] = {**compare_text(base, text_stats(loaded, rows, system=args.system),
                                        text_stats(loaded, rows, steps=True, system=args.system)),
                         **answer_stats(loaded, prompts, answers, args.answer_tokens)}
        del loaded
        print(spec, json.dumps(results[spec]), flush=True)
    _print(args, rows, prompts, results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def system_prompt(model: str | None) -> str | None:
    """``model``'s system prompt (its lhama_generation.json), or None without ``--system-from``."""
    if model is None:
        return None
    settings = json.loads((resolve(model, "lhama-default") / "lhama_generation.json").read_text(encoding="utf-8"))
    return settings["system_prompt"]


def reference(args: argparse.Namespace, model_dir: Path, rows: list[dict]) -> tuple[list, list, dict]:
    """The fp32 model's chat prompts, greedy answers and text stats; from ``args.reference``
    when it was written for the same model, sentences, prompts and answer length."""
    key = {"model": str(model_dir), "sentences": [r["sentence"] for r in rows], "prompts": args.prompts,
           "answer_tokens": args.answer_tokens}
    if args.system is not None:
        key["system"] = args.system
    if args.reference and args.reference.is_file():
        saved = torch.load(args.reference)
        if saved["key"] == key:
            return saved["prompts"], saved["answers"], saved["base"]
    fp32 = load_for_inference(model_dir, "none")
    prompts = [chat_ids(fp32, r, args.system) for r in rows[: args.prompts]]
    answers = [list(generate_ids(fp32.model, p, GenerationConfig(max_new_tokens=args.answer_tokens))) for p in prompts]
    base = text_stats(fp32, rows, system=args.system)
    if args.reference:
        torch.save({"key": key, "prompts": prompts, "answers": answers, "base": base}, args.reference)
    return prompts, answers, base


def _print(args: argparse.Namespace, rows: list, prompts: list, results: dict) -> None:
    print(f"{args.model}: {len(rows)} held-out sentences, {len(prompts)} chat prompts x {args.answer_tokens} greedy tokens")
    print(f"{'quant':<28}{'ppl':>9}{'ppl/fp32':>10}{'decode ppl/fp32':>17}{'text top-1':>12}{'decode top-1':>14}"
          f"{'greedy agree':>14}{'identical':>11}{'decode top-1 after opening':>28}{'decode top-1 distinct':>23}")
    for quant, r in results.items():
        print(f"{quant:<28}{r['perplexity']:>9.3f}{r['perplexity_ratio']:>10.4f}"
              f"{r.get('decode_perplexity_ratio', 1.0):>17.4f}{r['text_top1_agreement']:>12.1%}"
              f"{r.get('decode_top1_agreement', 1.0):>14.1%}{r['greedy_agreement']:>14.1%}{r['identical_answers']:>11}"
              f"{r.get('decode_top1_after_opening', 1.0):>28.1%}{r.get('decode_top1_distinct', 1.0):>23.1%}")


if __name__ == "__main__":
    main()
