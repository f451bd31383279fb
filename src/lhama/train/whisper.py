"""Tune Whisper's decoder with LoRA on stored encoder states (the encoder stays frozen, or
with ``encoder_ffn`` only its last feed-forward block gets LoRA too, on stored "mid" states, or
with ``encoder_attn`` its whole last layer, attention included, on stored "pre" states, or with
``encoder_layers=2`` too its top two layers, on the states entering them, "pre2").

Follow a batch: shards of (encoder states, text) from :mod:`lhama.recipes.default.whisper_ptbr`
-> target ids ``<|startoftranscript|><|pt|><|transcribe|><|notimestamps|> text <|endoftext|>``
-> the CTranslate2 model's decoder as a transformers ``WhisperDecoder`` with LoRA on its
linears (:class:`LoraLinear`) -> logits = hidden @ token embeddings (tied, frozen) -> cross
entropy on the text and end tokens. The cross-attention keys and values over the 1500 encoder
states stay frozen: they are most of the compute, and training them would need their gradient.

The project's machinery does the rest: AdamW + warm-up/cosine (``train.optim``), checkpoints
with the data position and RNG (``train.checkpoint``; ``resume=True`` continues), and a time
limit per run (``max_minutes``) so a long tuning splits into turns. The result is an adapter
directory (``adapter.safetensors`` fp16 + ``adapter_config.json``) that
:func:`lhama.weights.whisper_ct2.merge_adapter` merges into the CTranslate2 weights.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from lhama.config import to_dict
from lhama.errors import ConfigError, DataError
from lhama.files import atomic_write_text
from lhama.train.checkpoint import Position, latest_checkpoint, load_checkpoint, save_checkpoint
from lhama.train.config import OptimConfig
from lhama.train.distributed import DistInfo
from lhama.train.optim import build_optimizer, build_scheduler
from lhama.weights.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, sha256
from lhama.weights.whisper_ct2 import read_ct2

PROMPT = ("<|startoftranscript|>", "<|pt|>", "<|transcribe|>", "<|notimestamps|>")
END = "<|endoftext|>"
TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
           "encoder_attn.q_proj", "encoder_attn.out_proj", "fc1", "fc2")
# Also the cross-attention's keys and values: a low-rank remap of the (frozen) encoder's states as
# the decoder reads them; costs the gradient of the 1500 keys/values per layer (#28 session 5).
CROSS_KV_TARGETS = (*TARGETS, "encoder_attn.k_proj", "encoder_attn.v_proj")
# Session 6: LoRA on the encoder's last feed-forward block too (``encoder_ffn``). Its input (the
# last layer's states after its self-attention, "mid") is stored instead of the encoder's output,
# so a step runs that block, the encoder's final norm and the decoder: no attention over 1500
# positions is differentiated inside the encoder.
MID = "mid"
# Session 7: LoRA on the last encoder layer's self-attention too (``encoder_attn``): its input
# (the states entering the last layer, "pre") is stored, and a step runs the whole last layer.
PRE = "pre"
ENCODER_ATTN_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")
# Session 8: the top ``n`` encoder layers, whole (``encoder_layers=n`` with ``encoder_attn``): the
# states entering the n-th layer from the top are stored under ``pre_key(n)`` ("pre", "pre2", ...).
Report = Callable[[dict], None]


@dataclass(frozen=True)
class WhisperTuneConfig:
    data_dir: str  # holds train/ and dev/ shards
    whisper_dir: str  # the CTranslate2 Whisper directory tuned (model.bin, tokenizer.json)
    output_dir: str = "runs/whisper-ptbr"
    rank: int = 16
    alpha: float = 32.0  # LoRA scale = alpha / rank
    targets: tuple[str, ...] = TARGETS  # the decoder linears that get LoRA (CROSS_KV_TARGETS: the keys/values too)
    epochs: int = 3
    batch_size: int = 8
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_ratio=0.05))
    checkpoint_every: int = 20  # optimizer steps
    max_minutes: float = 0.0  # stop (after a checkpoint) once a run has lasted this long; 0: no limit
    seed: int = 0
    encoder_ffn: bool = False  # LoRA on the last encoder layer's fc1/fc2 too; the shards must hold "mid"
    encoder_attn: bool = False  # LoRA on the whole last encoder layer (attention + fc1/fc2); the shards must hold "pre"
    encoder_layers: int = 1  # with encoder_attn: this many top encoder layers, whole; the shards hold pre_key(n)

    def __post_init__(self) -> None:
        if self.encoder_layers < 1 or (self.encoder_layers > 1 and not self.encoder_attn):
            raise ConfigError(f"encoder_layers={self.encoder_layers}: use 1, or more with encoder_attn "
                              "(the top layers are tuned whole)")

    @property
    def key(self) -> str:
        """The stored tensors a run reads: the encoder's "states", :data:`MID` or :func:`pre_key`."""
        return pre_key(self.encoder_layers) if self.encoder_attn else MID if self.encoder_ffn else "states"

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def pre_key(layers: int) -> str:
    """The stored name of the states entering the top ``layers`` encoder layers: "pre", "pre2", ..."""
    return PRE if layers == 1 else f"{PRE}{layers}"


class LoraLinear(nn.Module):
    """``base(x) + scale * x @ A.T @ B.T``; ``base`` frozen, B starts at zero (no change at step 0)."""

    def __init__(self, base: nn.Linear, rank: int, scale: float) -> None:
        super().__init__()
        self.base, self.scale = base.requires_grad_(False), scale
        self.lora_A = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * F.linear(F.linear(x, self.lora_A), self.lora_B)


def add_lora(decoder: nn.Module, rank: int, scale: float, targets: tuple[str, ...] = TARGETS) -> nn.Module:
    """Freeze ``decoder`` and wrap every linear named in ``targets`` in :class:`LoraLinear`."""
    decoder.requires_grad_(False)
    for layer in decoder.layers:
        for target in targets:
            owner, name = (layer, target) if "." not in target else (getattr(layer, target.split(".")[0]),
                                                                     target.split(".")[1])
            setattr(owner, name, LoraLinear(getattr(owner, name), rank, scale))
    return decoder


class EncoderBlock(nn.Module):
    """One encoder layer as ``WhisperEncoderLayer`` computes it (pre-norm residual blocks): its
    feed-forward block, after its self-attention block when ``attention``."""

    def __init__(self, layer: nn.Module, attention: bool) -> None:
        super().__init__()
        if attention:
            self.self_attn_layer_norm, self.self_attn = layer.self_attn_layer_norm, layer.self_attn
        self.attention = attention
        self.final_layer_norm, self.fc1, self.fc2 = layer.final_layer_norm, layer.fc1, layer.fc2
        self.activation = layer.activation_fn

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        if self.attention:
            states = states + self.self_attn(self.self_attn_layer_norm(states))[0]
        return states + self.fc2(self.activation(self.fc1(self.final_layer_norm(states))))


class EncoderTop(nn.Module):
    """The encoder's last feed-forward block and final norm: "mid" states (after the last
    layer's self-attention) -> the encoder's output, as ``WhisperEncoder`` computes it. With
    ``attention``, the last layer's self-attention block first: "pre" states (entering the last
    layer) -> the output; with ``layers=n`` too, the top n layers whole: ``pre_key(n)`` -> the output."""

    def __init__(self, encoder: nn.Module, attention: bool = False, layers: int = 1) -> None:
        super().__init__()
        if layers > 1 and not attention:
            raise ConfigError("an encoder top of more than one layer runs them whole: pass attention=True")
        first = len(encoder.layers) - layers
        self.index, self.attention = len(encoder.layers) - 1, attention  # index: the last layer's
        self.layers = nn.ModuleDict({str(i): EncoderBlock(encoder.layers[i], attention)
                                     for i in range(first, len(encoder.layers))})
        self.layer_norm = encoder.layer_norm

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        for block in self.layers.values():
            states = block(states)
        return self.layer_norm(states)

    @property
    def targets(self) -> list[str]:
        """The encoder linears this top adapts, as :func:`adapter_state` names them."""
        names = [*(ENCODER_ATTN_TARGETS if self.attention else ()), "fc1", "fc2"]
        return [f"layers.{index}.{name}" for index in self.layers for name in names]


@torch.no_grad()
def encoder_mid(encoder: nn.Module, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mid, output) of ``encoder`` (a ``WhisperEncoder``) on log-mel ``mel`` (n, n_mels, frames):
    the last layer's states after its self-attention, and the encoder's output."""
    found = encoder_inner(encoder, mel)
    return found[MID], found["output"]


@torch.no_grad()
def encoder_inner(encoder: nn.Module, mel: torch.Tensor) -> dict[str, torch.Tensor]:
    """``encoder`` on log-mel ``mel``: {:data:`PRE`: the states entering its last layer,
    ``pre_key(n)``: those entering its n-th layer from the top, :data:`MID`: the last layer's
    states after its self-attention, "output": the encoder's output}."""
    last, seen = encoder.layers[-1], {}

    def keep(key: str, args: tuple, kwargs: dict) -> None:  # a hook that returns None changes nothing
        seen[key] = args[0] if args else kwargs["hidden_states"]

    def entering(key: str):
        return lambda _m, args, kwargs: keep(key, args, kwargs)

    count = len(encoder.layers)
    hooks = [encoder.layers[count - n].register_forward_pre_hook(entering(pre_key(n)), with_kwargs=True)
             for n in range(1, count + 1)]
    hooks.append(last.final_layer_norm.register_forward_pre_hook(lambda _m, args: keep(MID, args, {})))
    try:
        seen["output"] = encoder(mel).last_hidden_state
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def add_encoder_lora(encoder: nn.Module, rank: int, scale: float, attention: bool = False,
                     layers: int = 1) -> EncoderTop:
    """An :class:`EncoderTop` of ``encoder`` (frozen) over its top ``layers`` layers, with LoRA on
    each one's fc1 and fc2 (and with ``attention`` on its self-attention q/k/v/out too)."""
    top = EncoderTop(encoder, attention, layers).requires_grad_(False)
    for block in top.layers.values():
        block.fc1, block.fc2 = LoraLinear(block.fc1, rank, scale), LoraLinear(block.fc2, rank, scale)
        for name in ENCODER_ATTN_TARGETS if attention else ():
            owner, leaf = block.self_attn, name.split(".")[1]
            setattr(owner, leaf, LoraLinear(getattr(owner, leaf), rank, scale))
    return top


def adapter_state(decoder: nn.Module, top: EncoderTop | None = None) -> dict[str, torch.Tensor]:
    """The LoRA tensors named as :func:`lhama.weights.whisper_ct2.merge_adapter` reads them
    (``layers.0.fc1.lora_A``: the wrapped linear's own name, without ``.base``; the encoder's
    as ``encoder.layers.5.fc1.lora_A``)."""
    tensors = {name: p.detach().to(torch.float16).contiguous() for name, p in decoder.named_parameters()
               if "lora_" in name}
    if top is not None:
        tensors.update({f"encoder.{name}": p.detach().to(torch.float16).contiguous()  # layers.<index>.fc1...
                        for name, p in top.named_parameters() if "lora_" in name})
    return tensors


def load_split(data_dir: Path, split: str, tokenizer, key: str = "states") -> tuple[torch.Tensor, list[list[int]]]:
    """All windows of a split: (n, 1500, D) float16 ``key`` tensors (the encoder's "states",
    :data:`MID` or :data:`PRE`) and their target ids.

    Raises:
        DataError: no shards (run the data step first), or shards without ``key``.
    """
    shards = sorted((data_dir / split).glob("shard-*.pt"))
    if not shards:
        raise DataError(f"no {split} shards in {data_dir / split}; build them first (benchmarks/whisper_ptbr.py data)")
    loaded = [torch.load(p, weights_only=True) for p in shards]
    if any(key not in s for s in loaded):
        raise DataError(f"the {split} shards in {data_dir / split} hold no {key!r} tensors; build them with "
                        f"`{_data_command(key)}`")
    prompt = [tokenizer.token_to_id(t) for t in PROMPT]
    end = tokenizer.token_to_id(END)
    ids = [prompt + tokenizer.encode(" " + text, add_special_tokens=False).ids[:400] + [end]
           for shard in loaded for text in shard["texts"]]
    return torch.cat([s[key] for s in loaded]), ids


def _data_command(key: str) -> str:
    """The data step that stores ``key`` ("mid", "pre", "pre2" ...)."""
    if key.startswith(PRE) and key != PRE:
        return f"data --pre --layers {key.removeprefix(PRE)}"
    return f"data --{key}"


def batch_loss(decoder: nn.Module, states: torch.Tensor, ids: list[list[int]]) -> torch.Tensor:
    """Mean cross entropy of the text and end tokens of ``ids`` given ``states`` (n, 1500, D)."""
    width = max(len(x) for x in ids)
    inputs = torch.tensor([x[:-1] + [x[-1]] * (width - len(x)) for x in ids])  # (n, T - 1)
    labels = torch.tensor([[-100] * (len(PROMPT) - 1) + x[len(PROMPT):] + [-100] * (width - len(x)) for x in ids])
    hidden = decoder(input_ids=inputs, encoder_hidden_states=states.float()).last_hidden_state  # (n, T - 1, D)
    scored = labels != -100  # only these positions reach the 51,865-way output: padding costs nothing there
    logits = hidden[scored] @ decoder.embed_tokens.weight.T  # (tokens, V): Whisper ties its output projection
    return F.cross_entropy(logits, labels[scored])


def plan(count: int, config: WhisperTuneConfig) -> list[list[int]]:
    """Every batch of the run, in order (a seeded shuffle per epoch): a resumed run takes the same ones."""
    batches = []
    for epoch in range(config.epochs):
        order = list(range(count))
        random.Random(config.seed * 1000 + epoch).shuffle(order)
        batches += [order[i:i + config.batch_size] for i in range(0, count, config.batch_size)]
    return batches


def encoded(top: EncoderTop | None, inputs: torch.Tensor) -> torch.Tensor:
    """The encoder states the decoder reads: the stored states, or ``top`` applied to stored mids."""
    return inputs.float() if top is None else top(inputs.float())


@torch.no_grad()
def dev_loss(decoder: nn.Module, states: torch.Tensor, ids: list[list[int]], batch: int = 8,
             top: EncoderTop | None = None) -> float:
    trained = [m for m in (decoder, top) if m is not None]
    for module in trained:
        module.eval()
    losses = [batch_loss(decoder, encoded(top, states[i:i + batch]), ids[i:i + batch]).item()
              for i in range(0, len(ids), batch)]
    for module in trained:
        module.train()
    return sum(losses) / len(losses)


def _setup(config: WhisperTuneConfig):
    """(decoder, top or None, tokenizer-encoded train and dev splits) of a run."""
    from tokenizers import Tokenizer

    from lhama.weights.whisper_ct2 import load_decoder, load_encoder

    torch.manual_seed(config.seed)
    whisper = Path(config.whisper_dir)
    tokenizer = Tokenizer.from_file(str(whisper / "tokenizer.json"))
    train, dev = (load_split(Path(config.data_dir), split, tokenizer, config.key) for split in ("train", "dev"))
    model = read_ct2(whisper / "model.bin")
    decoder = add_lora(load_decoder(model), config.rank, config.scale, config.targets).train()
    top = None
    if config.encoder_ffn or config.encoder_attn:
        top = add_encoder_lora(load_encoder(model), config.rank, config.scale, config.encoder_attn,
                               config.encoder_layers).train()
    return decoder, top, train, dev


def tune_whisper(config: WhisperTuneConfig, resume: bool = False, report: Report | None = None) -> Path | None:
    """Train the LoRA adapter; write ``output_dir/adapter`` when every step is done and return
    it, or None when ``max_minutes`` stopped the run first (a checkpoint holds its place).

    Raises:
        DataError: no shards (or no mids for ``encoder_ffn``). CheckpointError: an unreadable or
            mismatched checkpoint.
    """
    decoder, top, (states, ids), (dev_states, dev_ids) = _setup(config)
    trained = decoder if top is None else nn.ModuleDict({"decoder": decoder, "top": top})
    batches = plan(len(ids), config)
    optimizer = build_optimizer(trained, config.optim)
    parts = {"model": trained, "optimizer": optimizer, "scheduler": build_scheduler(optimizer, len(batches), config.optim)}
    info, position = DistInfo(), Position()
    found = latest_checkpoint(config.output_dir) if resume else None
    if found is not None:
        position = load_checkpoint(found, parts, info)
    report = report or (lambda row: None)
    if position.step == 0:
        report({"step": 0, "of": len(batches), "dev_loss": dev_loss(decoder, dev_states, dev_ids, top=top)})
    started = time.monotonic()
    while position.step < len(batches):
        chosen = batches[position.step]
        loss = batch_loss(decoder, encoded(top, states[chosen]), [ids[i] for i in chosen])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained.parameters(), config.optim.max_grad_norm)
        optimizer.step()
        parts["scheduler"].step()
        optimizer.zero_grad(set_to_none=True)
        position = Position(position.step + 1)
        row = {"step": position.step, "of": len(batches), "loss": loss.item(), "lr": parts["scheduler"].get_last_lr()[0]}
        done, out_of_time = position.step == len(batches), config.max_minutes and time.monotonic() - started > 60 * config.max_minutes
        if position.step % config.checkpoint_every == 0 or done or out_of_time:
            save_checkpoint(config.output_dir, parts, position, info, keep=2)
            row["dev_loss"] = dev_loss(decoder, dev_states, dev_ids, top=top)
        report(row)
        if out_of_time and not done:
            return None
    return write_adapter(decoder, config, Path(config.whisper_dir), top)


def write_adapter(decoder: nn.Module, config: WhisperTuneConfig, whisper: Path, top: EncoderTop | None = None) -> Path:
    """``output_dir/adapter``: the LoRA tensors (fp16) and what they were trained on/for."""
    out = Path(config.output_dir) / "adapter"
    out.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(decoder, top), str(out / ADAPTER_WEIGHTS))
    settings = {"rank": config.rank, "alpha": config.alpha, "scale": config.scale, "targets": list(config.targets),
                "base_model_sha256": sha256(whisper / "model.bin"),
                "training": {k: v for k, v in to_dict(config).items() if k not in ("data_dir", "whisper_dir", "output_dir")}}
    if top is not None:  # the encoder linears with LoRA (adapter keys "encoder.layers.<layer>.<name>.lora_A/B")
        settings["encoder_targets"] = top.targets
    atomic_write_text(out / ADAPTER_CONFIG, json.dumps(settings, indent=2) + "\n")
    return out
