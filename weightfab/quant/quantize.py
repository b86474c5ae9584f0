"""Network -> QuantizedNetwork: integer weights, int32 biases, integer activations.

Weights: see weights.py (formats, data-free rounding) and rounding.py (rounding optimised on
calibration data). A quantized model's own integer weights and scales (QDQ, QOperator, integer ops)
are kept as they are at ``int8`` (ROM codes and zero-point corrections: frontend/ops/weights.py).
Activations: every tensor is held as integers v with real = scale · v (zero point folded in)
and a clamp range [lo, hi]: the model's own QuantizeLinear parameters where it has them,
otherwise calibrated on sample inputs (unsigned [0, 255] when the tensor is never negative,
as after a ReLU, else [-127, 127]). Requantization is integer (integer.py): acc · m / 2^shift with a
31-bit multiplier m, rounded to nearest, ties to even; a layer with the model's own weights and output
grid requantizes in binary32 as onnxruntime does (QLayer.binary32), so its codes equal onnxruntime's. A final weighted layer without a
model-given quantizer keeps 16-bit outputs for the arg-max.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import ModelError
from ..frontend.network import Act, Add, AddConst, Conv, Dense, MulConst, Network, Op, Pool, QuantPoint, Reshape, Transpose, pool_counts
from .integer import multiplier as _multiplier, pair_multiplier, quantize_input, requant, run_batch, run_env, run_integer  # noqa: F401
from .weights import CLIP_RATIOS, WEIGHT_BITS, quantize_weights  # noqa: F401

_run_batch = run_batch  # the name other stages used

OUT_BITS = 16  # last layer output width when the model gives none
ROUNDINGS = ("nearest", "optimized")
OPTIMIZED = ("int4", "int2")  # the formats --rounding optimized applies to (-mse and ternary are data-free)
STATS_BATCH = 256  # calibration inputs per float forward


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
    w_offset: np.ndarray | None = None  # [N] int64: zero-point correction · Σx (asymmetric model weights)
    binary32: bool = False  # requantize as onnxruntime: binary32 acc times binary32 scale (integer.py)

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
    rounding: str = "nearest"

    def layer(self, name: str) -> QLayer:
        return next(l for l in self.layers if l.name == name)

    @property
    def input_scale(self) -> float:
        return self.tq[self.input_name].scale

    def with_weights(self, weights: list[np.ndarray]) -> "QuantizedNetwork":
        """The same network with other integer weights (for example, read back from a layout)."""
        return replace(self, layers=tuple(replace(l, weight=w) for l, w in zip(self.layers, weights)))


def _calibrated(lo_f: float, peak: float, wide: bool = False) -> TQ:
    # 6 significant digits: the last bits of a float32 BLAS sum may differ between runs (threading),
    # the scale must not
    peak = float(f"{peak:.6g}")
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


def tensor_stats(net: Network, calib: np.ndarray, batch: int = STATS_BATCH) -> dict[str, tuple]:
    """min, max |x| and per-sample shape of every tensor over the calibration inputs, computed a
    batch at a time (memory stays that of one batch)."""
    stats: dict[str, tuple] = {}
    for s in range(0, len(calib), batch):
        for name, v in net.run(calib[s:s + batch]).items():
            lo, peak = (float(v.min()), float(np.abs(v).max())) if v.size else (0.0, 0.0)
            if name in stats:
                lo, peak = min(lo, stats[name][0]), max(peak, stats[name][1])
            stats[name] = (lo, peak, v.shape[1:])
    return stats


def check_calibration(calib) -> np.ndarray:
    calib = np.asarray(calib, np.float32)
    if calib.ndim < 1 or len(calib) == 0:
        raise ModelError("calibration data is empty")
    if not np.all(np.isfinite(calib)):
        raise ModelError("calibration data holds NaN or infinite values")
    return calib


def quantize(net: Network, calib: np.ndarray, weights: str = "int8", rounding: str = "nearest") -> QuantizedNetwork:
    """Quantize ``net``; ``calib`` holds sample inputs that set the activation scales (and, with
    ``rounding="optimized"``, the layer outputs the weight rounding is fitted to)."""
    if weights not in WEIGHT_BITS:
        raise ModelError(f"unknown weight format '{weights}' (choose from {', '.join(WEIGHT_BITS)})")
    if rounding not in ROUNDINGS:
        raise ModelError(f"unknown rounding '{rounding}' (choose from {', '.join(ROUNDINGS)})")
    calib = check_calibration(calib)
    if rounding == "optimized" and weights in OPTIMIZED:
        # the fit compares continuous errors: BLAS results depend on the thread count, so one thread
        # makes the weights the same bytes whatever OPENBLAS_NUM_THREADS says
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1):
            return _Planner(net, calib, weights, rounding).run()
    return _Planner(net, calib, weights, rounding).run()


class _Planner:
    """Chooses every tensor's integer representation and every op's integer parameters, in order."""

    def __init__(self, net: Network, calib: np.ndarray, weights: str, rounding: str):
        self.net, self.weights, self.rounding = net, weights, rounding
        self.stats = tensor_stats(net, calib)
        self.consumers: dict[str, list] = {}
        for op in net.ops:
            for i in op.inputs:
                self.consumers.setdefault(i, []).append(op)
        self.consumers.setdefault(net.output, []).append(None)
        self.tq: dict[str, TQ] = {}
        self.layers: list[QLayer] = []
        self.aux: dict = {}
        self.fitter = None
        if rounding == "optimized" and weights in OPTIMIZED:
            from .rounding import LayerFitter
            self.fitter = LayerFitter(net, calib)

    def chain(self, t: str) -> list[Op]:
        """Single-consumer Act/QuantPoint ops that follow tensor ``t``; layout ops (Reshape,
        Transpose) are passed too when a model quantizer lies beyond them, since they commute with
        quantization (the model's grid is taken, not a calibrated one requantized to it)."""
        out, tail, cons = [], [], self.consumers
        kinds = (Act, QuantPoint, Reshape, Transpose)
        while len(cons.get(t, [])) == 1 and isinstance(cons[t][0], kinds) \
                and not (isinstance(cons[t][0], Act) and cons[t][0].kind == "sigmoid"):
            op = cons[t][0]
            tail.append(op)
            if not isinstance(op, (Reshape, Transpose)):
                if isinstance(op, QuantPoint) or not any(isinstance(o, (Reshape, Transpose)) for o in tail):
                    out, tail = out + tail, []
            t = op.output
        return [o for o in out if not isinstance(o, (Reshape, Transpose))]

    def target(self, t: str, wide_ok: bool) -> TQ:
        """Representation of ``t`` chosen by what follows it: a model quantizer, else calibration."""
        ops = self.chain(t)
        qps = [o for o in ops if isinstance(o, QuantPoint)]
        last = ops[-1].output if ops else t
        if qps:
            tq = _qp_tq(qps[-1])
        else:
            lo_f, peak, _ = self.stats[last]
            tq = _calibrated(lo_f, peak, wide=wide_ok and last == self.net.output)
        for o in ops:
            if isinstance(o, Act):
                tq = _clamped(tq, o)
        return tq

    def run(self) -> QuantizedNetwork:
        net = self.net
        self.tq[net.input_name] = self.target(net.input_name, False)
        if self.fitter is not None:
            self.fitter.start(self.partial())
        for op in net.ops:
            plan = PLANS.get(type(op))
            if plan is None:
                raise ModelError(f"op '{op.name}' ({type(op).__name__}) has no integer implementation")
            self.tq[op.output] = plan(self, op, self.tq[op.inputs[0]])
            if self.fitter is not None:
                self.fitter.advance(self.partial(), op)
        return self.partial()

    def partial(self) -> QuantizedNetwork:
        net = self.net
        return QuantizedNetwork(net.name, net.input_name, net.input_shape, net.ops, dict(self.tq), tuple(self.layers),
                                dict(self.aux), net.output, net.softmax, self.weights, self.rounding)

    def weighted(self, op, t_in: TQ) -> TQ:
        out = self.target(op.output, True)
        wc = self.net.weight_quant.get(op.name)
        if wc is not None and self.weights != "int8" and not (self.weights in OPTIMIZED and
                                                              wc.bits == WEIGHT_BITS[self.weights]):
            wc = None  # the model's own integers are kept at int8, or at their own width (an int4 QDQ model)
        bias_f = np.asarray(op.bias, np.float64)
        if wc is not None:
            q, s_w, offset, bits = wc.codes, wc.scale, wc.offset, wc.bits
        elif self.fitter is not None:
            q, s_w, bias_f = self.fitter.fit(op, WEIGHT_BITS[self.weights], t_in)
            offset, bits = None, WEIGHT_BITS[self.weights]
        else:
            (q, s_w), offset, bits = quantize_weights(op.matrix(), self.weights), None, WEIGHT_BITS[self.weights]
        acc_scale = s_w * t_in.scale
        bias = np.rint(bias_f / acc_scale)
        if np.any(np.abs(bias) > 2 ** 31 - 1):
            raise ModelError(f"layer '{op.name}': bias does not fit int32 at this scale")
        exact = wc is not None and self.model_grid(op.output)
        if exact:  # onnxruntime's scale: (x_scale · w_scale) / y_scale in binary32, held exactly by m, shift
            f = np.float32
            m, sh = _multiplier((f(t_in.scale) * s_w.astype(f) / f(out.scale)).astype(np.float64))
        else:
            m, sh = _multiplier(acc_scale / out.scale)
        if offset is not None and not np.any(offset):
            offset = None
        self.layers.append(QLayer(op.name, op, np.ascontiguousarray(q, np.int8), s_w, bias.astype(np.int64), m, sh,
                                  out.lo, out.hi, t_in.scale, out.scale, bits, offset, exact))
        return out

    def model_grid(self, t: str) -> bool:
        """Whether tensor ``t`` takes a quantizer the model gives (not a calibrated grid)."""
        return any(isinstance(o, QuantPoint) for o in self.chain(t))

    def add(self, op, t_in: TQ) -> TQ:
        out = self.target(op.output, True)
        tb = self.tq[op.inputs[1]]
        self.aux[op.name] = pair_multiplier(t_in.scale / out.scale, tb.scale / out.scale)
        return out

    def add_const(self, op, t_in: TQ) -> TQ:
        out = self.target(op.output, True)
        self.aux[op.name] = pair_multiplier(t_in.scale / out.scale, op.scale / out.scale)
        return out

    def mul_const(self, op, t_in: TQ) -> TQ:
        out = self.target(op.output, True)
        f = np.float32
        qps = [o for o in self.chain(op.output) if isinstance(o, QuantPoint)]
        zp = qps[-1].zero_point if qps else 0
        self.aux[op.name] = (f(f(f(t_in.scale) * f(op.scale)) / f(out.scale)), int(zp))
        return out

    def quant_point(self, op, t_in: TQ) -> TQ:
        own = _qp_tq(op)
        out = own if t_in.scale != own.scale or t_in.lo < own.lo or t_in.hi > own.hi else t_in
        if t_in.scale != own.scale:
            self.aux[op.name] = _multiplier(t_in.scale / own.scale)
        return TQ(own.scale, max(own.lo, out.lo), min(own.hi, out.hi))

    def act(self, op, t_in: TQ) -> TQ:
        if op.kind != "sigmoid":
            return _clamped(t_in, op)
        out = self.target(op.output, False)
        if not any(isinstance(o, QuantPoint) for o in self.chain(op.output)):
            out = TQ(1 / 255, 0, 255)
        codes = np.arange(t_in.lo, t_in.hi + 1)
        table = np.clip(np.rint(1 / (1 + np.exp(-codes * t_in.scale)) / out.scale), out.lo, out.hi)
        self.aux[op.name] = (t_in.lo, table.astype(np.int64))
        return out

    def pool(self, op, t_in: TQ) -> TQ:
        if op.kind != "avg":
            return t_in
        out = self.target(op.output, False) if self.chain(op.output) else t_in
        counts = pool_counts(self.stats[op.inputs[0]][2][1:], op)
        uniq, inv = np.unique(counts, return_inverse=True)
        m, sh = _multiplier(t_in.scale / (uniq * out.scale))
        self.aux[op.name] = (m[inv].reshape(counts.shape), sh[inv].reshape(counts.shape))
        return out


PLANS = {Dense: _Planner.weighted, Conv: _Planner.weighted, Add: _Planner.add, AddConst: _Planner.add_const, MulConst: _Planner.mul_const, QuantPoint: _Planner.quant_point,
         Act: _Planner.act, Pool: _Planner.pool,
         Reshape: lambda self, op, t_in: t_in, Transpose: lambda self, op, t_in: t_in}
