"""Structured pruning of a Llama-style decoder: whole layers (depth), MLP channels and query heads
(width), chosen by their importance on calibration text (train/importance.py), as Llama 3.2's
1B/3B were cut from a larger model before distillation.

* depth: ``layers=K`` removes the K layers of lowest block influence (their output is closest to
  their input), or ``drop_layers`` names them;
* MLP width: ``mlp_ratio=r`` keeps the share r of each layer's intermediate channels (the most
  important ones);
* attention width: ``heads=h`` keeps h query heads per layer, h / G in each of the G key-value
  groups (so every KV head and the KV cache size stay as they are).

The output is a model directory of the same family (config updated: ``num_hidden_layers``,
``intermediate_size``, ``num_attention_heads``/``head_dim``, per-layer lists), loadable by
``transformers.AutoModelForCausalLM`` and :func:`lhama.model.build.load_model`; the tokenizer is
written with it, atomically (temp dir + rename). :func:`prune` is ``lhama prune``'s one call: it
resolves the model, prunes, writes, and its :class:`PruneResult` says what changed
(:meth:`PruneResult.summary`, calibration perplexity before and after included).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from lhama.errors import ConfigError
from lhama.model import build
from lhama.train.importance import Importance, calibration_nll, decoder_layers, measure, perplexity, read_calibration
from lhama.weights.resolve import resolve


@dataclass(frozen=True)
class PruneConfig:
    model: str  # a causal-LM (or lhama/LLaVA) model directory, or a prepared model's name
    out: str  # the pruned model directory to write
    layers: int = 0  # decoder layers to remove, the least influential on the calibration text
    drop_layers: tuple[int, ...] = ()  # or: exactly these layers (0-based)
    mlp_ratio: float = 1.0  # share of MLP intermediate channels kept in every layer
    heads: int | None = None  # query heads kept per layer (a multiple of the KV-head count); None: all
    calib: str | None = None  # calibration text (.txt lines or .jsonl); needed unless only drop_layers
    calib_texts: int = 64  # at most this many calibration texts are read
    max_tokens: int = 256  # each calibration text is cut to this many tokens

    @property
    def needs_calibration(self) -> bool:
        return self.layers > 0 or self.mlp_ratio < 1.0 or self.heads is not None


@dataclass(frozen=True)
class PruneResult:
    out: Path
    dropped_layers: tuple[int, ...]
    layers: tuple[int, int]  # before, after
    intermediate_size: tuple[int, int]
    heads: tuple[int, int]
    parameters: tuple[int, int]
    calib_nll: tuple[float, float] | None  # mean next-token loss before, after (with calibration)
    block_influence: tuple[float, ...]  # per original layer (empty without calibration)
    seconds: float

    @property
    def perplexity(self) -> tuple[float, float] | None:
        """Calibration perplexity before and after (None without calibration)."""
        return None if self.calib_nll is None else (perplexity(self.calib_nll[0]), perplexity(self.calib_nll[1]))

    def summary(self) -> str:
        """One line: what was dropped, each shape before -> after, and the calibration perplexity."""
        ppl = self.perplexity
        change = f"; calibration perplexity {ppl[0]:.2f} -> {ppl[1]:.2f}" if ppl else ""
        return (f"dropped layers {list(self.dropped_layers)}; layers {self.layers[0]} -> {self.layers[1]}, "
                f"MLP {self.intermediate_size[0]} -> {self.intermediate_size[1]}, heads {self.heads[0]} -> "
                f"{self.heads[1]}, parameters {self.parameters[0]:,} -> {self.parameters[1]:,}{change}")


def prune(config: PruneConfig, echo: Callable[[str], None] = print) -> PruneResult:
    """Load ``config.model`` (a directory, or a prepared model's name), prune it as configured
    and write ``config.out``.

    Raises:
        ConfigError: nothing to prune, or a request past a limit (more layers than exist, zero
            heads, heads not a multiple of the key-value groups, mlp_ratio outside (0, 1]).
        DataError: unreadable or empty calibration file. CheckpointError: unreadable model dir, or
            an unknown or unprepared name.
        ModelError: not a Llama-style decoder."""
    started = time.perf_counter()
    config = replace(config, model=str(resolve(config.model, config.model)))
    _check_request(config)
    _check_limits(config, _text_config(config.model))  # before loading: a 6 GB load just to refuse is slow
    texts = read_calibration(config.calib)[: config.calib_texts] if config.calib else []
    loaded = build.load_model(config.model)
    lm, tokenizer = loaded.model.language_model, loaded.tokenizer
    layers = decoder_layers(lm)
    before = _shape(lm)
    score = measure(lm, tokenizer, texts, config.max_tokens) if config.needs_calibration else None
    if score:
        echo(f"calibration: {len(texts)} texts, {score.tokens} tokens, loss {score.nll:.4f}")
    drop = _layers_to_drop(config, score)
    _prune_width(lm, layers, config, score)
    drop_decoder_layers(lm, drop)
    after_nll = calibration_nll(lm, tokenizer, texts, config.max_tokens) if texts else None
    build.save_model(loaded, config.out)
    after = _shape(lm)
    return PruneResult(
        Path(config.out), drop, *zip(before, after), (score.nll, after_nll) if score else None,
        score.block_influence if score else (), time.perf_counter() - started,
    )


def _shape(lm: nn.Module) -> tuple[int, int, int, int]:
    """(layers, intermediate size, query heads, parameters) of the decoder as it is now."""
    c = lm.config
    return c.num_hidden_layers, c.intermediate_size, c.num_attention_heads, sum(p.numel() for p in lm.parameters())


def _check_request(config: PruneConfig) -> None:
    if config.layers and config.drop_layers:
        raise ConfigError("give either --layers K (the K least important) or --drop-layers i,j, not both")
    if config.layers < 0:
        raise ConfigError(f"--layers must be >= 0 (decoder layers to remove), got {config.layers}")
    if not 0.0 < config.mlp_ratio <= 1.0:
        raise ConfigError(f"--mlp-ratio must be in (0, 1] (share of MLP channels kept), got {config.mlp_ratio}")
    if not (config.needs_calibration or config.drop_layers):
        raise ConfigError("nothing to prune: give --layers, --drop-layers, --mlp-ratio or --heads")
    if config.calib_texts < 1:
        raise ConfigError(f"--calib-texts must be >= 1 (calibration texts read), got {config.calib_texts}")
    if config.needs_calibration and not config.calib:
        raise ConfigError("--layers, --mlp-ratio and --heads rank structure on calibration text: give --calib FILE "
                          "(.txt, one text per line, or .jsonl with 'text')")


def _text_config(model_dir: str) -> dict:
    """The decoder's settings from ``config.json`` (``text_config`` of a multimodal model); {} when
    unreadable (loading the model then reports why)."""
    try:
        raw = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw.get("text_config", raw) if isinstance(raw, dict) else {}


def _check_limits(config: PruneConfig, text: dict) -> None:
    if not all(isinstance(text.get(k), int) for k in ("num_hidden_layers", "intermediate_size", "num_attention_heads")):
        return
    n, channels, heads = text["num_hidden_layers"], text["intermediate_size"], text["num_attention_heads"]
    if config.layers >= n:
        raise ConfigError(f"--layers {config.layers}: the model has {n} decoder layers; remove at most {n - 1}")
    bad = [i for i in config.drop_layers if not 0 <= i < n]
    if bad:
        raise ConfigError(f"--drop-layers {bad[0]}: layers are numbered 0..{n - 1}")
    if len(set(config.drop_layers)) >= n:
        raise ConfigError(f"--drop-layers removes all {n} decoder layers; keep at least one")
    if round(config.mlp_ratio * channels) < 1:
        raise ConfigError(f"--mlp-ratio {config.mlp_ratio} keeps no MLP channel of {channels}; raise it")
    if config.heads is not None:
        _check_heads(config.heads, heads, text.get("num_key_value_heads") or heads)


def _check_heads(keep: int, heads: int, kv: int) -> None:
    if keep < 1:
        raise ConfigError(f"--heads {keep}: a layer needs at least one query head per key-value group ({kv})")
    if keep > heads:
        raise ConfigError(f"--heads {keep}: the model has {heads} query heads per layer; keep at most {heads}")
    if keep % kv:
        choices = ", ".join(str(m) for m in range(kv, heads + 1, kv))
        raise ConfigError(f"--heads {keep} does not split evenly over the {kv} key-value groups; use one of {choices}")


def _layers_to_drop(config: PruneConfig, score: Importance | None) -> tuple[int, ...]:
    if config.drop_layers:
        return tuple(sorted(set(config.drop_layers)))
    if not config.layers:
        return ()
    order = sorted(range(len(score.block_influence)), key=lambda i: score.block_influence[i])
    return tuple(sorted(order[: config.layers]))


def _prune_width(lm: nn.Module, layers: nn.ModuleList, config: PruneConfig, score: Importance | None) -> None:
    if config.mlp_ratio < 1.0:
        keep = max(1, round(config.mlp_ratio * lm.config.intermediate_size))
        for layer, channels in zip(layers, score.mlp_channels):
            prune_mlp(layer.mlp, _top(channels, keep))
        lm.config.intermediate_size = keep
    if config.heads is not None and config.heads < lm.config.num_attention_heads:
        kv = lm.config.num_key_value_heads
        for layer, heads in zip(layers, score.heads):
            prune_heads(layer.self_attn, _top_per_group(heads, config.heads // kv, kv), kv)
        lm.config.head_dim = layers[0].self_attn.head_dim  # no longer hidden_size / heads
        lm.config.num_attention_heads = config.heads


def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` highest scores, in their original order."""
    return torch.topk(scores, keep).indices.sort().values


def _top_per_group(scores: torch.Tensor, keep: int, groups: int) -> torch.Tensor:
    """The ``keep`` best heads of each of ``groups`` consecutive groups, in order."""
    size = scores.numel() // groups
    return torch.cat([g * size + _top(scores[g * size : (g + 1) * size], keep) for g in range(groups)])


def drop_decoder_layers(lm: nn.Module, drop: Sequence[int]) -> None:
    """Remove layers ``drop`` in place; renumber the rest (KV-cache slots) and slice per-layer
    config lists (``layer_types``)."""
    if not drop:
        return
    layers = decoder_layers(lm)
    n = len(layers)
    kept = [i for i in range(n) if i not in set(drop)]
    lm.model.layers = nn.ModuleList(layers[i] for i in kept)
    for new, layer in enumerate(lm.model.layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new
    config = lm.config
    for key, value in vars(config).items():
        if isinstance(value, list) and len(value) == n and key != "architectures":
            setattr(config, key, [value[i] for i in kept])
    config.num_hidden_layers = len(kept)
    if isinstance(getattr(config, "max_window_layers", None), int):
        config.max_window_layers = min(config.max_window_layers, len(kept))


def prune_mlp(mlp: nn.Module, keep: torch.Tensor) -> None:
    """Keep intermediate channels ``keep``: rows of gate/up, columns of down."""
    mlp.gate_proj = _slice(mlp.gate_proj, rows=keep)
    mlp.up_proj = _slice(mlp.up_proj, rows=keep)
    mlp.down_proj = _slice(mlp.down_proj, cols=keep)
    if hasattr(mlp, "intermediate_size"):
        mlp.intermediate_size = len(keep)


def prune_heads(attention: nn.Module, keep: torch.Tensor, kv_heads: int) -> None:
    """Keep query heads ``keep`` (grouped evenly over the ``kv_heads`` KV groups): rows of
    q_proj, columns of o_proj. Key and value projections are untouched."""
    d = attention.head_dim
    dims = (keep[:, None] * d + torch.arange(d)).flatten()  # (len(keep) * d,)
    attention.q_proj = _slice(attention.q_proj, rows=dims)
    attention.o_proj = _slice(attention.o_proj, cols=dims)
    attention.num_key_value_groups = len(keep) // kv_heads


def _slice(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    weight = linear.weight.detach()
    weight = weight[rows] if rows is not None else weight
    weight = weight[:, cols] if cols is not None else weight
    bias = linear.bias
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias.detach()[rows] if rows is not None else bias.detach())
    return new
