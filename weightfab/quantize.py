"""Network -> QuantizedNetwork: integer weights, int32 biases, calibrated int8 activations.

Weights: per output channel, symmetric, q = clip(round(w / s), -qmax, qmax) with s = max|w| / qmax
(``ternary``: threshold 0.7·mean|w|, scale = mean of the kept |w|, after Li & Liu 2016).
Activations: 8 bits, zero point 0; a tensor whose calibrated minimum is >= 0 (the input
pixels, every ReLU output) is unsigned [0, 255], any other is signed [-127, 127].
Requantization is integer: y = (acc · m + 2^(shift-1)) >> shift with m a 31-bit multiplier,
as a hardware datapath does it. The last layer keeps 16-bit outputs for the arg-max.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ModelError
from .network import Network

WEIGHT_BITS = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2}
OUT_BITS = 16  # last layer output width


@dataclass(frozen=True)
class QDense:
    name: str
    weight: np.ndarray      # [N, M] int8 values (two's complement fits ``bits``)
    w_scale: np.ndarray     # [N] float64
    bias: np.ndarray        # [N] int64 holding int32 values
    multiplier: np.ndarray  # [N] int64, in [2^30, 2^31)
    shift: np.ndarray       # [N] int64
    out_min: int
    out_max: int
    in_scale: float
    out_scale: float
    relu: bool
    bits: int

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight.shape)


@dataclass(frozen=True)
class QuantizedNetwork:
    name: str
    input_name: str
    input_shape: tuple[int, ...]
    input_scale: float
    input_min: int
    input_max: int
    layers: tuple[QDense, ...]
    softmax: bool
    weights: str

    def with_weights(self, weights: list[np.ndarray]) -> "QuantizedNetwork":
        """The same network with other integer weights (for example, read back from a layout)."""
        from dataclasses import replace
        return replace(self, layers=tuple(replace(l, weight=w) for l, w in zip(self.layers, weights)))


def quantize_weights(w: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization of a [N, M] matrix -> (int8 q, float64 scale[N])."""
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
    scale = np.where(m > 0, m / qmax, 1.0)
    q = np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8)
    return q, scale


def _multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """real ≈ m · 2^-shift with m in [2^30, 2^31)."""
    real = np.asarray(real, np.float64)
    if np.any(real <= 0):
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


def _act_range(lo: float, relu: bool) -> tuple[int, int]:
    return (0, 255) if relu or lo >= 0 else (-127, 127)


def quantize(net: Network, calib: np.ndarray, weights: str = "int8") -> QuantizedNetwork:
    """Quantize ``net``; ``calib`` holds sample inputs that set the activation scales."""
    calib = np.asarray(calib, np.float32)
    if calib.ndim < 1 or len(calib) == 0:
        raise ModelError("calibration data is empty")
    if not np.all(np.isfinite(calib)):
        raise ModelError("calibration data holds NaN or infinite values")
    acts = net.activations(calib)
    lo, hi = float(acts[0].min()), float(acts[0].max())
    in_min, in_max = _act_range(lo, False)
    peak = max(abs(lo), abs(hi))
    in_scale = (peak / in_max) if peak > 0 else 1.0
    layers = []
    s_in = in_scale
    for i, layer in enumerate(net.layers):
        q, s_w = quantize_weights(layer.weight, weights)
        last = i == len(net.layers) - 1
        out = acts[i + 1]
        if last:
            out_min, out_max = -(2 ** (OUT_BITS - 1) - 1), 2 ** (OUT_BITS - 1) - 1
        else:
            out_min, out_max = _act_range(float(out.min()), layer.relu)
        peak = float(np.abs(out).max())
        s_out = (peak / out_max) if peak > 0 else 1.0
        acc_scale = s_w * s_in
        bias = np.rint(layer.bias.astype(np.float64) / acc_scale)
        if np.any(np.abs(bias) > 2 ** 31 - 1):
            raise ModelError(f"layer '{layer.name}': bias does not fit int32 at this scale")
        m, shift = _multiplier(acc_scale / s_out)
        layers.append(QDense(layer.name, q, s_w, bias.astype(np.int64), m, shift, out_min, out_max,
                             s_in, s_out, layer.relu, WEIGHT_BITS[weights]))
        s_in = s_out
    return QuantizedNetwork(net.name, net.input_name, net.input_shape, in_scale, in_min, in_max,
                            tuple(layers), net.softmax, weights)


def quantize_input(qnet: QuantizedNetwork, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return np.clip(np.rint(x / qnet.input_scale), qnet.input_min, qnet.input_max).astype(np.int64)


def run_integer(qnet: QuantizedNetwork, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Bit-accurate integer inference: int32 MACs, multiplier+shift requantization, clamps.

    Returns the last layer's integer outputs [B, classes] (int64 holding int16 values).
    """
    xq = quantize_input(qnet, x)
    outs = []
    for start in range(0, len(xq), batch):
        h = xq[start:start + batch]
        for layer in qnet.layers:
            acc = h @ layer.weight.astype(np.int64).T + layer.bias
            if np.any(np.abs(acc) > 2 ** 31 - 1):
                raise ModelError(f"layer '{layer.name}': accumulator overflows int32")
            y = (acc * layer.multiplier + (np.int64(1) << (layer.shift - 1))) >> layer.shift
            lo = 0 if layer.relu else layer.out_min
            h = np.clip(y, lo, layer.out_max)
        outs.append(h)
    return np.concatenate(outs) if outs else np.zeros((0, qnet.layers[-1].shape[0]), np.int64)


def dequantize_output(qnet: QuantizedNetwork, y: np.ndarray) -> np.ndarray:
    return y.astype(np.float64) * qnet.layers[-1].out_scale
