"""K-scales: a layer's per-group int4/int6 scales coded as a GGUF's Q4_K / Q6_K blocks store them, under fp16
super-scales, one (Q4_K: two) per :data:`KSUPER` inputs. 4-bit (:func:`q4k_codes`): 6-bit scale codes ``sc`` and
low codes ``m``, ``w = d sc q - dmin m`` (q 0..15); 0.5 bits per weight at g = 32, as Q4_K. For Q4_K layers
:func:`k_codes` first finds each block's own codes, so such a layer is stored exactly, and codes any other group so
that no weight is cut off. 6-bit (:func:`q6k_codes`): one signed byte per group of 16, ``w = d sc (q - 32)``
(q 0..63); 0.5625 bits per weight, as Q6_K. Used by :class:`lhama.inference.qlinear.Int4KLinear` and ``Int6KLinear``.
"""

from __future__ import annotations

import torch

from lhama.inference import native

KSUPER = native.KSUPER  # inputs per super-scale


_WHOLE = 63  # the super-scale divisor tried first: Q4_K's 6-bit scales
_SIX = 63  # largest 6-bit code (Q4_K's sc and m)
_HALF = 2.0**-24  # the smallest fp16 (subnormal): a super-scale is never rounded to zero
_EXACT_SHARE = 0.05  # at most this share of a row block's blocks is searched for exact Q4_K codes
_EXACT_BATCH = 128  # blocks searched at a time (the search holds ~2.6 MB per block)
_FINER = 8  # the search also tries the step d / 2 .. d / _FINER


def _whole(ratio: torch.Tensor) -> torch.Tensor:
    """Where ``ratio`` is a whole number (within 1e-3)."""
    return (ratio - ratio.round()).abs() <= 1e-3


def k_scales(scale: torch.Tensor, low: torch.Tensor, per_super: int) -> tuple[torch.Tensor, ...]:
    """(codes (n, G, 2) uint8, supers (n, G / per_super, 2) fp32, coded scale, coded low) of the groups'
    ``scale`` and ``low`` (n, G, 1) fp32, in bytes (the first step of :func:`q4k_codes`): a super-block's
    scales that are whole multiples of its largest / 63 (a Q4_K GGUF's 6-bit scales) get that super-scale,
    so they are stored exactly; others the largest / 255. The lows get a second super-scale
    (:func:`_low_codes`: a Q4_K block's exactly): ``low = super * (code - 128)``."""
    n, count = scale.shape[0], scale.shape[1]
    blocks = scale.reshape(n, count // per_super, per_super)
    largest = blocks.amax(-1, keepdim=True).clamp(min=1e-30)
    whole = _whole(blocks / (largest / _WHOLE)).all(-1, keepdim=True)
    supers = torch.where(whole, largest / _WHOLE, largest / 255)  # (n, G / s, 1)
    code = torch.round(blocks / supers).clamp(1, 255)
    coded_scale = (code * supers).reshape(n, count, 1)
    low_code, low_super = _low_codes(low.reshape(n, count // per_super, per_super))
    coded_low = (low_super * (low_code - 128)).reshape(n, count, 1)
    supers = torch.cat([supers, low_super], dim=-1)
    codes = torch.stack([code.reshape(n, count), low_code.reshape(n, count)], dim=-1).to(torch.uint8)
    return codes, supers, coded_scale, coded_low


def _low_codes(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, super) of the groups' lows (n, S, s): ``low = super * (code - 128)``. A block whose
    lows are all whole multiples of -(lowest) / 63 (a Q4_K block's ``-dmin m``, m 6-bit) gets
    that step, so they are stored exactly; any other block the largest |low| / 127."""
    reach = blocks.abs().amax(-1, keepdim=True).clamp(min=1e-30)
    step = reach / 127
    q4k = -blocks.amin(-1, keepdim=True).clamp(max=-1e-30) / 63
    whole = _whole(blocks / q4k).all(-1, keepdim=True) & (blocks <= 0).all(-1, keepdim=True)
    step = torch.where(whole, q4k, step)
    return torch.round(blocks / step + 128).clamp(0, 255), step


def k_codes(groups: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, per_super: int) -> tuple[torch.Tensor, ...]:
    """:func:`k_scales` (codes, supers, coded scale, coded low) of ``groups`` (n, G, g) fp32 and their 4-bit
    (``scale``, ``low``) (n, G, 1), with the groups those codes miss (a weight off its level by more than 1%
    of a step) coded again: a block whose groups all sit on their grids gets the codes of :func:`_q4k_exact`
    where they exist (a Q4_K block whose grid scales are not the GGUF's: a group that skips levels or has two
    values), so it is stored exactly; any other missed group its lowest level rounded down and its scale up
    (:func:`_unclamped`), so no weight lands beyond level 0 or 15 (without this: up to 6.7 steps off on
    the 1.5B's down projections, and next-token agreement 93% against grid+lossy's 97%)."""
    codes, supers, coded_scale, coded_low = k_scales(scale, low, per_super)
    n, count, size = groups.shape
    missed = (_k_error(groups, coded_scale, coded_low) > 0.01).reshape(n, -1, per_super).any(-1)  # (n, G / s)
    if not missed.any():
        return codes, supers, coded_scale, coded_low
    blocks = groups.reshape(n, -1, per_super, size)
    grid_error = _k_error(groups, scale, low).reshape(n, -1, per_super)[missed]  # (B, s)
    on_grid = (grid_error <= 0.01).all(-1)  # (B,) every group of the block on its grid
    rows, cols = missed.nonzero(as_tuple=True)
    rows, cols = rows[on_grid], cols[on_grid]
    if len(rows) > _EXACT_SHARE * missed.numel():  # not a Q4_K layer's few odd blocks (e.g. a Q4_0 source): no search
        rows, cols = rows[:0], cols[:0]
    codes, supers = _searched(blocks, rows, cols, codes.reshape(n, -1, per_super, 2).clone(), supers.clone())
    codes = codes.reshape(n, count, 2)
    scale, low = _decoded(codes, supers, per_super)
    return _unclamped(groups, codes, supers, scale, low)


def _searched(blocks: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, codes: torch.Tensor,
              supers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``codes`` (n, S, s, 2) and ``supers`` (n, S, 2) with the blocks at (``rows``, ``cols``) of ``blocks``
    (n, S, s, g) replaced by their exact Q4_K codes (:func:`_q4k_exact`) where found: the step d of the
    search, then d / 2, d / 3 ... (a block whose groups all share a factor of their codes), each with
    level 0 at each group's lowest weight, then up to 15 steps below it."""
    for start in range(0, len(rows), _EXACT_BATCH):
        r, c = rows[start : start + _EXACT_BATCH], cols[start : start + _EXACT_BATCH]
        for finer in range(1, _FINER + 1):
            for below in (1, 16):
                if len(r) == 0:
                    break
                found, code, super_ = _q4k_exact(blocks[r, c].double(), below, finer)
                codes[r[found], c[found]], supers[r[found], c[found]] = code[found], super_[found].float()
                r, c = r[~found], c[~found]
    return codes, supers



def _k_error(groups: torch.Tensor, scale: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """Each group's largest distance of a weight from its 4-bit level, in steps: (..., G)."""
    q = torch.round((groups - low) / scale.clamp(min=1e-30)).clamp(0, 15)
    return ((q * scale + low - groups).abs() / scale.clamp(min=1e-30)).amax(-1)


def _decoded(codes: torch.Tensor, supers: torch.Tensor, per_super: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, low) (n, G, 1) fp32 as the kernel computes them from ``codes`` (n, G, 2) and ``supers`` (n, G / s, 2)."""
    wide = supers.repeat_interleave(per_super, dim=1)  # (n, G, 2)
    scale = codes[..., 0].float() * wide[..., 0]
    low = (codes[..., 1].float() - 128) * wide[..., 1]
    return scale.unsqueeze(-1), low.unsqueeze(-1)


def _q4k_exact(blocks: torch.Tensor, below: int = 16, finer: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(found (B,), codes (B, s, 2) uint8, supers (B, 2)) of blocks (B, s, g) float64 whose weights are
    ``d c q - dmin m`` (q 0..15; c, m whole: a Q4_K block): d the largest step dividing every difference
    within a group, c the largest divisor (<= 63) of a group's differences in steps of d, and dmin one group's
    level 0 over 63 (Q4_K's largest m; level 0 its lowest weight or up to ``below`` - 1 steps below), each group's level 0
    lowered by whole steps until it is a multiple of dmin (m 0..63)."""
    lows = blocks.amin(-1, keepdim=True)
    diffs = blocks - lows  # (B, s, g)
    tiny = 1e-6 * diffs.amax((-1, -2), keepdim=True)
    delta = torch.where(diffs > tiny, diffs, torch.inf).amin((-1, -2), keepdim=True)  # (B, 1, 1)
    d = torch.full_like(delta, torch.nan)
    for k in range(255, 0, -1):  # ends on the largest step that fits
        d = torch.where(_whole(diffs / (delta / k)).all(-1, keepdim=True).all(-2, keepdim=True), delta / k, d)
    d = d / finer  # a finer step than the largest common one: the GGUF's d when every code shares a factor
    steps = torch.round(diffs / d).nan_to_num(0).long()  # (B, s, g)
    gcd = steps[..., 0]
    for j in range(1, steps.shape[-1]):
        gcd = torch.gcd(gcd, steps[..., j])
    top = steps.amax(-1)  # (B, s)
    lows = lows[..., 0]
    # dmin candidates: a group's level 0 (its lowest weight, or whole steps of its own below it) as Q4_K's -63 dmin
    levels = lows[..., None] - torch.arange(below, dtype=blocks.dtype) * (gcd[..., None] * d[..., 0:1])  # (B, s, below)
    dmins = torch.cat([(-levels.flatten(1) / 63).clamp(min=1e-30), torch.ones_like(lows[:, :1])], dim=1)  # (B, C)
    m = torch.arange(64, dtype=blocks.dtype)  # Q4_K's m: 6 bits
    shift = (lows[:, None, :, None] + dmins[:, :, None, None] * m) / d[:, :, :, None]  # (B, C, s, 64) in steps of d
    whole = _whole(shift) & (shift > -1e-3)
    shift = torch.round(shift).clamp(min=0).long()
    common = torch.gcd(gcd[:, None, :, None], shift)  # every step count of the group, shifted, divides by it
    c = torch.ones_like(common)  # a constant group at its own level: any code
    for t in range(15, 0, -1):  # ends on the largest whole divisor of at most 63 (Q4_K's 6-bit sc)
        c = torch.where((common > 0) & (common % t == 0) & (common <= _SIX * t), common // t, c)
    fits = whole & (top[:, None, :, None] + shift <= 15 * c)
    first = fits.long().argmax(-1)  # (B, C, s): the smallest m that fits
    works = fits.any(-1).all(-1)  # (B, C)
    pick = works.long().argmax(-1)  # (B,)
    every = torch.arange(len(blocks))
    m_code, c_code = first[every, pick], c.gather(-1, first[..., None])[..., 0][every, pick]
    codes = torch.stack([c_code, 128 - m_code], dim=-1).to(torch.uint8)
    supers = torch.stack([d[:, 0, 0], dmins[every, pick]], dim=-1)
    found = works.any(-1) & d[:, 0, 0].isfinite()
    return found, codes, supers


def _unclamped(groups: torch.Tensor, codes: torch.Tensor, supers: torch.Tensor, scale: torch.Tensor,
               low: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The groups still more than half a step off (weights clamped at level 0 or 15) get their low code
    rounded down (the level at or below the group's lowest weight) and their scale code up (level 15 at or
    above its highest): every weight within half a step (a scale code of 255 aside)."""
    per_super = codes.shape[1] // supers.shape[1]
    bad = _k_error(groups, scale, low) > 0.5 + 1e-3  # (n, G)
    if not bad.any():
        return codes, supers, scale, low
    wide = supers.repeat_interleave(per_super, dim=1)  # (n, G, 2)
    low_code = torch.floor(groups.amin(-1) / wide[..., 1] + 128 + 1e-6).clamp(0, 255)
    span = groups.amax(-1) - (low_code - 128) * wide[..., 1]
    scale_code = torch.ceil(span / (15 * wide[..., 0]) - 1e-6).clamp(1, 255)
    codes = codes.clone()
    codes[bad] = torch.stack([scale_code, low_code], dim=-1)[bad].to(torch.uint8)
    return (codes, supers, *_decoded(codes, supers, per_super))


def q4k_codes(groups: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, per_super: int) -> tuple[torch.Tensor, ...]:
    """(sc (n, G), m (n, G) uint8 0..63, supers (n, G / per_super, 2) fp16 (d, dmin), coded scale, coded low
    (n, G, 1) fp32) of ``groups`` (n, G, g) fp32 and their 4-bit (``scale``, ``low``): Q4_K's block format,
    ``scale = d sc``, ``low = -dmin m``. The byte codes of :func:`k_codes` carry over where they fit 6 bits
    (a Q4_K block: exact); any other block's decoded scales and lows are coded to the nearest 6-bit step of
    its largest / 63, and a group left more than half a step off gets its low rounded down and scale up."""
    codes, supers, _, _ = k_codes(groups, scale, low, per_super)
    n, count, size = groups.shape
    codes = codes.reshape(n, -1, per_super, 2)
    wide = ((codes[..., 0] > _SIX) | (codes[..., 1] > 128) | (codes[..., 1] < 128 - _SIX)).any(-1)  # (n, S)
    on_grid = (_k_error(groups, scale, low).reshape(n, -1, per_super) <= 0.01).all(-1)
    rows, cols = (wide & on_grid).nonzero(as_tuple=True)
    if len(rows) <= _EXACT_SHARE * wide.numel():  # a Q4_K block whose byte codes exceed 6 bits: its own codes
        codes, supers = _searched(groups.reshape(n, -1, per_super, size), rows, cols, codes.clone(), supers.clone())
    sc = codes[..., 0].float()
    m = 128 - codes[..., 1].float()
    d, dmin = supers[..., 0:1], supers[..., 1:2]  # (n, S, 1)
    fits = ((sc <= _SIX) & (m >= 0) & (m <= _SIX)).all(-1, keepdim=True)
    byte_scale, byte_low = sc * d, -m * dmin
    d = torch.where(fits, d, byte_scale.amax(-1, keepdim=True) / _SIX).clamp(min=_HALF)
    dmin = torch.where(fits, dmin, (-byte_low).amax(-1, keepdim=True) / _SIX).clamp(min=_HALF)
    d16, sc = _exact_half(d, torch.round(byte_scale / d).clamp(1, _SIX))
    dmin16, m = _exact_half(dmin, torch.round(-byte_low / dmin).clamp(0, _SIX))
    sc, m = sc.reshape(n, count), m.reshape(n, count)
    wide_d, wide_dmin = d16.repeat_interleave(per_super, 1)[..., 0], dmin16.repeat_interleave(per_super, 1)[..., 0]
    coded_scale, coded_low = sc * wide_d, -m * wide_dmin  # (n, G)
    bad = _k_error(groups, coded_scale[..., None], coded_low[..., None]) > 0.5 + 1e-3  # weights cut off
    if bad.any():
        low_code = torch.ceil(-groups.amin(-1) / wide_dmin - 1e-6).clamp(0, _SIX)
        span = groups.amax(-1) + low_code * wide_dmin
        scale_code = torch.ceil(span / (15 * wide_d) - 1e-6).clamp(1, _SIX)
        sc, m = torch.where(bad, scale_code, sc), torch.where(bad, low_code, m)
        coded_scale, coded_low = sc * wide_d, -m * wide_dmin
    supers16 = torch.cat([d16, dmin16], dim=-1).half()
    return sc.to(torch.uint8), m.to(torch.uint8), supers16, coded_scale[..., None], coded_low[..., None]


def _exact_half(value: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(super-scale in fp16 (as fp32), codes) of a block's ``value`` (n, S, 1) > 0 and 6-bit ``codes`` (n, S, s): where
    ``value`` is no fp16 number but ``value / t`` is one and ``codes * t`` fit 6 bits (a Q4_K block whose codes share
    a factor t), those, so the block stays exact; else ``value`` rounded to fp16."""
    best, best_codes = _half(value), codes
    done = (best - value).abs() <= 1e-6 * value
    for t in range(2, _SIX + 1):
        part = value / t
        fits = ~done & ((_half(part) - part).abs() <= 1e-6 * part) & (codes * t <= _SIX).all(-1, keepdim=True)
        best, best_codes, done = torch.where(fits, _half(part), best), torch.where(fits, codes * t, best_codes), done | fits
    return best, best_codes


def _half_up(value: torch.Tensor) -> torch.Tensor:
    """``value`` (>= 0) rounded up to fp16, back in fp32: a super-scale whose largest code stays within range
    (fp16 is coarse below 6e-5, where a trained layer's Q6_K-style super-scales lie)."""
    half = _half(value)
    return torch.where(half < value, torch.nextafter(half.half(), torch.tensor(torch.inf, dtype=torch.half)).float(), half)


def _half(value: torch.Tensor) -> torch.Tensor:
    """``value`` (>= 0) rounded to fp16 (at least its smallest step), back in fp32."""
    return value.clamp(min=_HALF, max=65504).half().float().clamp(min=_HALF)


def pack_q4k(sc: torch.Tensor, m: torch.Tensor, per_super: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(low (n, G) uint8, high (n, G / per_super) int32) of 6-bit codes ``sc``, ``m`` (n, G): ``low`` holds
    the low 4 bits of sc (bits 0-3) and of m (4-7); ``high`` the top 2 bits of group i of a super-block's
    sc and m in bits 4 i, 4 i + 1 and 4 i + 2, 4 i + 3 (the native kernel's layout)."""
    n, count = sc.shape
    sc, m = sc.to(torch.int64), m.to(torch.int64)
    low = ((sc & 15) | ((m & 15) << 4)).to(torch.uint8)
    top = ((sc >> 4) | ((m >> 4) << 2)).reshape(n, count // per_super, per_super)
    high = (top << (4 * torch.arange(per_super))).sum(-1)
    return low, torch.where(high >= 2**31, high - 2**32, high).to(torch.int32)


def unpack_q4k(low: torch.Tensor, high: torch.Tensor, per_super: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pack_q4k`'s inverse in a layer's layout (groups first): (sc, m) (G, N) int64 of ``low`` (G, N)
    and ``high`` (G / per_super, N)."""
    low = low.to(torch.int64)
    shift = 4 * (torch.arange(low.shape[0]) % per_super).reshape(-1, 1)  # (G, 1)
    top = (high.to(torch.int64) & 0xFFFFFFFF).repeat_interleave(per_super, dim=0) >> shift
    return (low & 15) | ((top & 3) << 4), (low >> 4) | (((top >> 2) & 3) << 4)


def q6k_codes(groups: torch.Tensor, per_super: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes (n, G) int8, supers (n, G / per_super) fp16, coded step (n, G, 1) fp32) of 6-bit ``groups``
    (n, G, g) fp32: Q6_K's format, ``w = step (q - 32)`` with q 0..63 and ``step = super * code``. A block
    whose weights are all whole multiples of a common step (a Q6_K block: its |d|) gets that super-scale and
    each group its own multiple of it (:func:`_q6k_steps`), so it is stored exactly; any other block the
    largest |step| / 128, each group the step that puts its largest |weight| at -32 and the opposite end within
    +31, and a code that is not whole rounded away from zero (a coarser step: no weight is cut off)."""
    n, count, _ = groups.shape
    largest = groups.abs().amax(-1, keepdim=True)
    signed = groups.gather(-1, groups.abs().argmax(-1, keepdim=True))  # the largest, with its sign
    opposite = torch.where(signed > 0, -groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)).clamp(min=0)
    general = -torch.sign(signed) * torch.maximum(largest / 32, opposite / 31)
    unit, top, bottom, common = _q6k_steps(groups.reshape(n, -1, per_super, groups.shape[-1]), largest.reshape(n, -1, per_super))
    down, up = (top <= 32) & (bottom >= -31), (top <= 31) & (bottom >= -32)  # step -unit: q - 32 = -w / unit
    exact = unit.isfinite() & (down | up)
    blocks = torch.where(exact, torch.where(down, -unit, unit), general.reshape(n, -1, per_super))
    either = exact & down & up
    score = blocks.abs() * (1 + 1e-6 * (~either))  # the widest group; among equals one whose sign is forced
    widest = blocks.gather(-1, score.argmax(-1, keepdim=True))  # (n, S, 1)
    sign = torch.where(widest < 0, -1.0, 1.0)
    blocks = torch.where(either, sign * blocks.abs(), blocks)  # a group that fits both ways: the block's sign
    supers = -sign * torch.where(exact.all(-1, keepdim=True), _half(common), _half_up(widest.abs() / 128))
    ratio = blocks / supers
    code = torch.sign(ratio) * torch.ceil(ratio.abs() - 1e-3).clamp(min=1)
    code = torch.where(blocks == 0, 0.0, code).clamp(-128, 127)
    return code.reshape(n, count).to(torch.int8), supers[..., 0].half(), (code * supers).reshape(n, count, 1)


def _q6k_steps(blocks: torch.Tensor, largest: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(unit, top, bottom (n, S, s), common (n, S, 1)) of blocks (n, S, s, g) and their groups' largest |weight|:
    ``common`` the largest step of which every group's coarsest exact step is a whole multiple (a Q6_K block's
    |d|; NaN where there is none), ``unit`` each group's step as the smallest such multiple that is at most 128
    times ``common`` (NaN where none), and its weights' highest and lowest level in ``unit``."""
    exact = torch.zeros_like(largest, dtype=torch.bool)
    coarse = torch.full_like(largest, torch.nan)
    for steps in range(32, 0, -1):  # each group's coarsest exact step: its largest |weight| / steps
        unit = largest.clamp(min=1e-30) / steps
        fits = _whole(blocks / unit[..., None]).all(-1)
        coarse, exact = torch.where(fits, unit, coarse), exact | fits
    zero = largest == 0  # an all-zero group: any step
    coarse = torch.where(zero, torch.nan, coarse)
    smallest = torch.where(exact & ~zero, coarse, torch.inf).amin(-1, keepdim=True)  # (n, S, 1)
    common = torch.full_like(smallest, torch.nan)
    for k in range(255, 0, -1):  # ends on the largest step every group's is a whole multiple of
        candidate = smallest / k
        common = torch.where((_whole(coarse / candidate) | zero).all(-1, keepdim=True), candidate, common)
    common = torch.where(exact.all(-1, keepdim=True), common, torch.nan)
    code = torch.where(zero, 1.0, torch.round(coarse / common))
    best = torch.where(code <= 128, code, torch.nan)
    for t in range(8, 1, -1):  # ends on the smallest factor that brings the code within 128 (a finer step)
        best = torch.where((code > 128) & (code % t == 0) & (code / t <= 128), code / t, best)
    unit = best * common
    levels = (blocks / unit[..., None]).round()
    return unit, levels.amax(-1), levels.amin(-1), common
