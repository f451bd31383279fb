"""A guard that asks a local causal LM (Llama Guard 3 1B/8B, or any instruct model) with the
Llama Guard prompt and parses its answer. transformers stays inside this module."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import torch
from transformers import DynamicCache

from lhama.errors import CheckpointError
from lhama.guard.base import Guard, Messages, Role, as_chat
from lhama.guard.prompt import CONVERSATION as _CONVERSATION, llama3_wrap, render_task
from lhama.guard.verdict import Verdict, parse_verdict


class GenerativeGuard(Guard):
    """Greedy-decodes at most ``max_new_tokens`` after the prompt and reads ``safe``/``unsafe``.

    The prompt's opening (instructions and the 14 categories, about 300 tokens) is the same for
    every check of a role, so its key/value cache is computed once and copied into each check
    (``reuse_prefix``): a check then reads only the conversation and the closing instructions.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: object, max_new_tokens: int = 12,
                 reuse_prefix: bool = True) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.reuse_prefix = reuse_prefix
        self._prefixes: dict[str, tuple[torch.Tensor, DynamicCache]] = {}

    def prompt(self, messages: Messages, role: Role = "user") -> str:
        """The exact text fed to the model for this check."""
        task = render_task(as_chat(messages, role), role)
        tok = self.tokenizer
        if "<|start_header_id|>" in tok.get_vocab():  # Llama 3 family, Llama Guard 3 included
            return llama3_wrap(task)
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(
                [{"role": "user", "content": task}], tokenize=False, add_generation_prompt=True
            )
        return task + "\n\n"

    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        return parse_verdict(self.answer(messages, role))

    @torch.inference_mode()
    def answer(self, messages: Messages, role: Role = "user") -> str:
        """The model's raw greedy answer to the check's prompt."""
        text = self.prompt(messages, role)
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        pad = self.tokenizer.pad_token_id
        out = self.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=self._opening(text, ids[0]),
            max_new_tokens=self.max_new_tokens, do_sample=False,
            pad_token_id=self.tokenizer.eos_token_id if pad is None else pad,
        )
        return self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

    def _opening(self, text: str, ids: torch.Tensor) -> DynamicCache | None:
        """A copy of the cached keys/values of the tokens ``ids`` shares with the prompt's fixed
        opening (everything before the conversation), or None (nothing to reuse)."""
        if not self.reuse_prefix or _CONVERSATION not in text:
            return None
        opening = text[: text.index(_CONVERSATION)]
        if opening not in self._prefixes:
            open_ids = self.tokenizer(opening, return_tensors="pt", add_special_tokens=False)["input_ids"]
            cache = DynamicCache(config=self.model.config)
            self.model(input_ids=open_ids, past_key_values=cache, use_cache=True)
            self._prefixes[opening] = (open_ids[0], cache)
        open_ids, cache = self._prefixes[opening]
        n = min(len(open_ids), len(ids) - 1)  # generate needs at least one new token to read
        same = (open_ids[:n] == ids[:n]).long()
        shared = int(same.cumprod(0).sum())  # tokens equal from the start
        if shared == 0:
            return None
        copy = deepcopy(cache)
        if shared < len(open_ids):
            copy.crop(shared - len(open_ids))  # transformers 5: a negative count of tokens to drop
        return copy


def load_generative(model_dir: Path, quant: str = "none") -> GenerativeGuard:
    """Load a causal LM and its tokenizer from a local directory (CPU, no downloads).

    ``quant`` (int8, int4, bf16) loads the language model quantised, through the cache beside the
    model that ``lhama chat --quant`` uses (``lhama.inference.quant_cache``): a 1.5B judge then
    needs about 1.9 GB instead of 7 GB (int4).

    Raises:
        CheckpointError: not a model directory. ConfigError: ``quant`` cannot run here.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (model_dir / "config.json").is_file():
        raise CheckpointError(f"{model_dir} is not a model directory: config.json is missing")
    if quant != "none":
        from lhama.inference.quant_cache import load_for_inference

        loaded = load_for_inference(model_dir, quant)
        return GenerativeGuard(loaded.model.language_model, loaded.tokenizer)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    return GenerativeGuard(model, tokenizer)
