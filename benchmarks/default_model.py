"""Does the shipped default model see? Held-out Tux Paint retrieval and captioning for the
default and its ablations, in one run, on the same trials:

1. ``lhama-default``: the shipped model (Gemma-3-270M + open-NSFW ResNet-50 + trained adapter);
2. ``random tower``: the same model with the tower's weights re-drawn at random (seed 0) and
   everything else unchanged (the projector and LoRA were trained on real features);
3. ``LM alone``: the same model with the image left out of the prompt;
4. ``Gemma base, no image``: the untuned base LM, text only.

    python benchmarks/default_model.py --split data/tuxpaint/heldout.txt --out docs/results/default_model.json

Prints a table (5-way retrieval top-1, chance 0.20; caption chrF/BLEU vs pt_BR), then the time
to first token and decode speed of a one-shot ``lhama chat --image`` style request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lhama.data.conversation import encode_prompt, render_prompt, stop_strings
from lhama.recipes.default.splits import read_caption_rows, read_file_list
from lhama.recipes.default.mixture import CATEGORY_PROMPT, tux_category
from lhama.eval.answer import generate_answer
from lhama.eval.cache import PredictionCache
from lhama.eval.caption import evaluate_captions, load_captions
from lhama.eval.metrics import chrf
from lhama.eval.retrieval import evaluate_retrieval, make_trials
from lhama.model.build import LoadedModel, load_model
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.model.towers.resnet import ResNetTower
from lhama.weights.prepare import prepare
from lhama.weights.resolve import resolve


def random_tower(loaded: LoadedModel) -> LoadedModel:
    """Swap the tower for a freshly initialised one of the same shape (seed 0)."""
    torch.manual_seed(0)
    old = loaded.model.vision_tower
    loaded.model.vision_tower = ResNetTower(old.config).to(next(old.parameters()).dtype).eval()
    return loaded


def run_system(name: str, loaded: LoadedModel, items, trials, use_images: bool, work: Path, captions: bool = True) -> dict:
    console = Console(stderr=True)
    console.print(f"[bold]{name}[/]: retrieval ({len(trials)} trials) ...")
    ret = evaluate_retrieval(loaded, trials, PredictionCache(work / f"{name}-ret.jsonl", {}), use_images)
    row = {"system": name, "retrieval_top1": ret.top1, "chrf": float("nan"), "bleu": float("nan"), "n": ret.n}
    if captions:
        console.print(f"[bold]{name}[/]: captions ({len(items)} images) ...")
        cap = evaluate_captions(loaded, items, PredictionCache(work / f"{name}-cap.jsonl", {}), "pt", use_images=use_images)
        row |= {"chrf": cap.chrf, "bleu": cap.bleu, "named": cap.named, "captions": cap.predictions}
    return row


def cached_scores(work: Path, name: str) -> dict[str, dict[str, float]]:
    """item -> candidate caption -> summed log-likelihood, from a system's retrieval cache."""
    rows = [json.loads(line) for line in (work / f"{name}-ret.jsonl").read_text().splitlines()[1:]]
    return {r["item"]: dict(zip(r["candidates"], r["scores"])) for r in rows}


def pmi_top1(work: Path, with_image: str, without_image: str, own: dict[str, str]) -> float:
    """Top-1 when each caption is scored by log P(c | image) - log P(c | no image): how much the
    image moves the likelihood, with the caption's own prior taken out (a diagnostic)."""
    seen, blind = cached_scores(work, with_image), cached_scores(work, without_image)
    hits = 0
    for item, by_caption in seen.items():
        pmi = {c: v - blind[item][c] for c, v in by_caption.items()}
        hits += max(pmi, key=pmi.get) == own[item]
    return hits / len(seen)


def retrieval_hits(work: Path, name: str, own: dict[str, str]) -> dict[str, int]:
    """item -> 1 if the system ranked the item's own caption first."""
    return {item: int(max(s, key=s.get) == own[item]) for item, s in cached_scores(work, name).items()}


def paired_difference(works: list[Path], system: str, baseline: str, own: dict[str, str], draws: int = 10000) -> dict:
    """Top-1 of ``system`` minus ``baseline`` on the same trials (one set per distractor seed),
    with a 95% interval from a paired bootstrap over images (all of an image's trials move
    together; bootstrap seed 0): is the gap more than trial noise?"""
    per_image = []
    for work in works:
        a, b = retrieval_hits(work, system, own), retrieval_hits(work, baseline, own)
        per_image.append(torch.tensor([a[item] - b[item] for item in sorted(a)], dtype=torch.float64))
    diffs = torch.stack(per_image).mean(dim=0)  # (images,): mean over seeds
    generator = torch.Generator().manual_seed(0)
    means = diffs[torch.randint(len(diffs), (draws, len(diffs)), generator=generator)].mean(dim=1)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return {"vs": baseline, "difference": float(diffs.mean()), "ci95": [low, high], "seeds": len(works)}


def chrf_difference(rows: list[dict], system: str, baseline: str, references: dict[str, str], draws: int = 1000) -> dict:
    """Corpus chrF of ``system`` minus ``baseline`` on the same images, with a 95% interval from a
    paired bootstrap over images (both systems' captions of a drawn image move together; seed 0):
    corpus chrF is not a mean of per-image scores, so each draw recomputes both corpora."""
    captions = {row["system"]: row["captions"] for row in rows}
    files = sorted(references)

    def gap(sample: list[str]) -> float:
        refs = [[references[f] for f in sample]]
        return chrf([captions[system][f] for f in sample], refs) - chrf([captions[baseline][f] for f in sample], refs)

    generator = torch.Generator().manual_seed(0)
    gaps = sorted(gap([files[i] for i in torch.randint(len(files), (len(files),), generator=generator)])
                  for _ in range(draws))
    return {"vs": baseline, "difference": gap(files), "ci95": [gaps[int(0.025 * draws)], gaps[int(0.975 * draws) - 1]]}


def seeds_run(model_dir: Path, items, seeds: list[int]) -> dict:
    """Retrieval of the default, the random tower and the LM alone on several distractor draws:
    top-1 per seed and pooled, and the pooled paired-bootstrap gaps."""
    systems = (("lhama-default", True), ("random tower", True), ("LM alone (no image)", False))
    models = {"lhama-default": load_model(model_dir), "random tower": random_tower(load_model(model_dir))}
    models["LM alone (no image)"] = models["lhama-default"]
    top1: dict[str, list[float]] = {name: [] for name, _ in systems}
    with tempfile.TemporaryDirectory() as tmp:
        works = []
        for seed in seeds:
            work = Path(tmp) / f"seed-{seed}"
            work.mkdir()
            trials = make_trials(items, 5, seed)
            for name, use_images in systems:
                top1[name].append(run_system(name, models[name], items, trials, use_images, work, False)["retrieval_top1"])
            works.append(work)
        own = {item.file: item.reference for item in items}
        gaps = [paired_difference(works, "lhama-default", name, own) for name in ("random tower", "LM alone (no image)")]
    return {"seeds": seeds, "top1": top1, "pooled": {k: statistics.mean(v) for k, v in top1.items()}, "gaps": gaps}


def category_accuracy(loaded: LoadedModel, items, categories: dict[str, str], use_images: bool) -> dict:
    """Coarse-category answers to "De que tipo é esta figura?" (asked in training as the turn
    after a Tux Paint caption; here alone): share matching the file's Tux Paint category, the
    share a constant answer of the most frequent category would get, and the mean per-category
    recall (balanced accuracy: a constant answer gets 1/16 however skewed the hold-out is)."""
    answers, hits = {}, {}
    for item in items:
        images = [item.image] if use_images else []
        answers[item.file] = generate_answer(loaded, CATEGORY_PROMPT, images, max_new_tokens=8)
        expected = categories[item.file]
        hits.setdefault(expected, []).append(answers[item.file].rstrip(".").lower() == expected.lower())
    expected = [categories[item.file] for item in items]
    majority = max(expected.count(c) for c in set(expected)) / len(expected)
    return {"accuracy": sum(map(sum, hits.values())) / len(items), "majority": majority,
            "balanced_accuracy": statistics.mean(statistics.mean(h) for h in hits.values()),
            "distinct_answers": len(set(answers.values())), "answers": answers}


def tux_categories(data: str) -> dict[str, str]:
    """file -> Portuguese coarse category, as the default mix names it."""
    return {row["file"]: tux_category(row) or "" for row in read_caption_rows(Path(data))}


def chat_speed(loaded: LoadedModel, image: Path, repeats: int, tokens: int = 32) -> dict:
    """Time to first token (prefill incl. the tower) and decode tokens/s, greedy, 'Descreva a imagem.',
    with the model's own image guidance (as `lhama chat` decodes: two prompts when it is on)."""
    def prompt_ids(text: str) -> list[int]:
        prompt = render_prompt(loaded.tokenizer, [{"role": "user", "content": text}])
        return encode_prompt(loaded.tokenizer, prompt, loaded.expansions())

    ids, reference_ids = prompt_ids("<image>\nDescreva a imagem."), prompt_ids("Descreva a imagem.")
    config = GenerationConfig(max_new_tokens=tokens, stop=stop_strings(loaded.tokenizer),
                              image_guidance=loaded.generation.image_guidance)
    ttft, rates = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        media = {"image": loaded.read("image", image)[None]}
        stream = generate_ids(loaded.model, ids, config, media, reference_ids=reference_ids)
        next(stream)
        first = time.perf_counter()
        rest = sum(1 for _ in stream)
        end = time.perf_counter()
        ttft.append(first - start)
        rates.append(rest / (end - first) if rest else float("nan"))
    return {"prompt_tokens": len(ids), "ttft_s": statistics.median(ttft), "decode_tok_s": statistics.median(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/tuxpaint_ptbr")
    parser.add_argument("--split", default="data/tuxpaint/heldout.txt")
    parser.add_argument("--model", default="lhama-default", help="the default, or a trained model directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--retrieval-only", action="store_true", help="skip captions, speed and Gemma base")
    parser.add_argument("--no-base", action="store_true",
                        help="skip the Gemma base row (it does not depend on the adapter: rerun only when the trials change)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated distractor seeds: retrieval only (default, random tower, LM alone), pooled")
    parser.add_argument("--categories-only", action="store_true",
                        help="only the coarse-category diagnostic (default, random tower, no image)")
    args = parser.parse_args()
    items = load_captions(args.data, "pt_BR", args.limit, read_file_list(Path(args.split)))
    trials = make_trials(items, 5, args.seed)
    model_dir = resolve(args.model, args.model) if "/" in args.model else prepare(args.model)
    if args.categories_only:
        return print_categories(model_dir, items, tux_categories(args.data), args.out)
    if args.seeds:
        return print_seeds(seeds_run(model_dir, items, [int(s) for s in args.seeds.split(",")]), args.out)
    rows, speed, full = [], None, not args.retrieval_only
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        default = load_model(model_dir)  # the LM-alone rows reuse it; only the random tower needs its own
        rows.append(run_system("lhama-default", default, items, trials, True, work, full))
        if full:
            speed = chat_speed(default, Path("examples/coruja.jpg"), args.repeats)
        rows.append(run_system("random tower", random_tower(load_model(model_dir)), items, trials, True, work, full))
        rows.append(run_system("LM alone (no image)", default, items, trials, False, work, full))
        if full and not args.no_base:
            rows.append(run_system("Gemma base, no image", load_model(prepare("gemma-3-270m")), items, trials, False, work))
        own = {t.item.file: t.item.reference for t in trials}
        pmi = {name: pmi_top1(work, name, "LM alone (no image)", own) for name in ("lhama-default", "random tower")}
        gaps = [paired_difference([work], "lhama-default", name, own) for name in ("random tower", "LM alone (no image)")]
        chrf_gaps = [chrf_difference(rows, "lhama-default", name, {i.file: i.reference for i in items})
                     for name in ("random tower", "LM alone (no image)")] if full else []
    table = Table("system", "5-way retrieval top-1", "caption chrF", "BLEU", "images",
                  title=f"held-out Tux Paint ({len(items)} images, {args.split}); chance 0.200")
    for row in rows:
        table.add_row(row["system"], f"{row['retrieval_top1']:.3f}", f"{row['chrf']:.1f}", f"{row['bleu']:.1f}", str(row["n"]))
    Console().print(table)
    Console().print(f"image-minus-no-image (PMI) retrieval top-1: {pmi}")
    for gap in gaps:
        Console().print(f"lhama-default minus {gap['vs']}: {gap['difference']:+.3f} "
                        f"(95% paired bootstrap {gap['ci95'][0]:+.3f} .. {gap['ci95'][1]:+.3f})")
    for gap in chrf_gaps:
        Console().print(f"caption chrF, lhama-default minus {gap['vs']}: {gap['difference']:+.1f} "
                        f"(95% paired bootstrap {gap['ci95'][0]:+.1f} .. {gap['ci95'][1]:+.1f})")
    Console().print(f"lhama chat --image speed: {speed}")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "pmi_top1": pmi, "retrieval_gaps": gaps, "chrf_gaps": chrf_gaps, "speed": speed, "args": vars(args) | {"out": str(args.out)}},
                                       indent=1, ensure_ascii=False) + "\n")


def print_seeds(result: dict, out: Path | None) -> None:
    table = Table("system", *[f"seed {s}" for s in result["seeds"]], "pooled",
                  title="5-way retrieval top-1 over several distractor draws (chance 0.200)")
    for name, values in result["top1"].items():
        table.add_row(name, *[f"{v:.3f}" for v in values], f"{result['pooled'][name]:.3f}")
    Console().print(table)
    for gap in result["gaps"]:
        Console().print(f"lhama-default minus {gap['vs']}: {gap['difference']:+.3f} "
                        f"(95% paired bootstrap over images, {gap['seeds']} seeds: {gap['ci95'][0]:+.3f} .. {gap['ci95'][1]:+.3f})")
    if out:
        out.write_text(json.dumps(result, indent=1) + "\n")


def print_categories(model_dir: Path, items, categories: dict[str, str], out: Path | None) -> None:
    default = load_model(model_dir)
    rows = {"lhama-default": category_accuracy(default, items, categories, True),
            "random tower": category_accuracy(random_tower(load_model(model_dir)), items, categories, True),
            "LM alone (no image)": category_accuracy(default, items, categories, False)}
    table = Table("system", "category accuracy", "majority class", "balanced accuracy", "distinct answers",
                  title=f"coarse Tux Paint category of {len(items)} held-out images (16 classes)")
    for name, row in rows.items():
        table.add_row(name, f"{row['accuracy']:.3f}", f"{row['majority']:.3f}", f"{row['balanced_accuracy']:.3f}",
                      str(row["distinct_answers"]))
    Console().print(table)
    if out:
        out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
