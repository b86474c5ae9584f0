"""The integer-op format (onnxruntime's quantize_dynamic): DynamicQuantizeLinear, MatMulInteger,
ConvInteger and the Mul that scales their int32 output by x_scale · w_scale.

DynamicQuantizeLinear computes the activation's scale and zero point from each input at run time.
The chip has no such step: the tensor it quantizes gets a fixed scale calibrated on the calibration
inputs, like any float tensor, and the weights keep the model's integers and scales. The chip's
outputs therefore differ from onnxruntime's by that choice of activation grid (the accuracy and the
onnxruntime figure of ``verify --data`` show by how much).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..network import Conv, Dense, MulConst
from . import handler
from .layers import conv_op
from .qlinear import sample_codes
from .weights import kind_of, weight_codes


@handler("DynamicQuantizeLinear", named=False)
def dynamic_quantize_linear(im, n):
    names = list(n.node.output) + ["", ""]
    im.dynamic[names[0]] = ("codes", n.x, None)
    if names[1]:
        im.dynamic[names[1]] = ("scale", n.x, np.ones(1))
    if names[2]:
        im.dynamic[names[2]] = ("zero_point", n.x, None)


def _source(im, n) -> str:
    what = im.dynamic.get(n.ins[0], (None,))
    if what[0] != "codes":
        im.fail(n.node, "the input must be a DynamicQuantizeLinear output")
    return what[1]


def _weight(im, n, out_axis, orient):
    q = im.consts.get(n.ins[1])
    if q is None:
        im.fail(n.node, "the weight must be a constant")
    zp = im.consts[n.ins[3]] if n.has(3) else 0
    return q, weight_codes(im, n.node, q, 1.0, zp, out_axis, out_axis, orient, kind_of(q))


@handler("MatMulInteger", inputs=2)
def matmul_integer(im, n):
    x = _source(im, n)
    q, wc = _weight(im, n, 1, lambda a: a.T)
    shape = im.dummy[x].shape[1:]
    if q.ndim != 2 or shape != (q.shape[0],):
        im.fail(n.node, f"only [batch, {q.shape[0]}] @ constant 2-D weight is supported, input {shape}")
    w = (wc.codes.astype(np.float32) + wc.offset[:, None]).astype(np.float32)  # integers; the scale comes with Mul
    im.emit(Dense(n.name, (x,), n.out, w, np.zeros(len(w), np.float32)))
    im.weight_quant[n.name] = wc


@handler("ConvInteger", inputs=2)
def conv_integer(im, n, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    x = _source(im, n)
    co = np.asarray(im.consts.get(n.ins[1], np.zeros((1, 1, 1, 1)))).shape[0]
    q, wc = _weight(im, n, 0, lambda a: a.transpose(0, 2, 3, 1).reshape(co, -1))
    w = (wc.codes.astype(np.float32) + wc.offset[:, None]).reshape(co, q.shape[2], q.shape[3], q.shape[1])
    m = replace(n, x=x, shape=im.dummy[x].shape[1:])
    im.emit(conv_op(im, m, w.transpose(0, 3, 1, 2), np.zeros(co), auto_pad, dilations, group, pads, strides))
    im.weight_quant[n.name] = wc


@handler("Mul", inputs=2)
def mul(im, n):
    """x_scale · w_scale (a run-time scale times a constant), or an integer layer's output times it;
    or (QDQ) an activation times a per-tensor quantized constant, as the operator format's QLinearMul."""
    cst = [i for i in n.ins if i in im.consts]
    if cst and cst[0] in im.qinfo and len(n.dyn) == 1 and n.x in im.dummy:
        q, scale, _, zp, _ = im.qinfo[cst[0]]
        if np.size(scale) != 1:
            im.fail(n.node, "a constant quantized per channel is not supported (one scale for the constant is)")
        codes = sample_codes(im, n.node, q - np.asarray(zp).reshape(-1)[0], n.x)
        im.emit(MulConst(n.name, (n.x,), n.out, codes, float(np.asarray(scale).reshape(-1)[0])))
        return
    scale = next((i for i in n.ins if im.dynamic.get(i, (None,))[0] == "scale"), None)
    other = next((i for i in n.ins if i and i != scale), None)
    if scale is not None and other in im.consts:
        _, src, factor = im.dynamic[scale]
        im.dynamic[n.out] = ("scale", src, factor * im.const(n.node, other, "scale").astype(np.float64).reshape(-1))
        return
    prev = im.last_weighted(other) if scale is not None and other in im.dummy else None
    if prev is None or prev.name not in im.weight_quant or prev.inputs[0] != im.dynamic[scale][1]:
        im.fail(n.node, "Mul is supported only as the scale of a MatMulInteger or ConvInteger output")
    factor = np.broadcast_to(im.dynamic[scale][2], (prev.weight.shape[0],)).astype(np.float64)
    wc = im.weight_quant[prev.name]
    shape = (-1,) + (1,) * (prev.weight.ndim - 1)
    w = (prev.weight * factor.reshape(shape)).astype(np.float32)
    im.replace_last(type(prev)(**{**prev.__dict__, "output": n.out, "weight": w}))
    im.weight_quant[prev.name] = replace(wc, scale=wc.scale * factor)
