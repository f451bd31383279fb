"""``judge:self``: the yes/no judge asks the model chat/serve already loaded (lhama.guard.judge.judge_of), with the
same decisions as a judge loaded from the same directory, one load only, and a one-line error where no model is
loaded or a quant is given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from transformers import LlamaConfig, LlamaForCausalLM

from lhama.errors import ConfigError
from lhama.guard.cascade import CascadeGuard
from lhama.guard.judge import THRESHOLD, YesNoJudge, judge_of, load_judge
from lhama.guard.load import load_guard
from lhama.model.branches import lhama_config
from lhama.model.build import LoadedModel, compose, save_model
from tests.guard.word_vocab import word_tokenizer

WORDS = ["[UNK]", "[EOS]", "sim", "não", "bomba", "bolo", "faca", "gato", "ajuda", "senha", "remédio", "veneno"]
MESSAGES = ["bomba", "bolo gato", "faca ajuda", "senha", "remédio veneno", "gato", "ajuda bolo bolo", "veneno faca"]


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    """A random tiny Llama over a word vocabulary that knows the messages' words, so P(sim) differs by message."""
    torch.manual_seed(7)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False,
                                      eos_token_id=1, pad_token_id=1))
    with torch.no_grad():  # sharper weights: the message words move P(sim) (0.65-0.75 here, not ~0.48 for all)
        for name, weight in lm.named_parameters():
            if "norm" not in name:
                weight.mul_(20.0)
    loaded = compose(lhama_config(image=None), lm, word_tokenizer(WORDS, 64))
    loaded.model.eval()
    return loaded


def test_shared_judge_decides_as_one_loaded_separately(loaded: LoadedModel, tmp_path: Path) -> None:
    shared = judge_of(loaded)
    assert shared.model is loaded.model.language_model and shared.threshold == THRESHOLD  # shared, not copied
    apart = load_judge(save_model(loaded, tmp_path / "model"), "none")
    assert apart.model is not shared.model
    p_shared = [shared.p_yes(m) for m in MESSAGES]
    p_apart = [apart.p_yes(m) for m in MESSAGES]
    assert p_shared == pytest.approx(p_apart, abs=1e-5)
    assert max(p_shared) - min(p_shared) > 0.05  # the messages are told apart: the comparison can fail
    cut = (max(p_shared) + min(p_shared)) / 2  # far from every probability: no tie to break
    decide = lambda judge: [judge.check(m).safe for m in MESSAGES]  # noqa: E731
    shared.threshold = apart.threshold = cut
    assert decide(shared) == decide(apart) and 0 < sum(decide(shared)) < len(MESSAGES)


def test_chat_session_loads_the_model_once(loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    import lhama.inference.quant_cache as quant_cache
    from lhama.serve.terminal import ChatConfig, open_session

    def second_load(*args, **kwargs):
        raise AssertionError("the judge loaded a second copy")

    monkeypatch.setattr(quant_cache, "load_for_inference", second_load)
    loads = []
    config = ChatConfig("tiny", prompt="Oi", guard_spec="classifier+judge:self")
    session = open_session(config, lambda model, quant: loads.append(model) or loaded, Console(stderr=True))
    assert loads == ["tiny"]
    assert isinstance(session.guard, CascadeGuard) and isinstance(session.guard.judge, YesNoJudge)
    assert session.guard.judge.model is loaded.model.language_model


def test_translated_cascade_passes_the_model_down(loaded: LoadedModel) -> None:
    guard = load_guard("translated:classifier+judge:self", loaded)  # the translated classifier, then the judge
    assert isinstance(guard, CascadeGuard) and guard.judge.model is loaded.model.language_model


@pytest.mark.parametrize("spec, said", [
    ("judge:self", "none is loaded here"),
    ("judge:self,int4", "takes no quant"),
    ("judge:self,int8", "takes no quant"),
])
def test_bad_self_spec_is_a_config_error(spec: str, said: str, loaded: LoadedModel) -> None:
    with pytest.raises(ConfigError, match=said):
        load_guard(spec, None if said.startswith("none") else loaded)


def test_guard_cli_without_a_loaded_model_says_so_in_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "lhama", "guard", "--guard", "classifier+judge:self", "Oi"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "judge:self" in proc.stderr and "judge:MODEL_DIR" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
