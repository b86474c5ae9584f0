"""The typed network the importer builds and every later stage reads (no ONNX here).

A Network is a list of ops in topological order over named tensors, batch first and NCHW
for images. Weighted ops (Dense, Conv) are the "layers" that become ROM arrays; the others
are the datapath around them. ``forward`` is the float reference.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Op:
    name: str
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class Dense(Op):
    """y = W x + b; ``weight`` is [out, in] float32."""

    weight: np.ndarray = None
    bias: np.ndarray = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight.shape)

    def matrix(self) -> np.ndarray:
        return self.weight


@dataclass(frozen=True)
class Conv(Op):
    """2-D convolution; ``weight`` is [Co, Ci/group, kh, kw]; pads are (top, left, bottom, right)."""

    weight: np.ndarray = None
    bias: np.ndarray = None
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    group: int = 1

    def matrix(self) -> np.ndarray:
        """[Co, kh·kw·Ci/g]: the ROM row order is kernel position major, input channel minor, so a
        block of K consecutive weights spans input channels at one kernel position."""
        co = self.weight.shape[0]
        return np.ascontiguousarray(self.weight.transpose(0, 2, 3, 1).reshape(co, -1))

    @property
    def shape(self) -> tuple[int, int]:
        co, cig, kh, kw = self.weight.shape
        return (co, cig * kh * kw)


@dataclass(frozen=True)
class Act(Op):
    """relu, clip (lo, hi) or sigmoid."""

    kind: str = "relu"
    lo: float = 0.0
    hi: float = float("inf")


@dataclass(frozen=True)
class Pool(Op):
    """max / avg pooling; global when ``kernel`` is None."""

    kind: str = "max"
    kernel: tuple[int, int] | None = None
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = False


@dataclass(frozen=True)
class Add(Op):
    pass


@dataclass(frozen=True)
class AddConst(Op):
    """x + a constant the model holds as integer codes (real = scale · codes), e.g. the quantized
    bias of an operator-format model added after its QLinearMatMul."""

    codes: np.ndarray = None  # per-sample shape (broadcast against x), int64
    scale: float = 1.0


@dataclass(frozen=True)
class MulConst(Op):
    """x times a constant the model holds as integer codes (real = scale · codes), broadcast over the
    sample, e.g. a per-channel scale after a convolution (an operator-format QLinearMul)."""

    codes: np.ndarray = None  # per-sample shape (broadcast against x), int64
    scale: float = 1.0


@dataclass(frozen=True)
class Reshape(Op):
    """To ``shape`` per sample (batch dimension kept)."""

    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Transpose(Op):
    perm: tuple[int, ...] = ()


@dataclass(frozen=True)
class QuantPoint(Op):
    """A QuantizeLinear/DequantizeLinear pair of the model: the tensor is held as integers
    real = scale · (q - zero_point), q in [qmin, qmax]."""

    scale: float = 1.0
    zero_point: int = 0
    qmin: int = -128
    qmax: int = 127


WEIGHTED = (Dense, Conv)


@dataclass(frozen=True)
class Network:
    name: str
    input_name: str
    input_shape: tuple[int, ...]  # one sample, batch dimension removed
    ops: tuple[Op, ...]
    output: str
    softmax: bool = False
    weight_quant: dict = field(default_factory=dict)  # op name -> WeightCodes (frontend/ops/weights.py)

    @property
    def layers(self) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if isinstance(op, WEIGHTED))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float reference (logits; a final softmax is not applied), [B, classes]."""
        env = self.run(x)
        out = env[self.output]
        return out.reshape(len(out), -1)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        env = {self.input_name: np.asarray(x, np.float32).reshape(len(x), *self.input_shape)}
        for op in self.ops:
            env[op.output] = float_op(op, [env[i] for i in op.inputs])
        return env


def im2col(x: np.ndarray, kh: int, kw: int, strides, pads, dilations, pad_value=0) -> tuple[np.ndarray, int, int]:
    """[B, C, H, W] -> [B, Ho, Wo, kh, kw, C] patches (a view when possible)."""
    t, l, b, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=pad_value) if any(pads) else x
    B, C, H, W = xp.shape
    sh, sw = strides
    dh, dw = dilations
    ho = (H - dh * (kh - 1) - 1) // sh + 1
    wo = (W - dw * (kw - 1) - 1) // sw + 1
    s = xp.strides
    patches = np.lib.stride_tricks.as_strided(
        xp, (B, ho, wo, kh, kw, C), (s[0], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw, s[1]), writeable=False)
    return patches, ho, wo


def conv_apply(x: np.ndarray, w2d: np.ndarray, conv: Conv, bias, pad_value=0) -> np.ndarray:
    """Convolution with the [Co, kh·kw·Ci/g] matrix (float or integer), NCHW out."""
    co, cig, kh, kw = conv.weight.shape
    g = conv.group
    B, C = x.shape[:2]
    outs = []
    cog = co // g
    for gi in range(g) if g > 1 else [0]:
        xs = x[:, gi * cig:(gi + 1) * cig] if g > 1 else x
        patches, ho, wo = im2col(xs, kh, kw, conv.strides, conv.pads, conv.dilations, pad_value)
        cols = patches.reshape(B * ho * wo, kh * kw * cig)
        w = w2d[gi * cog:(gi + 1) * cog]
        outs.append((cols @ w.T).reshape(B, ho, wo, cog))
    y = np.concatenate(outs, axis=3) if g > 1 else outs[0]
    y = y + bias
    return y.transpose(0, 3, 1, 2)


def depthwise_apply(x, w2d, conv: Conv, bias, pad_value=0):
    """Grouped convolution with one input channel per group, vectorized across groups."""
    co, cig, kh, kw = conv.weight.shape
    B, C = x.shape[:2]
    mult = co // conv.group
    patches, ho, wo = im2col(x, kh, kw, conv.strides, conv.pads, conv.dilations, pad_value)  # [B,ho,wo,kh,kw,C]
    p = patches.reshape(B, ho, wo, kh * kw, C)
    w = w2d.reshape(C, mult, kh * kw)  # output channel c·mult + j uses input channel c
    y = np.einsum("bhwkc,cjk->bhwcj", p, w).reshape(B, ho, wo, co) + bias
    return y.transpose(0, 3, 1, 2)


def conv_any(x, w2d, conv: Conv, bias, pad_value=0):
    cig = conv.weight.shape[1]
    if conv.group > 1 and cig == 1:
        return depthwise_apply(x, w2d, conv, bias, pad_value)
    return conv_apply(x, w2d, conv, bias, pad_value)


def pool_windows(x: np.ndarray, op: Pool, pad_value):
    if op.kernel is None:
        return x.reshape(x.shape[0], x.shape[1], 1, 1, -1), None
    kh, kw = op.kernel
    patches, ho, wo = im2col(x, kh, kw, op.strides, op.pads, (1, 1), pad_value)  # [B,ho,wo,kh,kw,C]
    win = patches.reshape(x.shape[0], ho, wo, kh * kw, x.shape[1]).transpose(0, 4, 1, 2, 3)
    return win, (ho, wo)


def pool_counts(shape_hw, op: Pool) -> np.ndarray:
    """Elements per window that are not padding (or the whole kernel with count_include_pad)."""
    h, w = shape_hw
    if op.kernel is None:
        return np.full((1, 1), h * w)
    ones = np.ones((1, 1, h, w), np.int64)
    win, _ = pool_windows(ones, op, 0)
    if op.count_include_pad:
        return np.full(win.shape[2:4], op.kernel[0] * op.kernel[1])
    return win.sum(axis=-1)[0, 0]


def float_op(op: Op, xs: list[np.ndarray]) -> np.ndarray:
    x = xs[0]
    if isinstance(op, Dense):
        return x.reshape(len(x), -1) @ op.weight.T + op.bias
    if isinstance(op, Conv):
        return conv_any(x, op.matrix(), op, op.bias).astype(np.float32)
    if isinstance(op, Act):
        if op.kind == "sigmoid":
            return (1 / (1 + np.exp(-x))).astype(np.float32)
        return np.clip(x, op.lo, op.hi)
    if isinstance(op, Pool):
        if op.kind == "max":
            win, _ = pool_windows(x, op, -np.inf)
            return win.max(axis=-1)
        win, _ = pool_windows(x, op, 0)
        return (win.sum(axis=-1) / pool_counts(x.shape[2:], op)).astype(np.float32)
    if isinstance(op, Add):
        return xs[0] + xs[1]
    if isinstance(op, AddConst):
        return (x + op.codes * op.scale).astype(np.float32)
    if isinstance(op, MulConst):
        return (x * (op.codes * op.scale)).astype(np.float32)
    if isinstance(op, Reshape):
        return x.reshape(len(x), *op.shape)
    if isinstance(op, Transpose):
        return x.transpose(op.perm)
    if isinstance(op, QuantPoint):
        q = np.clip(np.rint(x / op.scale) + op.zero_point, op.qmin, op.qmax)
        return ((q - op.zero_point) * op.scale).astype(np.float32)
    raise AssertionError(type(op))
