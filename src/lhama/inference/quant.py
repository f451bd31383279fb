"""Weight-only int8 / int4 linear layers for CPU decoding, on PyTorch's own packed kernels.

Decoding one token reads every weight once, so its speed is set by the bytes of weights per
token (memory bandwidth), not by arithmetic. Storing the decoder's linear layers (and the output
layer) as int8 (1 byte per weight, one bf16 scale per output row) or int4 (half a byte, a bf16
scale and offset per group of 32/64/128 inputs) reads 4x / 8x fewer bytes than fp32. Activations
are bf16: the kernels have no fast fp32 path.

    quantize_linears(language_model, "int4")                   # in place; returns it (int4-g32)
    quantize_linears(language_model, "int4-g64+head")          # a plan: int4 in groups of 64, output layer int8
    quantize_linears(language_model, "int4-g32-grid+lossy")    # grid rounding; off-grid layers int8 (below)

``-grid`` rounding picks, for each group, how many of the 16 levels its range spans (the least
squared error of 15, 14, ... 1; plain rounding always spans 15). A model de-quantised from a
Q4_K GGUF has each 32-weight group on such a grid, so its Q4_K layers are stored exactly. The
``lossy`` role keeps int8 every layer that even grid rounding cannot store exactly (in a Q4_K_M
GGUF's model: the 6-bit output layer and value/down projections); it is decided from the weights
when quantising, and a cached copy records it (an int8 layer's ``scales``).

The layer classes and their products are in :mod:`lhama.inference.qlinear`. A layer whose shape
the kernel cannot take (int8: inputs not a multiple of 16; int4: inputs not a multiple of the group
size) is kept as a bf16 ``nn.Linear``; an int4 layer pads its outputs to a multiple of 16 (the
kernel's tile) and drops the padding from its result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from lhama.errors import ConfigError
from lhama.inference import native
from lhama.inference.kscales import KSUPER
from lhama.inference.qlinear import ACTIVATIONS, Int4KLinear, Int4Linear, Int6KLinear, Int8Linear, on_grid

QUANTS = ("none", "bf16", "int8", "int4")  # none: fp32 as loaded
GROUP_SIZES = (32, 64, 128)
QUANT_OPTION = "--quant"  # the option an error names (the draft's quant: "--draft-quant")
_KERNELS = {
    "int8": ("_weight_int8pack_mm",),
    "int4": ("_convert_weight_to_int4pack_for_cpu", "_weight_int4pack_mm_for_cpu"),
}


def available_quants() -> tuple[str, ...]:
    """The ``QUANTS`` this PyTorch build can run on the CPU (int8/int4 need their aten kernels)."""
    return tuple(q for q in QUANTS if all(hasattr(torch.ops.aten, op) for op in _KERNELS.get(q, ())))


def check_quant(quant: str | QuantPlan, group_size: int | None = None, option: str = QUANT_OPTION) -> QuantPlan:
    """The :class:`QuantPlan` of ``quant`` (a quant or an int4 plan name, see :func:`plan_for`);
    raises ConfigError (one line, naming ``option``, listing what is available) unless it can run here."""
    plan, available = plan_for(quant, group_size, option), available_quants()
    if group_size is not None and group_size not in GROUP_SIZES:
        raise _size_error(group_size, option)
    if plan.quant not in available:
        raise ConfigError(
            f"{option} {quant} needs torch.ops.aten.{_KERNELS[plan.quant][-1]}, which this PyTorch "
            f"{torch.__version__} build lacks; available here: {', '.join(available)}"
        )
    if plan.int8 and "int8" not in available:
        raise ConfigError(f"{option} {quant} keeps layers int8, which this PyTorch build cannot run; "
                          f"available here: {', '.join(available)}")
    return plan


def _size_error(group_size: int, option: str) -> ConfigError:
    """The one-line error for an int4 group size not in :data:`GROUP_SIZES`; another option than
    ``--quant`` (whose message has always read without its name) is named first."""
    named = "" if option == QUANT_OPTION else f"{option}: "
    return ConfigError(f"{named}int4 group size must be one of {GROUP_SIZES}, got {group_size}")


@dataclass(frozen=True)
class QuantPlan:
    """How a language model's linear layers are stored: all as ``quant``, except that an int4 plan
    keeps the layers of its ``int8`` roles at int8 (llama.cpp's Q4_K_M likewise keeps the output
    layer and half of the value/down projections at 6 bits). Roles: ``head`` (output layer),
    ``v`` (value projections), ``down`` (every MLP down projection), ``down-half`` (the down
    projections of Q4_K_M's layers: the first and last eighth and every third in between),
    ``lossy`` (every layer whose weights are not on a 4-bit grid: decided from the weights).
    ``grid``: int4 groups rounded to the level count that fits them best (module docstring)."""

    quant: str
    group_size: int = 128  # int4: inputs per scale/offset
    int8: tuple[str, ...] = ()
    grid: bool = False
    kscales: bool = False  # int4 scales as Q4_K's 6-bit codes under fp16 super-scales per 256 inputs (Int4KLinear)
    # int8, int4-g128, int4-g32+head+v+down-half (also the cache folder's suffix): set with the
    # plan, so reading it is not a call back into this module on the load path
    name: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        rounding = ("-grid" if self.grid else "") + ("-k" if self.kscales else "")
        name = self.quant if self.quant != "int4" else "+".join([f"int4-g{self.group_size}{rounding}", *self.int8])
        object.__setattr__(self, "name", name)

    def layer_quant(self, name: str, layers: int) -> str:
        """The quant of the linear layer at module path ``name`` in a model of ``layers`` blocks
        (a ``lossy`` layer is int4 here: :func:`_quantized` decides it from its weights)."""
        return "int8" if any(_has_role(name, role, layers) for role in self.int8) else self.quant


ROLES = ("head", "v", "down", "down-half", "lossy", "lossy6")  # lossy6: the lossy layers 6-bit (Int6KLinear)
# what ``--quant int4`` means: groups of 32, the int4 plan measured within the quality targets
# on Qwen2.5-Coder-1.5B (ppl x1.0295, greedy agreement 96.9%; g128: x1.150, 92.2%); it decodes
# ~17% slower than g128, still above llama.cpp on the same GGUF (docs/benchmarks.md, #27 session 4)
DEFAULT_INT4 = QuantPlan("int4", 32)


def plan_for(quant: str | QuantPlan, group_size: int | None = None, option: str = QUANT_OPTION) -> QuantPlan:
    """The :class:`QuantPlan` of ``quant``: none, bf16, int8, int4 (:data:`DEFAULT_INT4`, or plain
    int4 in groups of ``group_size`` when given) or a plan name ``int4-g<32|64|128>[-grid][-k][+role...]`` (``-k``: :class:`Int4KLinear`).

    Raises:
        ConfigError: an unknown quant, group size or role (one line naming ``option``, listing the choices).
    """
    if isinstance(quant, QuantPlan):
        return quant
    if quant in ("none", "bf16", "int8"):
        return QuantPlan(quant)
    if quant == "int4":
        plan = DEFAULT_INT4 if group_size is None else QuantPlan("int4", group_size)
    elif quant.startswith("int4-g"):
        size, *roles = quant[len("int4-g"):].split("+")
        size, kscales = size.removesuffix("-k"), size.endswith("-k")
        size, grid = size.removesuffix("-grid"), size.endswith("-grid")
        if not size.isdigit() or any(role not in ROLES for role in roles):
            raise ConfigError(f"unknown {option} {quant!r}: an int4 plan is int4-g<32|64|128>[-grid][-k] followed by "
                              f"+role for layers kept int8, roles: {', '.join(ROLES)}")
        plan = QuantPlan("int4", int(size), tuple(roles), grid, kscales)
    else:
        raise ConfigError(f"unknown {option} {quant!r}; choose one of: {', '.join(available_quants())}, "
                          "or an int4 plan such as int4-g64 or int4-g128+head+v+down-half")
    if plan.group_size not in GROUP_SIZES:
        raise _size_error(plan.group_size, option)
    return plan


def _has_role(name: str, role: str, layers: int) -> bool:
    if role in ("lossy", "lossy6"):
        return False  # decided from the weights (_quantized)
    if role == "head":
        return name == "lm_head" or name.endswith(".lm_head")
    if role == "v":
        return name.endswith(".v_proj")
    if not name.endswith(".mlp.down_proj"):
        return False
    if role == "down":
        return True
    index = int(name.split(".layers.")[-1].split(".")[0])
    return index < layers // 8 or index >= 7 * layers // 8 or (index - layers // 8) % 3 == 2  # llama.cpp's use_more_bits


def quantize_linears(language_model: nn.Module, quant: str | QuantPlan, group_size: int | None = None) -> nn.Module:
    """Convert ``language_model`` in place for CPU decoding and return it: every ``nn.Linear``
    (decoder and output layer; a tied output layer gets its own quantised copy) becomes
    :class:`Int8Linear` / :class:`Int4Linear` as the plan of ``quant`` says (:func:`plan_for`),
    and the remaining float parameters (embeddings, norms) become bf16. ``bf16`` converts
    parameters only; ``none`` does nothing. Buffers keep their dtype (rotary frequencies stay fp32).

    Raises:
        ConfigError: ``quant`` or ``group_size`` cannot run here (see :func:`check_quant`).
    """
    check_quant(quant, group_size)
    plan = plan_for(quant, group_size)
    if plan.quant == "none":
        return language_model
    if plan.quant in ("int8", "int4"):
        for _, parent, name, linear, layer_quant in _linears(language_model, plan):
            setattr(parent, name, _quantized(linear, layer_quant, plan))
    for param in language_model.parameters():
        if param.is_floating_point():
            param.data = param.data.to(ACTIVATIONS)
    return language_model


def quantize_from(language_model: nn.Module, read: Callable[[list[str]], torch.Tensor], quant: str | QuantPlan,
                  group_size: int | None = None) -> nn.Module:
    """:func:`quantize_linears` for a ``language_model`` whose parameters are still on the meta
    device, reading each one as it goes (``read(names)``: the saved tensor stored under one of a
    parameter's names; a tied parameter has several). Only one fp32 matrix is in memory at a time.
    """
    check_quant(quant, group_size)
    plan = plan_for(quant, group_size)
    names: dict[int, list[str]] = defaultdict(list)
    for name, param in language_model.named_parameters(remove_duplicate=False):
        names[id(param)].append(name)
    if plan.quant in ("int8", "int4"):
        for _, parent, name, linear, layer_quant in _linears(language_model, plan):
            real = nn.Linear(linear.in_features, linear.out_features, linear.bias is not None, device="meta")
            real.weight = nn.Parameter(read(names[id(linear.weight)]), requires_grad=False)
            if linear.bias is not None:
                real.bias = nn.Parameter(read(names[id(linear.bias)]), requires_grad=False)
            setattr(parent, name, _quantized(real, layer_quant, plan))
    dtype = torch.float32 if plan.quant == "none" else ACTIVATIONS
    for module in language_model.modules():
        for name, param in list(module._parameters.items()):
            if param is not None and param.is_meta:
                tensor = read(names[id(param)])
                module._parameters[name] = nn.Parameter(tensor.to(dtype) if tensor.is_floating_point() else tensor,
                                                        requires_grad=False)
            elif param is not None and param.is_floating_point():
                param.data = param.data.to(dtype)  # a float layer the kernel could not take
    return language_model


def empty_quantized(language_model: nn.Module, quant: str | QuantPlan, group_size: int | None = None,
                    int8_layers: frozenset[str] = frozenset(), int6_layers: frozenset[str] = frozenset()) -> nn.Module:
    """Swap ``language_model``'s linear layers (e.g. on the meta device) for *empty* quantised
    ones of the same shapes, as the plan of ``quant`` says (and int8 at the module paths of
    ``int8_layers``: a saved copy's ``lossy`` layers; 6-bit at ``int6_layers``), ready for ``load_state_dict(...,
    assign=True)`` of a saved copy (bf16 and none keep ``nn.Linear``)."""
    plan = plan_for(quant, group_size)
    if plan.quant not in ("int8", "int4"):
        return language_model
    for path, parent, name, linear, layer_quant in _linears(language_model, plan):
        layer_quant = "int8" if path in int8_layers else layer_quant
        if path in int6_layers:
            setattr(parent, name, Int6KLinear(linear.in_features, linear.out_features, linear.bias is not None,
                                              device=linear.weight.device))
        elif _fits(linear, layer_quant, plan.group_size):
            shape = (linear.in_features, linear.out_features, linear.bias is not None)
            device = linear.weight.device
            layer = (Int8Linear(*shape, device) if layer_quant == "int8"
                     else _int4_kind(linear, plan)(*shape, plan.group_size, device))
            setattr(parent, name, layer)
    return language_model


def _quantized(linear: nn.Linear, quant: str, plan: QuantPlan) -> nn.Module:
    lossy = {"lossy", "lossy6"} & set(plan.int8)
    if quant == "int4" and lossy and _fits(linear, quant, plan.group_size) and not on_grid(linear.weight, plan.group_size):
        quant = "int6" if "lossy6" in lossy and _int6_fits(linear) else "int8"
    if not _fits(linear, quant, plan.group_size):
        return linear  # stays a float layer (made bf16 with the other parameters)
    if quant == "int6":
        return Int6KLinear.from_linear(linear)
    if quant == "int8":
        return Int8Linear.from_linear(linear)
    return _int4_kind(linear, plan).from_linear(linear, plan.group_size, plan.grid)


def _int6_fits(linear: nn.Linear) -> bool:
    """Whether a lossy6 layer can be 6-bit here: whole super-blocks and :func:`six_bit_lossy`. Else int8."""
    return linear.in_features % KSUPER == 0 and six_bit_lossy()


def six_bit_lossy() -> bool:
    """Whether lossy6 layers are built 6-bit on this machine: a fast native 6-bit product, the AVX512-VNNI kernel's or
    the AVX2 port's on laid weights (``int6_avx2.c``, docs/benchmarks.md #27 session 15; the port's product on the
    stored order was slower than int8: lhama-default 7.4 vs 8.9 tok/s, session 10). Else int8: the 6-bit fallback is a
    slow reference."""
    return native.cpu_supported() and native.usable(64, KSUPER, 16) or native.laid6_runs()


def _int4_kind(linear: nn.Linear, plan: QuantPlan) -> type[Int4Linear] | type[Int4KLinear]:
    """Int4KLinear for a ``-k`` plan where the inputs fill whole super-blocks, else Int4Linear."""
    return Int4KLinear if plan.kscales and linear.in_features % KSUPER == 0 else Int4Linear


def _fits(linear: nn.Linear, quant: str, group_size: int) -> bool:
    """Whether the kernel takes this shape (it gives wrong results, or crashes, otherwise)."""
    return linear.in_features % (16 if quant == "int8" else group_size) == 0


def _linears(module: nn.Module, plan: QuantPlan) -> list[tuple[str, nn.Module, str, nn.Linear, str]]:
    """(module path, parent, attribute, layer, its quant under ``plan``) of every ``nn.Linear`` in ``module``."""
    found = [(f"{path}.{name}" if path else name, parent, name, child) for path, parent in module.named_modules()
             for name, child in parent.named_children() if type(child) is nn.Linear]
    blocks = {path.split(".layers.")[1].split(".")[0] for path, *_ in found if ".layers." in path}
    return [(path, parent, name, child, plan.layer_quant(path, len(blocks))) for path, parent, name, child in found]
