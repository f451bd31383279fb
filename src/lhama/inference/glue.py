"""The lean decode step's glue between its products in C (``glue.c``), the same bits as the PyTorch ops it replaces.

Between two products of a decoder layer, :mod:`lhama.inference.lean` ran ~30 small PyTorch ops per layer (RMSNorm's
eight, the residual adds, the bias + rotary embedding + KV-cache write, SiLU(gate) * up): at a few microseconds of
dispatch each, ~15 ms of a ~100 ms decode step on lhama-default (2-core CPU), with cold caches after every product.
``glue.c`` does each group in one call: ``add_rms`` (the residual add and the next RMSNorm), ``rope_write`` and
``silu_mul``. Bits: an elementwise bf16 op is the fp32 op rounded to bf16, as ATen computes it; SiLU is read from a
table PyTorch's own SiLU fills (every bf16 value); RMSNorm's mean of squares adds in the order of ATen's cascade sum
for this CPU's vector width (:func:`lanes`). :func:`for_widths` checks all three against the PyTorch ops on random
rows of the model's widths before the decoder uses them, and returns None (the PyTorch ops run) on any difference,
on a CPU or build where the library does not load, or with ``LHAMA_GLUE=0``.

The library is compiled once into ``$LHAMA_HOME/kernels/`` (plain C; ``-mavx2`` where the CPU has it, no fused
multiply-add) and loaded with ctypes. A decode step makes its glue calls through :class:`GlueStep`: its arguments set
once per step in a C struct, each call through a CPython extension module built from the same C (``glue_module.c``:
~2.5 us a call right after a product has flushed the caches, against ~12.6 us through ctypes) where this Python's
headers are installed, else through ctypes (``LHAMA_GLUE_EXT=0`` asks for ctypes).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lhama.home import lhama_home
from lhama.inference.native import build_library, cpu_flags

SOURCE, MODULE = Path(__file__).with_name("glue.c"), Path(__file__).with_name("glue_module.c")
_CFLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC"]
_P, _I = ctypes.c_void_p, ctypes.c_int


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _built(sources: tuple[Path, ...], flags: list[str], name: str, suffix: str) -> Path:
    """``sources`` compiled with ``flags`` into ``$LHAMA_HOME/kernels/`` once (named after their hash)."""
    digest = hashlib.sha256(b"".join(s.read_bytes() for s in sources) + " ".join(flags).encode()).hexdigest()[:16]
    target = lhama_home() / "kernels" / f"{name}-{digest}{suffix}"
    if not target.is_file():
        build_library(_compiler(), sources, flags, target)
    return target


def _flags() -> list[str]:
    return _CFLAGS + (["-mavx2"] if "avx2" in cpu_flags() else [])


@cache
def library() -> ctypes.CDLL | None:
    """The loaded glue library, or None (no compiler, build failure, ``LHAMA_GLUE=0``)."""
    if os.environ.get("LHAMA_GLUE", "1") == "0" or _compiler() is None:
        return None
    try:
        lib = ctypes.CDLL(str(_built((SOURCE,), _flags(), "glue", ".so")))
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    lib.lhama_glue_add_rms.argtypes = [_P, _I, _P, _I, _P, ctypes.c_float, _P, _I, _I, _I]
    lib.lhama_glue_mean_squares.argtypes = [_P, _I, _I]
    lib.lhama_glue_mean_squares.restype = ctypes.c_float
    lib.lhama_glue_rope_write.argtypes = [_P, _I, _P, _P, _P, _I, _I, _I, _I, _P, _P, _P, ctypes.c_long,
                                          ctypes.c_long, _I, _I]
    lib.lhama_glue_silu_mul.argtypes = [_P, _I, _P, _P, _I, _I]
    step = ctypes.POINTER(StepArgs)
    lib.lhama_glue_step_add_rms.argtypes = [step, _P, _I, _P, ctypes.c_float]
    lib.lhama_glue_step_rope_write.argtypes = [step, _P, _I, _P, _P, _P]
    lib.lhama_glue_step_silu_mul.argtypes = [step, _P, _I]
    return lib


@cache
def extension() -> object | None:
    """``glue_module.c``'s CPython extension module (the per-step calls), or None: no compiler, no ``Python.h`` for
    this Python, a failed build or load, or ``LHAMA_GLUE_EXT=0``."""
    include = Path(sysconfig.get_paths()["include"])
    if os.environ.get("LHAMA_GLUE_EXT", "1") == "0" or _compiler() is None or not (include / "Python.h").is_file():
        return None
    try:
        path = _built((SOURCE, MODULE), [*_flags(), f"-I{include}"], "glue_ext", sysconfig.get_config_var("EXT_SUFFIX"))
        spec = importlib.util.spec_from_file_location("_lhama_glue", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (OSError, ImportError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return module


class StepArgs(ctypes.Structure):
    """``struct lhama_glue_step`` (glue.c): what the glue calls of one decode step share."""

    _fields_ = [*((name, _P) for name in ("hidden", "normed", "cos", "sin", "query", "silu", "silu_out")),
                ("row_step", ctypes.c_long), ("head_step", ctypes.c_long),
                *((name, _I) for name in ("hidden_stride", "rows", "width", "lanes", "heads", "kv_heads", "dim", "column",
                                          "column_step", "intermediate"))]


def lanes() -> int:
    """Floats per vector in ATen's float kernels on this CPU (its cascade sum's order depends on it)."""
    return 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8


@dataclass(frozen=True)
class Glue:
    """The C glue for a decoder of these widths (built by :func:`for_widths`, checked)."""

    lib: ctypes.CDLL
    lanes: int
    silu: torch.Tensor  # (65536,) bf16: SiLU of every bf16 bit pattern, from PyTorch
    ext: object | None = None  # extension(): the per-step calls without ctypes (None: through ctypes)

    def add_rms(self, hidden: torch.Tensor, add: torch.Tensor | None, norm: nn.Module, out: torch.Tensor) -> None:
        """``hidden += add`` (in place, bf16; skipped for None), then ``out = norm(hidden)`` (Llama/Qwen2 RMSNorm)."""
        rows, width = hidden.shape
        self.lib.lhama_glue_add_rms(hidden.data_ptr(), hidden.stride(0), None if add is None else add.data_ptr(),
                                    0 if add is None else add.stride(0), norm.weight.data_ptr(),
                                    norm.variance_epsilon, out.data_ptr(), rows, width, self.lanes)

    def rope_write(self, qkv: torch.Tensor, bias: torch.Tensor | None, rotary: tuple[torch.Tensor, torch.Tensor],
                   query: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], column: int) -> None:
        """``qkv`` (B, (H + 2 Hkv) d) + ``bias``; rotated query heads into ``query`` (B, H, d); rotated key heads and
        value heads into the caches ``kv`` (each (B, Hkv, C, d): row b at ``column``; or (1, Hkv, C, d): row i at
        ``column + i``), as ``lean._write`` places them."""
        (cos, sin), (keys, values) = rotary, kv
        rows, heads, dim = query.shape
        batch = _in_cache(keys, rows, column)
        self.lib.lhama_glue_rope_write(qkv.data_ptr(), qkv.stride(0), None if bias is None else bias.data_ptr(),
                                       cos.data_ptr(), sin.data_ptr(), rows, heads, keys.shape[1], dim,
                                       query.data_ptr(), keys.data_ptr(), values.data_ptr(),
                                       keys.stride(0) if batch else 0, keys.stride(1), column, 0 if batch else 1)

    def silu_mul(self, gate_up: torch.Tensor) -> torch.Tensor:
        """``silu(gate) * up`` (B, I) for ``gate_up`` (B, 2 I), the gate the first half of each row."""
        rows, width = gate_up.shape[0], gate_up.shape[1] // 2
        out = gate_up.new_empty(rows, width)
        self.lib.lhama_glue_silu_mul(gate_up.data_ptr(), gate_up.stride(0), self.silu.data_ptr(), out.data_ptr(),
                                     rows, width)
        return out

    def step(self, hidden: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], heads: int,
             cache: tuple[torch.Tensor, torch.Tensor], column: int, intermediate: int) -> GlueStep:
        """The glue calls of one step over ``hidden`` (B, D; contiguous rows), whose key/value rows go to caches laid
        out as ``cache`` (one layer's (keys, values): each layer's alike) at ``column``: see :class:`GlueStep`."""
        (cos, sin), keys = rotary, cache[0]
        (rows, width), (kv_heads, dim) = hidden.shape, keys.shape[1::2]
        batch = _in_cache(keys, rows, column)
        tensors = (hidden, torch.empty_like(hidden), cos, sin, hidden.new_empty(rows, heads, dim), self.silu,
                   hidden.new_empty(rows, intermediate))
        args = StepArgs(*(t.data_ptr() for t in tensors), keys.stride(0) if batch else 0, keys.stride(1),
                        hidden.stride(0), rows, width, self.lanes, heads, kv_heads, dim, column, 0 if batch else 1,
                        intermediate)
        return GlueStep(self.lib if self.ext is None else self.ext, args, tensors)


class GlueStep:
    """One decode step's glue calls (:meth:`Glue.step`): the buffers, rotary rows and cache layout set once, so each
    call passes only what changes from layer to layer (the same C functions, the same bits as :class:`Glue`'s).
    ``normed`` takes each RMSNorm's output, ``query`` the rotated query heads, ``silu_out`` SiLU(gate) * up."""

    def __init__(self, calls: ctypes.CDLL | object, args: StepArgs, tensors: tuple[torch.Tensor, ...]) -> None:
        self._args, self.rows = args, args.rows  # calls: the library (ctypes) or extension()'s module
        if isinstance(calls, ctypes.CDLL):
            self._ref, self._add_rms = ctypes.byref(args), calls.lhama_glue_step_add_rms
            self._rope_write, self._silu_mul = calls.lhama_glue_step_rope_write, calls.lhama_glue_step_silu_mul
        else:
            self._ref, self._add_rms = ctypes.addressof(args), calls.add_rms
            self._rope_write, self._silu_mul = calls.rope_write, calls.silu_mul
        self.hidden, self.normed, _, _, self.query, _, self.silu_out = tensors
        self._tensors = tensors  # alive while the C side holds their addresses

    def add_rms(self, add: torch.Tensor | None, norm: nn.Module) -> torch.Tensor:
        """``hidden += add`` (skipped for None), then ``normed = norm(hidden)``; returns ``normed``."""
        stride = 0 if add is None or self.rows == 1 else add.stride(0)  # one row: its stride is never read
        self._add_rms(self._ref, None if add is None else add.data_ptr(), stride, norm.weight.data_ptr(),
                      norm.variance_epsilon)
        return self.normed

    def rope_write(self, qkv: torch.Tensor, bias: torch.Tensor | None, keys: torch.Tensor, values: torch.Tensor) -> None:
        """:meth:`Glue.rope_write` into ``query`` and one layer's caches (laid out as the step's)."""
        self._rope_write(self._ref, qkv.data_ptr(), 0 if self.rows == 1 else qkv.stride(0),
                         None if bias is None else bias.data_ptr(), keys.data_ptr(), values.data_ptr())

    def silu_mul(self, gate_up: torch.Tensor) -> torch.Tensor:
        """``silu_out = silu(gate) * up`` (overwritten by the next call); returns ``silu_out``."""
        self._silu_mul(self._ref, gate_up.data_ptr(), 0 if self.rows == 1 else gate_up.stride(0))
        return self.silu_out


def _in_cache(keys: torch.Tensor, rows: int, column: int) -> bool:
    """Whether ``keys`` (B, Hkv, C, d) holds a batch of ``rows`` (one column each) rather than one sequence (``rows``
    columns); raises IndexError, as the PyTorch write would, where the columns written do not fit (the C code does
    not check)."""
    batch = keys.shape[0] == rows
    last = column + (0 if batch else rows - 1)
    if column < 0 or last >= keys.shape[2]:
        raise IndexError(f"KV cache column {last} is out of bounds for a cache of {keys.shape[2]} columns")
    return batch


Norm = Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (RMSNorm module, rows) -> normalised rows
Rotary = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (heads, cos, sin) -> rotated heads


@cache
def for_widths(hidden: int, intermediate: int, head_dim: int, rms: Norm, rotated: Rotary) -> Glue | None:
    """A :class:`Glue` for a decoder of these widths, or None where its results are not the bits of the PyTorch ops it
    replaces (``rms``, ``rotated``: the caller's; SiLU(gate) * up)."""
    lib = library()
    if lib is None:
        return None
    every = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    glue = Glue(lib, lanes(), F.silu(every), extension())
    return glue if same_bits(glue, (hidden, intermediate, head_dim), rms, rotated) else None


def same_bits(glue: Glue, widths: tuple[int, int, int], rms: Norm, rotated: Rotary, rows: int = 8) -> bool:
    """Whether the glue gives the PyTorch ops' bits on random rows of these widths (hidden, intermediate, head):
    means of squares included (a norm's bf16 output rows hide most one-ulp differences of them)."""
    (hidden, intermediate, head_dim), generator = widths, torch.Generator().manual_seed(0)
    x = (torch.randn(rows, hidden, generator=generator) * torch.rand(rows, 1, generator=generator) * 8).bfloat16()
    means = torch.tensor([glue.lib.lhama_glue_mean_squares(row.data_ptr(), hidden, glue.lanes) for row in x])
    if not torch.equal(means, x.float().pow(2).mean(-1)):
        return False
    norm = nn.Module()
    norm.weight, norm.variance_epsilon = torch.randn(hidden, generator=generator).bfloat16(), 1e-6
    added, out = x.clone(), torch.empty_like(x)
    glue.add_rms(added, x.flip(0), norm, out)
    if not (torch.equal(added, x + x.flip(0)) and torch.equal(out, rms(norm, x + x.flip(0)))):
        return False
    gate_up = (torch.randn(rows, 2 * intermediate, generator=generator) * 4).bfloat16()
    gate, up = gate_up.chunk(2, dim=-1)
    return (torch.equal(glue.silu_mul(gate_up), F.silu(gate) * up) and _rope_same_bits(glue, head_dim, rotated, generator)
            and _step_same_bits(glue, widths, generator))


def _step_same_bits(glue: Glue, widths: tuple[int, int, int], generator: torch.Generator) -> bool:
    """Whether a :class:`GlueStep` (the struct of arguments) gives what the explicit calls give, for 1 and 3 rows."""
    (hidden, intermediate, dim), heads, kv_heads = widths, 4, 2
    for rows in (1, 3):
        x, add = ((torch.randn(rows, hidden, generator=generator) * 4).bfloat16() for _ in range(2))
        qkv = (torch.randn(rows, (heads + 2 * kv_heads) * dim, generator=generator) * 4).bfloat16()
        gate_up = (torch.randn(rows, 2 * intermediate, generator=generator) * 4).bfloat16()
        cos, sin = (torch.rand(rows, 1, dim, generator=generator).bfloat16() for _ in range(2))
        norm = nn.Module()
        norm.weight, norm.variance_epsilon = torch.randn(hidden, generator=generator).bfloat16(), 1e-6
        cache, expected = [torch.zeros(rows, kv_heads, 4, dim, dtype=torch.bfloat16) for _ in range(4)], x.clone()
        normed, query = torch.empty_like(x), torch.empty(rows, heads, dim, dtype=torch.bfloat16)
        glue.add_rms(expected, add, norm, normed)
        glue.rope_write(qkv, None, (cos, sin), query, cache[:2], 1)
        step = glue.step(x, (cos, sin), heads, cache[2:], 1, intermediate)
        step.rope_write(qkv, None, *cache[2:])
        same = (torch.equal(step.add_rms(add, norm), normed) and torch.equal(x, expected)
                and torch.equal(step.query, query) and all(torch.equal(a, b) for a, b in zip(cache[:2], cache[2:]))
                and torch.equal(step.silu_mul(gate_up), glue.silu_mul(gate_up)))
        if not same:
            return False
    return True


def _rope_same_bits(glue: Glue, dim: int, rotated: Rotary, generator: torch.Generator, heads: int = 4,
                    kv_heads: int = 2) -> bool:
    qkv = (torch.randn(3, (heads + 2 * kv_heads) * dim, generator=generator) * 4).bfloat16()
    bias = torch.randn(qkv.shape[1], generator=generator).bfloat16()
    angles = torch.rand(3, 1, dim, generator=generator) * 6
    cos, sin = angles.cos().bfloat16(), angles.sin().bfloat16()
    keys, values = (torch.zeros(3, kv_heads, 5, dim, dtype=torch.bfloat16) for _ in range(2))
    query = torch.empty(3, heads, dim, dtype=torch.bfloat16)
    glue.rope_write(qkv, bias, (cos, sin), query, (keys, values), 2)
    full = qkv + bias
    qk = rotated(full[:, : (heads + kv_heads) * dim].view(3, heads + kv_heads, dim), cos, sin)
    return (torch.equal(query, qk[:, :heads]) and torch.equal(keys[:, :, 2], qk[:, heads:])
            and torch.equal(values[:, :, 2], full[:, (heads + kv_heads) * dim :].view(3, kv_heads, dim)))
