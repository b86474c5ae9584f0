"""Weight formats and the data-free ways of rounding a float matrix to them.

Per output channel, symmetric: q = clip(round(w / s), -qmax, qmax) with s = max|w| / qmax;
``-mse`` formats clip each channel where the squared weight error is least; ``ternary`` is
{-1, 0, 1} with a 0.7·mean|w| threshold (after Li & Liu 2016). The rounding that looks at
calibration data (``optimized``) is in rounding.py.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError

WEIGHT_BITS = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2, "int4-mse": 4, "int2-mse": 2}
CLIP_RATIOS = np.linspace(0.3, 1.0, 36)  # "-mse" formats: candidate clipping levels, a share of max |w|


def quantize_weights(w: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization of a [N, M] matrix -> (int8 q, float64 scale[N]).

    int8/int4/int2 scale each channel to its largest |w|; int4-mse/int2-mse clip each channel where
    the squared weight error is least (a range of 0.3 to 1.0 of the largest |w|); ternary is
    {-1, 0, 1} with a 0.7 · mean |w| threshold."""
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
    if not mode.endswith("-mse"):
        scale = np.where(m > 0, m / qmax, 1.0)
        return np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8), scale
    # per channel, the clipping level (a share of max |w|, 1.0 included) whose rounded weights
    # reconstruct the channel with the least squared error; ties keep the larger range
    best_err = np.full(len(w), np.inf)
    scale = np.where(m > 0, m / qmax, 1.0)
    for r in CLIP_RATIOS[::-1]:
        s = np.where(m > 0, r * m / qmax, 1.0)
        q = np.clip(np.rint(w / s[:, None]), -qmax, qmax)
        err = ((q * s[:, None] - w) ** 2).sum(axis=1)
        better = err < best_err
        best_err, scale = np.where(better, err, best_err), np.where(better, s, scale)
    return np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8), scale
