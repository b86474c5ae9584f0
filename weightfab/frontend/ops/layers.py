"""The weighted ops (Gemm, MatMul, Conv) and what folds into them (bias Add, BatchNormalization)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..network import Add, AddConst, Conv, Dense
from . import handler
from .basic import pads_of


def dense_bias(im, n, i, nout, beta=1.0):
    """The bias of a Dense from input ``i`` (a scalar or one value per output), zeros when absent."""
    if not n.has(i):
        return np.zeros(nout, np.float32)
    c = im.const(n.node, n.ins[i], "bias") * float(beta)
    if c.size not in (1, nout):
        im.fail(n.node, f"bias of shape {c.shape} does not broadcast to {nout} outputs")
    return np.broadcast_to(c.reshape(-1), (nout,)).astype(np.float32).copy()


@handler("Gemm")
def gemm(im, n, *, alpha=1.0, beta=1.0, transA=0, transB=0):  # noqa: N803  (the spec's names)
    if transA:
        im.fail(n.node, "transA=1 on the activation is not supported")
    b = im.const(n.node, n.ins[1])
    if b.ndim != 2:
        im.fail(n.node, f"weight must be 2-D, got shape {b.shape}")
    w = (b if transB else b.T) * float(alpha)
    bias = dense_bias(im, n, 2, w.shape[0], beta)
    if w.shape[1] != int(np.prod(n.shape)):
        im.fail(n.node, f"expects {w.shape[1]} inputs but receives {int(np.prod(n.shape))}")
    im.record_qdq(n.node, n.name, n.ins[1], 0 if transB else 1, lambda q: q if transB else q.T)
    if n.name in im.weight_quant and float(alpha) != 1.0:
        wc = im.weight_quant[n.name]
        im.weight_quant[n.name] = replace(wc, scale=wc.scale * float(alpha))
    im.emit(Dense(n.name, (n.x,), n.out, np.ascontiguousarray(w, np.float32), bias))


@handler("MatMul")
def matmul(im, n):
    b = im.const(n.node, n.ins[1])
    if n.ins[0] != n.x or b.ndim != 2 or len(n.shape) != 1:
        im.fail(n.node, "only [batch, features] @ constant 2-D weight is supported")
    if b.shape[0] != n.shape[0]:
        im.fail(n.node, f"expects {b.shape[0]} inputs but receives {n.shape[0]}")
    im.record_qdq(n.node, n.name, n.ins[1], 1, lambda q: q.T)
    im.emit(Dense(n.name, (n.x,), n.out, np.ascontiguousarray(b.T, np.float32), np.zeros(b.shape[1], np.float32)))


def conv_op(im, n, w, bias, auto_pad, dilations, group, pads, strides) -> Conv:
    """A Conv op from a float [Co, Ci/g, kh, kw] weight, after the shape checks."""
    if w.ndim != 4 or len(n.shape) != 3:
        im.fail(n.node, f"only 2-D convolution on [N, C, H, W] is supported (weight {w.shape}, input {n.shape})")
    group = int(group)
    co, cig, kh, kw = w.shape
    if n.shape[0] != cig * group or co % group:
        im.fail(n.node, f"{n.shape[0]} input channels do not match weight {w.shape} with group={group}")
    strides = tuple(strides or [1, 1])
    dil = tuple(dilations or [1, 1])
    p = pads_of(im, n.node, auto_pad, pads, (kh, kw), n.shape[1:], strides, dil)
    return Conv(n.name, (n.x,), n.out, w.astype(np.float32), bias.astype(np.float32), strides, p, dil, group)


@handler("Conv")
def conv(im, n, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    w = im.const(n.node, n.ins[1])
    co = w.shape[0]
    bias = im.const(n.node, n.ins[2], "bias").reshape(-1) if n.has(2) else np.zeros(co, np.float32)
    if w.size == 0 or bias.size != co:
        im.fail(n.node, f"weight of shape {w.shape} with bias of shape {bias.shape}: expected a non-empty "
                        "weight and one bias per output channel")
    op = conv_op(im, n, w, bias, auto_pad, dilations, group, pads, strides)
    im.record_qdq(n.node, n.name, n.ins[1], 0, lambda q: q.transpose(0, 2, 3, 1).reshape(co, -1))
    im.emit(op)


@handler("Add", inputs=2)
def add(im, n):
    cst = [i for i in n.ins if i in im.consts]
    prev = im.last_weighted(n.x)
    if cst and prev is not None:
        c_full = im.const(n.node, cst[0], "bias")
        nout = prev.weight.shape[0]
        per_channel = {(nout,), (1, nout)} if isinstance(prev, Dense) else {(nout, 1, 1), (1, nout, 1, 1)}
        if c_full.size != 1 and c_full.shape not in per_channel:
            im.fail(n.node, f"constant of shape {c_full.shape} does not broadcast per output channel "
                            f"(expected one of {sorted(per_channel)} or a scalar)")
        c = c_full.reshape(-1)
        im.replace_last(type(prev)(**{**prev.__dict__, "output": n.out, "bias": (prev.bias + c).astype(np.float32)}))
    elif cst and cst[0] in im.qinfo and np.size(im.qinfo[cst[0]][1]) == 1:  # a quantized constant (QDQ bias)
        q, scale, _, zp, _ = im.qinfo[cst[0]]
        codes = q - np.asarray(zp).reshape(-1)[0]
        shape = im.dummy[n.x].shape[1:]
        if codes.ndim > len(shape) or np.broadcast_shapes(codes.shape, shape) != tuple(shape):
            im.fail(n.node, f"constant of shape {codes.shape} does not broadcast over {shape}")
        im.emit(AddConst(n.name, (n.x,), n.out, codes, float(np.asarray(scale).reshape(-1)[0])))
    elif len(n.dyn) == 2:
        a, b = im.dummy[n.dyn[0]].shape, im.dummy[n.dyn[1]].shape
        if a != b:
            im.fail(n.node, f"Add of shapes {a[1:]} and {b[1:]} (broadcast) is not supported")
        im.emit(Add(n.name, (n.dyn[0], n.dyn[1]), n.out))
    else:
        im.fail(n.node, "Add of a constant is supported only as the bias right after Conv, Gemm or MatMul")


@handler("BatchNormalization")
def batch_norm(im, n, *, epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1, is_test=1):
    prev = im.last_weighted(n.x)
    if prev is None:
        im.fail(n.node, "BatchNormalization is supported only right after Conv, Gemm or MatMul (it is folded)")
    if training_mode:
        im.fail(n.node, "training_mode=1 is not supported")
    gamma, beta, mean, var = (im.const(n.node, i, "BN parameter").astype(np.float64) for i in n.ins[1:5])
    nout = prev.weight.shape[0]
    if any(v.shape != (nout,) for v in (gamma, beta, mean, var)):
        im.fail(n.node, f"parameters of shapes {[v.shape for v in (gamma, beta, mean, var)]}: expected "
                        f"({nout},), one per output channel")
    k = gamma / np.sqrt(var + float(epsilon))
    w = prev.weight * k.reshape(-1, *([1] * (prev.weight.ndim - 1)))
    b = (prev.bias - mean) * k + beta
    im.weight_quant.pop(prev.name, None)
    im.replace_last(type(prev)(**{**prev.__dict__, "output": n.out, "weight": w.astype(np.float32),
                                  "bias": b.astype(np.float32)}))
