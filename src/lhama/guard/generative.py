"""A guard that asks a local causal LM (Llama Guard 3 1B/8B, or any instruct model) with the
Llama Guard prompt and parses its answer. transformers stays inside this module."""

from __future__ import annotations

from pathlib import Path

import torch

from lhama.errors import CheckpointError
from lhama.guard.base import Guard, Messages, Role, as_chat
from lhama.guard.prompt import llama3_wrap, render_task
from lhama.guard.verdict import Verdict, parse_verdict


class GenerativeGuard(Guard):
    """Greedy-decodes at most ``max_new_tokens`` after the prompt and reads ``safe``/``unsafe``."""

    def __init__(self, model: torch.nn.Module, tokenizer: object, max_new_tokens: int = 12) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens

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

    @torch.inference_mode()
    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        text = self.prompt(messages, role)
        batch = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        pad = self.tokenizer.pad_token_id
        out = self.model.generate(
            **batch, max_new_tokens=self.max_new_tokens, do_sample=False,
            pad_token_id=self.tokenizer.eos_token_id if pad is None else pad,
        )
        answer = self.tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        return parse_verdict(answer)


def load_generative(model_dir: Path) -> GenerativeGuard:
    """Load a causal LM and its tokenizer from a local directory (CPU, no downloads)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (model_dir / "config.json").is_file():
        raise CheckpointError(f"{model_dir} is not a model directory: config.json is missing")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    return GenerativeGuard(model, tokenizer)
