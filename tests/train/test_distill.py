"""Distillation: the top-k KL, a tiny run that brings the student closer to the teacher on held-out
data, the teacher cache built once and reused on resume (exactly the same run), and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from lhama.errors import DataError, ModelError
from lhama.model import build
from lhama.train import distill as distill_module
from lhama.train.distill import DistillConfig, distill
from lhama.train.config import OptimConfig
from lhama.train.kd import topk_kl
from lhama.train.logit_cache import load_cache
from tests.conftest import tiny_tokenizer
from tests.train.students import save_decoder, tiny_decoder

QUESTIONS = [
    ("Qual é a capital do Brasil?", "A capital do Brasil é Brasília."),
    ("Descreva a imagem.", "Um gato preto dorme sobre o sofá da sala."),
    ("Olá!", "Olá, como posso ajudar você hoje?"),
    ("Onde dorme o gato?", "O gato dorme sobre o sofá."),
]


def write_chats(path, n: int, offset: int = 0):
    lines = []
    for i in range(n):
        question, answer = QUESTIONS[(i + offset) % len(QUESTIONS)]
        lines.append(json.dumps({"id": f"c{offset + i}", "conversations": [
            {"from": "human", "value": question}, {"from": "gpt", "value": answer}]}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A sharp (scaled-up head) 2-layer teacher and a differently seeded student, one tokenizer."""
    root = tmp_path_factory.mktemp("pair")
    teacher = tiny_decoder("qwen2", layers=2, seed=1)
    with torch.no_grad():
        teacher.lm_head.weight.mul_(30)
    tokenizer = tiny_tokenizer()
    save_decoder(teacher, root / "teacher", tokenizer)
    save_decoder(tiny_decoder("qwen2", layers=2, seed=2), root / "student", tokenizer)
    write_chats(root / "train.jsonl", 16)
    write_chats(root / "heldout.jsonl", 4, offset=1)
    return root


def config(root, out, **overrides) -> DistillConfig:
    base = dict(teacher=str(root / "teacher"), student=str(root / "student"), data=str(root / "train.jsonl"),
                output_dir=str(out), eval_data=str(root / "heldout.jsonl"), top_k=8, temperature=1.0, kd_weight=1.0,
                micro_batch_size=4, max_steps=10, optim=OptimConfig(lr=1e-2, warmup_ratio=0.0), progress=False)
    return DistillConfig(**(base | overrides))


def test_topk_kl_is_zero_only_when_the_student_matches_the_teacher():
    teacher = torch.tensor([[3.0, 1.0, 0.5]])
    indices = torch.tensor([[2, 0, 4]])
    same = torch.full((1, 6), -1e4)
    same[0, indices[0]] = teacher[0]
    assert float(topk_kl(same, teacher, indices, 2.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(topk_kl(torch.zeros(1, 6), teacher, indices, 2.0)) > 0.1
    full = torch.randn(2, 5)  # k = V: the plain KL(teacher || student)
    student = torch.randn(2, 5)
    expected = (full.softmax(-1) * (full.log_softmax(-1) - student.log_softmax(-1))).sum()
    assert float(topk_kl(student, full, torch.arange(5).repeat(2, 1), 1.0)) == pytest.approx(float(expected), rel=1e-5)


def test_a_tiny_run_brings_the_student_closer_to_the_teacher(pair, tmp_path):
    result = distill(config(pair, tmp_path / "run"), echo=lambda _: None)
    assert result.eval_after["eval_kl"] < 0.8 * result.eval_before["eval_kl"]
    assert result.steps == 10
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    assert torch.isfinite(model(torch.tensor([[1, 7, 9]])).logits).all()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "kl" in r] == list(range(1, 11))
    assert (tmp_path / "run" / "curves.png").is_file()
    cache = load_cache(tmp_path / "run" / "teacher_cache")
    assert cache.values.shape[1] == 8 and len(cache.offsets) == 16 + 4 + 1


def test_resume_reuses_the_cache_and_finishes_the_same_run(pair, tmp_path, monkeypatch):
    whole = distill(config(pair, tmp_path / "whole", max_steps=4), echo=lambda _: None)
    distill(config(pair, tmp_path / "split", max_steps=4, stop_after=2), echo=lambda _: None)
    assert not (tmp_path / "split" / "model").exists()
    shards = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "split" / "teacher_cache").glob("shard-*")}
    loads = []
    real_load = build.load_model
    monkeypatch.setattr(distill_module.build, "load_model", lambda d, *a: loads.append(str(d)) or real_load(d, *a))
    resumed = distill(config(pair, tmp_path / "split", max_steps=4), resume=True, echo=lambda _: None)
    assert loads == [str(pair / "student")]  # the teacher is never loaded again
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "split" / "teacher_cache").glob("shard-*")} == shards
    assert resumed.steps == 4 and resumed.eval_after["eval_kl"] == pytest.approx(whole.eval_after["eval_kl"], rel=1e-4)


def test_different_tokenizers_are_one_line_error_and_nothing_is_written(pair, tmp_path, monkeypatch):
    other = save_decoder(tiny_decoder("qwen2", layers=2), tmp_path / "other", tiny_tokenizer(vocab_size=100))
    loads = []
    real_load = build.load_model
    monkeypatch.setattr(distill_module.build, "load_model", lambda d, *a: loads.append(str(d)) or real_load(d, *a))
    with pytest.raises(ModelError, match="different tokenizers") as error:
        distill(config(pair, tmp_path / "run", student=str(other)), echo=lambda _: None)
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()
    assert loads == [str(other)]  # refused from the teacher's tokenizer.json, its weights never loaded


def test_data_without_usable_examples_is_an_error_and_nothing_is_written(pair, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('"just a string"\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match="no usable records"):
        distill(config(pair, tmp_path / "run", data=str(bad)), echo=lambda _: None)
    assert not (tmp_path / "run").exists()


def test_lora_student_is_merged_into_a_plain_model(pair, tmp_path):
    from lhama.model.config import LoraSettings

    result = distill(config(pair, tmp_path / "run", max_steps=3, lora=LoraSettings(r=4, alpha=8, dropout=0.0)),
                     echo=lambda _: None)
    assert result.eval_after["eval_kl"] < result.eval_before["eval_kl"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    assert not any("lora" in name for name, _ in model.named_parameters())
    student = AutoModelForCausalLM.from_pretrained(pair / "student")
    assert not torch.equal(model.model.layers[0].self_attn.q_proj.weight, student.model.layers[0].self_attn.q_proj.weight)


def test_a_multimodal_student_learns_from_a_multimodal_teacher(tmp_path, caption_file):
    from lhama.model.build import load_model, save_model
    from tests.conftest import tiny_loaded

    teacher = tiny_loaded(seed=1)
    with torch.no_grad():
        teacher.model.language_model.lm_head.weight.mul_(30)
    save_model(teacher, tmp_path / "teacher")
    student_dir = save_model(tiny_loaded(seed=2), tmp_path / "student")
    cfg = DistillConfig(str(tmp_path / "teacher"), str(student_dir), str(caption_file), str(tmp_path / "run"),
                        eval_data=str(caption_file), top_k=8, temperature=1.0, kd_weight=1.0, max_steps=8,
                        optim=OptimConfig(lr=1e-2, warmup_ratio=0.0), progress=False,
                        image_dir=str(caption_file.parent / "images"))  # eval = train: mechanics only
    result = distill(cfg, echo=lambda _: None)
    assert result.eval_after["eval_kl"] < 0.8 * result.eval_before["eval_kl"]
    distilled, original = load_model(tmp_path / "run" / "model"), load_model(student_dir)
    assert "image" in distilled.config.branches
    changed = lambda name: not torch.equal(distilled.model.state_dict()[name], original.model.state_dict()[name])  # noqa: E731
    assert changed("multi_modal_projector.linear_1.weight")  # the projector trains with the decoder
    tower = [k for k in original.model.state_dict() if k.startswith("vision_tower.") and k.endswith("weight")]
    assert tower and not any(changed(k) for k in tower)  # the tower stays frozen


def test_teacher_and_student_may_be_prepared_names(pair, tmp_path, monkeypatch):
    """``lhama distill``'s one call resolves its models: a prepared name becomes its directory (what
    config.yaml records), a directory is checked, and a bad one fails before anything is written."""
    from lhama.errors import CheckpointError
    from lhama.weights.manifest import write_manifest

    teacher, student = pair / "teacher", pair / "student"
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    prepared = save_decoder(AutoModelForCausalLM.from_pretrained(teacher), tmp_path / "home" / "models" / "smollm2-135m-instruct")
    write_manifest(prepared, {"test": True}, {})
    cfg = DistillConfig("smollm2-135m-instruct", str(student), "unused.jsonl")
    assert distill_module.resolved(cfg) == DistillConfig(str(prepared), str(student), "unused.jsonl")
    with pytest.raises(CheckpointError, match="does not exist"):
        distill(DistillConfig(str(teacher), str(tmp_path / "missing"), "unused.jsonl", str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


def test_a_quantised_teacher_gives_its_own_logits_under_another_cache_key(pair, tmp_path):
    """``teacher_quant``: the cache holds the quantised teacher's top-k (as chat would run it), not
    the fp32 one's, under another key; "none" keeps the fp32 teacher and its key."""
    import shutil

    from lhama.data.collate import Collator
    from lhama.inference.quant_cache import load_for_inference
    from lhama.train.logit_cache import MANIFEST, teacher_topk

    teacher_dir = shutil.copytree(pair / "teacher", tmp_path / "teacher")  # its int8 copy is cached beside it
    runs = {q: config(pair, tmp_path / q, teacher=str(teacher_dir), teacher_quant=q, max_steps=1) for q in ("none", "int8")}
    for cfg in runs.values():
        distill(cfg, echo=lambda _: None)
    caches = {q: load_cache(tmp_path / q / "teacher_cache") for q in runs}
    keys = {q: json.loads((tmp_path / q / "teacher_cache" / MANIFEST).read_text())["fingerprint"] for q in runs}
    assert keys["none"] != keys["int8"]
    student = build.load_model(pair / "student")
    collator = Collator(student.tokenizer, student.expansions(), student.readers(), runs["int8"].collate, "")
    items = distill_module._encoded(runs["int8"], collator, lambda _: None, None)[0]
    for q, model in (("int8", load_for_inference(teacher_dir, "int8")), ("none", build.load_model(teacher_dir))):
        values, indices = teacher_topk(model.model, collator([items[0]]), 8)
        cached_values, cached_indices = caches[q].rows([0])
        assert torch.equal(cached_values, values) and torch.equal(cached_indices, indices)
    assert not torch.equal(caches["int8"].values, caches["none"].values)  # int8 logits are not the fp32 ones


def test_label_loss_alone_needs_no_teacher_logits_and_learns_the_answers(pair, tmp_path, monkeypatch):
    """kd_weight 0 (the label loss on the teacher's own answers): no cache is built, the teacher is never
    loaded, the held-out label loss falls; a teacher with another vocabulary is still refused."""
    loads = []
    real_load = build.load_model
    monkeypatch.setattr(distill_module.build, "load_model", lambda d, *a: loads.append(str(d)) or real_load(d, *a))
    monkeypatch.setattr(distill_module, "load_for_inference", lambda *a: pytest.fail("the teacher was loaded"))
    result = distill(config(pair, tmp_path / "run", kd_weight=0.0), echo=lambda _: None)
    assert loads == [str(pair / "student")] and not (tmp_path / "run" / "teacher_cache").exists()
    assert result.eval_after["eval_loss"] < 0.8 * result.eval_before["eval_loss"]
    assert result.eval_before["eval_kl"] == 0.0 and (tmp_path / "run" / "model" / "config.json").is_file()
    other = save_decoder(tiny_decoder("qwen2", layers=2), tmp_path / "other", tiny_tokenizer(vocab_size=100))
    with pytest.raises(ModelError, match="different tokenizers"):
        distill(config(pair, tmp_path / "bad", student=str(other), kd_weight=0.0), echo=lambda _: None)
