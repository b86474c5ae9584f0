"""Bit-accurate integer inference of a QuantizedNetwork: one small function per op type.

Every tensor is held as integers v (real = scale · v) in int64. Requantization is the datapath's:
y = acc · m / 2^shift rounded to nearest, ties to even, with a 31-bit multiplier m. A residual Add scales both operands
to the output grid with one common shift and rounds once, as QLinearAdd does. A layer whose weights
and output grid the model gives (QDQ, operator format) requantizes as onnxruntime's QLinearConv and
QLinearMatMul do instead: the accumulator and the scale (x_scale · w_scale) / y_scale in binary32,
their binary32 product rounded to nearest even (``requant32``; m, shift hold that scale exactly).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..frontend.network import Act, Add, AddConst, Conv, Dense, MulConst, Pool, QuantPoint, Reshape, Transpose, conv_any, pool_windows


def multiplier(real) -> tuple[np.ndarray, np.ndarray]:
    """real ≈ m · 2^-shift with m in [2^30, 2^31)."""
    real = np.asarray(real, np.float64)
    if np.any(~(real > 0)):
        raise ModelError("requantization scale must be positive")
    exp = np.floor(np.log2(real)).astype(np.int64)
    shift = 30 - exp
    m = np.rint(real * np.exp2(shift)).astype(np.int64)
    over = m >= 2 ** 31
    m = np.where(over, m // 2, m)
    shift = np.where(over, shift - 1, shift)
    if np.any(shift < 1) or np.any(shift > 62):
        raise ModelError("requantization scale out of range (weights or activations span too many orders of magnitude)")
    return m, shift


def pair_multiplier(ra: float, rb: float) -> tuple[int, int, int]:
    """Two ratios on one shift (the larger one's): ra ≈ ma · 2^-s, rb ≈ mb · 2^-s."""
    m, s = multiplier(max(ra, rb))
    small = int(np.rint(min(ra, rb) * np.exp2(int(s))))
    ma, mb = (int(m), small) if ra >= rb else (small, int(m))
    return ma, mb, int(s)


def requant(acc, m, shift):
    """round(acc · m / 2^shift), ties to even (as onnxruntime's requantization rounds)."""
    t = acc * m
    q = t >> shift
    r = t - (q << shift)
    half = np.int64(1) << (shift - 1)
    return q + ((r > half) | ((r == half) & (q & 1 == 1)))


def requant32(acc, m, shift):
    """onnxruntime's requantization: the accumulator in binary32 times the scale m · 2^-shift in
    binary32 (a 24-bit mantissa multiply rounded to 24 significant bits), rounded to nearest even.
    IEEE-754 binary32 arithmetic is exact and the same on every machine."""
    scale = (np.asarray(m, np.float64) * np.exp2(-np.asarray(shift, np.float64))).astype(np.float32)
    return np.rint(np.asarray(acc).astype(np.float32) * scale).astype(np.int64)


def int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer product through float64 BLAS (|sums| stay far below 2^53)."""
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def exact_float(x: np.ndarray, w: np.ndarray) -> type:
    """float32 when every partial sum of x · w is an integer below 2^24 in magnitude (then float32
    arithmetic is exact in any summation order), else float64 (exact below 2^53)."""
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w.astype(np.int64)).sum(axis=1).max(initial=0))
    return np.float32 if bound < 2 ** 24 else np.float64


def accumulate(op, layer, x: np.ndarray) -> np.ndarray:
    """The int32 accumulator of a Dense/Conv layer: weights · input codes + bias (+ zero-point term)."""
    ft = exact_float(x, layer.weight)
    w = layer.weight.astype(ft)
    if isinstance(op, Dense):
        acc = np.rint(x.reshape(len(x), -1).astype(ft) @ w.T).astype(np.int64) + layer.bias
    else:
        acc = np.rint(conv_any(x.astype(ft), w, op, 0.0)).astype(np.int64)
        acc = acc + layer.bias[None, :, None, None]
    if layer.w_offset is not None:  # zero-point correction: offset · Σx over the inputs each output sees
        ones = np.ones(layer.weight.shape, np.float64)
        if isinstance(op, Dense):
            sx = x.reshape(len(x), -1).sum(axis=1, keepdims=True)
        else:
            sx = np.rint(conv_any(x.astype(np.float64), ones, op, 0.0)).astype(np.int64)
        acc = acc + sx * (layer.w_offset if isinstance(op, Dense) else layer.w_offset[None, :, None, None])
    if np.any(np.abs(acc) > 2 ** 31 - 1):
        raise ModelError(f"layer '{op.name}': accumulator overflows int32")
    return acc


def _weighted(qnet, op, xs, out):
    layer = qnet.layer(op.name)
    acc = accumulate(op, layer, xs[0])
    m, sh = layer.multiplier, layer.shift
    if isinstance(op, Conv):
        m, sh = m[None, :, None, None], sh[None, :, None, None]
    if layer.binary32:
        return np.clip(requant32(acc, m, sh), layer.out_min, layer.out_max)
    return np.clip(requant(acc, m, sh), layer.out_min, layer.out_max)


def _add(qnet, op, xs, out):
    ma, mb, sh = qnet.aux[op.name]
    return np.clip(requant(xs[0] * ma + xs[1] * mb, 1, sh), out.lo, out.hi)


def _add_const(qnet, op, xs, out):
    ma, mb, sh = qnet.aux[op.name]
    return np.clip(requant(xs[0] * ma + op.codes.astype(np.int64) * mb, 1, sh), out.lo, out.hi)


def _mul_const(qnet, op, xs, out):
    """The integer product times one binary32 ratio (a 24-bit mantissa multiply rounded to 24
    significant bits), plus the output zero point in binary32, rounded to nearest even: onnxruntime's
    QLinearMul step by step (IEEE-754 binary32 arithmetic is deterministic)."""
    ratio, zp = qnet.aux[op.name]
    p = (xs[0] * op.codes.astype(np.int64)).astype(np.float32)  # |p| < 2^24: exact
    y = np.rint((p * ratio) + np.float32(zp)).astype(np.int64) - zp
    return np.clip(y, out.lo, out.hi)


def _quant_point(qnet, op, xs, out):
    y = requant(xs[0], *qnet.aux[op.name]) if op.name in qnet.aux else xs[0]
    return np.clip(y, out.lo, out.hi)


def _act(qnet, op, xs, out):
    if op.kind == "sigmoid":
        lo, table = qnet.aux[op.name]
        return table[np.clip(xs[0], lo, lo + len(table) - 1) - lo]
    return np.clip(xs[0], out.lo, out.hi)


def _pool(qnet, op, xs, out):
    if op.kind == "max":
        win, _ = pool_windows(xs[0], op, np.iinfo(np.int64).min)
        return win.max(axis=-1)
    win, _ = pool_windows(xs[0], op, 0)
    m, sh = qnet.aux[op.name]
    return np.clip(requant(win.sum(axis=-1), m, sh), out.lo, out.hi)


INTEGER_OPS = {
    Dense: _weighted, Conv: _weighted, Add: _add, AddConst: _add_const, MulConst: _mul_const, QuantPoint: _quant_point, Act: _act, Pool: _pool,
    Reshape: lambda q, op, xs, out: xs[0].reshape(len(xs[0]), *op.shape),
    Transpose: lambda q, op, xs, out: xs[0].transpose(op.perm),
}


def quantize_input(qnet, x: np.ndarray) -> np.ndarray:
    t = qnet.tq[qnet.input_name]
    x = np.asarray(x, np.float64).reshape(len(x), *qnet.input_shape)
    return np.clip(np.rint(x / t.scale), t.lo, t.hi).astype(np.int64)


def run_env(qnet, v: np.ndarray, ops=None, env=None) -> dict[str, np.ndarray]:
    """Every tensor of one batch of input codes ``v`` (or of ``env`` continued through ``ops``)."""
    env = {qnet.input_name: v} if env is None else dict(env)
    for op in qnet.ops if ops is None else ops:
        env[op.output] = INTEGER_OPS[type(op)](qnet, op, [env[i] for i in op.inputs], qnet.tq[op.output])
    return env


def run_batch(qnet, v: np.ndarray) -> np.ndarray:
    out = run_env(qnet, v)[qnet.output]
    return out.reshape(len(out), -1)


def run_integer(qnet, x: np.ndarray, batch: int = 128) -> np.ndarray:
    """Bit-accurate integer inference of the whole network; returns the output integers [B, classes]."""
    outs = [run_batch(qnet, quantize_input(qnet, x[s:s + batch])) for s in range(0, len(x), batch)]
    if not outs:
        return np.zeros((0, 0), np.int64)
    return np.concatenate(outs)
