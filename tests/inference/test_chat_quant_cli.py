"""``lhama chat --quant/--draft`` as a user runs it: a real process on tiny model directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.inference.generate import GenerationConfig, complete
from lhama.inference.quant_cache import load_for_inference
from tests.inference.tiny import tiny_decoder

ROOT = Path(__file__).resolve().parents[2]


def lhama(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lhama", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def _save(directory: Path, seed: int, extra_token: str | None = None) -> Path:
    loaded = tiny_decoder(seed=seed)
    if extra_token:
        loaded.tokenizer.add_tokens([extra_token])
    loaded.model.language_model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return directory


def test_chat_with_int4_and_a_draft_answers_like_plain_greedy(tmp_path) -> None:
    model, draft = _save(tmp_path / "lm", 0), _save(tmp_path / "draft", 5)
    question = "Qual é a capital do Brasil?"
    fast = lhama("chat", "--model", str(model), "--no-guard", "--system", "", "--max-tokens", "12",
                 "--repetition-penalty", "1.0", "--quant", "int4", "--draft", str(draft), question)
    assert fast.returncode == 0, fast.stderr
    assert (model / "quant-int4-g32" / "quant.json").is_file()  # --quant int4 is int4-g32
    plain = load_for_inference(model, "int4")  # the cached copy the chat wrote
    messages = [{"role": "user", "content": question}]
    ids = encode_prompt(plain.tokenizer, render_prompt(plain.tokenizer, messages))
    *_, done = complete(plain.model, plain.tokenizer, ids, GenerationConfig(max_new_tokens=12))
    assert fast.stdout.strip() == done.text.strip() and done.text.strip()


def test_a_quant_this_machine_cannot_run_is_one_red_line(tmp_path) -> None:
    bad = lhama("chat", "--model", str(_save(tmp_path / "lm", 0)), "--no-guard", "--quant", "int3", "Oi")
    assert bad.returncode == 2
    assert "unknown --quant 'int3'; choose one of: none, bf16, int8, int4" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_chat_with_the_lookup_draft_answers_like_plain_greedy(tmp_path) -> None:
    """``--draft lookup`` needs no draft model; a question that repeats itself gives the lookup ids to propose."""
    model = _save(tmp_path / "lm", 0)
    question = "Repita: a casa azul, a casa azul, a casa azul, a casa azul."
    fast = lhama("chat", "--model", str(model), "--no-guard", "--system", "", "--max-tokens", "16",
                 "--repetition-penalty", "1.0", "--quant", "none", "--draft", "lookup", question)
    assert fast.returncode == 0, fast.stderr
    plain = load_for_inference(model, "none")
    ids = encode_prompt(plain.tokenizer, render_prompt(plain.tokenizer, [{"role": "user", "content": question}]))
    *_, done = complete(plain.model, plain.tokenizer, ids, GenerationConfig(max_new_tokens=16))
    assert fast.stdout.strip() == done.text.strip() and done.text.strip()


def test_a_draft_quant_for_the_lookup_draft_is_one_red_line(tmp_path) -> None:
    bad = lhama("chat", "--model", str(tmp_path), "--no-guard", "--draft", "lookup", "--draft-quant", "int8", "Oi")
    assert bad.returncode == 2
    assert "--draft lookup has no model" in bad.stderr and "Traceback" not in bad.stderr
