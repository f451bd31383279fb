"""``lhama eval``: AdMIRe ranking, idiom classification, VQA and captioning evaluations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from lhama.cli.common import DEFAULT_MODEL, load_with_progress, named_model
from lhama.cli.options import command

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors never load torch
    from lhama.eval.runner import AdmireConfig
    from lhama.eval.tasks import CaptionTask, IdiomTask, RetrievalTask, VqaTask
    from lhama.model.build import LoadedModel

app = typer.Typer(help="Evaluate models: AdMIRe (SemEval-2025 Task 1), idioms, VQA, captioning, image-caption retrieval.", no_args_is_help=True)

ModelOpt = Annotated[str, typer.Option("--model", "-m", callback=named_model, help="A prepared model name (`lhama models list`) or a model directory.")]
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
    model: Annotated[Optional[str], typer.Option("--model", "-m", callback=named_model, help="Model to evaluate: a prepared name or a directory. Leave out to run the baselines only.")] = None
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

    with _Bar() as bar:
        results = evaluate_admire(options.config(), bar.system)
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

    def task(self) -> IdiomTask:
        from lhama.eval.tasks import IdiomTask

        return IdiomTask(self.data, self.model, self.lang, self.train, self.shots, self.cache)


@app.command()
@command(IdiomOptions)
def idiom(options: IdiomOptions) -> None:
    """Is the compound idiomatic or literal in its sentence? Accuracy and macro-F1, zero- and few-shot.

    Example:

      lhama eval idiom --data ../shared/data/admire_pt/a_pt_dev_targets.tsv --train ../shared/data/admire_pt/a_pt_train_targets.tsv
    """
    from lhama.eval.tasks import run_idiom

    with _Bar("classifying") as progress:
        results = run_idiom(options.task(), _load, progress)
    items = len(results[0].predictions)
    table = Table("System", "Accuracy", "Macro-F1", title=f"Idiomatic vs. literal: {options.data.name} ({items} items)")
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

    def __post_init__(self) -> None:
        _check_guidance(self.image_guidance)

    def task(self) -> VqaTask:
        from lhama.eval.tasks import VqaTask

        return VqaTask(self.model, self.data, self.images, self.lang, self.limit, self.cache, self.image_guidance)


@app.command()
@command(VqaOptions)
def vqa(options: VqaOptions) -> None:
    """Visual question answering: normalised exact-match accuracy (VQAv2 style).

    Example:

      lhama eval vqa --data easy-vqa --model ./my-llava --limit 200
    """
    from lhama.eval.tasks import run_vqa

    with _Bar("answering") as progress:
        result = run_vqa(options.task(), _load, progress)
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

    def __post_init__(self) -> None:
        _check_guidance(self.image_guidance)

    def task(self) -> CaptionTask:
        from lhama.eval.tasks import CaptionTask

        return CaptionTask(self.data, self.model, self.column, self.lang, self.split, not self.no_image, self.limit,
                           self.cache, self.image_guidance)


@app.command()
@command(CaptionOptions)
def caption(options: CaptionOptions) -> None:
    """Caption images; chrF and BLEU (sacrebleu) against human references, and the share of
    captions that share a content word with their reference (chrF also rewards a caption's form).

    Example (the default model's held-out Tux Paint images):

      lhama eval caption --data ../shared/data/tuxpaint_ptbr --split data/tuxpaint/heldout.txt
    """
    from lhama.eval.tasks import run_captions

    with _Bar("captioning") as progress:
        result = run_captions(options.task(), _load, progress)
    Console().print(f"chrF [bold]{result.chrf:.1f}[/]  BLEU [bold]{result.bleu:.1f}[/]  "
                    f"content-word match [bold]{result.named:.3f}[/] on {result.n} images ({options.column})")


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
    scoring: Annotated[str, typer.Option(help="pmi: log-prob after the image minus log-prob without it (default); "
                                              "logprob: summed log-prob alone (before session 12).")] = "pmi"

    def task(self) -> RetrievalTask:
        from lhama.eval.tasks import RetrievalTask

        return RetrievalTask(self.data, self.model, self.column, self.choices, self.seed, self.split, not self.no_image,
                             self.limit, self.cache, self.scoring)


@app.command()
@command(RetrievalOptions)
def retrieval(options: RetrievalOptions) -> None:
    """Does the model see? For each image, rank its own caption against others by the model's
    log-likelihood of each caption as the answer to "Descreva a imagem brevemente."; print top-1.

    Example (5-way on the default model's held-out Tux Paint images; chance 0.20):

      lhama eval retrieval --data ../shared/data/tuxpaint_ptbr --split data/tuxpaint/heldout.txt
    """
    from lhama.eval.tasks import run_retrieval

    with _Bar("scoring") as progress:
        result = run_retrieval(options.task(), _load, progress)
    plain = "" if result.scoring == "logprob" else f"; summed log-prob alone {result.top1_logprob:.3f}"
    Console().print(f"{result.choices}-way retrieval top-1 [bold]{result.top1:.3f}[/] ({result.scoring}{plain}) on "
                    f"{result.n} images (chance {1 / result.choices:.3f})")


def _check_guidance(image_guidance: float | None) -> None:
    """Fails before torch loads (the task checks again, for library callers)."""
    if image_guidance is not None and image_guidance < 0:
        raise ValueError(f"--image-guidance must be >= 0, got {image_guidance}")


def _load(spec: str) -> LoadedModel:
    """``--model`` loaded as chat loads it (a registered name prepared on first use), with progress."""
    return load_with_progress(spec, Console(stderr=True))


@contextmanager
def _progress() -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        yield bar


class _Bar:
    """``progress(done, total)`` for lhama.eval.tasks (and :meth:`system` for AdMIRe's rows): the
    bar opens at its first call, once the data is read and the model has loaded (rich shows one live
    display at a time, and loading shows a spinner); a bar never opened prints nothing, so an error
    before it is the only line."""

    def __init__(self, description: str = "") -> None:
        self.description, self.stack = description, ExitStack()
        self.bar: Progress | None = None
        self.rows: dict[str, TaskID] = {}

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stack.close()

    def __call__(self, done: int, total: int) -> None:
        """``done`` more items of ``total``."""
        row = self._row(self.description, total)  # opens the bar first
        self.bar.advance(row, done)

    def system(self, name: str, done: int, total: int) -> None:
        """AdMIRe's progress: system ``name`` has ranked ``done`` of ``total`` items."""
        row = self._row(name, total)
        self.bar.update(row, completed=done)

    def _row(self, name: str, total: int) -> TaskID:
        if self.bar is None:
            self.bar = self.stack.enter_context(_progress())
        if name not in self.rows:
            self.rows[name] = self.bar.add_task(name, total=total)
        return self.rows[name]


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
