"""Converting registered weights into plain local directories: a GGUF LM into float32
safetensors, the ONNX open-NSFW tower into a lhama tower, the CTranslate2 Whisper parts into one
directory, and a composed model from its parts and the adapter lhama ships. Each converter
verifies what it wrote (logits or features against the source) before it is installed."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from lhama.errors import CheckpointError
from lhama.data.conversation import encode_prompt
from lhama.model import adapters, build
from lhama.model.pictures import pictures
from lhama.model.towers import resnet
from lhama.weights.manifest import adapter_sha256, sha256, shipped_adapter, write_manifest
from lhama.weights.parts import join_parts, part_file
from lhama.weights.registry import WeightSource


# The steps ``prepare`` reports through its ``progress`` callback, in order (a CLI bar's total).


PREPARE_STEPS = ("locate weights", "load and convert weights", "write safetensors", "verify", "install")


# A fixed Portuguese-and-English prompt: logits of the prepared copy must match the GGUF model's.


VERIFY_PROMPT = "A capital do Brasil é Brasília. The capital of Brazil is"


# Both copies hold the same float32 numbers, so only summation-order noise is allowed: 1e-4 of


# the largest logit (CPU kernels may pick another reduction order for differently aligned


# buffers; seen: 1.8e-3 on Gemma-3-270M logits of magnitude ~40). Changed weights move logits


# by whole units.


VERIFY_RTOL = 1e-4


@dataclass(frozen=True)
class Reference:
    """Token ids of ``VERIFY_PROMPT`` and the logits the GGUF model gives for them."""

    input_ids: torch.Tensor  # (1, T)
    logits: torch.Tensor  # (1, T, V)


def locate_gguf(source: WeightSource, scratch: Path) -> Path:
    """Path of ``source``'s GGUF file; chunked packages are assembled into ``scratch``.

    The assembled copy is not kept: the prepared directory replaces it, and the installed
    chunk packages can rebuild it in seconds.
    """
    if source.chunks:
        return join_parts(source, scratch / source.gguf_file)
    if source.assembled:
        package = importlib.import_module(source.package)
        try:
            return Path(package.assemble(scratch / source.gguf_file))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot assemble {source.gguf_file}: {exc}") from None
    locations = importlib.util.find_spec(source.package).submodule_search_locations
    path = Path(next(iter(locations))) / source.gguf_file
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; reinstall with `{source.install}`")
    return path


def convert_gguf(source: WeightSource, version: str, work: Path, report: Callable[[str], None]) -> Path:
    """Load the GGUF, write the plain HF directory ``work/model``, verify it, write its manifest."""
    report(PREPARE_STEPS[0])
    gguf = locate_gguf(source, work)
    digest = sha256(gguf)
    report(PREPARE_STEPS[1])
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    reference = reference_logits(model, tokenizer)
    report(PREPARE_STEPS[2])
    out = work / "model"
    save_plain(model, tokenizer, out)
    del model  # the GGUF model and the reloaded copy need not both be in memory
    report(PREPARE_STEPS[3])
    max_diff = verify(out, reference)
    source_info = {"package": source.distribution, "version": version, "gguf_file": source.gguf_file}
    verified = {"prompt": VERIFY_PROMPT, "max_abs_logit_diff": max_diff, "rtol": VERIFY_RTOL}
    write_manifest(out, {**source_info, "gguf_sha256": digest}, verified)
    return out


def convert_tower(source: WeightSource, version: str, work: Path, report: Callable[[str], None]) -> Path:
    """Port the ONNX tower to PyTorch, write it as a tower directory, check it against
    onnxruntime on a fixed random image batch, write its manifest. A ``.pth`` source is
    EfficientNet-Lite2, ported and checked by :mod:`lhama.weights.efficientnet`."""
    if source.gguf_file.endswith(".pth"):  # a PyTorch state dict: EfficientNet-Lite2
        from lhama.weights.efficientnet import convert_efficientnet

        return convert_efficientnet(source, version, work, report)
    from lhama.weights import open_nsfw  # onnx is needed only here

    report(PREPARE_STEPS[0])
    onnx_file = open_nsfw.onnx_path()
    report(PREPARE_STEPS[1])
    tower = open_nsfw.load_open_nsfw_tower(onnx_file)
    report(PREPARE_STEPS[2])
    out = work / "model"
    out.mkdir()
    resnet.save_tower(tower, out)
    report(PREPARE_STEPS[3])
    pixels = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255 - 120
    rel_diff = open_nsfw.verify_port(resnet.load_tower(out), onnx_file, pixels)
    source_info = {"package": source.distribution, "version": version, "onnx_file": onnx_file.name}
    verified = {"input": "2 uniform random 224x224 images, seed 0", "max_rel_feature_diff": rel_diff,
                "rtol": open_nsfw.VERIFY_RTOL}
    write_manifest(out, {**source_info, "onnx_sha256": sha256(onnx_file)}, verified)
    return out


def convert_audio_tower(source: WeightSource, version: str, work: Path, report: Callable[[str], None]) -> Path:
    """Join the CTranslate2 Whisper parts, copy its config and tokenizer, check that it encodes
    a fixed input to finite states of the expected shape, write its manifest."""
    from lhama.model.audio import check_ct2_whisper  # ctranslate2 is needed only here

    report(PREPARE_STEPS[0])
    extras = [part_file(source, rel) for rel in source.extra_files]
    report(PREPARE_STEPS[1])
    out = work / "model"
    out.mkdir()
    join_parts(source, out / source.gguf_file)
    report(PREPARE_STEPS[2])
    for extra in extras:
        shutil.copyfile(extra, out / extra.name)
    report(PREPARE_STEPS[3])
    verified = check_ct2_whisper(out)
    source_info = {"package": source.distribution, "version": version, "chunks": list(source.chunks)}
    write_manifest(out, {**source_info, "model_sha256": sha256(out / source.gguf_file)}, verified)
    return out


def convert_composed(source: WeightSource, version: str, work: Path, report: Callable[[str], None],
                      part_dirs: tuple[Path, ...]) -> Path:
    """Build LM + tower from the prepared ``part_dirs``, apply the shipped projector + LoRA, merge, save;
    verify the saved directory reloads to the same logits on a fixed image and prompt."""
    report(PREPARE_STEPS[0])
    lm_dir, *encoder_dirs = part_dirs  # the LM, then the encoders of the adapter's branches (the vision tower)
    adapter_dir = shipped_adapter(source)
    report(PREPARE_STEPS[1])
    loaded = adapters.compose_from_adapter(lm_dir, encoder_dirs, adapter_dir)
    report(PREPARE_STEPS[2])
    out = build.save_model(loaded, work / "model")
    report(PREPARE_STEPS[3])
    max_diff = _verify_composed(loaded, out)
    info = {"package": source.distribution, "version": version, "adapter": source.gguf_file,
            "adapter_sha256": adapter_sha256(adapter_dir), "parts": list(source.parts)}
    write_manifest(out, info, {"prompt": VERIFY_PROMPT, "max_abs_logit_diff": max_diff, "rtol": VERIFY_RTOL})
    return out


def _verify_composed(loaded: Any, model_dir: Path) -> float:
    """The composed model (LM + vision tower + trained projector) and its saved copy give the same
    logits for one random picture and :data:`VERIFY_PROMPT`."""
    noise = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0))
    shown, media = pictures(loaded, [Image.fromarray((noise * 255).byte().numpy())])  # as the image branch reads it
    ids = torch.tensor([encode_prompt(loaded.tokenizer, shown + VERIFY_PROMPT, loaded.expansions())])
    with torch.no_grad():
        expected = loaded.model(ids, media=media).logits
        reloaded = build.load_model(model_dir)
        actual = reloaded.model.eval()(ids, media=media).logits
    return logit_difference(actual, expected, model_dir, "the composed model")


def logit_difference(actual: torch.Tensor, expected: torch.Tensor, model_dir: Path, source: str) -> float:
    """Max abs difference of a reloaded copy's logits from ``source``'s; CheckpointError if it
    exceeds ``VERIFY_RTOL`` of the largest expected logit."""
    max_diff = (actual.float() - expected.float()).abs().max().item()
    limit = VERIFY_RTOL * max(expected.abs().max().item(), 1.0)  # never looser than 1e-4 absolute
    if not max_diff <= limit:  # also catches NaN
        raise CheckpointError(f"{model_dir} gives logits {max_diff:.3g} away from {source} (limit {limit:.3g})")
    return max_diff


def reference_logits(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> Reference:
    """Logits of ``model`` on ``VERIFY_PROMPT`` (what a prepared copy must reproduce)."""
    input_ids = tokenizer(VERIFY_PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits.float()
    return Reference(input_ids=input_ids, logits=logits)


def save_plain(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """Write ``model`` (loaded from GGUF) as a plain float32 safetensors HF directory.

    transformers refuses to save a model it loaded from GGUF (it counts as quantized even once
    dequantised), so the weights are copied into a fresh model built from the same config
    without its ``quantization_config``.
    """
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):  # no second copy in memory: the loaded tensors are assigned
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), assign=True)
    plain.generation_config = copy.deepcopy(model.generation_config)
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def verify(model_dir: Path, reference: Reference) -> float:
    """Reload ``model_dir`` and compare its logits with ``reference``; return the max abs diff.

    Raises:
        CheckpointError: the directory does not load, tokenises the prompt differently, or
            its logits differ by more than ``VERIFY_RTOL`` of the largest reference logit.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    except Exception as exc:  # any load failure means a broken directory, whatever its type
        raise CheckpointError(f"{model_dir} does not load: {exc}") from None
    input_ids = tokenizer(VERIFY_PROMPT, return_tensors="pt").input_ids
    if not torch.equal(input_ids, reference.input_ids):
        raise CheckpointError(f"the tokenizer saved in {model_dir} splits the verify prompt differently")
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits.float()
    return logit_difference(logits, reference.logits, model_dir, "the source")
