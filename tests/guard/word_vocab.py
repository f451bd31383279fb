"""A word-level tokenizer over a fixed word list, for the tiny LMs of the guard tests (judge, generative)."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def word_tokenizer(words: list[str], size: int) -> PreTrainedTokenizerFast:
    """``words`` take ids 0.. in order (``words[0]`` the unknown token, ``words[1]`` the end), then fillers
    ``w<i>`` up to ``size`` ids; text is split on whitespace."""
    vocab = {w: i for i, w in enumerate(words)}
    vocab.update({f"w{i}": i for i in range(len(words), size)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token=words[0]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=words[0], eos_token=words[1])
