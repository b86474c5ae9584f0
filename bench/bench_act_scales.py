#!/usr/bin/env python
"""Per-channel activation scales, as the ROM datapath could hold them (a measurement, not a test).

The datapath requantizes each column (output channel) after its bitline sum with its own multiplier,
so a layer may write each output channel on its own grid s_c; but all wordlines of the next array are
summed as codes with one input scale, so that layer must absorb the ratios in its stored weights:
W'[:, i] = W[:, i] · s_i / s_max, quantized per output channel as usual. This script measures that
trade on the shared models with the float forward and fake quantization at the inputs of weighted
layers only (8-bit activation codes, weights nearest-rounded per output channel, everything else
float): per-tensor grid vs per-channel grids folded into the consumer. Per-channel grids are used only
where a column gives them (a 4-D tensor's channel, a Dense output's feature); the graph input and a
flattened convolution output keep one scale. Calibration on the first 1,000 MNIST / 423 CIFAR images
(500 for the ranges), accuracy on the rest.

    python bench/bench_act_scales.py [--models keras,resnet8,mnist12] [--formats int8,int4,int4-mse]
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from common import SHARED, shared_set  # puts the checkout on sys.path
from weightfab.frontend.network import Conv, Dense, Reshape, Transpose, float_op
from weightfab.frontend.onnx_import import load_onnx
from weightfab.quant.weights import quantize_weights


def column_grid(net, t: str) -> bool:
    """Whether tensor ``t`` comes from one column per channel (a Dense/Conv through element-wise ops)."""
    producer = {op.output: op for op in net.ops}
    while t in producer:
        op = producer[t]
        if isinstance(op, (Dense, Conv)):
            return True
        if isinstance(op, (Reshape, Transpose)):
            return False
        t = op.inputs[0]
    return False


def ranges(net, cal) -> dict:
    """Per weighted-layer input: (min, max |x|, max |x| per channel or None)."""
    env, out = net.run(cal), {}
    for op in net.layers:
        a = env[op.inputs[0]]
        per = np.abs(a).max(axis=tuple(i for i in range(a.ndim) if i != 1)) if column_grid(net, op.inputs[0]) else None
        out[op.inputs[0]] = (float(a.min()), float(np.abs(a).max()), per)
    return out


def fake_layer(op, a, rng, fmt, per_channel):
    lo, peak, per = rng
    hi = 255 if lo >= 0 else 127
    s = (per if per_channel and per is not None else np.full(a.shape[1], peak)) / hi
    s = np.where(s > 0, s, peak / hi)
    v = np.clip(np.rint(a / s.reshape((1, -1) + (1,) * (a.ndim - 2))), 0 if lo >= 0 else -hi, hi)
    ratio = s / s.max()
    w = op.weight.astype(np.float64)
    if isinstance(op, Dense):
        wf = w * ratio[None, :]
    elif op.group == 1:
        wf = w * ratio[None, :, None, None]
    else:  # depthwise: output channel c reads input channel c // multiplier
        wf = w * np.repeat(ratio, len(w) // len(ratio))[:, None, None, None]
    q, ws = quantize_weights(wf.reshape(len(w), -1), fmt)
    wq = (q * ws[:, None]).reshape(w.shape).astype(np.float32)
    return float_op(replace(op, weight=wq), [(v * s.max()).astype(np.float32)])


def accuracy(net, x, y, rngs, fmt, per_channel) -> float:
    hits = 0
    for s in range(0, len(x), 500):
        env = {net.input_name: x[s:s + 500].reshape(-1, *net.input_shape)}
        for op in net.ops:
            xs = [env[i] for i in op.inputs]
            fake = isinstance(op, (Dense, Conv)) and op.inputs[0] != net.input_name
            env[op.output] = fake_layer(op, xs[0], rngs[op.inputs[0]], fmt, per_channel) if fake else float_op(op, xs)
        hits += int(np.sum(env[net.output].reshape(len(env[net.output]), -1).argmax(1) == y[s:s + 500]))
    return hits / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="keras,resnet8,mnist12")
    ap.add_argument("--formats", default="int8,int4,int4-mse")
    args = ap.parse_args()
    print(f"{'model':<9} {'weights':<9} {'per-tensor':>11} {'per-channel':>12}")
    for name in args.models.split(","):
        file, x, y = shared_set(name)
        n = 423 if name == "resnet8" else 1000
        net = load_onnx(SHARED / "models" / file)
        rngs = ranges(net, x[:min(n, 500)])
        for fmt in args.formats.split(","):
            a, b = (accuracy(net, x[n:], y[n:], rngs, fmt, pc) for pc in (False, True))
            print(f"{name:<9} {fmt:<9} {a:>11.2%} {b:>12.2%}", flush=True)


if __name__ == "__main__":
    main()
