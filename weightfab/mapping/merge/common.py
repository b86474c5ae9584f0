"""Bias correction (both ways, on by default where calibration inputs are given): after merging,
each layer's int32 bias is shifted by the mean change of its accumulator over the calibration
inputs, per output channel: ``bias -= rint(E[W' x'] - E[W x])`` where ``x`` is the layer's
input in the original integer network and ``x'`` in the merged network with the corrected
biases of the layers before it (layer by layer). The merged network to simulate or verify is
``MergeResult.apply(qnet)`` (new weights *and* biases); the ROM holds only the weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ...quant.quantize import QuantizedNetwork, _run_batch, quantize_input, run_integer
from ...errors import WeightfabError
from ..dedup import DEFAULT_BLOCK, dedup

DEFAULT_LEVELS = (0, 1, 2, 3, 4, 6, 8)
METRIC_LINF = "L-infinity, quantization steps"
METRIC_IMPORTANCE = "output-weighted squared change (calibration statistics); representatives from the layer's blocks"
CALIB_MAX = 1000          # calibration samples used for bias correction and cost statistics


@dataclass
class MergeResult:
    """Merged integer weights (and biases) of every layer, and what the merge cost."""

    weights: list                      # [N, M] int8 per layer
    biases: list | None                # [N] int64 per layer (bias-corrected), None: unchanged
    levels: list                       # tolerance (steps) per layer
    names: list
    unique_before: list                # distinct blocks per layer, exact dedup
    unique_after: list                 # distinct blocks per layer after merging
    block: int = DEFAULT_BLOCK
    accuracy_quantized: float | None = None
    accuracy_merged: float | None = None
    samples: int | None = None
    budget_pp: float | None = None
    stopped_because: str = ""
    fractions: list = field(default_factory=list)   # share of the blocks merged per layer (see summary)
    history: list = field(default_factory=list)   # budget search steps
    metric: str = METRIC_LINF
    margin: float | None = None

    @property
    def total_before(self) -> int:
        return int(sum(self.unique_before))

    @property
    def total_after(self) -> int:
        return int(sum(self.unique_after))

    @property
    def reduction(self) -> float:
        return self.total_before / max(self.total_after, 1)

    def apply(self, qnet: QuantizedNetwork) -> QuantizedNetwork:
        """``qnet`` with the merged weights and (when corrected) biases."""
        return _with(qnet, self.weights, self.biases)

    def summary(self) -> dict:
        """JSON-ready description (for the compile report)."""
        return {
            "metric": self.metric, "block": self.block,
            "layers": [{"name": n, "tol": int(t), "fraction": float(f), "unique_before": int(b), "unique_after": int(a)}
                       for n, t, f, b, a in zip(self.names, self.levels, self.fractions or [1.0] * len(self.names),
                                                self.unique_before, self.unique_after)],
            "unique_before": self.total_before, "unique_after": self.total_after,
            "reduction": round(self.reduction, 4), "bias_corrected": self.biases is not None,
            "accuracy_quantized": self.accuracy_quantized, "accuracy_merged": self.accuracy_merged,
            "samples": self.samples, "budget_pp": self.budget_pp, "margin": self.margin,
            "stopped_because": self.stopped_because,
            "history": self.history,   # every budget-search evaluation (empty for a fixed tolerance)
        }


def _levels(qnet: QuantizedNetwork, tol) -> list[int]:
    n = len(qnet.layers)
    if np.isscalar(tol):
        tols = [int(tol)] * n
    else:
        tols = [int(t) for t in tol]
        if len(tols) != n:
            raise WeightfabError(f"merge tolerance: {len(tols)} values for {n} layers")
    if any(t < 0 for t in tols):
        raise WeightfabError("merge tolerance must be >= 0")
    return tols


def _qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def _unique_counts(qnet: QuantizedNetwork, weights: list, block: int) -> list[int]:
    return [len(lb.unique) for lb in dedup(qnet.with_weights(weights), block).layers]


def _with(qnet: QuantizedNetwork, weights, biases=None) -> QuantizedNetwork:
    if biases is None:
        return qnet.with_weights(weights)
    return replace(qnet, layers=tuple(replace(l, weight=w, bias=b) for l, w, b in zip(qnet.layers, weights, biases)))


def _mean_acc(qnet: QuantizedNetwork, i: int, v: np.ndarray) -> np.ndarray:
    """Mean accumulator W·x (no bias) per output channel of layer ``i`` over input integers ``v``."""
    layer = qnet.layers[i]
    ops = qnet.ops
    k = next(j for j, op in enumerate(ops) if op.name == layer.name)
    n = layer.shape[0]
    probe = replace(layer, bias=np.zeros(n, np.int64), multiplier=np.full(n, 1 << 30, np.int64),
                    shift=np.full(n, 30, np.int64), out_min=-(2 ** 62), out_max=2 ** 62)
    layers = tuple(probe if l.name == layer.name else l for l in qnet.layers)
    sub = replace(qnet, ops=ops[:k + 1], output=ops[k].output, layers=layers)
    total = np.zeros(n)
    for s in range(0, len(v), 512):
        out = _run_batch(sub, v[s:s + 512])
        total += out.reshape(len(out), n, -1).mean(axis=2).sum(axis=0)
    return total / len(v)


def bias_correct(qnet: QuantizedNetwork, weights: list, calib: np.ndarray, _ref: dict | None = None) -> list:
    """Int32 biases that cancel the mean accumulator shift of the merged weights (see module doc).
    ``_ref``: a cache of the unmerged network's mean accumulators (same ``qnet`` and ``calib``)."""
    calib = np.asarray(calib)[:CALIB_MAX]
    if len(calib) == 0:
        raise WeightfabError("bias correction needs calibration inputs")
    v = quantize_input(qnet, calib)
    biases = [l.bias.copy() for l in qnet.layers]
    changed = False
    for i, (l, w) in enumerate(zip(qnet.layers, weights)):
        if not changed and np.array_equal(w, l.weight):
            continue   # nothing merged up to here: the layer sees the same inputs with the same weights
        changed = True
        if _ref is None or i not in _ref:
            ref = _mean_acc(qnet, i, v)
            if _ref is not None:
                _ref[i] = ref
        ref = _ref[i] if _ref is not None else ref
        cur = _mean_acc(_with(qnet, weights, biases), i, v)
        biases[i] = (l.bias - np.rint(cur - ref)).astype(np.int64)
        biases[i] = np.clip(biases[i], -(2 ** 31 - 1), 2 ** 31 - 1)
    return biases


def accuracy(qnet: QuantizedNetwork, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(run_integer(qnet, x), axis=1) == np.asarray(y)))


def _result(qnet, lib, block, tols, weights, calib, x, y, bias_correction, why, acc_q=None, biases=None) -> MergeResult:
    merged = any(not np.array_equal(w, l.weight) for w, l in zip(weights, qnet.layers))
    if biases is None and merged and bias_correction and calib is not None:
        biases = bias_correct(qnet, weights, calib)
    res = MergeResult(weights, biases, tols, [l.name for l in qnet.layers], [len(lb.unique) for lb in lib.layers],
                      _unique_counts(qnet, weights, block) if merged else [len(lb.unique) for lb in lib.layers],
                      block, stopped_because=why)
    res.fractions = [1.0 if t else 0.0 for t in tols]
    if x is not None and y is not None:
        res.accuracy_quantized = accuracy(qnet, x, y) if acc_q is None else acc_q
        res.accuracy_merged = accuracy(res.apply(qnet), x, y) if merged else res.accuracy_quantized
        res.samples = int(len(y))
    return res
