"""K-scales: a layer's per-group int4/int6 (scale, low) pairs coded as bytes under fp32 super-scales, one
pair per :data:`KSUPER` inputs, as a GGUF's Q4_K / Q6_K blocks store them (:func:`k_scales`). For Q4_K
layers :func:`k_codes` finds each block's own codes, so such a layer is stored exactly, and codes any
other group so that no weight is cut off. Used by :class:`lhama.inference.qlinear.Int4KLinear` and
``Int6KLinear``.
"""

from __future__ import annotations

import torch

from lhama.inference import native

KSUPER = native.KSUPER  # inputs per super-scale


# per weight width: the super-scale divisors tried first (a GGUF's own scale steps: Q4_K's 6-bit scales,
# Q6_K's int8 ones), and the low code's form: low = scale * (code / per_unit - base)
_WHOLE = {4: (63,), 6: (128, 63)}
_LOW = {6: (4, 63)}  # bits 6: low = scale * (code / 4 - 63)
_EXACT_SHARE = 0.05  # at most this share of a row block's blocks is searched for exact Q4_K codes
_EXACT_BATCH = 128  # blocks searched at a time (the search holds ~2.6 MB per block)


def _whole(ratio: torch.Tensor) -> torch.Tensor:
    """Where ``ratio`` is a whole number (within 1e-3)."""
    return (ratio - ratio.round()).abs() <= 1e-3


def k_scales(scale: torch.Tensor, low: torch.Tensor, per_super: int, bits: int = 4) -> tuple[torch.Tensor, ...]:
    """(codes (n, G, 2) uint8, supers (n, G / per_super, 2 or 1) fp32, coded scale, coded low) of the
    groups' ``scale`` and ``low`` (n, G, 1) fp32. A super-block's scales that are whole multiples of
    its largest / d for a d of ``_WHOLE`` (a Q4_K GGUF's 6-bit scales: 63) get that super-scale, so
    they are stored exactly; others the largest / 255. bits 4: the lows get a second super-scale
    (:func:`_low_codes`: a Q4_K block's exactly); bits 6: the low code steps 1/4 of the group's
    scale over [-63, 0.75] (a Q6_K group's -32 or -31 steps exactly)."""
    n, count = scale.shape[0], scale.shape[1]
    blocks = scale.reshape(n, count // per_super, per_super)
    largest = blocks.amax(-1, keepdim=True).clamp(min=1e-30)
    supers = largest / 255  # (n, G / s, 1)
    for divisor in reversed(_WHOLE[bits]):  # the first divisor that fits wins
        whole = _whole(blocks / (largest / divisor)).all(-1, keepdim=True)
        supers = torch.where(whole, largest / divisor, supers)
    code = torch.round(blocks / supers).clamp(1, 255)
    coded_scale = (code * supers).reshape(n, count, 1)
    if bits == 4:
        low_code, low_super = _low_codes(low.reshape(n, count // per_super, per_super))
        coded_low = (low_super * (low_code - 128)).reshape(n, count, 1)
        supers = torch.cat([supers, low_super], dim=-1)
    else:
        per_unit, base = _LOW[bits]
        low_code = torch.round((low / coded_scale.clamp(min=1e-30) + base) * per_unit).clamp(0, 255)
        coded_low = coded_scale * (low_code / per_unit - base)
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
    codes, supers = codes.reshape(n, -1, per_super, 2).clone(), supers.clone()
    for start in range(0, len(rows), _EXACT_BATCH):
        r, c = rows[start : start + _EXACT_BATCH], cols[start : start + _EXACT_BATCH]
        for below in (1, 16):  # level 0 candidates: each group's lowest weight, then up to 15 steps below it
            found, code, super_ = _q4k_exact(blocks[r, c].double(), below)
            codes[r[found], c[found]], supers[r[found], c[found]] = code[found], super_[found].float()
            r, c = r[~found], c[~found]
    codes = codes.reshape(n, count, 2)
    scale, low = _decoded(codes, supers, per_super)
    return _unclamped(groups, codes, supers, scale, low)



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


def _q4k_exact(blocks: torch.Tensor, below: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(found (B,), codes (B, s, 2) uint8, supers (B, 2)) of blocks (B, s, g) float64 whose weights are
    ``d c q - dmin m`` (q 0..15; c, m whole: a Q4_K block): d the largest step dividing every difference
    within a group, c the largest divisor (<= 255) of a group's differences in steps of d, and dmin one group's
    level 0 over 63 (Q4_K's largest m; level 0 its lowest weight or up to ``below`` - 1 steps below), each group's level 0
    lowered by whole steps until it is a multiple of dmin (m 0..63)."""
    lows = blocks.amin(-1, keepdim=True)
    diffs = blocks - lows  # (B, s, g)
    tiny = 1e-6 * diffs.amax((-1, -2), keepdim=True)
    delta = torch.where(diffs > tiny, diffs, torch.inf).amin((-1, -2), keepdim=True)  # (B, 1, 1)
    d = torch.full_like(delta, torch.nan)
    for k in range(255, 0, -1):  # ends on the largest step that fits
        d = torch.where(_whole(diffs / (delta / k)).all(-1, keepdim=True).all(-2, keepdim=True), delta / k, d)
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
    for t in range(15, 0, -1):  # ends on the largest whole divisor of at most 255
        c = torch.where((common > 0) & (common % t == 0) & (common <= 255 * t), common // t, c)
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
