"""The long-copy prompts of issue #30 (benchmarks/data/spec_longcopy.jsonl): a paragraph the answer translates,
summarises, corrects or rewrites; a dev split for choices and a held-out split, pinned, read only by timing runs."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.inference.tiny import tiny_decoder
from tests.train.test_distill_spec import TEMPLATE, spec

ROWS = [json.loads(line) for line in (spec.DATA / "spec_longcopy.jsonl").read_text(encoding="utf-8").splitlines()]
HELD_OUT_MD5 = "3a88ecb6555c6c5dfb2a8fcfebabaa6b"  # the held-out rows as written before any timing (session 10)


def test_the_splits_are_six_dev_and_four_held_out_long_prompts_never_in_the_distillation_data() -> None:
    assert [r["split"] for r in ROWS].count("dev") == 6 and [r["split"] for r in ROWS].count("heldout") == 4
    assert len({r["id"] for r in ROWS}) == len(ROWS) and len({r["prompt"] for r in ROWS}) == len(ROWS)
    assert {r["kind"] for r in ROWS if r["split"] == "heldout"} == {"translate", "summarise", "correct", "formal"}
    distill = (spec.DATA / "distill_prompts.jsonl").read_text(encoding="utf-8")
    for row in ROWS:
        head, text = row["prompt"].split(": ", 1)
        assert len(text.split()) >= 35 and text[:60] not in distill, row["id"]


def test_the_held_out_rows_are_the_ones_written_before_any_timing() -> None:
    held = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS if r["split"] == "heldout")
    assert hashlib.md5(held.encode("utf-8")).hexdigest() == HELD_OUT_MD5


def test_held_out_prompts_end_with_the_long_copy_ones_and_rounds_split_them_out(monkeypatch, tmp_path) -> None:
    held = spec.long_copy_prompts("heldout")
    assert spec.held_out_prompts(2, 3) == spec.held_out_prompts(2) + held[:3]
    assert spec.long_copy_prompts("dev")[0].startswith("Traduza para o português: The city library")
    target = tiny_decoder(seed=3)
    target.tokenizer.chat_template = TEMPLATE
    monkeypatch.setattr(spec, "load_for_inference", lambda path, quant: target)
    monkeypatch.setattr(spec, "load_draft", lambda path, loaded, quant, tokens=1: spec.speculative.draft_for(loaded, target, tokens))
    run = spec.SpecRun("target", {"same": "m"}, "int8", prompts=2, tokens=6, out=tmp_path / "spec.json", rounds=2,
                       longcopy=2)
    found = spec.bench(run)
    assert found["prompts"] == 4 and found["identical_outputs"] is True
    rounds = found["rounds"]
    assert {"all", "copy"} <= set(rounds["median_x_plain"])
    copy = [r["copy"]["same"]["tok_s"] for r in rounds["rounds"]]
    runs = found["runs"]["same"]
    want = [round(sum(len(x["ids"]) for x in runs[s:s + 2]) / sum(x["wall_s"] for x in runs[s:s + 2]), 3) for s in (2, 6)]
    assert copy == pytest.approx(want, abs=2e-3)  # the last 2 prompts of each round of 4
