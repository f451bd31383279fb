"""The keys/values of a conversation's opening kept on disk, so a new process does not prefill them.

Every chat with a model begins with the same tokens: the chat template, the model's system prompt
(~100 tokens for lhama-default) and the user turn's opening. A one-shot ``lhama chat`` prefills
them again in every process, and on a CPU the prefill is most of the time to first token
(docs/default-model.md, session 11). :class:`StoredPrefix` keeps those positions' keys/values in
one file per (model weights, opening ids): :meth:`~StoredPrefix.seed` gives a new conversation a
:class:`~lhama.inference.kv.KVState` that already holds them (prefilling and storing them on the
first use, which costs no more than the prefill it replaces); the prefill then computes only what
follows (:func:`lhama.inference.kv.prepare` reuses the shared run).

A file is trusted only when its recorded weights key and ids are this model's and this opening's
and its tensors have the model's shapes; anything else (another model, an old or torn file) is
ignored and written again. Writes go to a temporary file renamed into place. The keys/values a
causal model computes for a prefix depend on the prefix alone, and every prefill runs in aligned chunks
(:func:`lhama.inference.kv.chunk_ends`; a file records the chunk size it was prefilled with), so a chat from
the stored opening holds the bits a full prefill of its prompt holds and answers the same tokens
(tests/inference/test_prefix_agreement.py; on a real model benchmarks/prefix_agreement.py checks it). ``LHAMA_PREFIX_CACHE=0``
switches this (and the server's :class:`~lhama.inference.prefix.PrefixCache`) off; the files go
under :func:`store_dir` (``$LHAMA_PREFIX_DIR``, else ``<lhama home>/prefix-cache``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from lhama.home import lhama_home
from lhama.inference.kv import CHUNK, KVState, holding, prefill

MIN_STORED = 16  # shorter openings are not worth a file


def store_dir() -> Path:
    """Where openings are stored: ``$LHAMA_PREFIX_DIR`` if set and non-empty, else
    ``<lhama home>/prefix-cache`` (:func:`lhama.home.lhama_home`)."""
    return Path(os.environ.get("LHAMA_PREFIX_DIR") or lhama_home() / "prefix-cache").expanduser()


def weights_key(model: nn.Module) -> str:
    """A digest of ``model``'s tensors: names, shapes, dtypes and the first and last 256 bytes of
    each (a re-quantised or re-prepared model changes it; reading every byte would cost seconds)."""
    digest = hashlib.sha256()
    for name, tensor in sorted({**dict(model.named_parameters()), **dict(model.named_buffers())}.items()):
        flat = tensor.detach().reshape(-1)
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        for part in (flat[:256], flat[-256:]):
            digest.update(part.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


class StoredPrefix:
    """Openings' keys/values under ``directory`` for the model whose :func:`weights_key` is ``key``."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory, self.key = Path(directory), key

    def path(self, ids: Sequence[int]) -> Path:
        name = hashlib.sha256(json.dumps([self.key, list(ids)]).encode()).hexdigest()[:24]
        return self.directory / f"prefix-{name}.safetensors"

    def seed(self, model: nn.Module, ids: Sequence[int]) -> KVState:
        """A state holding ``ids``' keys/values (``model`` a LhamaModel): read from the file, or
        prefilled now and stored. Empty (nothing reused) when off or ``ids`` is too short."""
        state = KVState(chunked=True)  # exact reuse (lhama.inference.kv.prefill)
        if os.environ.get("LHAMA_PREFIX_CACHE", "1") == "0" or len(ids) < MIN_STORED:
            return state
        language_model = model.language_model
        layers = self._read(ids, language_model)
        if layers is not None:
            return holding(language_model, layers, ids)
        with torch.no_grad():
            prefill(model, ids, None, state, 1)
        self._write(ids, state)
        return state

    def _read(self, ids: Sequence[int], language_model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        from safetensors import safe_open

        path = self.path(ids)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                if (meta.get("key") != self.key or json.loads(meta.get("ids", "null")) != list(ids)
                        or meta.get("chunk") != str(CHUNK)):  # a file from before chunked prefills: other bits
                    return None
                layers = [(handle.get_tensor(f"k{n}"), handle.get_tensor(f"v{n}")) for n in range(int(meta["layers"]))]
        except Exception:  # noqa: BLE001 -- a torn or foreign file is ignored, never trusted
            return None
        config = language_model.config.get_text_config(decoder=True)
        if len(layers) != config.num_hidden_layers or any(k.shape[2] != len(ids) or k.shape != v.shape for k, v in layers):
            return None
        return layers

    def _write(self, ids: Sequence[int], state: KVState) -> None:
        """Store the first ``len(ids)`` positions of ``state`` (temp file + rename); a failure to
        write (read-only home, full disk) only means the next process prefills again."""
        from safetensors.torch import save_file

        n = len(ids)
        tensors = {}
        for index, layer in enumerate(state.cache.layers):
            tensors[f"k{index}"] = layer.keys[:, :, :n].contiguous()
            tensors[f"v{index}"] = layer.values[:, :, :n].contiguous()
        meta = {"key": self.key, "ids": json.dumps(list(ids)), "layers": str(len(state.cache.layers)), "chunk": str(CHUNK)}
        temp = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            os.close(handle)
            save_file(tensors, temp, metadata=meta)
            os.replace(temp, self.path(ids))
            temp = None
        except OSError:
            pass
        finally:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)
