"""Activations, pooling, layout ops and the no-ops (Identity, Cast, Shape, Softmax at the end)."""
from __future__ import annotations

import numpy as np
import onnx

from ..network import Act, Pool, Reshape, Transpose
from . import handler

FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


def text(v) -> str:
    return v.decode() if isinstance(v, bytes) else v


def pads_of(im, node, auto_pad, pads, kernel, in_hw, strides, dilations):
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``."""
    auto = text(auto_pad)
    if auto in ("NOTSET", ""):
        p = list(pads if pads is not None else [0, 0, 0, 0])
        return (p[0], p[1], p[2], p[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for i in range(2):
            o = -(-in_hw[i] // strides[i])
            total = max(0, (o - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i])
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return (out[0][0], out[1][0], out[0][1], out[1][1])
    im.fail(node, f"auto_pad={auto} is not supported")


@handler("Identity", named=False)
def identity(im, n):
    im.alias[n.out] = n.x


@handler("Cast", named=False)
def cast(im, n, *, to, saturate=1):
    if to not in FLOAT_TYPES:
        im.fail(n.node, "casts of activations to non-float types are not supported")
    im.alias[n.out] = n.x


@handler("Shape", named=False)
def shape(im, n, *, start=0, end=None):
    full = im.dummy[n.x].shape
    im.consts[n.out] = np.asarray(full[slice(start, len(full) if end is None else end)], np.int64)


@handler("Relu")
def relu(im, n):
    im.emit(Act(n.name, (n.x,), n.out, "relu", 0.0, float("inf")))


@handler("Clip")
def clip(im, n, *, min=-np.inf, max=np.inf):  # noqa: A002  (the spec's attribute names, opset < 11)
    lo, hi = min, max
    if n.has(1):
        lo = float(im.const(n.node, n.ins[1], "min").reshape(-1)[0])
    if n.has(2):
        hi = float(im.const(n.node, n.ins[2], "max").reshape(-1)[0])
    im.emit(Act(n.name, (n.x,), n.out, "clip", float(lo), float(hi)))


@handler("Sigmoid")
def sigmoid(im, n):
    im.emit(Act(n.name, (n.x,), n.out, "sigmoid"))


def _pool(im, n, kind, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, count_include_pad):
    if len(n.shape) != 3:
        im.fail(n.node, "only 2-D pooling on [N, C, H, W] is supported")
    if ceil_mode:
        im.fail(n.node, "ceil_mode=1 is not supported")
    if any(d != 1 for d in (dilations or [1, 1])):
        im.fail(n.node, "pooling dilations are not supported")
    k = tuple(kernel_shape)
    strides = tuple(strides or [1, 1])
    p = pads_of(im, n.node, auto_pad, pads, k, n.shape[1:], strides, (1, 1))
    return im.emit(Pool(n.name, (n.x,), n.out, kind, k, strides, p, bool(count_include_pad)))


@handler("MaxPool")
def max_pool(im, n, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None, pads=None,
             storage_order=0, strides=None):
    _pool(im, n, "max", auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, 0)


@handler("AveragePool")
def average_pool(im, n, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None,
                 pads=None, strides=None):
    _pool(im, n, "avg", auto_pad, ceil_mode, dilations, kernel_shape, pads, strides, count_include_pad)


@handler("GlobalAveragePool")
def global_average_pool(im, n):
    if len(n.shape) != 3:
        im.fail(n.node, "only [N, C, H, W] is supported")
    im.emit(Pool(n.name, (n.x,), n.out, "avg", None))


def _axes(im, n, axes, extra):
    if axes is None and n.has(1):
        axes = [int(v) for v in np.asarray(im.consts.get(n.ins[1], [])).reshape(-1)]
    if axes is None or any(ax % (len(n.shape) + 1 + extra) == 0 for ax in axes):
        im.fail(n.node, "axes must be constant and must not include the batch dimension")
    return tuple(axes)


@handler("Squeeze")
def squeeze(im, n, *, axes=None):
    probe = np.squeeze(im.dummy[n.x], axis=_axes(im, n, axes, 0))
    im.emit(Reshape(n.name, (n.x,), n.out, tuple(probe.shape[1:])))


@handler("Unsqueeze")
def unsqueeze(im, n, *, axes=None):
    probe = np.expand_dims(im.dummy[n.x], _axes(im, n, axes, 1))
    im.emit(Reshape(n.name, (n.x,), n.out, tuple(probe.shape[1:])))


@handler("Flatten")
def flatten(im, n, *, axis=1):
    if axis not in (1, -len(n.shape)):
        im.fail(n.node, f"only axis=1 is supported, got axis={axis}")
    im.emit(Reshape(n.name, (n.x,), n.out, (int(np.prod(n.shape)),)))


@handler("Reshape")
def reshape(im, n, *, allowzero=0):
    target = [int(v) for v in np.asarray(im.consts.get(n.ins[1], [])).reshape(-1)]
    if n.ins[1] not in im.consts or not target:
        im.fail(n.node, "the target shape must be constant")
    per = int(np.prod(n.shape))
    rest = target[1:]
    if target[0] not in (0, -1, 1) or (-1 not in rest and int(np.prod(rest)) != per):
        im.fail(n.node, f"target shape {target} must keep the batch dimension first and hold {per} values per sample")
    rest = [n.shape[i] if v == 0 else v for i, v in enumerate(rest)]
    if -1 in rest:
        known = int(np.prod([v for v in rest if v != -1]))
        rest[rest.index(-1)] = per // known
    im.emit(Reshape(n.name, (n.x,), n.out, tuple(rest)))


@handler("Transpose")
def transpose(im, n, *, perm=None):
    perm = tuple(perm if perm is not None else list(range(len(n.shape) + 1))[::-1])
    if perm[0] != 0:
        im.fail(n.node, f"perm {perm} moves the batch dimension")
    im.emit(Transpose(n.name, (n.x,), n.out, perm))


@handler("Softmax")
def softmax(im, n, *, axis=None):
    if axis is None:
        axis = -1 if im.opset >= 13 else 1
    if axis not in (-1, len(n.shape)) or len(n.shape) != 1:
        im.fail(n.node, f"only softmax over the class axis of [N, classes] is supported, got axis={axis}")
    im.softmax = True
    im.softmax_out = n.x
    im.alias[n.out] = n.x
