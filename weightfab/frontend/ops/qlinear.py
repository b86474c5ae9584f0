"""The operator format (QOperator): QLinear ops on integer codes, and QuantizeLinear at the edges.

Each QLinear op becomes the float op on the real values of its input codes followed by a
QuantPoint at the op's output scale and zero point, so it is computed exactly as the QDQ form of the
same model (weights keep their integers, see weights.py; the int32 bias is real = B · x_scale · w_scale).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..network import Act, Add, AddConst, Dense, MulConst, QuantPoint
from . import handler
from .basic import _pool
from .layers import conv_op
from .weights import kind_of, real_weight, weight_codes

MS = "com.microsoft"


def codes_in(im, n, i, i_scale, i_zp) -> str:
    """The float tensor holding the real values of the codes at input ``i`` (checked against the
    scale and zero point the op is given for them)."""
    c = n.ins[i]
    if c not in im.pending_q:
        im.fail(n.node, f"input '{c}' must be integer codes (a QuantizeLinear or QLinear op output)")
    real = im.realize(n.node, c)
    _, s, zp, _, _ = im.pending_q[c]
    s_op = float(im.const(n.node, n.ins[i_scale], "scale").reshape(-1)[0])
    zp_op = int(np.asarray(im.consts[n.ins[i_zp]]).reshape(-1)[0]) if n.has(i_zp) else 0
    if not np.isclose(s_op, s, rtol=1e-6, atol=0) or zp_op != zp:
        im.fail(n.node, f"input '{c}' is given scale {s_op:g} / zero point {zp_op}, its quantizer has {s:g} / {zp}")
    return real


def codes_out(im, n, acc: str, i_scale, i_zp) -> None:
    """Requantize float tensor ``acc`` to the op's output grid; the op's output holds those codes."""
    s = im.const(n.node, n.ins[i_scale], "scale").reshape(-1)
    if s.size != 1:
        im.fail(n.node, "per-channel output scales are not supported")
    zp_arr = np.asarray(im.consts[n.ins[i_zp]]) if n.has(i_zp) else np.zeros(1, np.uint8)
    info = np.iinfo(zp_arr.dtype if zp_arr.dtype.kind in "iu" else np.uint8)
    real = f"{n.out}:real"
    qp = QuantPoint(im.uniq(f"{n.name}:requantize"), (acc,), real, float(s[0]), int(zp_arr.reshape(-1)[0]),
                    int(info.min), int(info.max))
    im.emit(qp)
    im.mark_codes(n.out, real, qp.scale, qp.zero_point, qp.qmin, qp.qmax)


def on_real(im, n, real: str):
    """The node context with its run-time input replaced by ``real`` and its output by an accumulator."""
    return replace(n, x=real, shape=im.dummy[real].shape[1:], out=f"{n.out}:acc")


def weight_scale(im, n, i) -> np.ndarray:
    return im.const(n.node, n.ins[i], "scale").astype(np.float64).reshape(-1)


@handler("QLinearConv", codes=True)
def qlinear_conv(im, n, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    x = codes_in(im, n, 0, 1, 2)
    q = im.consts.get(n.ins[3])
    if q is None:
        im.fail(n.node, "the weight must be a constant")
    co = q.shape[0]
    zp = im.consts[n.ins[5]] if n.has(5) else 0
    wc = weight_codes(im, n.node, q, weight_scale(im, n, 4), zp, 0, 0,
                      lambda a: a.transpose(0, 2, 3, 1).reshape(co, -1), kind_of(q))
    w = real_weight(wc).reshape(co, q.shape[2], q.shape[3], q.shape[1]).transpose(0, 3, 1, 2)
    x_scale = float(im.pending_q[n.ins[0]][1])
    bias = (im.const(n.node, n.ins[8], "bias").astype(np.float64) * x_scale * wc.scale) if n.has(8) else np.zeros(co)
    m = on_real(im, n, x)
    im.emit(conv_op(im, m, w, bias, auto_pad, dilations, group, pads, strides))
    im.weight_quant[n.name] = wc
    codes_out(im, n, m.out, 6, 7)


def _dense_codes(im, n, i_w, i_ws, i_wz, trans):
    """A Dense from integer weight codes (input ``i_w``, [K, N] or [N, K] when ``trans``)."""
    q = im.consts.get(n.ins[i_w])
    if q is None or np.asarray(q).ndim != 2:
        im.fail(n.node, "the weight must be a constant 2-D matrix")
    zp = im.consts[n.ins[i_wz]] if n.has(i_wz) else 0
    wc = weight_codes(im, n.node, q, weight_scale(im, n, i_ws), zp, 0 if trans else 1, 0 if trans else 1,
                      (lambda a: a) if trans else (lambda a: a.T), kind_of(q))
    return wc


def _emit_dense(im, n, x, wc, bias):
    m = on_real(im, n, x)
    if int(np.prod(m.shape)) != wc.codes.shape[1] or len(m.shape) != 1:
        im.fail(n.node, f"expects [batch, {wc.codes.shape[1]}] inputs, receives {tuple(m.shape)} per sample")
    im.emit(Dense(n.name, (x,), m.out, real_weight(wc), np.asarray(bias, np.float32)))
    im.weight_quant[n.name] = wc
    return m.out


@handler("QLinearMatMul", codes=True)
def qlinear_matmul(im, n):
    x = codes_in(im, n, 0, 1, 2)
    wc = _dense_codes(im, n, 3, 4, 5, False)
    codes_out(im, n, _emit_dense(im, n, x, wc, np.zeros(len(wc.scale))), 6, 7)


@handler("QGemm", codes=True, domain=MS)
def qgemm(im, n, *, alpha=1.0, transA=0, transB=0):  # noqa: N803
    if transA or float(alpha) != 1.0:
        im.fail(n.node, "transA=1 or alpha other than 1 is not supported")
    x = codes_in(im, n, 0, 1, 2)
    wc = _dense_codes(im, n, 3, 4, 5, bool(transB))
    x_scale = float(im.pending_q[n.ins[0]][1])
    bias = im.const(n.node, n.ins[6], "bias").astype(np.float64) * x_scale * wc.scale if n.has(6) \
        else np.zeros(len(wc.scale))
    acc = _emit_dense(im, n, x, wc, bias)
    if n.has(7):
        codes_out(im, n, acc, 7, 8)
    else:  # float output
        im.alias[n.out] = acc


def sample_codes(im, node, codes: np.ndarray, a: str) -> np.ndarray:
    """Constant ``codes`` as they broadcast over one sample of tensor ``a`` (a leading 1 dropped)."""
    full = (1, *im.dummy[a].shape[1:])
    if codes.ndim > len(full) or np.broadcast_shapes(codes.shape, full) != full:
        im.fail(node, f"constant of shape {codes.shape} does not broadcast over {full[1:]}")
    return codes.reshape(codes.shape[1:]) if codes.ndim == len(full) else codes


def _const_operand(im, n):
    """(real activation input, constant codes less their zero point, constant scale) when one
    operand of a binary QLinear op is a quantized constant, else None."""
    if n.ins[3] not in im.consts and n.ins[0] not in im.consts:
        return None
    i = 3 if n.ins[3] in im.consts else 0
    j = 3 - i
    a = codes_in(im, n, j, j + 1, j + 2)
    zp = int(np.asarray(im.consts[n.ins[i + 2]]).reshape(-1)[0]) if n.has(i + 2) else 0
    codes = sample_codes(im, n.node, np.asarray(im.consts[n.ins[i]]).astype(np.int64) - zp, a)
    return a, codes, float(im.const(n.node, n.ins[i + 1], "scale").reshape(-1)[0])


@handler("QLinearAdd", codes=True, domain=MS)
def qlinear_add(im, n):
    const = _const_operand(im, n)
    if const is not None:  # a quantized constant (a bias)
        a, codes, scale = const
        im.emit(AddConst(n.name, (a,), f"{n.out}:acc", codes, scale))
        codes_out(im, n, f"{n.out}:acc", 6, 7)
        return
    a, b = codes_in(im, n, 0, 1, 2), codes_in(im, n, 3, 4, 5)
    if im.dummy[a].shape != im.dummy[b].shape:
        im.fail(n.node, f"Add of shapes {im.dummy[a].shape[1:]} and {im.dummy[b].shape[1:]} (broadcast) is not supported")
    im.emit(Add(n.name, (a, b), f"{n.out}:acc"))
    codes_out(im, n, f"{n.out}:acc", 6, 7)


@handler("QLinearMul", codes=True, domain=MS)
def qlinear_mul(im, n):
    """An activation times a quantized constant (a scale, per tensor or per channel): the integer
    product requantized once to the output grid. Two activations multiplied are refused."""
    const = _const_operand(im, n)
    if const is None:
        im.fail(n.node, "both operands are activations; only an activation times a constant (a scale) is supported")
    a, codes, scale = const
    im.emit(MulConst(n.name, (a,), f"{n.out}:acc", codes, scale))
    codes_out(im, n, f"{n.out}:acc", 6, 7)


@handler("QLinearAveragePool", codes=True, domain=MS)
def qlinear_average_pool(im, n, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, channels_last=0,
                         count_include_pad=0, dilations=None, pads=None, strides=None):
    if channels_last:
        im.fail(n.node, "channels_last=1 is not supported")
    m = on_real(im, n, codes_in(im, n, 0, 1, 2))
    _pool(im, m, "avg", auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, count_include_pad)
    codes_out(im, n, m.out, 3, 4)


@handler("QLinearGlobalAveragePool", codes=True, domain=MS)
def qlinear_global_average_pool(im, n, *, channels_last=0):
    from ..network import Pool
    if channels_last:
        im.fail(n.node, "channels_last=1 is not supported")
    m = on_real(im, n, codes_in(im, n, 0, 1, 2))
    if len(m.shape) != 3:
        im.fail(n.node, "only [N, C, H, W] is supported")
    im.emit(Pool(n.name, (m.x,), m.out, "avg", None))
    codes_out(im, n, m.out, 3, 4)


@handler("QLinearSigmoid", codes=True, domain=MS)
def qlinear_sigmoid(im, n):
    m = on_real(im, n, codes_in(im, n, 0, 1, 2))
    im.emit(Act(n.name, (m.x,), m.out, "sigmoid"))
    codes_out(im, n, m.out, 3, 4)


@handler("QLinearSoftmax", codes=True, domain=MS)
def qlinear_softmax(im, n, *, axis=-1, opset=13):
    """The final softmax of quantized logits: the chip's output is the logits (same class order)."""
    x = codes_in(im, n, 0, 1, 2)
    shape = im.dummy[x].shape[1:]
    if axis not in (-1, len(shape)) or len(shape) != 1:
        im.fail(n.node, f"only softmax over the class axis of [N, classes] is supported, got axis={axis}")
    im.softmax, im.softmax_out = True, x
    im.alias[n.out] = x
