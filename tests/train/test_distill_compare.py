"""benchmarks/distill.py compare on the held-out human texts: which texts count as never seen in
training, and perplexities / paired intervals over exactly the kept texts."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("distill_bench", Path(__file__).parents[2] / "benchmarks" / "distill.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def test_unseen_human_ids_leave_out_exactly_the_texts_of_the_training_files():
    held = bench._read_jsonl(bench.DATA / "distill_heldout_human.jsonl")
    turns = [_fold(t["value"]) for name in ("distill_train", "distill_train_answers", "distill_human_train")
             for row in bench._read_jsonl(bench.DATA / f"{name}.jsonl") for t in row["conversations"]]
    unseen = bench.unseen_human_ids()
    assert unseen < {row["id"] for row in held}
    for row in held:
        text = _fold(row["conversations"][-1]["value"])
        assert (row["id"] in unseen) == (not any(text in turn for turn in turns)), row["id"]
    assert "caption-plants_flowers__flower2.jpg" not in unseen  # "um flor.": flower1/3/6 are training captions
    assert {i for i in unseen if i.startswith("admire-sentence-dev-")}  # the AdMIRe dev sentences stay


def _row(name: str, losses: dict[str, tuple[float, int]]) -> dict:
    items = [{"id": i, "loss": loss, "tokens": n, "agree": ""} for i, (loss, n) in losses.items()]
    return {"name": name, "per_text_human": items}


def test_compare_on_a_subset_of_the_human_texts(tmp_path):
    texts = [f"t{i}" for i in range(6)]
    teacher = {t: (1.0 * (i + 1), 4) for i, t in enumerate(texts)}
    before = {t: (3.0 * (i + 1), 4) for i, t in enumerate(texts)}
    after = {t: (2.0 * (i + 1), 4) if i < 3 else (9.0 * (i + 1), 4) for i, t in enumerate(texts)}  # worse off the subset
    results = tmp_path / "r.json"
    results.write_text(json.dumps([_row("T", teacher), _row("B", before), _row("A", after)]))
    keep = set(texts[:3])
    found = bench.compare(results, "T", [("B", "A")], split="human", keep=keep)
    pair = found["pairs"][0]
    assert found["texts"] == 3 and found["tokens"] == 12 and found["acceptance"] == {}
    assert math.isclose(pair["ppl_before"], math.exp(3.0 * 6 / 12))
    assert math.isclose(pair["ppl_after"], math.exp(2.0 * 6 / 12))
    assert math.isclose(pair["loss_gap_recovered"], 0.5)  # 1.5 -> 1.0 nats/token, teacher 0.5
    assert pair["share_after_lower"] == 1.0 and pair["ratio_ci95"][1] < 1
    everything = bench.compare(results, "T", [("B", "A")], split="human")["pairs"][0]
    assert everything["ppl_after"] > everything["ppl_before"]  # the left-out texts change the answer
