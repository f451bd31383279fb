"""Distillation data and measurements for issue #30 (docs/distill.md).

Steps (each resumable, each prints what it did):

  # 1. prompts + human pt-BR text, split before any training (held-out never trained on)
  python benchmarks/distill.py data --shared ../shared/data
  # 2. the teacher answers the prompts (sequence-level KD), batched greedy decoding
  python benchmarks/distill.py answer --teacher ~/.cache/lhama/models/qwen2.5-coder-1.5b-instruct
  # 3. per model: held-out perplexity (teacher answers / human text), decode tokens/s, peak RSS
  python benchmarks/distill.py measure --model DIR --name "0.5B" --results runs/distill_results.json
  python benchmarks/distill.py table --results runs/distill_results.json

Files written under benchmarks/data/: distill_prompts.jsonl (id, source, split, prompt),
distill_answers.jsonl (the teacher's answers, appended as they come), distill_train.jsonl,
distill_heldout_answers.jsonl, distill_heldout_human.jsonl (LLaVA-style "conversations").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import time
import zlib
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "Você é um assistente prestativo. Responda sempre em português do Brasil, de forma breve e correta."
CAPTION_PROMPT_EVERY = 8  # every 8th Tux Paint caption also becomes a prompt for the teacher
HUMAN_TRAIN = 120  # human texts in the training file (spread evenly over the 530 available)
HELD_OUT_SHARE = 20  # percent of hand-written and caption prompts held out, by a hash of the id


def _held(key: str) -> bool:
    return zlib.crc32(key.encode()) % 100 < HELD_OUT_SHARE


def _chat(record_id: str, user: str, answer: str) -> dict:
    turns = [{"from": "system", "value": SYSTEM}, {"from": "human", "value": user}, {"from": "gpt", "value": answer}]
    return {"id": record_id, "conversations": turns}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.is_file() else []


def build_data(shared: Path) -> None:
    """Prompts for the teacher and human-written records, each with its split."""
    captions = list(csv.DictReader((shared / "tuxpaint_ptbr" / "captions.tsv").open(encoding="utf-8"), delimiter="\t",
                                   quoting=csv.QUOTE_NONE))
    caption_held = {line.strip() for line in (ROOT / "data/tuxpaint/heldout.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")}
    admire = [(row, split) for split in ("train", "dev")
              for row in csv.DictReader((shared / f"admire_pt/a_pt_{split}_targets.tsv").open(encoding="utf-8"), delimiter="\t")]
    prompts = [{"id": f"hand-{i:03d}", "source": "hand-written", "prompt": p, "split": "heldout" if _held(f"hand-{i:03d}") else "train"}
               for i, p in enumerate(line.strip() for line in (DATA / "distill_prompts_ptbr.txt").read_text().splitlines()
                                     if line.strip() and not line.startswith("#"))]
    prompts += [{"id": f"admire-{split}-{i:02d}", "source": "AdMIRe PT", "split": "heldout" if split == "dev" else "train",
                 "prompt": f"O que significa a expressão \"{row['compound']}\" nesta frase? \"{row['sentence']}\""}
                for i, (row, split) in enumerate(admire)]
    prompts += [{"id": f"about-{row['file']}", "source": "Tux Paint caption", "prompt": f"Escreva duas frases sobre isto: {row['pt_BR'].strip()}",
                 "split": "heldout" if row["file"] in caption_held else "train"}
                for row in captions[::CAPTION_PROMPT_EVERY] if row["pt_BR"].strip()]
    human = [(f"caption-{row['file']}", "Escreva uma legenda curta em português para uma figura.", row["pt_BR"].strip(),
              row["file"] in caption_held) for row in captions if row["pt_BR"].strip()]
    human += [(f"admire-sentence-{split}-{i:02d}", f"Escreva uma frase em português com a expressão \"{row['compound']}\".",
               row["sentence"].strip(), split == "dev") for i, (row, split) in enumerate(admire)]
    _write_jsonl(DATA / "distill_prompts.jsonl", prompts)
    _write_jsonl(DATA / "distill_human_train.jsonl", [_chat(i, u, a) for i, u, a, held in human if not held])
    _write_jsonl(DATA / "distill_heldout_human.jsonl", [_chat(i, u, a) for i, u, a, held in human if held])
    held_prompts = sum(p["split"] == "heldout" for p in prompts)
    print(f"{len(prompts)} prompts ({held_prompts} held out); {len(human)} human texts "
          f"({sum(h[3] for h in human)} held out)")


def _threads() -> None:
    """LHAMA_THREADS threads (the shared machine's slot scheduler sets it), else 2."""
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "2")))


def answer(teacher_dir: str, batch: int, max_new_tokens: int, limit: int, mix: tuple[int, int] = (HUMAN_TRAIN, 0),
           spread: bool = False) -> None:
    """The teacher's greedy answers to every prompt not answered yet (appended as they come):
    held-out prompts first, then training prompts in file order (``spread``: taking the sources
    in turn). ``mix`` = (human texts, teacher answers) of distill_train.jsonl (see assemble)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    done = {r["id"] for r in _read_jsonl(DATA / "distill_answers.jsonl")}
    todo = [p for p in _read_jsonl(DATA / "distill_prompts.jsonl") if p["id"] not in done]
    todo = _in_turns(todo) if spread else todo
    todo = sorted(todo, key=lambda p: p["split"] != "heldout")[: max(0, limit - len(done)) if limit else None]
    if not todo:
        return assemble(*mix)
    _threads()
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float32).eval()
    todo.sort(key=lambda p: len(p["prompt"]))  # similar lengths per batch: less padding
    began, produced = time.perf_counter(), 0
    for start in range(0, len(todo), batch):
        part = todo[start : start + batch]
        texts = [tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": p["prompt"]}],
                                               tokenize=False, add_generation_prompt=True) for p in part]
        inputs = tokenizer(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[:, inputs.input_ids.shape[1] :]
        with (DATA / "distill_answers.jsonl").open("a", encoding="utf-8") as handle:
            for p, ids in zip(part, new):
                ended = bool((ids == tokenizer.eos_token_id).any() or (ids == tokenizer.pad_token_id).any())
                text = tokenizer.decode(ids, skip_special_tokens=True).strip()
                handle.write(json.dumps({"id": p["id"], "answer": text, "complete": ended}, ensure_ascii=False) + "\n")
        produced += int((new != tokenizer.pad_token_id).sum())
        print(f"{start + len(part)}/{len(todo)} answered, {produced / (time.perf_counter() - began):.1f} tok/s", flush=True)
    assemble(*mix)


def _in_turns(prompts: list[dict]) -> list[dict]:
    """``prompts`` reordered to take their sources in turn (one of each, then the next of each...)."""
    sources: dict[str, list[dict]] = {}
    for p in prompts:
        sources.setdefault(p["source"], []).append(p)
    rounds = max((len(v) for v in sources.values()), default=0)
    return [group[i] for i in range(rounds) for group in sources.values() if i < len(group)]


def assemble(human_texts: int = HUMAN_TRAIN, train_answers: int = 0) -> None:
    """distill_train.jsonl (the first ``train_answers`` training answers, 0: all, + ``human_texts``
    human texts, spread evenly), distill_train_answers.jsonl (every training answer, no human
    text) and the held-out answer file."""
    prompts = {p["id"]: p for p in _read_jsonl(DATA / "distill_prompts.jsonl")}
    answers = [a for a in _read_jsonl(DATA / "distill_answers.jsonl") if a["answer"]]
    chats = {split: [_chat(a["id"], prompts[a["id"]]["prompt"], a["answer"]) for a in answers if prompts[a["id"]]["split"] == split]
             for split in ("train", "heldout")}
    human = _read_jsonl(DATA / "distill_human_train.jsonl")
    human = human[:: max(1, len(human) // max(human_texts, 1))][:human_texts]  # teacher answers stay the larger part
    mixed = chats["train"][:train_answers] if train_answers else chats["train"]
    _write_jsonl(DATA / "distill_train.jsonl", mixed + human)
    _write_jsonl(DATA / "distill_train_answers.jsonl", chats["train"])
    _write_jsonl(DATA / "distill_heldout_answers.jsonl", chats["heldout"])
    print(f"train: {len(mixed)} teacher answers + {len(human)} human texts ({len(chats['train'])} answers in "
          f"distill_train_answers.jsonl); held out: {len(chats['heldout'])} teacher answers")


def measure(model_dir: str, name: str, results: Path, speed_tokens: int, limits: tuple[int, int] = (-1, -1)) -> None:
    """Held-out perplexity on both held-out files (the first ``limits`` = (answers, human) records of
    each; -1: all, 0: skip that file), top-1 agreement with the teacher's answers, greedy decode
    speed and this process's peak RSS."""
    from lhama.data.collate import CollateConfig, Collator
    from lhama.data.dataset import DatasetConfig, load_samples
    from lhama.model.build import load_model

    _threads()
    tic = time.perf_counter()
    loaded = load_model(model_dir)
    collator = Collator(loaded.tokenizer, {}, None, CollateConfig(max_length=512, system_prompt=""), "")
    row = {"name": name, "model": model_dir, "parameters": sum(p.numel() for p in loaded.model.parameters()),
           "threads": torch.get_num_threads(), "load_s": time.perf_counter() - tic}
    for split, limit in zip(("answers", "human"), limits):
        if limit == 0 or not (DATA / f"distill_heldout_{split}.jsonl").is_file():
            continue
        samples = load_samples(DatasetConfig(path=str(DATA / f"distill_heldout_{split}.jsonl"))).samples
        samples = samples[:limit] if limit > 0 else samples
        tic = time.perf_counter()
        scores = _scores(loaded.model, collator, [collator.encode(s) for s in samples])
        row[f"ppl_{split}"] = float(torch.tensor(scores["loss"]).exp())
        row[f"tokens_{split}"], row[f"texts_{split}"] = scores["tokens"], len(samples)
        row[f"{split}_s"] = time.perf_counter() - tic
        row[f"per_text_{split}"] = [{"id": s.id, **item} for s, item in zip(samples, scores["items"], strict=True)]
        if split == "answers":
            row["top1_agree_answers"] = scores["top1"]
    if speed_tokens:
        row["decode_tok_s"] = _decode_speed(loaded, speed_tokens)
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rows = [r for r in (json.loads(results.read_text()) if results.is_file() else []) if r["name"] != name]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(rows + [row], indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(row, ensure_ascii=False))


def _scores(model, collator, items) -> dict:
    """One forward pass per 4 items: mean next-token loss over the supervised tokens and the share
    of them that are this model's greedy (argmax) choice given the same prefix. On the held-out
    teacher answers (the teacher's own greedy output) the latter is, for a draft model, the
    per-token acceptance rate of greedy speculative decoding against that teacher. ``items``: per
    item, its loss sum (nats), token count and agreement flags ("1"/"0" per supervised token)."""
    from lhama.data.conversation import IGNORE_INDEX

    loss, agree, total, per_item = 0.0, 0, 0, []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(items), 4):
            batch = collator(items[start : start + 4])
            targets = batch.labels[:, 1:]  # (B, T-1)
            positions = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
            logits = model(batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=positions).logits
            kept = targets[:, positions]
            mask = kept != IGNORE_INDEX
            picked = logits[mask].float()  # (N, V), row-major: each item's tokens together
            losses = torch.nn.functional.cross_entropy(picked, kept[mask], reduction="none")
            hits = picked.argmax(-1) == kept[mask]
            for item_loss, item_hits in zip(losses.split(mask.sum(1).tolist()), hits.split(mask.sum(1).tolist())):
                per_item.append({"loss": float(item_loss.sum()), "tokens": len(item_hits),
                                 "agree": "".join("1" if h else "0" for h in item_hits.tolist())})
            loss += float(losses.sum())
            agree += int(hits.sum())
            total += int(mask.sum())
    return {"loss": loss / max(total, 1), "top1": agree / max(total, 1), "tokens": total, "items": per_item}


def speed(models: list[str], names: list[str], results: Path, new_tokens: int) -> None:
    """Greedy decode tokens/s of each model in turn (one process, after a warm-up), merged into
    the results rows as ``speed_tok_s`` with the thread count: the timing run, on an idle machine."""
    from lhama.model.build import load_model

    _threads()
    rows = json.loads(results.read_text()) if results.is_file() else []
    for model_dir, name in zip(models, names, strict=True):
        rate = _decode_speed(load_model(model_dir), new_tokens)
        row = next((r for r in rows if r["name"] == name), None)
        if row is None:
            row = {"name": name}
            rows.append(row)
        row.update(speed_tok_s=rate, speed_threads=torch.get_num_threads(), speed_tokens=new_tokens)
        print(f"{name}: {rate:.2f} tok/s ({torch.get_num_threads()} threads, {new_tokens} tokens)", flush=True)
    results.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


def _decode_speed(loaded, new_tokens: int) -> float:
    """Greedy tokens/s of plain transformers (fp32, batch 1, KV cache), after a warm-up."""
    lm, tokenizer = loaded.model.language_model, loaded.tokenizer
    text = tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM},
                                          {"role": "user", "content": "Explique o que é reciclagem."}],
                                         tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        lm.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        tic = time.perf_counter()
        lm.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return new_tokens / (time.perf_counter() - tic)


def accept(target_dir: str, draft_dir: str, name: str, results: Path, prompts: int) -> None:
    """Draft acceptance rate of ``draft_dir`` for ``target_dir`` (lhama's speculative greedy
    decoding, 3 proposals per step, the whole prompt read, 48 new tokens) on the held-out prompts; merged into the
    results row called ``name``."""
    from lhama.inference.generate import GenerationConfig, eos_token_ids
    from lhama.inference.speculative import Turn, draft_for, speculative_ids
    from lhama.model.build import load_model

    _threads()
    target, draft_model = load_model(target_dir), load_model(draft_dir)
    draft = draft_for(target, draft_model, 3)  # the measure of sessions 2-7: 3 proposals per step,
    draft.reads = 0  # the whole prompt read (before session 9's DRAFT_READS)
    held = [p for p in _read_jsonl(DATA / "distill_prompts.jsonl") if p["split"] == "heldout"][:prompts]
    config, eos = GenerationConfig(max_new_tokens=48), eos_token_ids(target.model, target.tokenizer)
    for p in held:
        text = target.tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": p["prompt"]}],
                                                    tokenize=False, add_generation_prompt=True)
        list(speculative_ids(target.model, draft, Turn(target.tokenizer(text).input_ids, config, eos)))
    rows = json.loads(results.read_text()) if results.is_file() else []
    if not any(r["name"] == name for r in rows):
        rows.append({"name": name})
    row = next(r for r in rows if r["name"] == name)
    row.update(accept_rate=draft.acceptance_rate, accept_proposed=draft.proposed, accept_target=target_dir)
    results.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    print(f"{name}: {draft.accepted}/{draft.proposed} proposals accepted ({draft.acceptance_rate:.3f}) on {len(held)} prompts")


def simulated_acceptance(agree: str, budget: int = 48, tokens: int = 3) -> tuple[int, int]:
    """(accepted, proposed) of greedy speculative decoding (``lhama.inference.speculative``:
    ``tokens`` proposals per step, ``budget`` new tokens) of a draft against the model whose greedy
    answer was scored, from the draft's agreement flags on that answer ("1": its argmax given the
    answer's prefix is the answer's token; the last flag, the template's newline after the end
    token, is not part of the answer). The output is the model's own greedy answer whatever the
    draft proposes, so every prefix the draft sees is a prefix of that answer: a step accepts the
    leading run of agreeing positions (at most ``tokens``) and adds the model's own token."""
    flags = agree[:-1][:budget]  # up to and including the end token
    produced, accepted, proposed = 1, 0, 0  # the first token comes from the prompt's forward
    while produced < len(flags):
        count = min(tokens, budget - produced - 1)
        run = len(flags[produced : produced + count]) - len(flags[produced : produced + count].lstrip("1"))
        proposed, accepted, produced = proposed + count, accepted + run, produced + run + 1
    return accepted, proposed


def _bootstrap(per: dict[str, dict[str, tuple[float, int]]], statistic, draws: int = 10000) -> list[float]:
    """``statistic`` (a function of {name: mean loss}) over ``draws`` resamples of the held-out
    texts (the same resample for every model: a paired bootstrap), seed 0. ``per``: per model, per
    text id, (loss sum, tokens)."""
    import random

    ids = list(next(iter(per.values())))  # file order
    rng, values = random.Random(0), []
    for _ in range(draws):
        pick = [rng.choice(ids) for _ in ids]
        values.append(statistic({n: sum(p[i][0] for i in pick) / sum(p[i][1] for i in pick) for n, p in per.items()}))
    return sorted(values)


def _per_text(row: dict, split: str, keep: set[str] | None) -> dict[str, tuple[float, int]]:
    return {i["id"]: (i["loss"], i["tokens"]) for i in row[f"per_text_{split}"] if keep is None or i["id"] in keep}


def _ppl(per: dict[str, tuple[float, int]]) -> float:
    import math

    return math.exp(sum(v[0] for v in per.values()) / sum(v[1] for v in per.values()))


def unseen_human_ids() -> set[str]:
    """Held-out human texts whose text (case and spaces folded) occurs in no turn of any training
    file (distill_train.jsonl, distill_train_answers.jsonl, distill_human_train.jsonl): many short
    Tux Paint captions ("uma flor.") name several pictures, some of them in the training part."""
    fold = lambda text: " ".join(text.lower().split())  # noqa: E731
    seen = "\n".join(fold(turn["value"]) for name in ("distill_train", "distill_train_answers", "distill_human_train")
                      for row in _read_jsonl(DATA / f"{name}.jsonl") for turn in row["conversations"])
    held = _read_jsonl(DATA / "distill_heldout_human.jsonl")
    return {row["id"] for row in held if fold(row["conversations"][-1]["value"]) not in seen}


def compare(results: Path, teacher: str, pairs: list[tuple[str, str]], split: str = "answers",
            keep: set[str] | None = None) -> dict:
    """Per pair (before, after distillation), on the held-out ``split`` ("answers" or "human"; only
    the texts in ``keep`` when given): perplexities, a paired bootstrap 95 % interval of the
    perplexity ratio after/before and the share of resamples where after is lower; the share of
    the teacher gap recovered (loss in nats); on the answers, each row's simulated draft acceptance."""
    import math

    rows = {r["name"]: r for r in json.loads(results.read_text())}
    out: dict = {"split": split, "texts": None, "acceptance": {}, "pairs": []}
    for name, row in rows.items() if split == "answers" else ():
        counts = [simulated_acceptance(i["agree"]) for i in row.get("per_text_answers", [])]
        accepted, proposed = sum(c[0] for c in counts), sum(c[1] for c in counts)
        out["acceptance"][name] = {"accepted": accepted, "proposed": proposed, "rate": accepted / max(proposed, 1),
                                   "prompts": len(counts)}
    for before, after in pairs:
        per = {n: _per_text(rows[n], split, keep) for n in (teacher, before, after)}
        out["texts"], out["tokens"] = len(per[teacher]), sum(v[1] for v in per[teacher].values())
        ratio = _bootstrap({n: per[n] for n in (before, after)}, lambda m: math.exp(m[after] - m[before]))
        gap = _bootstrap(per, lambda m: (m[before] - m[after]) / (m[before] - m[teacher]))
        ppl = [_ppl(per[n]) for n in (teacher, before, after)]
        out["pairs"].append({"before": before, "after": after, "ppl_before": ppl[1], "ppl_after": ppl[2], "ppl_teacher": ppl[0],
                             "ppl_gap_recovered": (ppl[1] - ppl[2]) / (ppl[1] - ppl[0]),
                             "loss_gap_recovered": math.log(ppl[1] / ppl[2]) / math.log(ppl[1] / ppl[0]),
                             "ratio_ci95": [ratio[len(ratio) // 40], ratio[-len(ratio) // 40 - 1]],
                             "share_after_lower": sum(r < 1 for r in ratio) / len(ratio),
                             "loss_gap_recovered_ci95": [gap[len(gap) // 40], gap[-len(gap) // 40 - 1]]})
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return out


def _human_subset(texts: str) -> set[str] | None:
    """The held-out human texts ``compare --texts`` names (None: all)."""
    if texts == "all":
        return None
    if texts == "unseen":
        return unseen_human_ids()
    prefix = {"captions": "caption-", "admire": "admire-sentence-"}[texts]
    return {row["id"] for row in _read_jsonl(DATA / "distill_heldout_human.jsonl") if row["id"].startswith(prefix)}


def paired_right(before: Path, after: Path) -> dict:
    """Two benchmarks/everyday.py result files on the same questions: right answers of each, the
    questions only one of them gets right, and the exact two-sided sign-test p of that split."""
    from math import comb

    right = [{i["id"]: i["right"] for i in json.loads(path.read_text())["items"]} for path in (before, after)]
    if right[0].keys() != right[1].keys():
        raise SystemExit(f"{before} and {after} answer different questions")
    only = [sum(r[q] and not o[q] for q in r) for r, o in (right, right[::-1])]
    n, low = sum(only), min(only)
    p_value = min(1.0, 2 * sum(comb(n, k) for k in range(low + 1)) / 2**n) if n else 1.0
    found = {"before": str(before), "after": str(after), "right_before": sum(right[0].values()),
             "right_after": sum(right[1].values()), "questions": len(right[0]), "only_before": only[0],
             "only_after": only[1], "sign_test_p": p_value}
    print(json.dumps(found))
    return found


def table(results: Path) -> None:
    rows = json.loads(results.read_text())
    print("| model | parameters | held-out ppl, teacher answers | held-out ppl, human pt-BR | top-1 = teacher's token "
          "| draft acceptance | decode tok/s, 1 thread, busy | decode tok/s, timing run | peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        keys = ("ppl_answers", "ppl_human", "top1_agree_answers", "accept_rate")
        cells = [f"{r[k]:.3f}" if k in r else "not measured" for k in keys]
        timed = f"{r['speed_tok_s']:.2f} ({r['speed_threads']} threads)" if "speed_tok_s" in r else "not measured"
        print(f"| {r['name']} | {r.get('parameters', 0) / 1e6:.0f} M | {' | '.join(cells)} | {r.get('decode_tok_s', 0):.2f} "
              f"| {timed} | {r.get('peak_rss_gb', 0):.2f} |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("data").add_argument("--shared", type=Path, required=True, help="the ../shared/data folder")
    ans = sub.add_parser("answer")
    ans.add_argument("--teacher", required=True)
    ans.add_argument("--batch", type=int, default=16)
    ans.add_argument("--max-new-tokens", type=int, default=64)
    ans.add_argument("--limit", type=int, default=0, help="answer at most this many prompts now (0: all)")
    ans.add_argument("--spread", action="store_true", help="take the training prompts' sources in turn")
    asm = sub.add_parser("assemble")
    for command in (ans, asm):
        command.add_argument("--human", type=int, default=HUMAN_TRAIN, help="human texts in distill_train.jsonl")
        command.add_argument("--train-answers", type=int, default=0, help="teacher answers in distill_train.jsonl (0: all)")
    mea = sub.add_parser("measure")
    mea.add_argument("--model", required=True)
    mea.add_argument("--name", required=True)
    mea.add_argument("--results", type=Path, required=True)
    mea.add_argument("--speed-tokens", type=int, default=64, help="greedy tokens timed (0: no decode timing)")
    mea.add_argument("--answers-limit", type=int, default=-1, help="score the first N held-out teacher answers (-1: all)")
    mea.add_argument("--human-limit", type=int, default=-1, help="score the first N held-out human texts (-1: all, 0: none)")
    acc = sub.add_parser("accept")
    acc.add_argument("--target", required=True)
    acc.add_argument("--draft", required=True)
    acc.add_argument("--name", required=True, help="the results row of the draft")
    acc.add_argument("--results", type=Path, required=True)
    acc.add_argument("--prompts", type=int, default=12)
    spe = sub.add_parser("speed")
    spe.add_argument("--model", action="append", required=True, help="a model directory (repeat)")
    spe.add_argument("--name", action="append", required=True, help="its results row (repeat, same order)")
    spe.add_argument("--results", type=Path, required=True)
    spe.add_argument("--tokens", type=int, default=64)
    cmp = sub.add_parser("compare")
    cmp.add_argument("--results", type=Path, required=True)
    cmp.add_argument("--teacher", required=True, help="the teacher's results row")
    cmp.add_argument("--pair", action="append", required=True, help="BEFORE::AFTER results rows (repeat)")
    cmp.add_argument("--out", type=Path, default=None, help="write the comparison as JSON")
    cmp.add_argument("--split", choices=("answers", "human"), default="answers", help="which held-out file's scores")
    cmp.add_argument("--texts", choices=("all", "unseen", "captions", "admire"), default="all",
                     help="human split only: all, the texts seen in no training file (unseen_human_ids), or one source")
    sub.add_parser("table").add_argument("--results", type=Path, required=True)
    rig = sub.add_parser("right", help="paired everyday-question results: before vs after distillation")
    rig.add_argument("before", type=Path)
    rig.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.step == "data":
        build_data(args.shared)
    elif args.step == "answer":
        answer(args.teacher, args.batch, args.max_new_tokens, args.limit, (args.human, args.train_answers), args.spread)
    elif args.step == "assemble":
        assemble(args.human, args.train_answers)
    elif args.step == "measure":
        measure(args.model, args.name, args.results, args.speed_tokens, (args.answers_limit, args.human_limit))
    elif args.step == "speed":
        speed(args.model, args.name, args.results, args.tokens)
    elif args.step == "accept":
        accept(args.target, args.draft, args.name, args.results, args.prompts)
    elif args.step == "compare":
        found = compare(args.results, args.teacher, [tuple(p.split("::", 1)) for p in args.pair], args.split,
                        _human_subset(args.texts))
        if args.out:
            args.out.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    elif args.step == "right":
        paired_right(args.before, args.after)
    else:
        table(args.results)


if __name__ == "__main__":
    main(sys.argv[1:])
