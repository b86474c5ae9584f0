"""Network -> QuantizedNetwork: integer weights, int32 biases, integer activations.

Weights: per output channel, symmetric, q = clip(round(w / s), -qmax, qmax) with s = max|w| / qmax
(``ternary``: threshold 0.7·mean|w|, scale = mean of the kept |w|, after Li & Liu 2016). A QDQ
model's own int8 weights and scales are kept as they are (at ``int8``).
Activations: every tensor is held as integers v with real = scale · v (zero point folded in)
and a clamp range [lo, hi]: the model's own QuantizeLinear parameters where it has them,
otherwise calibrated on sample inputs (unsigned [0, 255] when the tensor is never negative,
as after a ReLU, else [-127, 127]). Requantization is integer: y = (acc · m + 2^(shift-1)) >> shift
with a 31-bit multiplier m, as a hardware datapath does it. A final weighted layer without a
model-given quantizer keeps 16-bit outputs for the arg-max.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import ModelError
from ..frontend.network import Act, Add, Conv, Dense, Network, Op, Pool, QuantPoint, Reshape, Transpose, pool_counts
from .integer import multiplier as _multiplier, pair_multiplier, quantize_input, requant, run_batch, run_env, run_integer  # noqa: F401

_run_batch = run_batch  # the name other stages used

WEIGHT_BITS = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2, "int4-mse": 4, "int2-mse": 2}
CLIP_RATIOS = np.linspace(0.3, 1.0, 36)  # "-mse" formats: candidate clipping levels, a share of max |w|
OUT_BITS = 16  # last layer output width when the model gives none


@dataclass(frozen=True)
class TQ:
    """Integer representation of a tensor: real = scale · v, v in [lo, hi]."""

    scale: float
    lo: int
    hi: int


@dataclass(frozen=True)
class QLayer:
    """A weighted op (Dense or Conv) in integers; ``weight`` is the [N, M] ROM matrix."""

    name: str
    op: Op
    weight: np.ndarray      # [N, M] int8 (two's complement fits ``bits``)
    w_scale: np.ndarray     # [N] float64
    bias: np.ndarray        # [N] int64 holding int32 values
    multiplier: np.ndarray  # [N] int64 in [2^30, 2^31)
    shift: np.ndarray       # [N] int64
    out_min: int
    out_max: int
    in_scale: float
    out_scale: float
    bits: int

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight.shape)


@dataclass(frozen=True)
class QuantizedNetwork:
    name: str
    input_name: str
    input_shape: tuple[int, ...]
    ops: tuple[Op, ...]
    tq: dict                 # tensor name -> TQ
    layers: tuple[QLayer, ...]
    aux: dict                # op name -> integer parameters of non-weighted ops
    output: str
    softmax: bool
    weights: str

    def layer(self, name: str) -> QLayer:
        return next(l for l in self.layers if l.name == name)

    @property
    def input_scale(self) -> float:
        return self.tq[self.input_name].scale

    def with_weights(self, weights: list[np.ndarray]) -> "QuantizedNetwork":
        """The same network with other integer weights (for example, read back from a layout)."""
        return replace(self, layers=tuple(replace(l, weight=w) for l, w in zip(self.layers, weights)))


def quantize_weights(w: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization of a [N, M] matrix -> (int8 q, float64 scale[N]).

    int8/int4/int2 scale each channel to its largest |w|; int4-mse/int2-mse clip each channel where
    the squared weight error is least (a range of 0.3 to 1.0 of the largest |w|); ternary is
    {-1, 0, 1} with a 0.7 · mean |w| threshold."""
    if mode not in WEIGHT_BITS:
        raise ModelError(f"unknown weight format '{mode}' (choose from {', '.join(WEIGHT_BITS)})")
    w = np.asarray(w, np.float64)
    if mode == "ternary":
        a = np.abs(w)
        delta = 0.7 * a.mean(axis=1, keepdims=True)
        keep = a > delta
        n = keep.sum(axis=1, keepdims=True)
        alpha = np.where(n > 0, (a * keep).sum(axis=1, keepdims=True) / np.maximum(n, 1), 1.0)
        alpha = np.where(alpha > 0, alpha, 1.0)
        return (np.sign(w) * keep).astype(np.int8), alpha[:, 0]
    qmax = 2 ** (WEIGHT_BITS[mode] - 1) - 1
    m = np.abs(w).max(axis=1)
    if not mode.endswith("-mse"):
        scale = np.where(m > 0, m / qmax, 1.0)
        return np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8), scale
    # per channel, the clipping level (a share of max |w|, 1.0 included) whose rounded weights
    # reconstruct the channel with the least squared error; ties keep the larger range
    best_err = np.full(len(w), np.inf)
    scale = np.where(m > 0, m / qmax, 1.0)
    for r in CLIP_RATIOS[::-1]:
        s = np.where(m > 0, r * m / qmax, 1.0)
        q = np.clip(np.rint(w / s[:, None]), -qmax, qmax)
        err = ((q * s[:, None] - w) ** 2).sum(axis=1)
        better = err < best_err
        best_err, scale = np.where(better, err, best_err), np.where(better, s, scale)
    return np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8), scale


def _calibrated(x: np.ndarray, wide: bool = False) -> TQ:
    lo_f = float(x.min()) if x.size else 0.0
    # 6 significant digits: the last bits of a float32 BLAS sum may differ between runs (threading),
    # the scale must not
    peak = float(f"{float(np.abs(x).max()):.6g}") if x.size else 0.0
    if wide:
        # 16-bit outputs: 4x headroom over the calibrated peak still leaves ~13 bits of resolution
        lo, hi = -(2 ** (OUT_BITS - 1) - 1), 2 ** (OUT_BITS - 1) - 1
        peak *= 4
    else:
        lo, hi = (0, 255) if lo_f >= 0 else (-127, 127)
    return TQ(peak / hi if peak > 0 else 1.0, lo, hi)


def _qp_tq(op: QuantPoint) -> TQ:
    return TQ(op.scale, op.qmin - op.zero_point, op.qmax - op.zero_point)


def _clamped(t: TQ, op: Act) -> TQ:
    lo, hi = t.lo, t.hi
    if op.lo > -np.inf:
        lo = max(lo, int(np.ceil(op.lo / t.scale - 1e-9)))
    if op.hi < np.inf:
        hi = min(hi, int(np.floor(op.hi / t.scale + 1e-9)))
    return TQ(t.scale, lo, max(lo, hi))


def quantize(net: Network, calib: np.ndarray, weights: str = "int8") -> QuantizedNetwork:
    """Quantize ``net``; ``calib`` holds sample inputs that set the activation scales."""
    if weights not in WEIGHT_BITS:
        raise ModelError(f"unknown weight format '{weights}' (choose from {', '.join(WEIGHT_BITS)})")
    calib = np.asarray(calib, np.float32)
    if calib.ndim < 1 or len(calib) == 0:
        raise ModelError("calibration data is empty")
    if not np.all(np.isfinite(calib)):
        raise ModelError("calibration data holds NaN or infinite values")
    env = net.run(calib)
    consumers: dict[str, list[Op]] = {}
    for op in net.ops:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op)
    consumers.setdefault(net.output, []).append(None)

    def chain(t: str) -> list[Op]:
        """Single-consumer Act/QuantPoint ops that follow tensor ``t``; layout ops (Reshape,
        Transpose) are passed too when a model quantizer lies beyond them, since they commute with
        quantization (the model's grid is taken, not a calibrated one requantized to it)."""
        out, tail = [], []
        kinds = (Act, QuantPoint, Reshape, Transpose)
        while len(consumers.get(t, [])) == 1 and isinstance(consumers[t][0], kinds) \
                and not (isinstance(consumers[t][0], Act) and consumers[t][0].kind == "sigmoid"):
            op = consumers[t][0]
            tail.append(op)
            if not isinstance(op, (Reshape, Transpose)):
                if isinstance(op, QuantPoint) or not any(isinstance(o, (Reshape, Transpose)) for o in tail):
                    out, tail = out + tail, []
            t = op.output
        return [o for o in out if not isinstance(o, (Reshape, Transpose))]

    def target(t: str, wide_ok: bool) -> TQ:
        """Representation of ``t`` chosen by what follows it: a model quantizer, else calibration."""
        ops = chain(t)
        qps = [o for o in ops if isinstance(o, QuantPoint)]
        last = ops[-1].output if ops else t
        if qps:
            tq = _qp_tq(qps[-1])
        else:
            tq = _calibrated(env[last], wide=wide_ok and last == net.output)
        for o in ops:
            if isinstance(o, Act):
                tq = _clamped(tq, o)
        return tq

    tq: dict[str, TQ] = {net.input_name: target(net.input_name, False)}
    layers, aux = [], {}
    for op in net.ops:
        t_in = tq[op.inputs[0]]
        if isinstance(op, (Dense, Conv)):
            out = target(op.output, True)
            if op.name in net.weight_quant and weights == "int8":
                q, s_w = net.weight_quant[op.name]
                bits = 8
            else:
                q, s_w = quantize_weights(op.matrix(), weights)
                bits = WEIGHT_BITS[weights]
            acc_scale = s_w * t_in.scale
            bias = np.rint(np.asarray(op.bias, np.float64) / acc_scale)
            if np.any(np.abs(bias) > 2 ** 31 - 1):
                raise ModelError(f"layer '{op.name}': bias does not fit int32 at this scale")
            m, sh = _multiplier(acc_scale / out.scale)
            layers.append(QLayer(op.name, op, np.ascontiguousarray(q, np.int8), s_w, bias.astype(np.int64), m, sh,
                                 out.lo, out.hi, t_in.scale, out.scale, bits))
            tq[op.output] = out
        elif isinstance(op, Add):
            out = target(op.output, True)
            tb = tq[op.inputs[1]]
            aux[op.name] = pair_multiplier(t_in.scale / out.scale, tb.scale / out.scale)
            tq[op.output] = out
        elif isinstance(op, QuantPoint):
            own = _qp_tq(op)
            out = own if t_in.scale != own.scale or t_in.lo < own.lo or t_in.hi > own.hi else t_in
            if t_in.scale != own.scale:
                aux[op.name] = _multiplier(t_in.scale / own.scale)
            tq[op.output] = TQ(own.scale, max(own.lo, out.lo), min(own.hi, out.hi))
        elif isinstance(op, Act):
            if op.kind == "sigmoid":
                out = target(op.output, False)
                if not chain(op.output) or not any(isinstance(o, QuantPoint) for o in chain(op.output)):
                    out = TQ(1 / 255, 0, 255)
                codes = np.arange(t_in.lo, t_in.hi + 1)
                table = np.clip(np.rint(1 / (1 + np.exp(-codes * t_in.scale)) / out.scale), out.lo, out.hi)
                aux[op.name] = (t_in.lo, table.astype(np.int64))
                tq[op.output] = out
            else:
                tq[op.output] = _clamped(t_in, op)
        elif isinstance(op, Pool):
            if op.kind == "avg":
                out = target(op.output, False) if chain(op.output) else t_in
                counts = pool_counts(env[op.inputs[0]].shape[2:], op)
                uniq, inv = np.unique(counts, return_inverse=True)
                m, sh = _multiplier(t_in.scale / (uniq * out.scale))
                aux[op.name] = (m[inv].reshape(counts.shape), sh[inv].reshape(counts.shape))
                tq[op.output] = out
            else:
                tq[op.output] = t_in
        elif isinstance(op, (Reshape, Transpose)):
            tq[op.output] = t_in
        else:
            raise ModelError(f"op '{op.name}' ({type(op).__name__}) has no integer implementation")
    return QuantizedNetwork(net.name, net.input_name, net.input_shape, net.ops, tq, tuple(layers), aux,
                            net.output, net.softmax, weights)
