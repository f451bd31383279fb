"""A cascade model directory: a text LM that is told what an image shows by a labeler.

``lhama-default`` (v2) is Qwen2.5-Coder-1.5B-Instruct + EfficientNet-Lite2's ImageNet-1k head
(``lhama-default-small``: the 0.5B). No projector is trained: the classifier's pt-BR class
names go into the prompt as a note (:mod:`lhama.model.labeler`). Its directory is

    config.json, model.safetensors, tokenizer*, chat_template.jinja   the LM's own HF files
    lhama_generation.json                                             its decoding defaults
    labeler/                                                          the tower, class names, note settings

so transformers loads it as the plain LM, and lhama also loads the labeler
(:func:`lhama.model.labeler.load_labeler`). The LM files are hard links to the prepared LM
when the filesystem allows (no second 6 GB copy), else copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lhama.config import saved_matches, to_dict
from lhama.errors import CheckpointError, ConfigError
from lhama.model.generation import GenerationConfig, write_generation
from lhama.model.glyph import SHIPPED as GLYPH_READER
from lhama.model.glyph import TABLE_FILE as GLYPH_TABLE
from lhama.model.glyph import WEIGHTS_FILE as GLYPH_WEIGHTS
from lhama.model.glyph import copy_reader
from lhama.model.labeler import LABELER_DIR, LabelerConfig, load_labeler, save_labeler
from lhama.model.names_head import FEATURES_FILE, TABLE_FILE, copy_head
from lhama.model.names_head import SHIPPED
from lhama.model.towers.efficientnet_lite import load_tower
from lhama.model.towers.imagenet_names import TABLE
from lhama.weights.manifest import MANIFEST, write_manifest
from lhama.weights.registry import WeightSource

V2_SYSTEM_PROMPT = (
    "Você é o lhama, um assistente prestativo. Responda sempre em português do Brasil, de forma "
    "correta, clara e breve. Quando a mensagem trouxer [Imagem anexada: ...], isso diz o que a "
    "imagem enviada mostra: responda sobre a imagem com base nisso, sem dizer que não pode ver "
    "imagens, e diga o nome da coisa e o que ela é em geral."
)  # session 4 of #26: without the former example "(por exemplo: um tucano, uma ave)", which leaked into answers
# no_repeat_ngram 6: an answer never says the same 6 tokens twice, so list-style advice no longer
# loops verbatim to the token limit; a repetition penalty of 1.1 (it also penalises the prompt's
# words) lost right answers on the everyday dev half. Chosen there (docs/default-model.md).
V2_GENERATION = GenerationConfig(system_prompt=V2_SYSTEM_PROMPT, repetition_penalty=1.0, no_repeat_ngram=6)
# kinds: a confident name gets its WordNet kind; a kind summing to 0.3 is named when no class is
# confident ("parece ser uma ave de rapina, talvez milhafre"). Threshold chosen on the naming
# dev split (benchmarks/naming_kinds.py; docs/default-model.md).
# #26 s7: the labeler also sees the drawing cropped from its page (fit, fit_flip) and has a names
# head of the Tux Paint stamps + the openclipart pool seen the same way (benchmarks/naming_views.py;
# chosen on the fresh clip-art dev half, passed the rule written before the test read).
# #26 s11: a picture of one letter, digit or arithmetic sign is named by the glyph reader
# (lhama.model.glyph; threshold chosen on dev, passed the rule written before the fresh read:
# benchmarks/naming_glyph_s11.py, docs/default-model.md "Naming, session 11").
# #26 s12: the names head also holds the 666 read naming pictures (clip-art dev/test halves,
# naming_heldout.tsv); its thresholds stay (read sets, leave-group-out, note alone: 284 -> 301 of
# 1110; the dev-best 0.3 / 0.3, 357, named drawings on most photos that were "não reconhecida":
# benchmarks/naming_s12_dev.py, docs/default-model.md "Naming, session 12").
# #26 s15: the names head also holds 857 common-thing emoji (Apple/Facebook/Google/Twitter art averaged,
# CLDR pt-BR names) and speaks from cosine 0.6 (was 0.7): chosen on dev (EmojiOne) with a photo gate,
# passed the rule written before the fresh OpenMoji read (benchmarks/naming_s15.py, docs/default-model.md
# "Naming, session 15").
V2_LABELER = LabelerConfig(style="kinds", kind_confident=0.3, views=("squash", "fit", "fit_flip"),
                           names_confident=0.6, names_yield=0.5, glyph_confident=0.8)
NAMES_HEAD = SHIPPED / "names_head_s15_mean"  # src/lhama/model/towers/names_head_s15_mean/ (names_head_s12 + 857 emoji)
SKIP = (MANIFEST, "lhama_generation.json")  # the LM's own manifest and decoding file are replaced


@dataclass(frozen=True)
class CascadeSettings:
    """What a cascade directory holds besides its parts: the decoding defaults, the labeler's
    settings and the folders it copies: the names head when ``labeler.names_confident`` is set, the
    glyph reader when ``labeler.glyph_confident`` is."""

    generation: GenerationConfig
    labeler: LabelerConfig
    names_head: Path | None = None
    glyph_reader: Path | None = None

    def __post_init__(self) -> None:
        if self.labeler.names_confident and self.names_head is None:
            raise ConfigError("cascade settings with labeler.names_confident need a names_head folder")
        if self.labeler.glyph_confident and self.glyph_reader is None:
            raise ConfigError("cascade settings with labeler.glyph_confident need a glyph_reader folder")


SHIPPED_SETTINGS = CascadeSettings(V2_GENERATION, V2_LABELER, NAMES_HEAD, GLYPH_READER)  # lhama-default and -small


@dataclass(frozen=True)
class CascadeInputs:
    """What :func:`convert_cascade` assembles a cascade directory from: the prepared LM and vision
    tower directories (the registry entry's ``parts``, in order) and the settings it writes."""

    lm_dir: Path
    tower_dir: Path
    settings: CascadeSettings = SHIPPED_SETTINGS


def settings_digest(settings: CascadeSettings = SHIPPED_SETTINGS) -> dict:
    """What ``settings`` write into a cascade directory besides the parts, recorded in its manifest
    (every field): a prepared copy with other settings is out of date (:func:`settings_current`)."""
    digest = {"generation": to_dict(settings.generation), "labeler": to_dict(settings.labeler)}
    if settings.labeler.names_confident:
        digest["names_head_sha256"] = _names_head_sha256(settings.names_head)
    if settings.labeler.glyph_confident:
        digest["glyph_reader_sha256"] = _files_sha256(settings.glyph_reader, (GLYPH_TABLE, GLYPH_WEIGHTS))
    return digest


def settings_current(recorded: Mapping[str, Any], settings: CascadeSettings = SHIPPED_SETTINGS) -> bool:
    """Whether a manifest's ``source`` record holds ``settings`` (by default the ones this lhama
    ships). A field added to :class:`GenerationConfig` or :class:`LabelerConfig` with a default
    since the copy was prepared keeps it current (its decoding file lacks the field too and loads
    the default); a changed value, a changed default or another names head (other stamps, names)
    does not; nor does another glyph reader."""
    if settings.labeler.names_confident and recorded.get("names_head_sha256") != _names_head_sha256(settings.names_head):
        return False
    if settings.labeler.glyph_confident and recorded.get("glyph_reader_sha256") != _files_sha256(
            settings.glyph_reader, (GLYPH_TABLE, GLYPH_WEIGHTS)):
        return False
    return (saved_matches(settings.generation, recorded.get("generation"))
            and saved_matches(settings.labeler, recorded.get("labeler")))


def _names_head_sha256(head: Path) -> str:
    return _files_sha256(head, (TABLE_FILE, FEATURES_FILE))


def _files_sha256(folder: Path, names: tuple[str, ...]) -> str:
    return hashlib.sha256(b"".join((folder / name).read_bytes() for name in names)).hexdigest()


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same filesystem), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def assemble_labeler(tower_dir: Path, settings: CascadeSettings, out: Path) -> Path:
    """Write ``out/labeler/`` as a cascade directory holds it: the tower, the shipped pt-BR class
    names and kinds, ``settings.labeler`` and the folders it needs (names head, glyph reader), each
    checked by loading it (a bad one fails here, at prepare time). Returns the folder."""
    folder = save_labeler(tower_dir, TABLE, settings.labeler, out)
    if settings.labeler.names_confident:
        copy_head(settings.names_head, folder)
    if settings.labeler.glyph_confident:
        copy_reader(settings.glyph_reader, folder)
    return folder


def convert_cascade(source: WeightSource, version: str, work: Path, report: Callable[[str], None],
                    inputs: CascadeInputs) -> Path:
    """Assemble ``work/model`` from ``inputs``: the prepared LM's files, the decoding defaults and
    ``labeler/`` with the shipped pt-BR class names, both from ``inputs.settings`` (by default what
    lhama-default ships); reload the labeler and check it classifies like the tower; write the
    manifest.

    Raises:
        CheckpointError: a part is incomplete, or the class-name table does not load.
    """
    from lhama.weights.convert import PREPARE_STEPS
    from lhama.weights.efficientnet import verify_pixels

    report(PREPARE_STEPS[0])
    lm_dir, tower_dir, settings = inputs.lm_dir, inputs.tower_dir, inputs.settings
    out = work / "model"
    out.mkdir()
    report(PREPARE_STEPS[1])
    for path in sorted(lm_dir.iterdir()):
        if path.is_file() and path.name not in SKIP:
            link_or_copy(path, out / path.name)
    report(PREPARE_STEPS[2])
    write_generation(settings.generation, out)
    assemble_labeler(tower_dir, settings, out)
    report(PREPARE_STEPS[3])
    pixels = verify_pixels()
    with torch.no_grad():
        diff = (load_labeler(out).classify(pixels) - load_tower(tower_dir).classify(pixels)).abs().max().item()
    if not diff <= 1e-6:
        raise CheckpointError(f"the labeler copied into {out} classifies {diff:.3g} away from {tower_dir}")
    info = {"package": source.distribution, "version": version, "parts": list(source.parts), **settings_digest(settings)}
    write_manifest(out, info, {"labeler_max_abs_prob_diff": diff, "lm": _lm_manifest(lm_dir)})
    return out


def _lm_manifest(lm_dir: Path) -> dict:
    """The LM part's own verification record (its logits against the GGUF), kept for provenance."""
    try:
        return json.loads((lm_dir / MANIFEST).read_text(encoding="utf-8")).get("verify", {})
    except (OSError, ValueError):
        return {}
