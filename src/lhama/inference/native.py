"""A native one-row int4 product for decoding (AVX512-VNNI), built once with the C compiler.

PyTorch's ``_weight_int4pack_mm_for_cpu`` dequantises every 4-bit weight to fp32 before its
multiply-add: on a 2-core CPU that arithmetic, not memory, limits a decode step. ``int4_vnni.c``
reads the very same packed weights but multiplies them with the activation rows quantised to
int8 (per group, as llama.cpp does), four products per byte lane in one ``vpdpbusd``. It takes
the rows four at a time (the weights are read once per four rows) and each row's result is the
same as its own one-row product, so a prompt, a decode step and a speculative check compute
every row alike. Measured on the 1.5B (1 thread, busy machine): a decode step 55.7 vs 115.1 ms
CPU, a 54-token prefill 591 vs 1785 ms CPU (PyTorch's kernel: fp32 dequantisation per row).

The library is compiled on first use into ``$LHAMA_HOME/kernels/`` (temp + rename) and loaded
with ctypes. ``lhama_int8_gemm`` does the same for int8 weights (one scale per row, as PyTorch's
``_weight_int8pack_mm``), with each activation row rounded to int16 (``vpdpwssd``): PyTorch's
int8 kernel read 6 GB/s on this CPU (1 thread), a third of the native int4 kernel's bandwidth. They are used when: the CPU has AVX512-VNNI and AVX512-VBMI, a C compiler (``cc``,
or ``$CC``) built it, and ``LHAMA_INT4_KERNEL`` is not ``aten``. Otherwise :func:`kernel` returns
None and callers run PyTorch's kernel. The results are not bit-identical to PyTorch's (int8
activations): see docs/benchmarks.md for greedy agreement and perplexity against fp32.

Without AVX512 (e.g. AMD Zen 3) ``int4_avx2.c`` + ``int8_avx2.c`` (one library) run instead: the same entry points
and bits. They also have ``_blocked`` twins that read each layer's scales laid out by :func:`blocked` (a copy built once
per layer by ``lhama.inference.qlinear.native_scales``): one sequential stream per block of 64 rows instead of one cache
line per group from rows N apart, which the hardware prefetcher does not follow; k-scales are read as one array of
records (:func:`kscale_records`: the 6-bit codes put together at load, one stream per block for all of them). Its 6-bit
product reads weights laid at load for it (``int6_avx2.c``, :func:`lay6`: in place, the same values, one load per 64
weights instead of the int4 packing's unpacks), so lossy6 layers are 6-bit on AVX2 too (``quant.six_bit_lossy``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import torch

from lhama.home import lhama_home

SOURCE = Path(__file__).with_name("int4_vnni.c")
_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi")
_CFLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-mavx512vbmi", "-fopenmp",
           "-shared", "-fPIC"]
# Where AVX512 is missing (e.g. AMD Zen 3): the AVX2 port, same entry points and the same bits (int4_avx2.c; its int8
# product in int8_avx2.c, compiled into the same library)
SOURCE_AVX2 = Path(__file__).with_name("int4_avx2.c")
SOURCES_AVX2 = (SOURCE_AVX2, Path(__file__).with_name("int8_avx2.c"), Path(__file__).with_name("int6_avx2.c"))
HEADERS_AVX2 = (Path(__file__).with_name("avx2_common.h"),)  # included by both: in the library's sha256 too
_FLAGS_AVX2 = ("avx2", "fma", "f16c")
_CFLAGS_AVX2 = ["-O3", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off", "-fopenmp", "-shared", "-fPIC"]
ROWS = 64  # the kernel takes whole blocks of 64 output rows


def enabled() -> bool:
    """Whether the native kernel may be used (``LHAMA_INT4_KERNEL=aten`` turns it off)."""
    return os.environ.get("LHAMA_INT4_KERNEL", "vnni").lower() != "aten"


@cache
def kernel() -> ctypes.CDLL | None:
    """The loaded library, or None where it cannot run here (CPU, compiler, build failure)."""
    variant = _variant()
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if variant is None or compiler is None:
        return None
    paths, flags = variant
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in (*paths, *_headers(paths)))).hexdigest()[:16]
    target = lhama_home() / "kernels" / f"{paths[0].stem}-{digest}.so"
    try:
        if not target.is_file():
            build_library(compiler, paths, flags, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError):
        return None
    lib.lhama_int4_gemm.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 6
    lib.lhama_int4_gemm.restype = ctypes.c_int
    lib.lhama_int4k_gemm.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int] * 6
    lib.lhama_int4k_gemm.restype = ctypes.c_int
    lib.lhama_int6k_gemm.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int] * 6
    lib.lhama_int6k_gemm.restype = ctypes.c_int
    lib.lhama_int8_gemm.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 5
    lib.lhama_int8_gemm.restype = ctypes.c_int
    if hasattr(lib, "lhama_int4k_gemm_blocked"):  # the AVX2 port: blocked scales (blocked())
        lib.lhama_int4_gemm_blocked.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 5
        lib.lhama_int4k_gemm_blocked.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int] * 5
        lib.lhama_int6k_gemm_blocked.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int] * 5
        for name in ("lhama_int4_gemm_blocked", "lhama_int4k_gemm_blocked", "lhama_int6k_gemm_blocked"):
            getattr(lib, name).restype = ctypes.c_int
    if hasattr(lib, "lhama_int4k_gemm_records"):  # k-scales as records (kscale_records)
        lib.lhama_int4k_gemm_records.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 5
        lib.lhama_int4k_gemm_records.restype = ctypes.c_int
    if hasattr(lib, "lhama_int6k_gemm_laid"):  # 6-bit weights laid for AVX2 (lay6)
        lib.lhama_int6k_gemm_laid.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int] * 5
        lib.lhama_int6k_lay.argtypes = lib.lhama_int6k_unlay.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_int] * 2
        for name in ("lhama_int6k_gemm_laid", "lhama_int6k_lay", "lhama_int6k_unlay"):
            getattr(lib, name).restype = ctypes.c_int
    return lib


def _headers(sources: tuple[Path, ...]) -> tuple[Path, ...]:
    """The headers ``sources`` include (their bytes name the built library with the sources')."""
    return HEADERS_AVX2 if sources == SOURCES_AVX2 else ()


def cpu_supported() -> bool:
    """Whether this CPU has every instruction set the AVX512-VNNI kernel uses (Linux's /proc/cpuinfo)."""
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and set(_FLAGS) <= cpu_flags()


def cpu_flags() -> set[str]:
    """This CPU's instruction-set flags (Linux's /proc/cpuinfo; empty elsewhere)."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(flags.split())


def _variant() -> tuple[tuple[Path, ...], list[str]] | None:
    """(sources, compiler flags) of the kernel this CPU runs: AVX512-VNNI (on PyTorch's 64-row int4 packing), else
    AVX2 + FMA + F16C (on the 32-row packing PyTorch writes without AVX512), else None."""
    if cpu_supported():
        return ((SOURCE,), _CFLAGS) if packed_rows() == 64 else None
    if set(_FLAGS_AVX2) <= cpu_flags() and packed_rows() == 32:
        return SOURCES_AVX2, _CFLAGS_AVX2
    return None


@cache
def packed_rows() -> int:
    """Rows per block of PyTorch's int4 CPU packing in this process: 64 where it runs AVX512 code, else 32 (per block
    and input, byte j holds row j's 4-bit value and row ``packed_rows() / 2 + j``'s): probed on a tiny matrix."""
    q = torch.zeros(64, 2, dtype=torch.int32)
    q[16, 0] = 1
    first = int(torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1).reshape(-1)[0])
    return 32 if first >> 4 == 1 else 64


def build_library(compiler: str, sources: tuple[Path, ...], flags: list[str], target: Path) -> None:
    """Compiles ``sources`` into the shared library ``target``, atomically (temp file + rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        subprocess.run([compiler, *flags, *map(str, sources), "-o", str(built), *_omp_library()], check=True,
                       capture_output=True, timeout=120)
        os.replace(built, target)


def _omp_library() -> list[str]:
    """Link OpenMP against the runtime torch ships (same soname: one thread pool in the process)."""
    bundled = Path(torch.__file__).parent / "lib"
    return [f"-L{bundled}", f"-Wl,-rpath,{bundled}"] if (bundled / "libgomp.so.1").is_file() else []


def usable(rows: int, in_features: int, group_size: int) -> bool:
    """Whether the native kernel runs this packed int4 shape (rows: padded output rows) here."""
    return (rows % ROWS == 0 and group_size % 16 == 0 and in_features % group_size == 0 and enabled()
            and kernel() is not None)


def _threading() -> tuple[int, int]:
    """(threads, pool) for a product: torch's intra-op thread count (or ``LHAMA_KERNEL_THREADS``),
    shared by an OpenMP loop (pool 0, the default: faster on an idle machine, docs/benchmarks.md)
    unless ``LHAMA_KERNEL_POOL=own`` (the kernel's own work-sharing workers, pool 1)."""
    threads = int(os.environ.get("LHAMA_KERNEL_THREADS") or torch.get_num_threads())
    return threads, int(os.environ.get("LHAMA_KERNEL_POOL", "omp").lower() == "own")


def usable_int8(in_features: int) -> bool:
    """Whether the native int8 product runs here for ``in_features`` inputs (a multiple of 32)."""
    return in_features % 32 == 0 and enabled() and kernel() is not None


def int8_rows(x: torch.Tensor, weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``x`` (M, K) bf16 times int8 ``weight`` (N, K) with per-row bf16 ``scales`` -> (M, N) bf16
    (each activation row rounded to int16: 15 bits)."""
    x, weight, scales = x.contiguous(), weight.contiguous(), scales.contiguous()
    out = torch.empty(x.shape[0], weight.shape[0], dtype=torch.bfloat16)
    if kernel().lhama_int8_gemm(x.data_ptr(), weight.data_ptr(), scales.data_ptr(), out.data_ptr(),
                                x.shape[0], x.shape[1], weight.shape[0], *_threading()):
        raise MemoryError("the int8 kernel could not allocate its scratch memory")
    return out


def reads_blocked() -> bool:
    """Whether products read blocked scales: the kernel has those entry points (the AVX2 port: scales laid out by
    :func:`blocked`, one sequential stream per block of 64 rows; 2.2x faster int4 products from memory, same bits,
    docs/benchmarks.md session 11) and ``LHAMA_KERNEL_SCALES`` is not ``strided`` (the scales as stored: a comparison)."""
    lib = kernel()
    return (lib is not None and hasattr(lib, "lhama_int4k_gemm_blocked")
            and os.environ.get("LHAMA_KERNEL_SCALES", "blocked").lower() != "strided")


def blocked(scales: torch.Tensor, axis: int) -> torch.Tensor:
    """A scale array whose ``axis`` runs over the N output rows (a multiple of 64) with that axis split as (N/64, 64) and
    the N/64 blocks moved first: e.g. codes (K/g, N) -> (N/64, K/g, 64), pairs (K/g, N, 2) -> (N/64, K/g, 64, 2)."""
    rows = scales.shape[axis]
    return scales.unflatten(axis, (rows // ROWS, ROWS)).movedim(axis, 0).contiguous()


def reads_records() -> bool:
    """Whether k-scale products read :func:`kscale_records` (the kernel has that entry point and reads blocked scales)."""
    return reads_blocked() and hasattr(kernel(), "lhama_int4k_gemm_records")


KINDS = ("int4", "int4k", "int6k")  # the packed layers' scale layouts (qlinear's Int4Linear, Int4KLinear, Int6KLinear)


def laid_out(kind: str, *scales: tuple[torch.Tensor, int]) -> tuple[torch.Tensor, ...]:
    """A layer's scale arrays (each with the axis of its N rows) as the kernel's blocked entry points read them, for a
    layer of ``kind`` (one of :data:`KINDS`, named by the caller): each :func:`blocked`, or, for ``int4k`` where the
    kernel reads those, the k-scales (codes, highs, supers) as one array of :func:`kscale_records`."""
    if kind not in KINDS:
        raise ValueError(f"unknown packed layer kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == "int4k" and reads_records():
        (codes, _), (highs, _), (supers, _) = scales
        return (kscale_records(codes, highs, supers),)
    return tuple(blocked(t, axis) for t, axis in scales)


def kscale_records(codes: torch.Tensor, highs: torch.Tensor, supers: torch.Tensor) -> torch.Tensor:
    """k-scales (codes (K/g, N) uint8, highs (K/256, N) int32, supers (2, K/256, N) fp16) -> (N/64, K/256, 256 + 128 *
    256/g) uint8 records: per block of 64 rows and super-block, d and dmin (64 fp16 each), then per group its 6-bit sc
    (low 4 bits from codes, top 2 from highs) and m codes as bytes (64 each): int4_avx2.c's ks."""
    supers_n, per_super, n = highs.shape[0], codes.shape[0] // highs.shape[0], codes.shape[1]
    lo = codes.reshape(supers_n, per_super, n).to(torch.int32)
    top = highs.unsqueeze(1) >> (4 * torch.arange(per_super, dtype=torch.int32)).reshape(1, -1, 1)
    sc = (lo & 15) | ((top << 4) & 0x30)
    m = (lo >> 4) | ((top << 2) & 0x30)
    codes6 = torch.stack([sc, m], dim=2).to(torch.uint8).reshape(supers_n, per_super, 2, n // ROWS, ROWS)
    codes6 = codes6.permute(3, 0, 1, 2, 4).reshape(n // ROWS, supers_n, per_super * 2 * ROWS)
    parts = supers.reshape(2, supers_n, n // ROWS, ROWS).permute(2, 1, 0, 3).contiguous()  # (N/64, S, 2, 64) fp16
    return torch.cat([parts.view(torch.uint8).reshape(n // ROWS, supers_n, 4 * ROWS), codes6], dim=2).contiguous()


def _call(name: str, blocked_scales: bool, *args) -> int:
    """The kernel's entry point ``name`` (its ``_blocked`` twin with blocked scales, which takes no pool argument)."""
    if blocked_scales:
        return getattr(kernel(), name + "_blocked")(*args, _threading()[0])
    return getattr(kernel(), name)(*args, *_threading())


def int4_rows(x: torch.Tensor, weight: torch.Tensor, scales_and_zeros: torch.Tensor, group_size: int,
              blocked_scales: bool = False) -> torch.Tensor:
    """``x`` (M, K) bf16 times the packed ``weight`` (N, K/2) -> (M, N) bf16 (N: padded rows; ``blocked_scales``:
    the pairs laid out by :func:`blocked`)."""
    x = x.contiguous()
    out = torch.empty(x.shape[0], weight.shape[0], dtype=torch.bfloat16)
    if _call("lhama_int4_gemm", blocked_scales, x.data_ptr(), weight.data_ptr(), scales_and_zeros.data_ptr(),
             out.data_ptr(), x.shape[0], x.shape[1], weight.shape[0], group_size):
        raise MemoryError("the int4 kernel could not allocate its scratch memory")
    return out


KSUPER = 256  # inputs per fp32 super-scale of the k-scales layout (int4_vnni.c's KSUPER)


def int4k_rows(x: torch.Tensor, weight: torch.Tensor, codes: torch.Tensor, highs: torch.Tensor, supers: torch.Tensor,
               group_size: int, blocked_scales: bool = False) -> torch.Tensor:
    """``x`` (M, K) bf16 times the packed ``weight`` (N, K/2) with Q4_K-style k-scales (``codes`` (K/g, N) uint8,
    ``highs`` (K/256, N) int32, ``supers`` (2, K/256, N) fp16; see ``lhama.inference.qlinear.Int4KLinear``; with
    ``blocked_scales`` each laid out by :func:`blocked`) -> (M, N) bf16."""
    x = x.contiguous()
    out = torch.empty(x.shape[0], weight.shape[0], dtype=torch.bfloat16)
    if _call("lhama_int4k_gemm", blocked_scales, x.data_ptr(), weight.data_ptr(), codes.data_ptr(), highs.data_ptr(),
             supers.data_ptr(), out.data_ptr(), x.shape[0], x.shape[1], weight.shape[0], group_size):
        raise MemoryError("the int4 kernel could not allocate its scratch memory")
    return out


def int4k_records_rows(x: torch.Tensor, weight: torch.Tensor, records: torch.Tensor, group_size: int) -> torch.Tensor:
    """:func:`int4k_rows` on the k-scales laid out by :func:`kscale_records` (the same bits)."""
    x = x.contiguous()
    out = torch.empty(x.shape[0], weight.shape[0], dtype=torch.bfloat16)
    if kernel().lhama_int4k_gemm_records(x.data_ptr(), weight.data_ptr(), records.data_ptr(), out.data_ptr(),
                                         x.shape[0], x.shape[1], weight.shape[0], group_size, _threading()[0]):
        raise MemoryError("the int4 kernel could not allocate its scratch memory")
    return out


def int6k_rows(x: torch.Tensor, weight: torch.Tensor, hi: torch.Tensor, codes: torch.Tensor, supers: torch.Tensor,
               group_size: int, blocked_scales: bool = False) -> torch.Tensor:
    """``x`` (M, K) bf16 times 6-bit weights (``lhama.inference.qlinear.Int6KLinear``: low 4 bits packed
    as int4, high 2 bits in ``hi``) with Q6_K's scales (``codes`` (K/g, N) int8, ``supers`` (K/256, N) fp16; with
    ``blocked_scales`` laid out by :func:`blocked`) -> (M, N) bf16."""
    x = x.contiguous()
    out = torch.empty(x.shape[0], weight.shape[0], dtype=torch.bfloat16)
    if _call("lhama_int6k_gemm", blocked_scales, x.data_ptr(), weight.data_ptr(), hi.data_ptr(), codes.data_ptr(),
             supers.data_ptr(), out.data_ptr(), x.shape[0], x.shape[1], weight.shape[0], group_size):
        raise MemoryError("the int6 kernel could not allocate its scratch memory")
    return out


def reads_laid6() -> bool:
    """Whether 6-bit products read laid weights (:func:`lay6`): the kernel has that entry point (the AVX2 port's
    ``int6_avx2.c``) and reads blocked scales."""
    return reads_blocked() and has_laid6()


def has_laid6() -> bool:
    """Whether this machine's kernel has the AVX2 port's 6-bit product on laid weights (whatever the scale switches:
    what decides how lossy6 layers are built here, ``quant.six_bit_lossy``)."""
    lib = kernel()
    return lib is not None and hasattr(lib, "lhama_int6k_gemm_laid")


def laid6_runs() -> bool:
    """Whether lossy6 layers run on the AVX2 port's laid 6-bit product here: no AVX512-VNNI kernel, the native kernel on
    (:func:`enabled`) and built with that entry point (:func:`has_laid6`; the library is loaded, built once, to know)."""
    return not cpu_supported() and enabled() and has_laid6()


def cache_key(int4: bool, lossy6: bool) -> dict[str, int | str]:
    """This machine's part of a quantised cache's settings (``quant_cache``), asked once per load: the int4 packing
    ``int4_rows`` for a plan with int4 layers (blocks of 64 rows with AVX512, 32 without: a cache copied across CPUs is
    rebuilt), and ``lossy6`` = "6-bit" for a plan with lossy6 layers that :func:`laid6_runs` builds 6-bit (int8 before
    session 15: such an AVX2 cache is rebuilt). Nothing the plan does not hold is probed (a bf16 load builds no
    kernel)."""
    key: dict[str, int | str] = {"int4_rows": packed_rows()} if int4 else {}
    if lossy6 and laid6_runs():
        key["lossy6"] = "6-bit"
    return key


def lay6(weight: torch.Tensor, hi: torch.Tensor, laid: bool) -> None:
    """Re-orders 6-bit weights (``Int6KLinear``'s ``weight`` (N, K/2), ``hi`` (N/64, K/4, 64) uint8) in place: the
    stored order -> the order ``int6_avx2.c`` reads (one load per 64 weights, no unpacking; the same values) when
    ``laid``, else back."""
    rows, inputs = weight.shape[0], weight.shape[1] * 2
    if not (weight.is_contiguous() and hi.is_contiguous()) or hi.numel() * 4 != rows * inputs or rows % ROWS:
        raise ValueError(f"not a 6-bit layer's weights: {tuple(weight.shape)} and {tuple(hi.shape)}")
    entry = kernel().lhama_int6k_lay if laid else kernel().lhama_int6k_unlay
    if entry(weight.data_ptr(), hi.data_ptr(), rows, inputs):
        raise MemoryError("the int6 kernel could not allocate its scratch memory")


def int6k_laid_rows(x: torch.Tensor, weight: torch.Tensor, hi: torch.Tensor, codes: torch.Tensor,
                    supers: torch.Tensor) -> torch.Tensor:
    """:func:`int6k_rows` on weights laid by :func:`lay6` and scales laid out by :func:`blocked` (groups of 16,
    inputs a multiple of 256): the same bits."""
    x = x.contiguous()
    out = torch.empty(x.shape[0], weight.shape[0], dtype=torch.bfloat16)
    failed = kernel().lhama_int6k_gemm_laid(x.data_ptr(), weight.data_ptr(), hi.data_ptr(), codes.data_ptr(),
                                            supers.data_ptr(), out.data_ptr(), x.shape[0], x.shape[1],
                                            weight.shape[0], 16, _threading()[0])
    if failed:
        raise MemoryError("the int6 kernel could not allocate its scratch memory") if failed == -1 else ValueError(
            f"the laid 6-bit product takes groups of 16 and inputs a multiple of {KSUPER}, got {x.shape[1]}")
    return out
