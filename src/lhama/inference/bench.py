"""Decode-speed benchmark in one process: lhama's engine, then plain transformers fp32 generate,
on the same model and the same Portuguese chat prompt.

Measured: decode tokens/s (greedy, exactly ``tokens`` new tokens, end-of-turn ignored, after a
short warm-up), time to first token for the text prompt and (with a vision tower) for the same
prompt with one image, and the process's peak resident memory *before* the fp32 baseline is
loaded (so it is lhama's; a first quantisation in this run loads fp32 too and says so).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.quant_cache import is_cached, load_for_inference
from lhama.inference.runtime import peak_rss_mb, use_physical_cores
from lhama.inference.speculative import DRAFT_TOKENS, LOOKUP, NO_DRAFT, Draft, open_draft
from lhama.model.build import LoadedModel, load_model
from lhama.model.pictures import pictures, sees_pictures
from lhama.weights.convert import locate_gguf
from lhama.weights.manifest import MANIFEST
from lhama.weights.registry import REGISTRY, lhama_home

SYSTEM = "Responda sempre em português do Brasil."
QUESTION = "Explique em poucas frases por que o céu é azul e por que o pôr do sol é avermelhado."
IMAGE_QUESTION = "Descreva a imagem em uma frase."


@dataclass(frozen=True)
class BenchConfig:
    model_dir: Path
    tokens: int = 128
    quant: str = "int4"
    draft: Path | str | None = None  # speculative decoding: a draft model's directory, or LOOKUP (no model); None: none
    draft_tokens: int = DRAFT_TOKENS  # proposed per step at most
    baseline: bool = True  # also time plain transformers fp32 generate
    threads: int | None = None  # torch threads; None: one per physical core
    draft_quant: str | None = None  # the draft's weights; None: lhama.inference.speculative.draft_quant's choice


Locate = Callable[[str], Path]  # a model's name or directory -> its directory (the CLI's prepares a name first)


@dataclass(frozen=True)
class DecodeBench:
    """What ``lhama bench decode`` asks: models by name or directory, found by the caller's ``locate``."""

    model: str
    tokens: int = 128
    quant: str = "int4"
    draft: str | None = None  # speculative decoding with this draft model, "lookup" (a prompt lookup, no model) or "none"
    baseline: bool = True  # also time plain transformers fp32 generate
    draft_quant: str | None = None  # the draft's weights; None: lhama.inference.speculative.draft_quant's choice


def bench_models(request: DecodeBench, locate: Locate) -> BenchResult:
    """``lhama bench decode``'s one call: the draft (if any) and the model located, in that
    order, then :func:`bench_decode` on their directories.

    Raises:
        LhamaError: from ``locate`` (an unknown or missing model), or the load.
    """
    draft = request.draft if request.draft in (None, LOOKUP, NO_DRAFT) else locate(request.draft)  # no model to locate
    config = BenchConfig(locate(request.model), request.tokens, request.quant, draft, baseline=request.baseline,
                         draft_quant=request.draft_quant)
    return bench_decode(config)


@dataclass(frozen=True)
class BenchResult:
    model: str
    quant: str
    tokens: int
    threads: int
    lhama_tok_s: float
    transformers_tok_s: float | None
    ttft_s: float
    ttft_image_s: float | None  # None: the model has no vision tower
    peak_rss_mb: float
    cache_built: bool  # True: this run quantised (and loaded fp32 once), so peak_rss_mb includes that
    acceptance_rate: float | None  # speculative decoding: draft tokens kept / proposed
    gguf: str | None  # the GGUF the LM was prepared from, when it is a file on this machine

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def bench_decode(config: BenchConfig) -> BenchResult:
    """Run the benchmark described in the module docstring."""
    threads = use_physical_cores() if config.threads is None else config.threads
    torch.set_num_threads(threads)
    cache_built = config.quant != "none" and not is_cached(config.model_dir, config.quant)
    loaded = load_for_inference(config.model_dir, config.quant)
    draft = open_draft(config.draft, loaded, load_for_inference, config.draft_quant, config.draft_tokens)
    ids = _prompt_ids(loaded, QUESTION)
    _time_decode(loaded, ids, 8, draft)  # warm-up: first-call allocations, thread pools
    ttft, tok_s = _time_decode(loaded, ids, config.tokens, draft)
    ttft_image = _image_ttft(loaded)
    rss = peak_rss_mb()
    acceptance = None
    if draft is not None:
        acceptance = round(draft.acceptance_rate, 3)
    del loaded, draft
    baseline = _transformers_tok_s(config.model_dir, ids, config.tokens) if config.baseline else None
    return BenchResult(config.model_dir.name, config.quant, config.tokens, threads, round(tok_s, 2), baseline,
                       round(ttft, 3), ttft_image, round(rss), cache_built, acceptance, _gguf(config.model_dir))


def _prompt_ids(loaded: LoadedModel, content: str) -> list[int]:
    """The bench's system prompt and one user turn of ``content`` (media placeholders included), encoded."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
    return encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, messages), loaded.expansions())


def _time_decode(loaded: LoadedModel, ids: list[int], tokens: int, draft: Draft | None,
                 media: dict[str, torch.Tensor] | None = None) -> tuple[float, float]:
    """(time to first token in s, decode tokens/s after it) for exactly ``tokens`` greedy tokens."""
    started = time.perf_counter()
    first, count = None, 0
    for _ in generate_ids(loaded.model, ids, GenerationConfig(max_new_tokens=tokens), media, draft=draft):
        first = first or time.perf_counter()
        count += 1
    decode = time.perf_counter() - first
    return first - started, (count - 1) / decode if count > 1 else 0.0


def _image_ttft(loaded: LoadedModel) -> float | None:
    """Time to first token of a question about one 640x480 picture: through the vision tower
    (an image branch), or through a cascade model's labeler, whose note goes into the prompt as
    text (what ``lhama chat --image`` does for lhama-default). None: the model sees no images."""
    if not sees_pictures(loaded):
        return None
    picture = Image.fromarray((torch.rand(480, 640, 3, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy())
    times = []
    for _ in range(2):  # the first call warms up the tower
        started = time.perf_counter()
        shown, media = pictures(loaded, [picture])  # a cascade: the labeler's note, as chat tells it
        ids = _prompt_ids(loaded, shown + IMAGE_QUESTION)
        times.append(time.perf_counter() - started + _time_decode(loaded, ids, 1, None, media)[0])
    return round(times[-1], 3)


class _FirstToken:
    """A transformers streamer that notes when the first new token arrives (put #2: #1 is the prompt)."""

    def __init__(self) -> None:
        self.calls, self.first = 0, 0.0

    def put(self, value: torch.Tensor) -> None:
        self.calls += 1
        if self.calls == 2:
            self.first = time.perf_counter()

    def end(self) -> None:
        pass


@torch.inference_mode()
def _transformers_tok_s(model_dir: Path, ids: list[int], tokens: int) -> float:
    """Plain greedy ``generate`` of the fp32 language model: tokens/s after the first token."""
    language_model = load_model(model_dir).model.language_model
    inputs = torch.tensor([ids])
    language_model.generate(inputs, max_new_tokens=4, do_sample=False)  # warm-up
    streamer = _FirstToken()
    language_model.generate(inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, streamer=streamer)
    return round((tokens - 1) / (time.perf_counter() - streamer.first), 2)


def _gguf(model_dir: Path) -> str | None:
    """The GGUF ``model_dir`` was prepared from: the installed file, or the copy joined from
    its PyPI parts by :func:`gguf_file` (``None`` until then, or for a non-GGUF model)."""
    source = _gguf_source(model_dir)
    if source is None:
        return None
    if not (source.chunks or source.assembled):
        return str(locate_gguf(source, lhama_home()))  # the package's own file: nothing is copied
    joined = lhama_home() / "gguf" / source.gguf_file
    return str(joined) if joined.is_file() else None


def gguf_file(model_dir: Path) -> Path | None:
    """The GGUF ``model_dir`` was prepared from as a file (parts are joined once, into
    ``$LHAMA_HOME/gguf/``), for running llama.cpp on the very same weights."""
    source = _gguf_source(model_dir)
    if source is None:
        return None
    if source.chunks or source.assembled:
        joined = lhama_home() / "gguf" / source.gguf_file
        if not joined.is_file():
            joined.parent.mkdir(parents=True, exist_ok=True)
            locate_gguf(source, joined.parent)
        return joined
    return locate_gguf(source, lhama_home())


def _gguf_source(model_dir: Path):
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    source = manifest.get("source", {})
    parts = source.get("parts") or []  # a composed/cascade model: its language model is the first part
    matches = [s for s in REGISTRY if s.gguf_file.endswith(".gguf") and (
        (source.get("package") in (s.package, s.distribution) and s.gguf_file == source.get("gguf_file"))
        or (parts and s.name == parts[0]))]
    return matches[0] if matches else None
