"""Load a model for decoding with its language model quantised once and cached beside it.

The first ``load_for_inference(dir, "int4")`` quantises the language model (a plain causal LM
tensor by tensor as its safetensors are read; a lhama/LLaVA directory after loading it in fp32)
and writes ``dir/quant-int4-g32/`` (the plan's name: ``quant-int8``, ``quant-int4-g128+head`` ...)
(``language_model.safetensors``: packed weights, scales, bf16 embeddings and norms;
``quant.json``: settings and the source files' sizes and times). Later loads read that copy
straight into an empty (meta-device) skeleton of the language model: no fp32 weights in memory,
no re-quantisation. A cache whose source files, settings, PyTorch version or int4 packing (64-row blocks on
an AVX512 CPU, 32 without: a cache copied across CPUs) differ is rebuilt (a cache written before the packing
was recorded, session 11, loads as before);
a model directory that cannot be written is quantised in memory each time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from lhama.errors import CheckpointError
from lhama.files import atomic_directory
from lhama.inference import native
from lhama.inference.lean import lean_decoder
from lhama.inference.qlinear import build_native_scales
from lhama.inference.quant import QuantPlan, check_quant, empty_quantized, plan_for, quantize_from, quantize_linears
from lhama.model.build import LoadedModel, load_model
from lhama.model.config import LhamaConfig
from lhama.model.generation import read_generation
from lhama.model.labeler import load_labeler
from lhama.model.lhama import LhamaModel

WEIGHTS = "language_model.safetensors"
SETTINGS = "quant.json"
_BUFFER = "__buffer__."  # state-dict prefix of non-persistent buffers (rotary frequencies, scales)


def quant_dir(model_dir: str | Path, quant: str | QuantPlan, group_size: int | None = None) -> Path:
    """Where the quantised copy of ``model_dir``'s language model is cached (``quant-int4-g128``,
    ``quant-int8``, ``quant-int4-g32+head``: the plan's name)."""
    return _cache_dir(Path(model_dir), plan_for(quant, group_size))


def _cache_dir(model_dir: Path, plan: QuantPlan) -> Path:
    return model_dir / f"quant-{plan.name}"


def is_cached(model_dir: str | Path, quant: str | QuantPlan, group_size: int | None = None) -> bool:
    """Whether a current quantised copy of ``model_dir`` exists (the next load reads it)."""
    return _is_current(quant_dir(model_dir, quant, group_size), _settings(Path(model_dir), plan_for(quant, group_size)))


def load_for_inference(model_dir: str | Path, quant: str | QuantPlan = "none", group_size: int | None = None,
                       progress: Callable[[str], None] = lambda _: None) -> LoadedModel:
    """The model in ``model_dir`` ready to decode with its language model as ``quant``
    (none = fp32 as saved; bf16, int8, int4, or an int4 plan such as ``int4-g64+head``: see
    :func:`lhama.inference.quant.plan_for`), from the cache when it is current. A name is checked
    here (:func:`~lhama.inference.quant.check_quant`); a :class:`QuantPlan` is taken as the one
    ``check_quant`` returned (the CLI checks once where it picks the quant), and ``group_size``
    does not apply to it.

    Raises:
        ConfigError: ``quant`` cannot run on this machine. CheckpointError: unreadable model/cache.
    """
    plan = quant if isinstance(quant, QuantPlan) else check_quant(quant, group_size)
    model_dir = Path(model_dir)
    if plan.quant == "none":
        return load_model(model_dir)
    cache = _cache_dir(model_dir, plan)
    settings = _settings(model_dir, plan)
    if _is_current(cache, settings):
        return ready_to_run(_load_cached(model_dir, cache, settings))
    progress(f"quantising {model_dir.name} to {plan.name} (once; cached in {cache}) ...")
    loaded = _quantized(model_dir, plan)
    try:
        _save(loaded.model.language_model, cache, settings)
    except OSError as exc:
        progress(f"cannot cache the {plan.name} copy in {cache} ({exc.strerror}); it is rebuilt on each load")
    return ready_to_run(loaded)


def ready_to_run(loaded: LoadedModel) -> LoadedModel:
    """``loaded`` with what its products would build at first use built now, at load, not inside the first prompt's
    prefill: the lean decoder (its fused layers) and every packed layer's blocked scales (same bits; 0.16 s at 1 thread
    on lhama-default, docs/benchmarks.md session 11, 27b)."""
    language_model = loaded.model.language_model
    with torch.no_grad():
        lean_decoder(language_model)
    build_native_scales(language_model)
    return loaded


def _quantized(model_dir: Path, plan: QuantPlan) -> LoadedModel:
    """A plain causal LM is quantised tensor by tensor as its safetensors are read (peak memory:
    the result plus one fp32 matrix); a lhama/LLaVA directory is loaded whole first."""
    if _is_lhama_dir(model_dir):
        loaded = load_model(model_dir)
        quantize_linears(loaded.model.language_model, plan)
        return loaded
    loaded = _skeleton(model_dir)
    quantize_from(loaded.model.language_model, _reader(model_dir), plan)
    _check_complete(loaded.model.language_model, model_dir)
    return loaded


def _reader(model_dir: Path) -> Callable[[list[str]], torch.Tensor]:
    """``read(names)``: the tensor saved under the first of ``names`` found in the directory's
    safetensors (one file, or shards listed in ``model.safetensors.index.json``)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        where = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    else:
        with safe_open(model_dir / "model.safetensors", "pt") as f:
            where = dict.fromkeys(f.keys(), "model.safetensors")

    def read(names: list[str]) -> torch.Tensor:
        for name in names:
            if name in where:
                with safe_open(model_dir / where[name], "pt") as f:
                    return f.get_tensor(name)
        raise CheckpointError(f"{model_dir} has no weight {names[0]}; is it a complete model directory?")

    return read


def _is_lhama_dir(model_dir: Path) -> bool:
    raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return "lhama" in raw or raw.get("model_type") == "llava"


def source_stats(model_dir: Path) -> dict[str, list[int]]:
    """name -> [size, mtime_ns] of the model's top-level .json/.safetensors files: what a cache
    records as its ``sources`` and is valid for."""
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors"))
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}


def _settings(model_dir: Path, plan: QuantPlan) -> dict:
    settings = {
        "quant": plan.quant,
        "group_size": plan.group_size if plan.quant == "int4" else None,
        "torch": torch.__version__,  # the packed int4 layout belongs to the kernel of this version
        "sources": source_stats(model_dir),
        # and to this machine: the int4 packing, whether the AVX2 port builds lossy6 layers 6-bit (one question)
        **native.cache_key(int4=plan.quant == "int4", lossy6="lossy6" in plan.int8),
    }
    if plan.int8:
        settings["int8"] = list(plan.int8)  # the roles kept int8 (a plain plan's settings stay as before)
    if plan.grid:
        settings["grid"] = True
    if plan.kscales:
        settings["kscales"] = 4  # the codes' version (1: lows in 1/16 steps; 2: clamped groups, session 6;
        # 3: byte codes under fp32 super-scales; 4: Q4_K / Q6_K's 6-bit / int8 codes under fp16 ones)
    return settings


def _is_current(cache: Path, settings: dict) -> bool:
    try:
        saved = json.loads((cache / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if "int4_rows" not in saved:  # written before session 11 recorded the packing: read as before
        settings = {k: v for k, v in settings.items() if k != "int4_rows"}
    return saved == settings and (cache / WEIGHTS).is_file()


def _save(language_model: nn.Module, cache: Path, settings: dict) -> None:
    state, seen = {}, set()
    for key, value in language_model.state_dict().items():  # a tied float head stays shared: copy it
        state[key] = value.clone() if value.data_ptr() in seen else value.contiguous()
        seen.add(value.data_ptr())
    persistent = set(state)
    for name, buffer in language_model.named_buffers():
        if name not in persistent:
            state[_BUFFER + name] = buffer.contiguous()
    with atomic_directory(cache) as tmp:
        save_file(state, tmp / WEIGHTS, metadata={"format": "pt"})
        (tmp / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _load_cached(model_dir: Path, cache: Path, settings: dict) -> LoadedModel:
    loaded = _skeleton(model_dir)
    plan = QuantPlan(settings["quant"], settings["group_size"] or 128, tuple(settings.get("int8", ())),
                     settings.get("grid", False), bool(settings.get("kscales", False)))
    try:
        state = _read_aligned(cache / WEIGHTS)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"cannot read {cache / WEIGHTS}: {exc}; delete {cache} to rebuild it") from None
    int8_layers = frozenset(key.removesuffix(".scales") for key in state if key.endswith(".scales"))  # lossy ones too
    int6_layers = frozenset(key.removesuffix(".hi") for key in state if key.endswith(".hi"))  # lossy6 ones
    language_model = empty_quantized(loaded.model.language_model, plan, int8_layers=int8_layers, int6_layers=int6_layers)
    buffers = {k[len(_BUFFER):]: state.pop(k) for k in list(state) if k.startswith(_BUFFER)}
    language_model.load_state_dict(state, strict=False, assign=True)
    for name, tensor in buffers.items():
        owner, _, attr = name.rpartition(".")
        language_model.get_submodule(owner)._buffers[attr] = tensor
    _check_complete(language_model, cache)
    language_model.eval()
    return loaded


def _read_aligned(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors, each in memory of its own. A safetensors file places tensors at
    8-byte offsets; the packed int8/int4 CPU kernels read such weights out of bounds and
    crash (seen: a segfault in ``_weight_int8pack_mm`` once a prompt has 8+ tokens), so every
    tensor is copied into a fresh, 64-byte aligned allocation, one at a time. The file is
    reopened per tensor: an open handle keeps every page it has read resident (measured: the
    1.5B's cached load peaked at 3.1 GB RSS with one handle, the file's size counted twice).
    The projections that decode as one product are read side by side into one allocation."""
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
    state = {}
    for group in _fusable_groups(keys):  # read side by side into one allocation (lhama.inference.lean)
        with safe_open(str(path), framework="pt") as f:
            shapes = [f.get_slice(key).get_shape() for key in group]
            dtypes = {f.get_slice(key).get_dtype() for key in group}
        dtype = dtypes.pop()
        if len({tuple(shape[1:]) for shape in shapes}) != 1 or dtypes or dtype not in _FUSABLE_DTYPES:
            continue
        if any(math.prod(shape) % _ALIGN for shape in shapes[:-1]):  # each part must start aligned
            continue
        joined = torch.empty(sum(shape[0] for shape in shapes), *shapes[0][1:], dtype=_FUSABLE_DTYPES[dtype])
        start = 0
        for key, shape in zip(group, shapes):
            with safe_open(str(path), framework="pt") as f:
                joined[start : start + shape[0]] = f.get_tensor(key)
            state[key] = joined[start : start + shape[0]]
            start += shape[0]
    for key in keys:
        if key not in state:
            with safe_open(str(path), framework="pt") as f:
                state[key] = f.get_tensor(key).clone()
    return state


_FUSABLE_DTYPES = {"U8": torch.uint8, "I8": torch.int8}  # packed int4, int8 weights (1-byte elements)
_ALIGN = 64  # bytes
_FUSED = ((".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight"),
          (".mlp.gate_proj.weight", ".mlp.up_proj.weight"))


def _fusable_groups(keys: list[str]) -> list[list[str]]:
    """The weight keys that the lean decode step runs as one product (query/key/value, gate/up
    of each layer), in order; loading them adjacent spares it a concatenated copy."""
    present, groups = set(keys), []
    for key in keys:
        for names in _FUSED:
            if key.endswith(names[0]):
                group = [key[: -len(names[0])] + name for name in names]
                if all(k in present for k in group):
                    groups.append(group)
    return groups


def _skeleton(model_dir: Path) -> LoadedModel:
    """The model with its language model's weights on the meta device (nothing allocated).
    A plain causal-LM directory is built from its config; a lhama/LLaVA directory (small
    towers and projectors) is loaded whole and its language model's weights are replaced."""
    if _is_lhama_dir(model_dir):
        return load_model(model_dir)
    with init_empty_weights(include_buffers=False):  # parameters on meta; buffers (rotary) computed
        language_model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    language_model.tie_weights()  # init_empty_weights leaves a tied output layer untied
    if (model_dir / "generation_config.json").is_file():
        language_model.generation_config = type(language_model.generation_config).from_pretrained(model_dir)
    # as load_model does: decoding defaults, a cascade's labeler
    return LoadedModel(LhamaModel(LhamaConfig(), language_model).eval(), AutoTokenizer.from_pretrained(model_dir),
                       name=model_dir.name, generation=read_generation(model_dir), labeler=load_labeler(model_dir))


def _check_complete(language_model: nn.Module, source: Path) -> None:
    for name, tensor in [*language_model.named_parameters(), *language_model.named_buffers()]:
        if tensor.is_meta:
            raise CheckpointError(f"{source} lacks {name}; delete {source} to rebuild it")

