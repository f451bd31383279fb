"""``lhama eval``: AdMIRe ranking, idiom classification, VQA and captioning evaluations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lhama.cli.common import DEFAULT_MODEL, load_with_progress
from lhama.cli.options import command
from lhama.errors import ConfigError

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.eval.runner import AdmireConfig
    from lhama.model.build import LoadedModel

app = typer.Typer(help="Evaluate models: AdMIRe (SemEval-2025 Task 1), idioms, VQA, captioning, image-caption retrieval.", no_args_is_help=True)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="A prepared model name (`lhama models list`) or a model directory.")]
LangOpt = Annotated[str, typer.Option(help="Language of the prompts and data columns: en or pt.")]
LimitOpt = Annotated[Optional[int], typer.Option(help="Only the first N items (a quick look; not for reported numbers).")]
CacheOpt = Annotated[Optional[Path], typer.Option(help="Prediction cache (JSONL); a rerun resumes from it. Default: under $LHAMA_HOME/eval-cache.")]
SplitOpt = Annotated[Optional[Path], typer.Option("--split", help="Only the images this file lists (one file name per line, # comments), e.g. data/tuxpaint/heldout.txt.")]
NoImageOpt = Annotated[bool, typer.Option("--no-image", help="Leave the image out of the prompt: what the language model guesses alone (a baseline).")]
GuidanceOpt = Annotated[Optional[float], typer.Option(help="Image guidance of the answers (see `lhama chat --help`); default: the model's own (its lhama_generation.json; 0 unless it says otherwise). 0 = plain greedy.")]
CaptionsOpt = Annotated[Path, typer.Option(help="Folder with captions.tsv and images/ (e.g. ../shared/data/tuxpaint_ptbr).")]


@dataclass(frozen=True)
class AdmireOutputs:
    PANEL: ClassVar[str] = "Outputs"
    output: Annotated[Optional[Path], typer.Option(help="Write the official submission TSV (compound, expected_order) of the model (or first baseline).")] = None
    metrics: Annotated[Optional[Path], typer.Option(help="Write metrics as JSON: top1, dcg, spearman, each with all/idiomatic/literal.")] = None
    report: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report with thumbnails.")] = None


@dataclass(frozen=True)
class AdmireOptions:
    data: Annotated[Path, typer.Option(help="AdMIRe TSV (e.g. ../shared/data/admire_en/dev/subtask_a_dev.tsv); images in <its folder>/<compound>/.")]
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model to evaluate: a prepared name or a directory. Leave out to run the baselines only.")] = None
    lang: LangOpt = "en"
    text_only: Annotated[bool, typer.Option("--text-only", help="The model reads the image captions instead of the images (the task's text-only track).")] = False
    subtask: Annotated[str, typer.Option(help="a: rank 5 images for a sentence; b: pick the image that completes a sequence.")] = "a"
    baselines: Annotated[str, typer.Option(help="Comma-separated baselines run on the same items: random, minilm; '' for none.")] = "random,minilm"
    outputs: AdmireOutputs = field(default_factory=AdmireOutputs)
    seed: Annotated[int, typer.Option(help="Seed of the random baseline.")] = 0
    caption_words: Annotated[int, typer.Option(help="Cut captions to this many words in the model's prompt.")] = 60
    limit: LimitOpt = None
    cache: CacheOpt = None

    def __post_init__(self) -> None:
        if self.subtask not in ("a", "b") or self.lang not in ("en", "pt"):
            raise ValueError("use --subtask a|b and --lang en|pt")

    def config(self) -> AdmireConfig:
        from lhama.eval.runner import AdmireConfig

        return AdmireConfig(data=self.data, model=self.model, lang=self.lang, text_only=self.text_only, subtask=self.subtask,
                            baselines=tuple(b.strip() for b in self.baselines.split(",") if b.strip()), seed=self.seed,
                            caption_words=self.caption_words, limit=self.limit, cache=self.cache)


@app.command()
@command(AdmireOptions)
def admire(options: AdmireOptions) -> None:
    """Rank AdMIRe images for a compound's sense; print top-1 accuracy and DCG per system.

    Example:

      lhama eval admire --data ../shared/data/admire_en/dev/subtask_a_dev.tsv --model gemma-3-270m --text-only --report admire.html --metrics admire.json
    """
    from lhama.eval.report import write_report
    from lhama.eval.runner import evaluate_admire, write_metrics, write_submission

    with _progress() as bar:
        tasks: dict[str, int] = {}

        def advance(system: str, done: int, total: int) -> None:
            if system not in tasks:
                tasks[system] = bar.add_task(system, total=total)
            bar.update(tasks[system], completed=done)

        results = evaluate_admire(options.config(), advance)
    _print_admire(results)
    outputs = options.outputs
    for path, write in ((outputs.output, write_submission), (outputs.metrics, write_metrics), (outputs.report, write_report)):
        if path is not None:
            Console(stderr=True).print(f"[dim]wrote {write(results, path)}[/]")


@dataclass(frozen=True)
class IdiomOptions:
    data: Annotated[Path, typer.Option(help="TSV with compound, sentence, sentence_type (e.g. ../shared/data/admire_pt/a_pt_dev_targets.tsv).")]
    model: ModelOpt = DEFAULT_MODEL
    lang: LangOpt = "pt"
    train: Annotated[Optional[Path], typer.Option(help="Train TSV: few-shot examples and the majority baseline.")] = None
    shots: Annotated[int, typer.Option(help="Few-shot examples taken from --train (balanced idiomatic/literal).")] = 4
    cache: CacheOpt = None


@app.command()
@command(IdiomOptions)
def idiom(options: IdiomOptions) -> None:
    """Is the compound idiomatic or literal in its sentence? Accuracy and macro-F1, zero- and few-shot.

    Example:

      lhama eval idiom --data ../shared/data/admire_pt/a_pt_dev_targets.tsv --train ../shared/data/admire_pt/a_pt_train_targets.tsv
    """
    from lhama.eval.admire import load_sentences
    from lhama.eval.cache import cache_meta, default_cache_path
    from lhama.eval.idiom import IdiomConfig, evaluate_idiom

    items = load_sentences(options.data)
    train_items = load_sentences(options.train) if options.train else []
    loaded = _load(options.model)
    meta = cache_meta("idiom", options.data, options.model, lang=options.lang, train=str(options.train), shots=options.shots)
    cfg = IdiomConfig(options.lang, options.shots, cache=options.cache or default_cache_path(meta))
    with _progress() as bar:
        task = bar.add_task("classifying", total=len(items) * (2 if train_items and options.shots else 1))
        results = evaluate_idiom(loaded, items, train_items, cfg, lambda n: bar.advance(task, n))
    table = Table("System", "Accuracy", "Macro-F1", title=f"Idiomatic vs. literal: {options.data.name} ({len(items)} items)")
    for r in results:
        table.add_row(r.system, f"{r.accuracy:.3f}", f"{r.macro_f1:.3f}")
    Console().print(table)


@dataclass(frozen=True)
class VqaOptions:
    data: Annotated[str, typer.Option(help="'easy-vqa' (its test split, from the easy-vqa package) or a LLaVA-style JSON with answers.")] = "easy-vqa"
    model: ModelOpt = DEFAULT_MODEL
    images: Annotated[Optional[Path], typer.Option(help="Image folder for a JSON file (default: the JSON's folder).")] = None
    lang: LangOpt = "en"
    limit: LimitOpt = None
    cache: CacheOpt = None
    image_guidance: GuidanceOpt = None


@app.command()
@command(VqaOptions)
def vqa(options: VqaOptions) -> None:
    """Visual question answering: normalised exact-match accuracy (VQAv2 style).

    Example:

      lhama eval vqa --data easy-vqa --model ./my-llava --limit 200
    """
    from lhama.eval.cache import cache_meta, open_cache
    from lhama.eval.vqa import evaluate_vqa, load_vqa

    items = load_vqa(options.data, options.images, options.limit)
    loaded = _load(options.model, options.image_guidance)
    meta = cache_meta("vqa", options.data, options.model, lang=options.lang, image_guidance=loaded.generation.image_guidance)
    store = open_cache(meta, options.cache)
    with _progress() as bar:
        task = bar.add_task("answering", total=len(items))
        result = evaluate_vqa(loaded, items, store, options.lang, lambda n: bar.advance(task, n))
    Console().print(f"VQA accuracy: [bold]{result.accuracy:.3f}[/] on {result.n} questions ({options.data})")


@dataclass(frozen=True)
class CaptionOptions:
    data: CaptionsOpt
    model: ModelOpt = DEFAULT_MODEL
    column: Annotated[str, typer.Option(help="Reference column of captions.tsv.")] = "pt_BR"
    lang: LangOpt = "pt"
    split: SplitOpt = None
    no_image: NoImageOpt = False
    limit: LimitOpt = None
    cache: CacheOpt = None
    image_guidance: GuidanceOpt = None


@app.command()
@command(CaptionOptions)
def caption(options: CaptionOptions) -> None:
    """Caption images; chrF and BLEU (sacrebleu) against human references, and the share of
    captions that share a content word with their reference (chrF also rewards a caption's form).

    Example (the default model's held-out Tux Paint images):

      lhama eval caption --data ../shared/data/tuxpaint_ptbr --split data/tuxpaint/heldout.txt
    """
    from lhama.eval.cache import cache_meta, open_cache
    from lhama.eval.caption import evaluate_captions, load_captions
    from lhama.recipes.default.splits import read_file_list

    o = options
    items = load_captions(o.data, o.column, o.limit, read_file_list(o.split) if o.split else None)
    loaded = _load(o.model, o.image_guidance)
    store = open_cache(cache_meta("caption", o.data, o.model, column=o.column, lang=o.lang, split=str(o.split), image=not o.no_image,
                                  image_guidance=loaded.generation.image_guidance), o.cache)
    with _progress() as bar:
        task = bar.add_task("captioning", total=len(items))
        result = evaluate_captions(loaded, items, store, o.lang, lambda n: bar.advance(task, n), use_images=not o.no_image)
    Console().print(f"chrF [bold]{result.chrf:.1f}[/]  BLEU [bold]{result.bleu:.1f}[/]  "
                    f"content-word match [bold]{result.named:.3f}[/] on {result.n} images ({o.column})")


@dataclass(frozen=True)
class RetrievalOptions:
    data: CaptionsOpt
    model: ModelOpt = DEFAULT_MODEL
    column: Annotated[str, typer.Option(help="Caption column of captions.tsv.")] = "pt_BR"
    choices: Annotated[int, typer.Option(help="Captions per image: its own + choices-1 others (chance = 1/choices).")] = 5
    seed: Annotated[int, typer.Option(help="Seed that draws the other captions (fixed: every model sees the same trials).")] = 0
    split: SplitOpt = None
    no_image: NoImageOpt = False
    limit: LimitOpt = None
    cache: CacheOpt = None


@app.command()
@command(RetrievalOptions)
def retrieval(options: RetrievalOptions) -> None:
    """Does the model see? For each image, rank its own caption against others by the model's
    log-likelihood of each caption as the answer to "Descreva a imagem brevemente."; print top-1.

    Example (5-way on the default model's held-out Tux Paint images; chance 0.20):

      lhama eval retrieval --data ../shared/data/tuxpaint_ptbr --split data/tuxpaint/heldout.txt
    """
    from lhama.eval.cache import cache_meta, open_cache
    from lhama.eval.caption import load_captions
    from lhama.eval.retrieval import evaluate_retrieval, make_trials
    from lhama.recipes.default.splits import read_file_list

    o = options
    items = load_captions(o.data, o.column, o.limit, read_file_list(o.split) if o.split else None)
    trials = make_trials(items, o.choices, o.seed)
    loaded = _load(o.model)
    store = open_cache(cache_meta("retrieval", o.data, o.model, column=o.column, choices=o.choices, seed=o.seed,
                                  split=str(o.split), image=not o.no_image), o.cache)
    with _progress() as bar:
        task = bar.add_task("scoring", total=len(trials))
        result = evaluate_retrieval(loaded, trials, store, not o.no_image, lambda n: bar.advance(task, n))
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
