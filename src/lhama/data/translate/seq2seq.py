"""Any local transformers seq2seq translation model: MarianMT, NLLB, M2M100.

Users who downloaded a model point ``--model`` at its directory; nothing is fetched. NLLB and
M2M100 need language codes (``--src-lang eng_Latn --tgt-lang por_Latn``; M2M100: ``en``/``pt``);
MarianMT models are single-direction and need none.
"""

from __future__ import annotations

from pathlib import Path

from lhama.errors import CheckpointError

_MAX_GROWTH = 3  # a translation longer than 3x its source (+16 tokens) is a runaway loop


class Seq2SeqBackend:
    """A seq2seq model and tokenizer loaded from a local directory, decoding in batches."""

    def __init__(self, model_dir: Path, src_lang: str | None, tgt_lang: str | None) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if not (model_dir / "config.json").is_file():
            raise CheckpointError(f"{model_dir} is not a transformers model directory (no config.json)")
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self._model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"cannot load translation model from {model_dir}: {first_line}") from None
        self._model.eval()
        self._torch = torch
        self._forced_bos = self._language_token(src_lang, tgt_lang)

    def _language_token(self, src_lang: str | None, tgt_lang: str | None) -> int | None:
        if src_lang is not None:
            self._tokenizer.src_lang = src_lang
        if tgt_lang is None:
            return None
        get_lang_id = getattr(self._tokenizer, "get_lang_id", None)  # M2M100
        token_id = get_lang_id(tgt_lang) if get_lang_id else self._tokenizer.convert_tokens_to_ids(tgt_lang)
        if token_id is None or token_id == self._tokenizer.unk_token_id:
            raise CheckpointError(f"target language {tgt_lang!r} is not in the tokenizer of this model")
        return int(token_id)

    def translate_batch(self, texts: list[str]) -> list[str]:
        batch = self._tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=512)
        limit = int(batch["input_ids"].shape[1]) * _MAX_GROWTH + 16
        extra = {"forced_bos_token_id": self._forced_bos} if self._forced_bos is not None else {}
        with self._torch.inference_mode():
            out = self._model.generate(**batch, max_new_tokens=limit, **extra)
        return [t.strip() for t in self._tokenizer.batch_decode(out, skip_special_tokens=True)]
