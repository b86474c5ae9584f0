"""``merge_tol`` (``--merge-tol T``): a fixed tolerance, L-infinity in quantization steps.

The distance between two blocks (K integer weights of one layer) is the largest absolute
difference of their integer weights, in the layer's own (per output channel) steps:
``d(a, b) = max_k |a_k - b_k|``. Every block is replaced by a representative at distance
<= ``tol``. Clustering, per layer, over the layer's distinct blocks weighted by use count:

1. centres: greedy set cover. Blocks are ordered by descending use count, then
   lexicographically; the all-zero block, when present, is the first centre. Then repeatedly
   the block whose ``tol``-ball covers the most still-uncovered *uses* becomes a centre (ties:
   the earlier block in that order). Exact, vectorized with numpy, O(U^2) bits of memory for U
   distinct blocks; above ``COVER_MAX`` distinct blocks a lattice is used instead (every value
   rounded to the nearest multiple of 2·tol+1, which is within tol).
2. refinement (3 rounds): each block goes to the nearest centre (L2) among those within ``tol``;
   each centre moves to the use-weighted mean of its members, rounded, and clipped into the box
   where it stays within ``tol`` of every member. The box always holds the old centre, so the
   guarantee never breaks; the rounded mean lies between the members' smallest and largest
   values, so a representative only holds values the layer already had (ternary stays in
   {-1, 0, 1}, int4 in [-7, 7]).
3. the all-zero block's cluster keeps the exact zero block as representative (a zero block is
   never turned into a non-zero one; small blocks may merge *into* zero).

``tol = 0`` returns the weights unchanged. ``fraction`` < 1 merges only that share of the blocks
that would change, the cheapest first by the cost ``m_n^2 · e^T C_j e`` of ``layer_importance``.
"""
from __future__ import annotations

import numpy as np

from ...quant.quantize import QuantizedNetwork
from ...errors import WeightfabError
from ..dedup import DEFAULT_BLOCK, check_block, dedup
from .importance import _block_costs, layer_importance
from .common import DEFAULT_LEVELS, MergeResult, _levels, _qmax, _result

COVER_MAX = 8192          # distinct blocks up to which the exact greedy set cover is used
REFINE_ROUNDS = 3


def _linf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[A, K] x [B, K] -> [A, B] L-infinity distances (int16)."""
    return np.abs(a[:, None, :] - b[None, :, :]).max(axis=2)


def _cover_centres(u: np.ndarray, w: np.ndarray, tol: int, zero: int | None) -> np.ndarray:
    """Greedy weighted set cover of the rows of ``u`` (already in priority order) by tol-balls
    centred on rows of ``u``; returns centre indices."""
    n = len(u)
    cover = np.empty((n, n), bool)
    step = max(1, 4_000_000 // max(n * u.shape[1], 1))
    for s in range(0, n, step):
        cover[s:s + step] = _linf(u[s:s + step], u) <= tol
    wf = w.astype(np.float64)
    gain = np.zeros(n)
    for s in range(0, n, step):
        gain[s:s + step] = cover[s:s + step].astype(np.float64) @ wf
    uncovered = np.ones(n, bool)
    centres = []

    def take(c):
        new = cover[c] & uncovered
        uncovered[new] = False
        idx = np.flatnonzero(new)
        for s in range(0, len(idx), 4096):
            cols = idx[s:s + 4096]
            gain[:] -= cover[:, cols].astype(np.float64) @ wf[cols]
        centres.append(c)

    if zero is not None:
        take(zero)
    while uncovered.any():
        c = int(np.argmax(np.where(uncovered | (gain > 0), gain, -1.0)))
        if gain[c] <= 0:   # numerical safety: take the first uncovered block itself
            c = int(np.flatnonzero(uncovered)[0])
        take(c)
    return np.asarray(centres, np.int64)


def _lattice(u: np.ndarray, tol: int) -> np.ndarray:
    p = 2 * tol + 1
    return (np.rint(u / p) * p).astype(np.int16)


def _nearest(u: np.ndarray, reps: np.ndarray, tol: int) -> np.ndarray:
    """Index of the nearest (L2) representative within ``tol`` (L-inf) for every row of ``u``."""
    out = np.empty(len(u), np.int64)
    step = max(1, 2_000_000 // max(len(reps) * u.shape[1], 1))
    for s in range(0, len(u), step):
        d = u[s:s + step, None, :].astype(np.int32) - reps[None, :, :]
        ok = np.abs(d).max(axis=2) <= tol
        l2 = np.where(ok, (d * d).sum(axis=2), np.iinfo(np.int32).max)
        out[s:s + step] = np.argmin(l2, axis=1)
    return out


def cluster_blocks(unique: np.ndarray, counts: np.ndarray, tol: int, qmax: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Cluster distinct blocks ``unique`` [U, K] used ``counts`` [U] times each.

    Returns (representatives [R, K] int8, assignment [U] -> index into representatives); every
    block is within ``tol`` (L-inf) of its representative, representatives are distinct, an
    all-zero block maps to the all-zero representative.
    """
    unique = np.asarray(unique)
    counts = np.asarray(counts, np.int64)
    if tol < 0:
        raise WeightfabError(f"merge tolerance {tol}: must be >= 0")
    if tol == 0 or len(unique) == 0:
        return unique.astype(np.int8), np.arange(len(unique), dtype=np.int64)
    u = unique.astype(np.int16)
    # priority order: descending use count, then lexicographic (stable sort keeps lexicographic
    # order among equal counts when ``unique`` is lexicographically sorted, as dedup makes it)
    lex = np.lexsort(u.T[::-1])
    order = lex[np.argsort(-counts[lex], kind="stable")]
    uo, wo = u[order], counts[order]
    zmask = ~uo.any(axis=1)
    zero = int(np.flatnonzero(zmask)[0]) if zmask.any() else None
    if len(uo) <= COVER_MAX:
        reps = uo[_cover_centres(uo, wo, tol, zero)].astype(np.int32)
    else:
        reps = np.unique(_lattice(uo, tol), axis=0).astype(np.int32)
        if qmax is not None:
            reps = np.clip(reps, -qmax, qmax)
    zrep = None
    for _ in range(REFINE_ROUNDS + 1):
        assign = _nearest(uo, reps, tol)
        # drop representatives nobody uses, then move each to the weighted mean within its box
        used, assign = np.unique(assign, return_inverse=True)
        r = len(used)
        k = u.shape[1]
        wsum = np.bincount(assign, weights=wo, minlength=r)
        mean = np.stack([np.bincount(assign, weights=wo * uo[:, j], minlength=r) for j in range(k)], 1) / wsum[:, None]
        hi = np.full((r, k), -10 ** 6, np.int32)
        lo = np.full((r, k), 10 ** 6, np.int32)
        np.maximum.at(hi, assign, uo)
        np.minimum.at(lo, assign, uo)
        new = np.clip(np.rint(mean).astype(np.int32), hi - tol, lo + tol)
        if qmax is not None:
            new = np.clip(new, -qmax, qmax)
        if zero is not None:
            zrep = assign[zero]
            new[zrep] = 0
        reps = new
    # representatives that coincide after refinement become one
    reps, inv = np.unique(reps, axis=0, return_inverse=True)
    assign = inv.reshape(-1)[assign]
    out = np.empty(len(u), np.int64)
    out[order] = assign
    return reps.astype(np.int8), out


def _merge_layer(lb, layer, tol: int, fraction: float = 1.0, importance=None) -> np.ndarray:
    """Merged [N, M] weight matrix of one layer at ``tol``; with ``fraction`` < 1 only that share
    of the distinct blocks that would change is merged, the cheapest first (see ``_block_costs``)."""
    if tol == 0 or fraction <= 0:
        return layer.weight
    counts = np.bincount(lb.index.reshape(-1), minlength=len(lb.unique))
    reps, assign = cluster_blocks(lb.unique, counts, tol, _qmax(layer.bits))
    target = reps[assign]
    if fraction < 1:
        moved = np.flatnonzero(np.any(target != lb.unique, axis=1))
        cost = _block_costs(lb, target.astype(np.int32) - lb.unique, importance)[moved]
        keep = moved[np.argsort(cost, kind="stable")][int(np.floor(fraction * len(moved) + 1e-9)):]
        target = target.copy()
        target[keep] = lb.unique[keep]
    n, j = lb.index.shape
    w = target[lb.index].reshape(n, j * lb.block)[:, : lb.shape[1]]
    return np.ascontiguousarray(w, np.int8)


def merge_tol(qnet: QuantizedNetwork, block: int = DEFAULT_BLOCK, tol: int | list[int] = 1, *,
              fraction: float | list[float] = 1.0, calib: np.ndarray | None = None, x: np.ndarray | None = None,
              y: np.ndarray | None = None, bias_correction: bool = True) -> MergeResult:
    """Merge every layer's blocks at tolerance ``tol`` steps (one value, or one per layer).

    ``fraction`` < 1 merges only that share of the distinct blocks that would change, the
    cheapest first (input statistics from ``calib`` when given). With ``calib`` and
    ``bias_correction`` the biases are corrected; with ``x``, ``y`` the accuracy before and after
    is measured.
    """
    check_block(block)
    tols = _levels(qnet, tol)
    fracs = [float(fraction)] * len(tols) if np.isscalar(fraction) else [float(f) for f in fraction]
    if len(fracs) != len(tols) or any(not 0 <= f <= 1 for f in fracs):
        raise WeightfabError("merge fraction: one value (or one per layer) from 0 to 1")
    lib = dedup(qnet, block)
    imp = layer_importance(qnet, calib, block) if calib is not None and any(f < 1 for f in fracs) else None
    weights = [_merge_layer(lb, l, t, f, None if imp is None else imp[i])
               for i, (lb, l, t, f) in enumerate(zip(lib.layers, qnet.layers, tols, fracs))]
    res = _result(qnet, lib, block, tols, weights, calib, x, y, bias_correction, "fixed tolerance")
    res.fractions = [f if t else 0.0 for t, f in zip(tols, fracs)]
    return res


def tradeoff(qnet: QuantizedNetwork, block: int, x: np.ndarray, y: np.ndarray, levels=DEFAULT_LEVELS, *,
             calib: np.ndarray | None = None, bias_correction: bool = True) -> list[dict]:
    """One row per uniform tolerance: level, unique blocks per layer and in total, accuracy."""
    calib = x if calib is None else calib
    rows = []
    for t in levels:
        r = merge_tol(qnet, block, int(t), calib=calib, x=x, y=y, bias_correction=bias_correction)
        rows.append({"level": int(t), "unique": [int(u) for u in r.unique_after], "total": r.total_after,
                     "accuracy": r.accuracy_merged})
    return rows
