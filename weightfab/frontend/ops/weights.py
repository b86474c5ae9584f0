"""Integer weights a model brings (QDQ DequantizeLinear, QOperator, integer ops) -> what the ROM stores.

The ROM stores two's-complement codes of ``bits`` bits. A signed code with zero point 0 is stored
as it is. A weight with a zero point z (asymmetric, usually uint8) is stored exactly as
c = q - base (base 128 for uint8, 8 for uint4, 0 for signed types), which always fits the same
number of bits, and the datapath adds (base - z) · Σx per output channel:
Σ x·(q - z) = Σ x·c + (base - z)·Σ x. Nothing is rounded, so the chip computes the model's integers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TYPES = {"int8": (8, True), "uint8": (8, False), "int4": (4, True), "uint4": (4, False),
         "int16": (16, True), "int32": (32, True)}


@dataclass(frozen=True)
class WeightCodes:
    """Codes as stored, [N, M] int8; per output channel scale and zero-point correction."""

    codes: np.ndarray
    scale: np.ndarray   # [N] float64
    offset: np.ndarray  # [N] int64: base - zero point (0 for symmetric weights)
    bits: int


def kind_of(arr) -> str:
    return np.asarray(arr).dtype.name


def per_channel(im, node, values, axis, out_axis, ndim, out_len, what):
    """Scale or zero point as one value per output channel; refuses other axes with one line."""
    v = np.asarray(values).reshape(-1)
    if v.size == 1:
        return np.full(out_len, v[0])
    if axis % ndim != out_axis % ndim:
        im.fail(node, f"weight {what}s along axis {axis} (not the output-channel axis {out_axis % ndim}) are not "
                      "supported; per-tensor or per-output-channel quantization is")
    if v.size != out_len:
        im.fail(node, f"weight {what}s per axis {axis} do not match the {out_len} output channels")
    return v


def weight_codes(im, node, q, scale, zp, axis, out_axis, orient, kind) -> WeightCodes:
    """``q`` in the model's layout -> ROM codes; ``orient`` maps the layout to [N, M] (N outputs)."""
    if kind not in TYPES or TYPES[kind][0] > 8:
        im.fail(node, f"weight type {kind} is not supported (int8, uint8, int4 and uint4 are)")
    bits, signed = TYPES[kind]
    q = np.asarray(q).astype(np.int64)
    out_len = q.shape[out_axis]
    s = per_channel(im, node, scale, axis, out_axis, q.ndim, out_len, "scale").astype(np.float64)
    z = per_channel(im, node, zp, axis, out_axis, q.ndim, out_len, "zero point").astype(np.int64)
    if np.any(~(s > 0)):
        im.fail(node, "weight scales must be positive")
    base = 0 if signed else 1 << (bits - 1)
    codes = orient(q.astype(np.float64)).astype(np.int64) - base
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if codes.size and (codes.min() < lo or codes.max() > hi):
        im.fail(node, f"weight integers exceed {kind}")
    return WeightCodes(codes.astype(np.int8), s, base - z, bits)


def real_weight(w: WeightCodes) -> np.ndarray:
    """The float [N, M] weight the codes stand for: scale · (code + offset)."""
    return ((w.codes.astype(np.float64) + w.offset[:, None]) * w.scale[:, None]).astype(np.float32)
