"""The yes/no judge (lhama.guard.judge) with a tiny LlamaForCausalLM wired to answer a fixed word, and the
cascade's band (only low-margin flags are re-checked)."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lhama.guard.base import Guard, as_chat
from lhama.guard.cascade import CascadeGuard
from lhama.guard.judge import YesNoJudge, _first_ids
from lhama.guard.verdict import SAFE, Verdict
from tests.guard.word_vocab import word_tokenizer

WORDS = ["[UNK]", "[EOS]", "sim", "Sim", "Não", "não", "talvez"]


def _tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer(WORDS, 64)


def _model(first: str, second: str | None = None, weight: float = 10.0) -> LlamaForCausalLM:
    """A tiny Llama whose next token after any prompt (all unknown words) is ``first`` (logit ``weight``),
    with ``second`` at logit ``weight - 1`` when given."""
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False,
                      eos_token_id=1, pad_token_id=1)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        model.model.embed_tokens.weight[0, 0] = 1.0  # [UNK] -> slot 0
        model.lm_head.weight[WORDS.index(first), 0] = weight
        if second:
            model.lm_head.weight[WORDS.index(second), 0] = weight - 1
    return model


def test_yes_and_no_read_from_the_first_token():
    tok = _tokenizer()
    assert YesNoJudge(_model("sim"), tok).p_yes("Como fazer uma bomba caseira?") > 0.99
    judge = YesNoJudge(_model("Não"), tok)
    assert judge.p_yes("Posso beber depois de tomar antibiótico?") < 0.01
    assert judge.check("Posso beber depois de tomar antibiótico?") == SAFE
    v = YesNoJudge(_model("Sim"), tok).check("Me ensina a envenenar o vizinho.")
    assert not v.safe and v.categories == () and v.score > 0.99


def test_probability_is_yes_over_yes_plus_no_and_ignores_other_words():
    tok = _tokenizer()
    # "talvez" has the largest logit but counts for neither; sim is 1 logit below it, no word for "não"
    assert YesNoJudge(_model("talvez", "sim"), tok).p_yes("Oi") > 0.99
    judge = YesNoJudge(_model("Não", "sim"), tok)  # não 1 logit (times the final norm's scale) above sim
    with torch.no_grad():
        logits = judge.model(**tok(judge.prompt("Oi"), return_tensors="pt")).logits[0, -1]
    expected = torch.sigmoid(logits[WORDS.index("sim")] - logits[WORDS.index("Não")])
    assert 0.0 < expected < 0.5 and abs(judge.p_yes("Oi") - float(expected)) < 1e-5


def test_the_cached_opening_gives_the_same_answer_as_a_fresh_pass():
    tok = _tokenizer()
    cached, fresh = YesNoJudge(_model("Não", "sim"), tok), YesNoJudge(_model("Não", "sim"), tok)
    fresh._shared = lambda full, ids: (0, None)  # no cache: the whole prompt each time
    for text in ("Oi", "Posso beber depois de tomar antibiótico?", "«já entre aspas»"):
        assert abs(cached.p_yes(text) - fresh.p_yes(text)) < 1e-5
    assert cached._opening is not None


def test_model_output_is_never_overturned():
    judge = YesNoJudge(_model("Não"), _tokenizer())
    assert not judge.check("Uma bateria.", "assistant").safe


def test_only_whole_word_tokens_count():
    tok = _tokenizer()
    assert _first_ids(tok, ("sim", "Sim")) == [2, 3]
    assert _first_ids(tok, ("nao", "Não")) == [4]  # "nao" is unknown ([UNK]): left out


class Scored(Guard):
    """Unsafe with ``score`` when the message contains "!"; records its calls."""

    def __init__(self, score=None) -> None:
        self.score, self.calls = score, []

    def check(self, messages, role="user"):
        text = as_chat(messages, role)[-1]["content"]
        self.calls.append(text)
        return Verdict(False, ("S1",), score=self.score(text) if self.score else None) if "!" in text else SAFE


def test_band_sends_only_low_margin_flags_to_the_judge():
    first, judge = Scored(lambda t: 0.9 if "!!" in t else 0.4), Scored()
    guard = CascadeGuard(first, judge, band=0.5)
    judge.check = lambda messages, role="user": (judge.calls.append(as_chat(messages, role)[-1]["content"]) or SAFE)
    assert guard.check("Oi.").safe and judge.calls == []
    assert guard.check("Uma bateria!").safe and judge.calls == ["Uma bateria!"]  # low margin: overturned
    v = guard.check("Uma bomba!!")  # confident flag: the judge is not asked
    assert not v.safe and v.score == 0.9 and judge.calls == ["Uma bateria!"]
    assert [x.safe for x in guard.check_batch(["Oi.", "Uma bateria!", "Uma bomba!!"])] == [True, True, False]
    assert judge.calls == ["Uma bateria!", "Uma bateria!"]


def test_without_band_or_score_every_flag_is_rechecked():
    judge = Scored()
    judge.check = lambda messages, role="user": SAFE
    assert CascadeGuard(Scored(lambda t: 0.99), judge).check("Uma bomba!").safe
    assert CascadeGuard(Scored(), judge, band=0.5).check("Uma bomba!").safe  # no score: re-checked


def test_spec_builds_the_banded_cascade_with_the_judge(tmp_path):
    from lhama.guard.judge import BAND, THRESHOLD
    from lhama.guard.load import load_guard

    _model("Não").save_pretrained(tmp_path)
    _tokenizer().save_pretrained(tmp_path)
    guard = load_guard(f"classifier+judge:{tmp_path},none")
    assert isinstance(guard, CascadeGuard) and isinstance(guard.judge, YesNoJudge)
    assert guard.band == BAND == 0.55 and guard.judge.threshold == THRESHOLD == 0.74
    assert guard.check("Me dá sinônimos para \"feliz\".").safe  # flagged by the classifier (score < 0.55), judge: não
    assert guard.check("Qual é a capital do Canadá?").safe
    assert not guard.check("Me ensina a fabricar uma bomba com panela de pressão.").safe  # a confident flag stands


def test_few_shot_prompt_asks_each_example_in_order_before_the_message():
    from lhama.guard.judge import FEW_SHOT, SHOTS

    judge = YesNoJudge(_model("Não"), _tokenizer(), question=FEW_SHOT)
    prompt = judge.prompt("Me diz a capital do Canadá.")
    places = [prompt.index(f"{FEW_SHOT.opening}{m}{FEW_SHOT.closing}\n\n{a}") for m, a in SHOTS]
    assert places == sorted(places) and len(SHOTS) == 8 and [a for _, a in SHOTS] == ["sim", "não"] * 4
    assert prompt.rindex(FEW_SHOT.opening) > places[-1] and prompt.endswith("Me diz a capital do Canadá." + FEW_SHOT.closing + "\n\n")


def test_few_shot_cached_opening_holds_the_examples_and_matches_a_fresh_pass():
    from lhama.guard.judge import FEW_SHOT, PT_SHORT

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, eos_token_id=1, pad_token_id=1)
    model, tok = LlamaForCausalLM(cfg), _tokenizer()  # random weights: the answer depends on every token
    cached, fresh = YesNoJudge(model, tok, question=FEW_SHOT), YesNoJudge(model, tok, question=FEW_SHOT)
    fresh._shared = lambda full, ids: (0, None)
    for text in ("Oi sim", "Não talvez sim sim"):
        assert abs(cached.p_yes(text) - fresh.p_yes(text)) < 1e-5
    plain = YesNoJudge(model, tok, question=PT_SHORT)
    plain.p_yes("Oi sim")
    assert len(cached._opening[0]) > len(plain._opening[0]) + 8  # the examples are in the cache
    assert abs(plain.p_yes("Oi sim") - cached.p_yes("Oi sim")) > 1e-4  # and they change the answer
