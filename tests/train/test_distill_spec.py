"""benchmarks/distill_spec.py: timed speculative decoding on the held-out prompts gives the plain
greedy tokens and counts each run's own proposals (tiny random models, a draft that agrees in part)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from lhama.inference.speculative import draft_for
from tests.inference.tiny import prompt_ids, tiny_decoder
from tests.train.test_distill_acceptance import noisy_copy

_SPEC = importlib.util.spec_from_file_location("distill_spec", Path(__file__).parents[2] / "benchmarks" / "distill_spec.py")
spec = importlib.util.module_from_spec(_SPEC)
sys.modules["distill_spec"] = spec  # its dataclass looks its module up
_SPEC.loader.exec_module(spec)

TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"


def test_timed_run_matches_plain_and_counts_its_own_proposals():
    target = tiny_decoder(seed=3)
    draft = draft_for(target, noisy_copy(target, 0.3, seed=1))
    ids = prompt_ids(5)
    plain = spec.timed_run(target, ids, 20, (), None)
    first = spec.timed_run(target, ids, 20, (), draft)
    second = spec.timed_run(target, ids, 20, (), draft)
    assert first["ids"] == second["ids"] == plain["ids"] and len(plain["ids"]) == 20
    assert plain["proposed"] == 0 and 0 < first["accepted"] < first["proposed"]
    assert (second["accepted"], second["proposed"]) == (first["accepted"], first["proposed"])  # per run, not cumulative
    assert draft.proposed == 2 * first["proposed"]
    assert 0 < first["ttft_s"] <= first["wall_s"]


def test_summary_totals():
    runs = [{"ids": [1] * 10, "wall_s": 2.0, "ttft_s": 0.5, "accepted": 3, "proposed": 6},
            {"ids": [1] * 4, "wall_s": 1.0, "ttft_s": 0.5, "accepted": 1, "proposed": 3}]
    found = spec.summary(runs)
    assert found["tokens"] == 14 and found["tok_s"] == pytest.approx(14 / 3, abs=1e-3)
    assert found["decode_tok_s"] == pytest.approx(12 / 2.0, abs=1e-3)
    assert (found["accepted"], found["proposed"], found["acceptance"]) == (4, 9, pytest.approx(0.444, abs=1e-3))
    assert spec.summary([{**runs[0], "accepted": 0, "proposed": 0}])["acceptance"] is None


def test_bench_on_the_held_out_prompts(monkeypatch, tmp_path):
    target = tiny_decoder(seed=3)
    target.tokenizer.chat_template = TEMPLATE
    drafts = {"same": target, "noisy": noisy_copy(target, 0.3, seed=2)}
    monkeypatch.setattr(spec, "load_for_inference", lambda path, quant: target)
    monkeypatch.setattr(spec, "load_draft", lambda path, loaded, quant, tokens=3: draft_for(loaded, drafts[path], tokens))
    run = spec.SpecRun("target", {"a": "same", "b": "noisy"}, "int8", prompts=3, tokens=12, out=tmp_path / "spec.json",
                       draft_reads={"a": 0, "b": 0})  # the whole prompt: the model as its own draft is then always right
    found = spec.bench(run)
    assert json.loads((tmp_path / "spec.json").read_text())["summary"] == found["summary"]
    assert found["prompts"] == 3 and found["identical_outputs"] is True
    assert found["summary"]["a"]["acceptance"] == 1.0  # the model as its own draft keeps every proposal
    assert found["summary"]["b"]["acceptance"] < 1.0
    tokens = sum(len(r["ids"]) for r in found["runs"]["plain"])
    assert found["summary"]["plain"]["tokens"] == found["summary"]["b"]["tokens"] == tokens


def test_held_out_prompts_are_the_held_out_split():
    text = (spec.DATA / "distill_prompts.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()]
    held = {r["prompt"] for r in rows if r["split"] == "heldout"}
    prompts = spec.held_out_prompts(8)
    assert len(prompts) == 8 and set(prompts) <= held
    assert not set(prompts) & {r["prompt"] for r in rows if r["split"] == "train"}


def test_drafts_with_their_own_proposal_counts_share_one_model(monkeypatch):
    target = tiny_decoder(seed=3)
    loads = []
    monkeypatch.setattr(spec, "load_draft", lambda path, loaded, quant, tokens=3, **trim: loads.append((path, quant, *trim.values()))
                        or draft_for(loaded, noisy_copy(target, 0.3, seed=2), tokens))
    assert spec._draft_arg("k2=~/m@2", 3) == ("k2", str(Path("~/m").expanduser()), 2, 0.0, "", "")
    assert spec._draft_arg("a=/m", 4) == ("a", "/m", 4, 0.0, "", "")
    assert spec._draft_arg("k4 sure=/m@4:0.6", 3) == ("k4 sure", "/m", 4, 0.6, "", "")
    assert spec._draft_arg("k2 int8=/m@2#int8", 3) == ("k2 int8", "/m", 2, 0.0, "int8", "")
    assert spec._draft_arg("i8=/m#int8", 3) == ("i8", "/m", 3, 0.0, "int8", "")
    assert spec._draft_arg("t=/m@1#int4-g32~latin", 3) == ("t", "/m", 1, 0.0, "int4-g32", "latin")
    assert spec._draft_arg("h=~/m~latin", 3) == ("h", str(Path("~/m").expanduser()), 3, 0.0, "", "latin")
    run = spec.SpecRun("t", {"a": "/m", "k2": "/m", "c": "/other", "a8": "/m", "k2 8": "/m"},
                       draft_tokens={"a": 3, "k2": 2, "c": 1, "a8": 1, "k2 8": 2},
                       draft_confidence={"k2": 0.6}, draft_quant="int4-g32", draft_quants={"a8": "int8", "k2 8": "int8"},
                       draft_vocab={"k2 8": "latin"})
    drafts = spec.load_drafts(run, target)
    assert loads == [("/m", "int4-g32"), ("/other", "int4-g32"), ("/m", "int8"), ("/m", "int8", "latin")]
    assert drafts["a"].model is drafts["k2"].model and drafts["a8"].model is not drafts["k2 8"].model
    assert drafts["a8"].model is not drafts["a"].model
    assert [drafts[n].tokens for n in ("a", "k2", "c", "a8")] == [3, 2, 1, 1]
    assert [drafts[n].confidence for n in ("a", "k2", "c")] == [0.0, 0.6, 0.0]
    plain = spec.timed_run(target, prompt_ids(5), 16, (), None)
    assert spec.timed_run(target, prompt_ids(5), 16, (), drafts["k2"])["ids"] == plain["ids"]


def test_llama_cpp_totals_its_own_timings(monkeypatch):
    calls = []

    class Server:
        def __init__(self, params):
            assert params.model.path == "m.gguf" and params.cpuparams.n_threads == 2

        def handle_chat_completions(self, request):
            calls.append(request)
            assert request["temperature"] == 0 and request["max_tokens"] == 16
            return {"timings": {"predicted_n": 10, "predicted_ms": 500.0, "prompt_ms": 250.0}}

    class Params:
        def __init__(self):
            self.model, self.cpuparams, self.cpuparams_batch = (type("P", (), {})() for _ in range(3))

    monkeypatch.setitem(sys.modules, "xllamacpp", type(sys)("xllamacpp"))
    monkeypatch.setattr(sys.modules["xllamacpp"], "CommonParams", Params, raising=False)
    monkeypatch.setattr(sys.modules["xllamacpp"], "Server", Server, raising=False)
    found = spec.llama_cpp_runs("m.gguf", ["um", "dois"], 16, 2)
    assert len(calls) == 3 and calls[1]["messages"][-1]["content"] == "um"  # a warm-up, then each prompt
    assert (found["tokens"], found["wall_s"], found["tok_s"], found["decode_tok_s"]) == (20, 1.5, 13.333, 20.0)
    assert found["ttft_s_mean"] == 0.25


def test_first_differences_name_the_prompt_and_token():
    runs = {"plain": [{"ids": [1, 2, 3]}, {"ids": [4, 5]}],
            "k1": [{"ids": [1, 2, 3]}, {"ids": [4, 6]}], "k2": [{"ids": [1, 2]}, {"ids": [4, 5]}]}
    assert spec.first_differences(runs) == {"k1": [[1, 1]], "k2": [[0, 2]]}
    assert spec.first_differences({"plain": runs["plain"], "k3": runs["plain"]}) == {}


def test_forward_check_switches_only_the_check_to_the_transformers_forward(monkeypatch):
    target = tiny_decoder(seed=3)
    draft = draft_for(target, noisy_copy(target, 0.3, seed=1))
    calls = []
    lean = spec.speculative.lean_decoder
    monkeypatch.setattr(spec.speculative, "lean_decoder", lambda lm: calls.append(lm) or lean(lm))
    plain = spec.timed_run(target, prompt_ids(5), 12, (), None)
    assert spec.timed_run(target, prompt_ids(5), 12, (), draft)["ids"] == plain["ids"] and calls
    calls.clear()
    with spec._forward_check(True):
        assert spec.timed_run(target, prompt_ids(5), 12, (), draft)["ids"] == plain["ids"]
    assert not calls  # the check's lean rows were off: the transformers forward ran
    assert spec.speculative.lean_decoder is not None and spec.speculative.lean_decoder(target.model.language_model)


def test_old_catch_up_prefills_the_draft_each_step_with_the_same_tokens():
    target = tiny_decoder(seed=3)
    draft = draft_for(target, noisy_copy(target, 0.3, seed=1))
    prefills = []
    forward = draft.model.forward
    draft.model.forward = lambda *args, **kwargs: prefills.append(args[0].shape[-1]) or forward(*args, **kwargs)
    plain = spec.timed_run(target, prompt_ids(5), 16, (), None)
    assert spec.timed_run(target, prompt_ids(5), 16, (), draft)["ids"] == plain["ids"]
    assert len(prefills) == 1  # the prompt only: the lean rows catch up since session 7
    prefills.clear()
    with spec._old_catch_up(True):
        assert spec.timed_run(target, prompt_ids(5), 16, (), draft)["ids"] == plain["ids"]
    assert len(prefills) > 3 and max(prefills[1:]) <= 2  # a prefill per step, of the 1-2 ids the draft lacks
    assert spec.speculative._catch_up.__name__ == "_catch_up"


def test_rounds_repeat_the_prompts_and_give_per_round_ratios(monkeypatch, tmp_path):
    target = tiny_decoder(seed=3)
    target.tokenizer.chat_template = TEMPLATE
    monkeypatch.setattr(spec, "load_for_inference", lambda path, quant: target)
    monkeypatch.setattr(spec, "load_draft", lambda path, loaded, quant, tokens=1: draft_for(loaded, noisy_copy(target, 0.3, seed=2), tokens))
    name, pace = spec._pace_arg("late=5,0.25,4,6")
    assert name == "late" and pace == spec.Pace(5, 0.25, 4, 6)
    assert spec._pace_arg("grow=0,0,4,8,2") == ("grow", spec.Pace(streak=2))
    run = spec.SpecRun("target", {"eager": "m", "late": "m"}, "int8", prompts=3, tokens=12, out=tmp_path / "spec.json",
                       draft_pace={"late": pace}, rounds=2, short_below=13, draft_reads={"late": 4},
                       reads_at_join=frozenset({"late"}))
    found = spec.bench(run)
    assert found["identical_outputs"] is True and found["prompts"] == 3
    assert len(found["runs"]["plain"]) == len(found["runs"]["late"]) == 6  # 3 prompts, twice
    assert found["draft_pace"]["late"]["start"] == 5 and found["draft_pace"]["eager"] == vars(spec.DRAFT_PACE)
    rounds = found["rounds"]
    assert len(rounds["rounds"]) == 2 and rounds["rounds"][0]["all"]["plain"]["x_plain"] == 1.0
    late = [r["all"]["late"]["x_plain"] for r in rounds["rounds"]]
    assert rounds["median_x_plain"]["all"]["late"] == pytest.approx(sum(late) / 2, abs=1e-3)
    lengths = [len(r["ids"]) for r in found["runs"]["plain"][:3]]
    assert rounds["short_prompts"] == [i for i, n in enumerate(lengths) if n < 13]
    assert found["runs"]["late"][0]["proposed"] < found["runs"]["eager"][0]["proposed"]  # 5 tokens before it joins
    assert found["draft_reads"] == {"eager": spec.DRAFT_READS, "late": 4} and found["reads_at_join"] == ["late"]


def test_a_lookup_draft_loads_no_model_and_decodes_the_plain_tokens(monkeypatch):
    target = tiny_decoder(seed=3)
    monkeypatch.setattr(spec, "load_draft", lambda *a, **k: pytest.fail("a prompt lookup loads no model"))
    assert spec._draft_arg("l3=lookup5-3@3", 1) == ("l3", "lookup5-3", 3, 0.0, "", "")
    run = spec.SpecRun("t", {"l3": "lookup5-3", "l1": "lookup"}, draft_tokens={"l3": 3, "l1": 1})
    drafts = spec.load_drafts(run, target)
    assert drafts["l3"].model is None and (drafts["l3"].lookup.longest, drafts["l3"].lookup.shortest) == (5, 3)
    assert (drafts["l1"].lookup.longest, drafts["l1"].lookup.shortest, drafts["l1"].tokens) == (4, 2, 1)
    ids = prompt_ids(5, length=16)
    ids = ids + ids  # a repeated prompt: something to match
    plain = spec.timed_run(target, ids, 24, (), None)
    looked = spec.timed_run(target, ids, 24, (), drafts["l3"])
    assert looked["ids"] == plain["ids"] and looked["proposed"] > 0
