from __future__ import annotations

import json
from io import BytesIO

import torch
from PIL import Image
from typer.testing import CliRunner

from lhama.cli import app
from lhama.inference import bench
from lhama.model.build import save_model
from lhama.serve.cascade import labels_note
from lhama.weights.manifest import MANIFEST
from tests.conftest import tiny_loaded
from tests.inference.tiny import tiny_decoder
from tests.model.views_labeler import views_labeler

runner = CliRunner()


def test_bench_decode_prints_one_json_object_with_the_measurements(tmp_path) -> None:
    model_dir = save_model(tiny_loaded(), tmp_path / "vlm")
    result = runner.invoke(app, ["bench", "decode", "--model", str(model_dir), "--tokens", "6", "--quant", "int8", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("lhama_tok_s", "transformers_tok_s", "ttft_s", "ttft_image_s", "peak_rss_mb"):
        assert isinstance(got[key], (int, float)) and got[key] > 0, key
    assert got["gguf"] is None  # not prepared from a GGUF (no lhama-prepared.json)
    assert got["quant"] == "int8" and got["tokens"] == 6 and got["cache_built"] is True
    assert (model_dir / "quant-int8" / "quant.json").is_file()


def test_bench_decode_with_a_draft_reports_acceptance_and_reads_the_manifest(tmp_path) -> None:
    lm = tiny_decoder(seed=0)
    model_dir = tmp_path / "lm"
    lm.model.language_model.save_pretrained(model_dir)
    lm.tokenizer.save_pretrained(model_dir)
    (model_dir / MANIFEST).write_text(json.dumps({"source": {"package": "not_registered", "gguf_file": "x.gguf"}}))
    result = runner.invoke(app, ["bench", "decode", "--model", str(model_dir), "--tokens", "8", "--quant", "none",
                                 "--draft", str(model_dir), "--no-baseline"])
    assert result.exit_code == 0, result.output
    assert "draft acceptance      100%" in result.stdout  # the model drafting for itself
    assert "  with one image      - (no vision tower)" in result.stdout


def test_bench_decode_with_the_lookup_draft_needs_no_draft_model(tmp_path) -> None:
    lm = tiny_decoder(seed=0)
    model_dir = tmp_path / "lm"
    lm.model.language_model.save_pretrained(model_dir)
    lm.tokenizer.save_pretrained(model_dir)
    result = runner.invoke(app, ["bench", "decode", "--model", str(model_dir), "--tokens", "8", "--quant", "none",
                                 "--draft", "lookup", "--no-baseline", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(got["acceptance_rate"], float) and 0.0 <= got["acceptance_rate"] <= 1.0  # a draft ran
    bad = runner.invoke(app, ["bench", "decode", "--model", str(model_dir), "--draft", "lookup", "--draft-quant", "int8"])
    assert bad.exit_code != 0 and "--draft lookup has no model" in str(bad.exception) + bad.output


def test_bench_decode_rejects_a_quant_this_machine_cannot_run(tmp_path) -> None:
    result = runner.invoke(app, ["bench", "decode", "--model", str(tmp_path), "--quant", "int2"])
    assert result.exit_code != 0
    assert "unknown --quant 'int2'; choose one of: none, bf16" in str(result.exception) + result.output


def test_image_ttft_prompts_with_the_note_chat_gives(monkeypatch) -> None:
    """A cascade model's image TTFT tells the picture as chat does: the labeler's note over its
    configured views (two here, whose note differs from the first view's alone)."""
    loaded = tiny_loaded(image=None)
    loaded.labeler = views_labeler()
    prompts, real = [], bench._prompt_ids
    monkeypatch.setattr(bench, "_prompt_ids", lambda lm, text: prompts.append(text) or real(lm, text))
    assert bench._image_ttft(loaded) > 0
    # bench's picture, as a PNG file sent to chat
    picture = Image.fromarray((torch.rand(480, 640, 3, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy())
    png = BytesIO()
    picture.save(png, "PNG")
    assert prompts == [f"{labels_note(png.getvalue(), loaded)}\n{bench.IMAGE_QUESTION}"] * 2


def test_bench_models_locates_the_draft_then_the_model(monkeypatch, tmp_path) -> None:
    """``lhama bench decode``'s one call: names go through the caller's ``locate`` (the CLI's
    prepares a registered name), draft first as before; the config carries the directories."""
    located, configs = [], []
    monkeypatch.setattr(bench, "bench_decode", lambda config: configs.append(config) or "result")
    locate = lambda name: located.append(name) or tmp_path / name  # noqa: E731
    request = bench.DecodeBench("big-model", 16, "int8", "small-model", baseline=False)
    assert bench.bench_models(request, locate) == "result" and located == ["small-model", "big-model"]
    assert configs == [bench.BenchConfig(tmp_path / "big-model", 16, "int8", tmp_path / "small-model", baseline=False)]
    assert bench.bench_models(bench.DecodeBench("m"), locate) == "result" and configs[-1].draft is None
    for named in ("lookup", "none"):  # the prompt lookup, or no draft: no model to locate, the name carried as given
        located.clear()
        assert bench.bench_models(bench.DecodeBench("m", draft=named), locate) == "result" and located == ["m"]
        assert configs[-1].draft == named
