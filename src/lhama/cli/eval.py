"""``lhama eval``: AdMIRe ranking, idiom classification, VQA and captioning evaluations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lhama.cli.common import DEFAULT_MODEL, load_with_progress
from lhama.recipes.default.splits import read_file_list
from lhama.errors import ConfigError
from lhama.eval.admire import load_sentences
from lhama.eval.cache import cache_meta, default_cache_path, open_cache
from lhama.eval.caption import evaluate_captions, load_captions
from lhama.eval.idiom import IdiomConfig, evaluate_idiom
from lhama.eval.report import write_report
from lhama.eval.runner import AdmireConfig, evaluate_admire, write_metrics, write_submission
from lhama.eval.retrieval import evaluate_retrieval, make_trials
from lhama.eval.vqa import evaluate_vqa, load_vqa
from lhama.model.build import LoadedModel

app = typer.Typer(help="Evaluate models: AdMIRe (SemEval-2025 Task 1), idioms, VQA, captioning, image-caption retrieval.", no_args_is_help=True)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="A prepared model name (`lhama models list`) or a model directory.")]
LangOpt = Annotated[str, typer.Option(help="Language of the prompts and data columns: en or pt.")]
LimitOpt = Annotated[Optional[int], typer.Option(help="Only the first N items (a quick look; not for reported numbers).")]
CacheOpt = Annotated[Optional[Path], typer.Option(help="Prediction cache (JSONL); a rerun resumes from it. Default: under $LHAMA_HOME/eval-cache.")]


@app.command()
def admire(
    data: Annotated[Path, typer.Option(help="AdMIRe TSV (e.g. ../shared/data/admire_en/dev/subtask_a_dev.tsv); images in <its folder>/<compound>/.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to evaluate: a prepared name or a directory. Leave out to run the baselines only.")] = None,
    lang: LangOpt = "en",
    text_only: Annotated[bool, typer.Option("--text-only", help="The model reads the image captions instead of the images (the task's text-only track).")] = False,
    subtask: Annotated[str, typer.Option(help="a: rank 5 images for a sentence; b: pick the image that completes a sequence.")] = "a",
    baselines: Annotated[str, typer.Option(help="Comma-separated baselines run on the same items: random, minilm; '' for none.")] = "random,minilm",
    output: Annotated[Optional[Path], typer.Option(help="Write the official submission TSV (compound, expected_order) of the model (or first baseline).")] = None,
    metrics: Annotated[Optional[Path], typer.Option(help="Write metrics as JSON: top1, dcg, spearman, each with all/idiomatic/literal.")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report with thumbnails.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random baseline.")] = 0,
    caption_words: Annotated[int, typer.Option(help="Cut captions to this many words in the model's prompt.")] = 60,
    limit: LimitOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Rank AdMIRe images for a compound's sense; print top-1 accuracy and DCG per system.

    Example:

      lhama eval admire --data ../shared/data/admire_en/dev/subtask_a_dev.tsv --model gemma-3-270m --text-only --report admire.html --metrics admire.json
    """
    if subtask not in ("a", "b") or lang not in ("en", "pt"):
        raise ConfigError("use --subtask a|b and --lang en|pt")
    cfg = AdmireConfig(data=data, model=model, lang=lang, text_only=text_only, subtask=subtask,
                       baselines=tuple(b.strip() for b in baselines.split(",") if b.strip()), seed=seed,
                       caption_words=caption_words, limit=limit, cache=cache)
    with _progress() as bar:
        tasks: dict[str, int] = {}

        def advance(system: str, done: int, total: int) -> None:
            if system not in tasks:
                tasks[system] = bar.add_task(system, total=total)
            bar.update(tasks[system], completed=done)

        results = evaluate_admire(cfg, advance)
    _print_admire(results)
    for path, write in ((output, write_submission), (metrics, write_metrics), (report, write_report)):
        if path is not None:
            Console(stderr=True).print(f"[dim]wrote {write(results, path)}[/]")


@app.command()
def idiom(
    data: Annotated[Path, typer.Option(help="TSV with compound, sentence, sentence_type (e.g. ../shared/data/admire_pt/a_pt_dev_targets.tsv).")],
    model: ModelOpt = DEFAULT_MODEL,
    lang: LangOpt = "pt",
    train: Annotated[Optional[Path], typer.Option(help="Train TSV: few-shot examples and the majority baseline.")] = None,
    shots: Annotated[int, typer.Option(help="Few-shot examples taken from --train (balanced idiomatic/literal).")] = 4,
    cache: CacheOpt = None,
) -> None:
    """Is the compound idiomatic or literal in its sentence? Accuracy and macro-F1, zero- and few-shot.

    Example:

      lhama eval idiom --data ../shared/data/admire_pt/a_pt_dev_targets.tsv --train ../shared/data/admire_pt/a_pt_train_targets.tsv
    """
    items = load_sentences(data)
    train_items = load_sentences(train) if train else []
    loaded = _load(model)
    with _progress() as bar:
        task = bar.add_task("classifying", total=len(items) * (2 if train_items and shots else 1))
        meta = cache_meta("idiom", data, model, lang=lang, train=str(train), shots=shots)
        cfg = IdiomConfig(lang, shots, cache=cache or default_cache_path(meta))
        results = evaluate_idiom(loaded, items, train_items, cfg, lambda n: bar.advance(task, n))
    table = Table("System", "Accuracy", "Macro-F1", title=f"Idiomatic vs. literal: {data.name} ({len(items)} items)")
    for r in results:
        table.add_row(r.system, f"{r.accuracy:.3f}", f"{r.macro_f1:.3f}")
    Console().print(table)


@app.command()
def vqa(
    data: Annotated[str, typer.Option(help="'easy-vqa' (its test split, from the easy-vqa package) or a LLaVA-style JSON with answers.")] = "easy-vqa",
    model: ModelOpt = DEFAULT_MODEL,
    images: Annotated[Optional[Path], typer.Option(help="Image folder for a JSON file (default: the JSON's folder).")] = None,
    lang: LangOpt = "en",
    limit: LimitOpt = None,
    cache: CacheOpt = None,
    image_guidance: GuidanceOpt = None,
) -> None:
    """Visual question answering: normalised exact-match accuracy (VQAv2 style).

    Example:

      lhama eval vqa --data easy-vqa --model ./my-llava --limit 200
    """
    items = load_vqa(data, images, limit)
    loaded = _load(model, image_guidance)
    store = open_cache(cache_meta("vqa", data, model, lang=lang, image_guidance=loaded.generation.image_guidance), cache)
    with _progress() as bar:
        task = bar.add_task("answering", total=len(items))
        result = evaluate_vqa(loaded, items, store, lang, lambda n: bar.advance(task, n))
    Console().print(f"VQA accuracy: [bold]{result.accuracy:.3f}[/] on {result.n} questions ({data})")


SplitOpt = Annotated[Optional[Path], typer.Option("--split", help="Only the images this file lists (one file name per line, # comments), e.g. data/tuxpaint/heldout.txt.")]
NoImageOpt = Annotated[bool, typer.Option("--no-image", help="Leave the image out of the prompt: what the language model guesses alone (a baseline).")]
GuidanceOpt = Annotated[Optional[float], typer.Option(help="Image guidance of the answers (see `lhama chat --help`); default: the model's own (1.0 for lhama-default). 0 = plain greedy.")]


@app.command()
def caption(
    data: Annotated[Path, typer.Option(help="Folder with captions.tsv and images/ (e.g. ../shared/data/tuxpaint_ptbr).")],
    model: ModelOpt = DEFAULT_MODEL,
    column: Annotated[str, typer.Option(help="Reference column of captions.tsv.")] = "pt_BR",
    lang: LangOpt = "pt",
    split: SplitOpt = None,
    no_image: NoImageOpt = False,
    limit: LimitOpt = None,
    cache: CacheOpt = None,
    image_guidance: GuidanceOpt = None,
) -> None:
    """Caption images; chrF and BLEU (sacrebleu) against human references, and the share of
    captions that share a content word with their reference (chrF also rewards a caption's form).

    Example (the default model's held-out Tux Paint images):

      lhama eval caption --data ../shared/data/tuxpaint_ptbr --split data/tuxpaint/heldout.txt
    """
    items = load_captions(data, column, limit, read_file_list(split) if split else None)
    loaded = _load(model, image_guidance)
    store = open_cache(cache_meta("caption", data, model, column=column, lang=lang, split=str(split), image=not no_image,
                                  image_guidance=loaded.generation.image_guidance), cache)
    with _progress() as bar:
        task = bar.add_task("captioning", total=len(items))
        result = evaluate_captions(loaded, items, store, lang, lambda n: bar.advance(task, n), use_images=not no_image)
    Console().print(f"chrF [bold]{result.chrf:.1f}[/]  BLEU [bold]{result.bleu:.1f}[/]  "
                    f"content-word match [bold]{result.named:.3f}[/] on {result.n} images ({column})")


@app.command()
def retrieval(
    data: Annotated[Path, typer.Option(help="Folder with captions.tsv and images/ (e.g. ../shared/data/tuxpaint_ptbr).")],
    model: ModelOpt = DEFAULT_MODEL,
    column: Annotated[str, typer.Option(help="Caption column of captions.tsv.")] = "pt_BR",
    choices: Annotated[int, typer.Option(help="Captions per image: its own + choices-1 others (chance = 1/choices).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed that draws the other captions (fixed: every model sees the same trials).")] = 0,
    split: SplitOpt = None,
    no_image: NoImageOpt = False,
    limit: LimitOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Does the model see? For each image, rank its own caption against others by the model's
    log-likelihood of each caption as the answer to "Descreva a imagem brevemente."; print top-1.

    Example (5-way on the default model's held-out Tux Paint images; chance 0.20):

      lhama eval retrieval --data ../shared/data/tuxpaint_ptbr --split data/tuxpaint/heldout.txt
    """
    items = load_captions(data, column, limit, read_file_list(split) if split else None)
    trials = make_trials(items, choices, seed)
    loaded = _load(model)
    store = open_cache(cache_meta("retrieval", data, model, column=column, choices=choices, seed=seed, split=str(split),
                                  image=not no_image), cache)
    with _progress() as bar:
        task = bar.add_task("scoring", total=len(trials))
        result = evaluate_retrieval(loaded, trials, store, not no_image, lambda n: bar.advance(task, n))
    Console().print(f"{result.choices}-way retrieval top-1 [bold]{result.top1:.3f}[/] on {result.n} images "
                    f"(chance {1 / result.choices:.3f})")


def _load(spec: str, image_guidance: float | None = None) -> LoadedModel:
    """The model, decoding with ``image_guidance`` instead of its own when one is given."""
    if image_guidance is not None and image_guidance < 0:
        raise ConfigError(f"--image-guidance must be >= 0, got {image_guidance}")
    loaded = load_with_progress(spec, Console(stderr=True))
    if image_guidance is not None:
        loaded.generation = replace(loaded.generation, image_guidance=image_guidance)
    return loaded


@contextmanager
def _progress() -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        yield bar


def _print_admire(results) -> None:
    table = Table("System", "Top-1", "DCG", "Top-1 idiom.", "Top-1 literal", "DCG idiom.", "DCG literal", "Spearman",
                  title=f"AdMIRe {results.config.subtask.upper()} ({results.config.lang}): {Path(results.config.data).name}, {len(results.items)} items")
    for s in results.systems:
        m = s.metrics
        if "top1" in m:
            cells = [m["top1"]["all"], m["dcg"]["all"], m["top1"]["idiomatic"], m["top1"]["literal"],
                     m["dcg"]["idiomatic"], m["dcg"]["literal"], m["spearman"]["all"]]
        else:
            cells = [m["item_accuracy"]["all"], None, m["item_accuracy"]["idiomatic"], m["item_accuracy"]["literal"], None, None, None]
        table.add_row(s.name, *("–" if c is None else f"{c:.3f}" for c in cells))
    Console().print(table)
