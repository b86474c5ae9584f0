"""Post-fabrication trims: a small writable correction per output channel, in the requantization.

A die test reads the ROM and finds its faulty bits; the weights are then known exactly. What is
still writable is a trim register per output channel of every weighted layer (modelled, not
drawn: the datapath is not drawn yet):
- an integer bias trim t (``bias_bits`` signed), added to the accumulator with the bias;
- optionally a gain code k (``scale_bits`` signed), multiplying the requantization multiplier by
  1 + k / 2^(scale_bits + 1) (a range of ±25 %, step 2^-(scale_bits+1)).
The requantization becomes y = clip(((acc + bias + t) · round(m · g) + 2^(shift-1)) >> shift).

Fitting, layer by layer in network order, on calibration inputs: the accumulator of each channel
of the faulty die (with the trims already fitted upstream) is matched, in least squares, to the
accumulator of the fault-free chip: bias only, t = round(mean(acc_ok - acc_faulty)); or gain and
bias, the straight-line fit. Of {no trims, bias trims, gain and bias trims} the one with the
highest accuracy on the calibration data is kept (no trims on a tie), so trims never lower the
accuracy on the data they were fitted on.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..quant.quantize import QuantizedNetwork, run_integer

GAIN_FRAC_EXTRA = 1   # gain step 2^-(scale_bits + 1)


@dataclass(frozen=True)
class Trims:
    bias: list[np.ndarray]        # per layer [N] int64
    gain: list[np.ndarray]        # per layer [N] int64 gain codes (0 = none)
    bias_bits: int
    scale_bits: int

    @property
    def register_bits(self) -> int:
        return sum(len(b) for b in self.bias) * (self.bias_bits + self.scale_bits)


def zero_trims(qnet: QuantizedNetwork, bias_bits: int, scale_bits: int) -> Trims:
    z = [np.zeros(l.shape[0], np.int64) for l in qnet.layers]
    return Trims(z, [v.copy() for v in z], bias_bits, scale_bits)


def apply_trims(qnet: QuantizedNetwork, trims: Trims) -> QuantizedNetwork:
    """The network with trims folded into bias and multiplier (what the trimmed datapath computes)."""
    step = 2.0 ** -(trims.scale_bits + GAIN_FRAC_EXTRA)
    layers = []
    for l, t, k in zip(qnet.layers, trims.bias, trims.gain):
        m = np.rint(l.multiplier * (1.0 + k * step)).astype(np.int64) if np.any(k) else l.multiplier
        layers.append(replace(l, bias=l.bias + t, multiplier=m))
    return replace(qnet, layers=tuple(layers))


def layer_accumulators(qnet: QuantizedNetwork, i: int, x: np.ndarray) -> np.ndarray:
    """Accumulators (acc + bias) of layer ``i`` as [B, N, positions], through the public integer
    model: the network cut after that layer, whose requantization is made the identity."""
    layer = qnet.layers[i]
    k = next(j for j, op in enumerate(qnet.ops) if op.name == layer.name)
    ident = replace(layer, multiplier=np.full_like(layer.multiplier, 1 << 30), shift=np.full_like(layer.shift, 30),
                    out_min=-(1 << 62), out_max=1 << 62)
    cut = replace(qnet, ops=qnet.ops[:k + 1], output=qnet.ops[k].output,
                  layers=tuple(ident if j == i else l for j, l in enumerate(qnet.layers)))
    out = run_integer(cut, x)
    return out.reshape(len(x), layer.shape[0], -1)


def _fit_layer(ok: np.ndarray, bad: np.ndarray, gain: bool, bias_bits: int, scale_bits: int):
    """Least-squares trims of one layer: ok ≈ g · (bad + t). ok/bad: [B, N, P] accumulators."""
    n = ok.shape[1]
    t_ok = ok.transpose(1, 0, 2).reshape(n, -1).astype(np.float64)
    t_bad = bad.transpose(1, 0, 2).reshape(n, -1).astype(np.float64)
    lim = 2 ** (bias_bits - 1) - 1
    code = np.zeros(n, np.int64)
    g = np.ones(n)
    if gain:
        step = 2.0 ** -(scale_bits + GAIN_FRAC_EXTRA)
        mb, mo = t_bad.mean(1), t_ok.mean(1)
        var = ((t_bad - mb[:, None]) ** 2).mean(1)
        cov = ((t_bad - mb[:, None]) * (t_ok - mo[:, None])).mean(1)
        slope = np.where(var > 0, cov / np.where(var > 0, var, 1), 1.0)
        kmax = 2 ** (scale_bits - 1) - 1
        code = np.clip(np.rint((slope - 1) / step), -kmax - 1, kmax).astype(np.int64)
        g = 1.0 + code * step
        bias = np.rint(mo / g - mb)
    else:
        bias = np.rint((t_ok - t_bad).mean(1))
    return np.clip(bias, -lim - 1, lim).astype(np.int64), code


def fit_candidate(ref: QuantizedNetwork, faulty: QuantizedNetwork, x: np.ndarray, gain: bool, bias_bits: int,
                  scale_bits: int, ok_acc: list | None = None) -> Trims:
    """Least-squares trims, layer by layer (each fitted with the trims upstream already applied)."""
    if ok_acc is None:
        ok_acc = [layer_accumulators(ref, i, x) for i in range(len(ref.layers))]
    t = zero_trims(ref, bias_bits, scale_bits if gain else 0)
    for i in range(len(ref.layers)):
        bad = layer_accumulators(apply_trims(faulty, t), i, x)
        t.bias[i][:], t.gain[i][:] = _fit_layer(ok_acc[i], bad, gain, bias_bits, t.scale_bits)
    return t


def fit_trims(ref: QuantizedNetwork, faulty: QuantizedNetwork, x: np.ndarray, y: np.ndarray,
              bias_bits: int = 16, scale_bits: int = 8) -> tuple[Trims, dict]:
    """Trims for the faulty die ``faulty`` (same network as ``ref`` with other weights), fitted on
    ``x``, ``y``; returns the chosen trims and the calibration accuracy of every candidate."""
    def acc(q):
        return float(np.mean(np.argmax(run_integer(q, x), 1) == y))

    ok_acc = [layer_accumulators(ref, i, x) for i in range(len(ref.layers))]
    candidates = {"none": zero_trims(ref, bias_bits, scale_bits)}
    candidates["bias"] = fit_candidate(ref, faulty, x, False, bias_bits, 0, ok_acc)
    if scale_bits > 0:
        candidates["bias+gain"] = fit_candidate(ref, faulty, x, True, bias_bits, scale_bits, ok_acc)
    scores = {name: acc(apply_trims(faulty, t)) for name, t in candidates.items()}
    best = max(scores, key=lambda k: (scores[k], -list(scores).index(k)))
    return candidates[best], {"chosen": best, "calibration_accuracy": scores}
