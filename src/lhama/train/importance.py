"""Structure importance on calibration text, for pruning (train/prune.py).

One pass of the decoder over the calibration texts (one text at a time, so no padding) with hooks
measures, per decoder layer:

* **block influence** (ShortGPT, Men et al. 2024): the mean over tokens of
  ``1 - cos(layer input, layer output)``. A layer whose output is nearly its input changes the
  residual stream least; dropping it costs least.
* **MLP channel importance**: mean |activation| entering ``down_proj`` times the norm of that
  channel's ``down_proj`` column (what the channel adds to the residual stream).
* **attention head importance**: the mean norm of each query head's share of ``o_proj``'s output.

The decoder is any Llama-style causal LM (Llama, Qwen2, SmolLM2, Gemma 3): ``model.layers[i]``
with ``self_attn.{q,k,v,o}_proj`` and ``mlp.{gate,up,down}_proj``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lhama.errors import DataError, ModelError

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Importance:
    """Scores from one calibration pass (higher = more important)."""

    block_influence: tuple[float, ...]  # per layer, mean 1 - cos(input, output)
    mlp_channels: tuple[torch.Tensor, ...]  # per layer, (intermediate_size,)
    heads: tuple[torch.Tensor, ...]  # per layer, (num_attention_heads,)
    nll: float  # mean next-token loss of the unpruned model on the calibration text
    tokens: int  # calibration tokens seen


def decoder_layers(language_model: nn.Module) -> nn.ModuleList:
    """The decoder's block list, checked to be Llama-style.

    Raises:
        ModelError: the model has no ``model.layers`` of blocks with the projections above."""
    layers = getattr(getattr(language_model, "model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise ModelError(f"{type(language_model).__name__} has no model.layers; pruning supports Llama-style decoders "
                         "(Llama, Qwen2, SmolLM2, Gemma 3)")
    for name in ATTENTION + MLP:
        part = layers[0].self_attn if name in ATTENTION else layers[0].mlp
        if not isinstance(getattr(part, name, None), nn.Linear):
            raise ModelError(f"{type(language_model).__name__} layers have no {name}; pruning supports Llama-style "
                             "decoders (Llama, Qwen2, SmolLM2, Gemma 3)")
    return layers


def read_calibration(path: str | Path) -> list[str]:
    """Calibration texts: a ``.txt`` file (one text per non-blank line) or ``.jsonl`` records with
    ``text``, or chat ``messages``/``conversations`` (their contents joined by newlines).

    Raises:
        DataError: missing or unreadable file, or no text in it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"calibration file not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [_record_text(line, path) for line in lines] if path.suffix == ".jsonl" else lines
    texts = [t for t in texts if t]
    if not texts:
        raise DataError(f"{path} holds no calibration text; give a .txt with one text per line or a .jsonl with 'text'")
    return texts


def _record_text(line: str, path: Path) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: a line is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        return ""
    if isinstance(record.get("text"), str):
        return record["text"].strip()
    turns = record.get("messages") or record.get("conversations") or []
    return "\n".join(str(t.get("content", t.get("value", ""))) for t in turns if isinstance(t, dict)).strip()


def measure(language_model: nn.Module, tokenizer: Any, texts: Sequence[str], max_tokens: int = 256) -> Importance:
    """Run the calibration texts through ``language_model`` and score its structure."""
    layers = decoder_layers(language_model)
    sums = _Sums(layers)
    handles = _hooks(layers, sums)
    try:
        nll, tokens = _nll_sum(language_model, tokenizer, texts, max_tokens)
    finally:
        for handle in handles:
            handle.remove()
    if tokens == 0:
        raise DataError("the calibration texts tokenise to fewer than 2 tokens each; give longer texts")
    return sums.result(nll / tokens, tokens)


def calibration_nll(language_model: nn.Module, tokenizer: Any, texts: Sequence[str], max_tokens: int = 256) -> float:
    """Mean next-token loss (nats per token) of ``language_model`` on the calibration texts."""
    nll, tokens = _nll_sum(language_model, tokenizer, texts, max_tokens)
    return nll / max(tokens, 1)


def _nll_sum(language_model: nn.Module, tokenizer: Any, texts: Sequence[str], max_tokens: int) -> tuple[float, int]:
    """Summed next-token loss and token count, one text at a time (no padding)."""
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens).input_ids
            if ids.shape[1] < 2:
                continue
            logits = language_model(input_ids=ids).logits  # (1, T, V)
            nll += float(F.cross_entropy(logits[0, :-1].float(), ids[0, 1:], reduction="sum"))
            tokens += ids.shape[1] - 1
    return nll, tokens


class _Sums:
    """Running sums the hooks add to; ``result`` turns them into means."""

    def __init__(self, layers: nn.ModuleList) -> None:
        n = len(layers)
        self.influence = [0.0] * n
        self.mlp = [torch.zeros(layer.mlp.down_proj.in_features) for layer in layers]
        self.heads = [torch.zeros(_head_count(layer)) for layer in layers]
        self.positions = [0] * n
        self.down_norms = [layer.mlp.down_proj.weight.detach().float().norm(dim=0) for layer in layers]

    def result(self, nll: float, tokens: int) -> Importance:
        count = [max(p, 1) for p in self.positions]
        return Importance(
            tuple(s / c for s, c in zip(self.influence, count)),
            tuple(s / c * norm for s, c, norm in zip(self.mlp, count, self.down_norms)),
            tuple(s / c for s, c in zip(self.heads, count)),
            nll, tokens,
        )


def _head_count(layer: nn.Module) -> int:
    return layer.self_attn.q_proj.out_features // _head_dim(layer)


def _head_dim(layer: nn.Module) -> int:
    attention = layer.self_attn
    head_dim = getattr(attention, "head_dim", None)
    if not head_dim:
        raise ModelError(f"{type(attention).__name__} has no head_dim; pruning supports Llama-style decoders")
    return int(head_dim)


def _hooks(layers: nn.ModuleList, sums: _Sums) -> list[Any]:
    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(_influence_hook(i, sums), with_kwargs=True))
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(_mlp_hook(i, sums)))
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(_head_hook(i, sums, _head_dim(layer))))
    return handles


def _influence_hook(i: int, sums: _Sums) -> Any:
    def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        hidden_in = args[0] if args else kwargs["hidden_states"]
        hidden_out = output[0] if isinstance(output, tuple) else output
        cos = F.cosine_similarity(hidden_in.float().flatten(0, 1), hidden_out.float().flatten(0, 1), dim=-1)  # (T,)
        sums.influence[i] += float((1 - cos).sum())
        sums.positions[i] += cos.numel()
    return hook


def _mlp_hook(i: int, sums: _Sums) -> Any:
    def hook(module: nn.Module, args: tuple) -> None:
        sums.mlp[i] += args[0].detach().float().abs().flatten(0, 1).sum(0)  # (I,)
    return hook


def _head_hook(i: int, sums: _Sums, head_dim: int) -> Any:
    def hook(module: nn.Module, args: tuple) -> None:
        x = args[0].detach().float().flatten(0, 1)  # (T, H * d)
        heads = x.shape[-1] // head_dim
        w = module.weight.detach().float().view(-1, heads, head_dim)  # (D, H, d)
        share = torch.einsum("thd,ohd->tho", x.view(-1, heads, head_dim), w)  # (T, H, D): each head's part of o_proj
        sums.heads[i] += share.norm(dim=-1).sum(0)
    return hook


def perplexity(nll: float) -> float:
    """exp(nll), capped so a diverged model prints as inf rather than overflowing."""
    return math.exp(nll) if nll < 700 else math.inf
