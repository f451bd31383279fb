"""A speculative draft whose output layer scores part of the vocabulary only.

The draft only proposes; the model checks every token (:mod:`lhama.inference.speculative`), so a
draft that cannot propose a rare token costs a rejected proposal, never another answer. Its output
layer is a large share of what it reads per token: Qwen2.5-Coder-0.5B's 151,936 rows of 896 are
~27% of its int4 bytes. :func:`trim_head` keeps the rows of the given ids only (byte-level BPE ids
come roughly in merge order, common pieces first: :func:`kept_ids` takes the first ``first`` ids, the
special tokens, and any ``extra`` ids), copied bit for bit from the quantised layer, so each kept
id's logit is the full layer's; the ids left out score ``-inf``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from lhama.errors import ModelError
from lhama.inference.qlinear import Int4KLinear, Int4Linear, Int8Linear, unpacked_int4

_ROWS = 64  # kept rows are a whole number of the int4 kernel's row blocks (it packs 64 rows together)
_CHUNK = 4096  # output rows unpacked and packed again at a time (a multiple of _ROWS)
_LEAN = "_lhama_lean"  # lhama.inference.lean's decoder cache on the model: rebuilt after the swap


def latin_ids(tokenizer) -> list[int]:
    """The ids whose text is Latin script: letters below U+0250 (ASCII, Latin-1, Latin Extended A/B: every
    Portuguese letter), digits, spaces, punctuation (ASCII and U+2000-U+206F), and the byte pieces of a
    character split across tokens (they decode to U+FFFD); the CJK, Cyrillic, Arabic... tokens are left
    out (Qwen2.5: 101,041 of 151,936 ids; session 8's 24 pt-BR dev answers use none of the others)."""
    return [i for i in range(len(tokenizer)) if _latin(tokenizer.decode([i]))]


def _latin(text: str) -> bool:
    return all(ch.isspace() or ch.isdigit() or ord(ch) < 0x250 or 0x2000 <= ord(ch) < 0x2070 or ch == "\ufffd"
               for ch in text)


# Named draft vocabularies (``load_draft(..., vocab=name)``): a tokenizer -> the ids to keep (special tokens added)
VOCABS: dict[str, Callable[..., list[int]]] = {"latin": latin_ids}


class TrimmedHead(nn.Module):
    """An output layer over ``ids`` only: ``forward`` gives (..., vocab) logits, ``-inf`` off ``ids``."""

    def __init__(self, layer: nn.Module, ids: torch.Tensor, vocab: int) -> None:
        super().__init__()
        self.layer, self.vocab = layer, vocab
        self.in_features, self.out_features, self.bias = layer.in_features, vocab, None  # as a linear layer's
        self.register_buffer("ids", ids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.layer(x)
        out = rows.new_full((*rows.shape[:-1], self.vocab), float("-inf"))
        return out.index_copy_(-1, self.ids, rows)


def kept_ids(vocab: int, first: int, special: Iterable[int] = (), extra: Iterable[int] = ()) -> torch.Tensor:
    """The sorted ids ``0..first-1``, ``special`` and ``extra`` (those below ``vocab``), filled up with
    the next ids after ``first`` to a multiple of 64 rows (the int4 kernel's blocks).

    Raises:
        ModelError: ``first`` is not in 0..vocab, or nothing is kept (one line, naming the limit)."""
    if not 0 <= first <= vocab:
        raise ModelError(f"a draft vocabulary keeps the first 0..{vocab} ids of {vocab}, got {first}")
    keep = set(range(first)) | {i for i in (*special, *extra) if 0 <= i < vocab}
    if not keep:
        raise ModelError("a draft vocabulary must keep at least one id")
    filler = (i for i in range(first, vocab) if i not in keep)
    while len(keep) % _ROWS and len(keep) < vocab:
        keep.add(next(filler))
    return torch.tensor(sorted(keep), dtype=torch.long)


def special_ids(tokenizer) -> list[int]:
    """The ids of ``tokenizer``'s special and added tokens (end of turn, chat markers...): a trimmed
    draft keeps them whatever their place (Qwen2.5's sit after the 151,643 byte-level ids)."""
    added = [tokenizer.convert_tokens_to_ids(token) for token in tokenizer.get_added_vocab()]
    return sorted({*tokenizer.all_special_ids, *added} - {None})


def trim_head(language_model: nn.Module, ids: torch.Tensor) -> nn.Module:
    """Swap ``language_model``'s output layer for a :class:`TrimmedHead` over ``ids`` (its rows copied,
    bit for bit) and return the model; a lean decoder built before is dropped (built again on use).

    Raises:
        ModelError: an output layer of another kind (int8, int4 and float layers are covered)."""
    head = language_model.get_output_embeddings()
    vocab = head.out_features
    language_model.set_output_embeddings(TrimmedHead(rows_of(head, ids), ids, vocab))
    if _LEAN in language_model.__dict__:
        object.__delattr__(language_model, _LEAN)
    return language_model


def rows_of(layer: nn.Module, ids: torch.Tensor) -> nn.Module:
    """A layer of ``layer``'s kind whose output j is ``layer``'s output ``ids[j]``, bit for bit."""
    bias = getattr(layer, "bias", None) is not None
    if type(layer) is nn.Linear:
        out = nn.Linear(layer.in_features, len(ids), bias, dtype=layer.weight.dtype)
        out.weight = nn.Parameter(layer.weight.detach()[ids].clone(), requires_grad=False)
    elif type(layer) is Int8Linear:
        out = Int8Linear(layer.in_features, len(ids), bias)
        out.weight.copy_(layer.weight[ids])
        out.scales.copy_(layer.scales[ids])
    elif type(layer) in (Int4Linear, Int4KLinear):
        out = type(layer)(layer.in_features, len(ids), bias, layer.group_size)
        _copy_int4_rows(layer.weight, out.weight, ids)
        for name in ("scales_and_zeros",) if type(layer) is Int4Linear else ("codes", "supers"):
            _copy_columns(getattr(layer, name), getattr(out, name), ids, dim=1 if name != "supers" else 2)
    else:
        raise ModelError(f"cannot trim an output layer of kind {type(layer).__name__}: use a float, int8 or int4 draft")
    if bias:
        out.bias.copy_(layer.bias[ids])
    return out


def _copy_columns(source: torch.Tensor, target: torch.Tensor, ids: torch.Tensor, dim: int) -> None:
    """``target``'s first len(ids) slices along ``dim`` = ``source``'s at ``ids``; padding ones zero."""
    target.zero_()
    target.narrow(dim, 0, len(ids)).copy_(source.index_select(dim, ids))


def _copy_int4_rows(source: torch.Tensor, target: torch.Tensor, ids: torch.Tensor) -> None:
    """``target`` (packed int4, rows >= len(ids)) = ``source``'s rows ``ids``, padding rows zero: unpacked
    and packed again ``_CHUNK`` rows at a time (whole 64-row blocks pack alone, as the whole matrix does),
    so only a chunk's int32 values are ever in memory (the whole 0.5B layer would be 545 MB)."""
    blocks = source.view(source.shape[0] // _ROWS, _ROWS, source.shape[1])
    for start in range(0, target.shape[0], _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = min(_CHUNK, target.shape[0] - start)
        needed, where = torch.unique(chunk // _ROWS, return_inverse=True)  # source blocks, each id's block
        q = unpack_int4(blocks[needed].reshape(-1, source.shape[1]))[where * _ROWS + chunk % _ROWS]
        q = torch.cat([q, q.new_zeros(rows - len(chunk), q.shape[1])])
        target[start : start + rows] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The 4-bit values (N, K) int32 of ``_convert_weight_to_int4pack_for_cpu``'s (N, K/2) bytes, in the layout
    PyTorch packs on this CPU (64-row blocks with AVX512, 32 without: :func:`lhama.inference.qlinear.unpacked_int4`)."""
    return unpacked_int4(packed).to(torch.int32)
