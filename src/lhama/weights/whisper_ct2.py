"""A CTranslate2 Whisper ``model.bin`` as tensors, and its decoder as a transformers
``WhisperDecoder``, so lhama can fine-tune Whisper's decoder in torch and write the result
back as a CTranslate2 model that :mod:`lhama.model.transcribe` runs unchanged.

The file (CTranslate2 binary version 6, ``ctranslate2/specs/model_spec.py``): a header (version,
spec name, revision), then each variable (name, shape, dtype, raw bytes), then aliases (the
output projection is an alias of the token embeddings). Whisper's decoder in CTranslate2 names
fuses what transformers keeps apart: self-attention ``linear_0`` = [q; k; v] (k has no bias in
Whisper: its slice is zero), cross-attention ``linear_1`` = [k; v].

A LoRA adapter (:func:`merge_lora`) is a dict ``"<transformers linear name>.lora_A/.lora_B"``;
merging adds ``scale * B @ A`` to that linear's weight.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperDecoder, WhisperEncoder

from lhama.errors import CheckpointError
from lhama.files import atomic_open

VERSION = 6
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2's type ids, in order
# transformers name (inside WhisperDecoder) -> (CTranslate2 name, slice of the fused rows: part, of parts)
_LAYER_MAP = {
    "self_attn_layer_norm.weight": ("self_attention/layer_norm/gamma", 0, 1),
    "self_attn_layer_norm.bias": ("self_attention/layer_norm/beta", 0, 1),
    "self_attn.q_proj.weight": ("self_attention/linear_0/weight", 0, 3),
    "self_attn.q_proj.bias": ("self_attention/linear_0/bias", 0, 3),
    "self_attn.k_proj.weight": ("self_attention/linear_0/weight", 1, 3),
    "self_attn.v_proj.weight": ("self_attention/linear_0/weight", 2, 3),
    "self_attn.v_proj.bias": ("self_attention/linear_0/bias", 2, 3),
    "self_attn.out_proj.weight": ("self_attention/linear_1/weight", 0, 1),
    "self_attn.out_proj.bias": ("self_attention/linear_1/bias", 0, 1),
    "encoder_attn_layer_norm.weight": ("attention/layer_norm/gamma", 0, 1),
    "encoder_attn_layer_norm.bias": ("attention/layer_norm/beta", 0, 1),
    "encoder_attn.q_proj.weight": ("attention/linear_0/weight", 0, 1),
    "encoder_attn.q_proj.bias": ("attention/linear_0/bias", 0, 1),
    "encoder_attn.k_proj.weight": ("attention/linear_1/weight", 0, 2),
    "encoder_attn.v_proj.weight": ("attention/linear_1/weight", 1, 2),
    "encoder_attn.v_proj.bias": ("attention/linear_1/bias", 1, 2),
    "encoder_attn.out_proj.weight": ("attention/linear_2/weight", 0, 1),
    "encoder_attn.out_proj.bias": ("attention/linear_2/bias", 0, 1),
    "final_layer_norm.weight": ("ffn/layer_norm/gamma", 0, 1),
    "final_layer_norm.bias": ("ffn/layer_norm/beta", 0, 1),
    "fc1.weight": ("ffn/linear_0/weight", 0, 1),
    "fc1.bias": ("ffn/linear_0/bias", 0, 1),
    "fc2.weight": ("ffn/linear_1/weight", 0, 1),
    "fc2.bias": ("ffn/linear_1/bias", 0, 1),
}
_TOP_MAP = {
    "embed_tokens.weight": "decoder/embeddings/weight",
    "embed_positions.weight": "decoder/position_encodings/encodings",
    "layer_norm.weight": "decoder/layer_norm/gamma",
    "layer_norm.bias": "decoder/layer_norm/beta",
}
_ENCODER_TOP_MAP = {
    "conv1.weight": "encoder/conv1/weight", "conv1.bias": "encoder/conv1/bias",
    "conv2.weight": "encoder/conv2/weight", "conv2.bias": "encoder/conv2/bias",
    "embed_positions.weight": "encoder/position_encodings/encodings",
    "layer_norm.weight": "encoder/layer_norm/gamma", "layer_norm.bias": "encoder/layer_norm/beta",
}
ENCODER_PREFIX = "encoder."  # adapter keys for encoder linears: "encoder.layers.5.fc1.lora_A"


@dataclass
class Ct2Model:
    """The contents of a ``model.bin``: variables in file order, aliases (alias, target)."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: list[tuple[str, str]] = field(default_factory=list)


def read_ct2(path: str | Path) -> Ct2Model:
    """Read a CTranslate2 ``model.bin`` (binary version 6).

    Raises:
        CheckpointError: missing, truncated, or another binary version.
    """
    try:
        data = Path(path).read_bytes()
        return _parse(data)
    except (OSError, struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read the CTranslate2 model {path}: {exc}") from None


def _parse(data: bytes) -> Ct2Model:
    at = 0

    def take(fmt: str):
        nonlocal at
        values = struct.unpack_from(fmt, data, at)
        at += struct.calcsize(fmt)
        return values

    def text() -> str:
        nonlocal at
        (size,) = take("H")
        at += size
        return data[at - size: at - 1].decode("utf-8")

    (version,) = take("I")
    if version != VERSION:
        raise ValueError(f"binary version {version}, lhama reads {VERSION}")
    model = Ct2Model(text(), take("I")[0])
    for _ in range(take("I")[0]):
        name = text()
        (rank,) = take("B")
        shape = take("I" * rank)
        dtype, nbytes = take("B")[0], take("I")[0]
        if dtype == 5:
            raise ValueError(f"{name} is bfloat16, which lhama does not read")
        model.variables[name] = np.frombuffer(data, DTYPES[dtype], nbytes // np.dtype(DTYPES[dtype]).itemsize,
                                              at).reshape(shape)
        at += nbytes
    model.aliases = [(text(), text()) for _ in range(take("I")[0])]
    return model


def write_ct2(path: str | Path, model: Ct2Model) -> None:
    """Write ``model`` as a CTranslate2 ``model.bin`` (temp file + rename)."""
    def text(handle, value: str) -> None:
        raw = value.encode("utf-8")
        handle.write(struct.pack("H", len(raw) + 1) + raw + b"\0")

    with atomic_open(path, "wb") as handle:
        handle.write(struct.pack("I", VERSION))
        text(handle, model.spec)
        handle.write(struct.pack("I", model.revision) + struct.pack("I", len(model.variables)))
        for name, value in model.variables.items():
            text(handle, name)
            handle.write(struct.pack("B", value.ndim) + struct.pack("I" * value.ndim, *value.shape))
            raw = np.ascontiguousarray(value).tobytes()
            handle.write(struct.pack("B", DTYPES.index(value.dtype.name)) + struct.pack("I", len(raw)) + raw)
        handle.write(struct.pack("I", len(model.aliases)))
        for alias, target in model.aliases:
            text(handle, alias)
            text(handle, target)


def decoder_config(model: Ct2Model) -> WhisperConfig:
    """The transformers config of ``model``'s decoder (sizes read from its tensors)."""
    vocab, width = model.variables["decoder/embeddings/weight"].shape
    layers = sum(1 for n in model.variables if n.startswith("decoder/layer_") and n.endswith("ffn/linear_0/bias"))
    return WhisperConfig(
        vocab_size=vocab, d_model=width, decoder_layers=layers, encoder_layers=1,
        decoder_attention_heads=int(model.variables["decoder/num_heads"]),
        decoder_ffn_dim=model.variables["decoder/layer_0/ffn/linear_0/bias"].shape[0],
        max_target_positions=model.variables["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=vocab - 1, bos_token_id=vocab - 1, eos_token_id=vocab - 1, decoder_start_token_id=vocab - 1,
    )


def decoder_names(layers: int) -> dict[str, tuple[str, int, int]]:
    """Every decoder tensor's transformers name -> (CTranslate2 name, part, parts)."""
    names = {hf: (ct2, 0, 1) for hf, ct2 in _TOP_MAP.items()}
    for i in range(layers):
        names.update({f"layers.{i}.{hf}": (f"decoder/layer_{i}/{ct2}", part, parts)
                      for hf, (ct2, part, parts) in _LAYER_MAP.items()})
    return names


def load_decoder(model: Ct2Model) -> WhisperDecoder:
    """``model``'s decoder as a float32 transformers ``WhisperDecoder`` (eval mode).

    Its logits are ``hidden @ embed_tokens.weight.T`` (Whisper ties the output projection)."""
    config = decoder_config(model)
    decoder = WhisperDecoder(config)
    state = {}
    for hf, (ct2, part, parts) in decoder_names(config.decoder_layers).items():
        tensor = torch.from_numpy(model.variables[ct2].astype(np.float32))
        state[hf] = tensor.chunk(parts, 0)[part].clone()
    missing, unexpected = decoder.load_state_dict(state, strict=False)
    if unexpected or missing:  # Whisper's k_proj has no bias: nothing is left out
        raise CheckpointError(f"CTranslate2 decoder does not map onto WhisperDecoder: {missing} {unexpected}")
    return decoder.eval()


def encoder_names(layers: int) -> dict[str, tuple[str, int, int]]:
    """Every encoder tensor's transformers name (inside ``WhisperEncoder``) -> (CTranslate2
    name, part, parts): an encoder layer is a decoder layer without the cross-attention."""
    names = {hf: (ct2, 0, 1) for hf, ct2 in _ENCODER_TOP_MAP.items()}
    for i in range(layers):
        names.update({f"layers.{i}.{hf}": (f"encoder/layer_{i}/{ct2}", part, parts)
                      for hf, (ct2, part, parts) in _LAYER_MAP.items() if not hf.startswith("encoder_attn")})
    return names


def _encoder_layers(model: Ct2Model) -> int:
    """How many layers ``model``'s encoder has (one feed-forward block each)."""
    return sum(1 for n in model.variables if n.startswith("encoder/layer_") and n.endswith("ffn/linear_0/bias"))


def load_encoder(model: Ct2Model) -> WhisperEncoder:
    """``model``'s encoder as a float32 transformers ``WhisperEncoder`` (eval mode): log-mel
    (n, n_mels, 2 * positions) -> states (n, positions, d), as CTranslate2 computes them.

    Raises:
        CheckpointError: the model has no encoder, or it does not map onto ``WhisperEncoder``.
    """
    try:
        width, mels, _ = model.variables["encoder/conv1/weight"].shape
        positions = model.variables["encoder/position_encodings/encodings"].shape[0]
        layers = _encoder_layers(model)
        config = WhisperConfig(d_model=width, num_mel_bins=mels, encoder_layers=layers, max_source_positions=positions,
                               encoder_attention_heads=int(model.variables["encoder/num_heads"]),
                               encoder_ffn_dim=model.variables["encoder/layer_0/ffn/linear_0/bias"].shape[0])
        state = {hf: torch.from_numpy(model.variables[ct2].astype(np.float32)).chunk(parts, 0)[part].clone()
                 for hf, (ct2, part, parts) in encoder_names(layers).items()}
    except KeyError as exc:
        raise CheckpointError(f"the CTranslate2 Whisper has no encoder tensor {exc}") from None
    encoder = WhisperEncoder(config)
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if unexpected or missing:
        raise CheckpointError(f"CTranslate2 encoder does not map onto WhisperEncoder: {missing} {unexpected}")
    return encoder.eval()


def store_decoder(model: Ct2Model, state: dict[str, torch.Tensor], encoder: bool = False) -> Ct2Model:
    """A copy of ``model`` whose decoder tensors are ``state`` (a ``WhisperDecoder`` state dict;
    with ``encoder``, a ``WhisperEncoder`` one and the encoder's tensors), in each variable's own
    dtype; every other tensor, the config values and the aliases are kept."""
    variables = dict(model.variables)
    layers = _encoder_layers(model) if encoder else decoder_config(model).decoder_layers
    for hf, (ct2, part, parts) in (encoder_names if encoder else decoder_names)(layers).items():
        if hf not in state:
            continue
        fused = variables[ct2].astype(np.float32)  # a fresh array: the original stays untouched
        rows = fused.shape[0] // parts
        fused[part * rows: (part + 1) * rows] = state[hf].detach().float().numpy()
        variables[ct2] = fused.astype(model.variables[ct2].dtype)
    return Ct2Model(model.spec, model.revision, variables, list(model.aliases))


def merge_lora(state: dict[str, torch.Tensor], adapter: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """``state`` with each adapted linear's weight + ``scale * B @ A`` (a new dict).

    Raises:
        CheckpointError: the adapter names a weight ``state`` lacks, or a shape does not fit.
    """
    merged = dict(state)
    for key in sorted(k for k in adapter if k.endswith(".lora_A")):
        target = key.removesuffix(".lora_A") + ".weight"
        a, b = adapter[key].float(), adapter[key.removesuffix("_A") + "_B"].float()
        if target not in merged or tuple(merged[target].shape) != (b.shape[0], a.shape[1]):
            raise CheckpointError(f"the Whisper adapter's {key} does not fit the decoder weight {target}")
        merged[target] = merged[target].float() + scale * (b @ a)
    return merged


def merge_adapter(model: Ct2Model, adapter: dict[str, torch.Tensor], scale: float) -> Ct2Model:
    """``model`` with a Whisper LoRA adapter merged: decoder keys (``layers.0.fc1.lora_A``) into
    the decoder, :data:`ENCODER_PREFIX` keys (``encoder.layers.5.fc1.lora_A``) into the encoder.

    Raises:
        CheckpointError: an adapter tensor does not fit the model.
    """
    parts = {False: {k: v for k, v in adapter.items() if not k.startswith(ENCODER_PREFIX)},
             True: {k.removeprefix(ENCODER_PREFIX): v for k, v in adapter.items() if k.startswith(ENCODER_PREFIX)}}
    for encoder, tensors in parts.items():
        if tensors:
            state = (load_encoder(model) if encoder else load_decoder(model)).state_dict()
            model = store_decoder(model, merge_lora(state, tensors, scale), encoder=encoder)
    return model


WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # copied beside the tuned model.bin


def build_tuned(base_dir: Path, adapter_dir: Path, out: Path) -> dict:
    """Write ``out``: the CTranslate2 Whisper in ``base_dir`` with the LoRA adapter in
    ``adapter_dir`` merged into its decoder, and the base's config and tokenizer. Returns what
    was checked.

    Raises:
        CheckpointError: the adapter was trained on another base model, or does not fit it.
    """
    import json

    from safetensors.torch import load_file

    from lhama.weights.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, sha256

    settings = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base_sha = sha256(base_dir / "model.bin")
    if settings.get("base_model_sha256") != base_sha:
        raise CheckpointError(f"the Whisper adapter in {adapter_dir} was trained on another model than {base_dir}; "
                              "prepare the registered base again (`lhama models prepare whisper-base --force`)")
    model = read_ct2(base_dir / "model.bin")
    adapter = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    out.mkdir(parents=True, exist_ok=True)
    write_ct2(out / "model.bin", merge_adapter(model, adapter, float(settings["scale"])))
    for name in WHISPER_FILES:
        (out / name).write_bytes((base_dir / name).read_bytes())
    return {"base_model_sha256": base_sha, "lora_tensors": len(adapter), "scale": settings["scale"]}


def convert_tuned_whisper(source, version: str, work: Path, report, part_dirs: tuple[Path, ...]) -> Path:
    """The prepare step of a tuned Whisper entry: merge the adapter lhama ships into the
    prepared base (``part_dirs[0]``), check the result encodes like a Whisper, write its manifest."""
    from lhama.model.audio import check_ct2_whisper
    from lhama.weights.convert import PREPARE_STEPS
    from lhama.weights.manifest import adapter_sha256, shipped_adapter, write_manifest

    report(PREPARE_STEPS[0])
    adapter_dir = shipped_adapter(source)
    report(PREPARE_STEPS[1])
    out = work / "model"
    built = build_tuned(part_dirs[0], adapter_dir, out)
    report(PREPARE_STEPS[3])
    verified = {**built, **check_ct2_whisper(out)}
    info = {"package": source.distribution, "version": version, "adapter": source.gguf_file,
            "adapter_sha256": adapter_sha256(adapter_dir), "parts": list(source.parts)}
    write_manifest(out, info, verified)
    return out
