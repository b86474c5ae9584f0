"""Lossy block merging: similar weight blocks share one ROM cell, under an accuracy budget.

Exact deduplication (``dedup``) shares only identical blocks. Here blocks that are *close* are
replaced by one representative, so fewer distinct cells are drawn.

Metric. The distance between two blocks (K integer weights of one layer) is the largest
absolute difference of their integer weights, in quantization steps (L-infinity):
``d(a, b) = max_k |a_k - b_k|``. A merge at tolerance ``tol`` replaces every block by a
representative at distance <= ``tol``. Steps are the layer's own (per output channel) steps,
so the same ``tol`` is a coarser change for int4 than for int8.

Clustering (per layer, over the layer's distinct blocks, weighted by how often each is used):

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

``tol = 0`` returns the weights unchanged. Everything is deterministic (no random numbers).

Bias correction (optional, on by default where calibration inputs are given): after merging,
each layer's int32 bias is shifted by the mean change of its accumulator over the calibration
inputs, per output channel: ``bias -= rint(E[W' x'] - E[W x])`` where ``x`` is the layer's
input in the original integer network and ``x'`` in the merged network with the corrected
biases of the layers before it (layer by layer). The merged network to simulate or verify is
``MergeResult.apply(qnet)`` (new weights *and* biases); the ROM holds only the weights.

Partial merging (``fraction`` < 1): of the distinct blocks that the clustering would change,
only that share is merged, the cheapest first; a block's cost is the expected squared change of
the layer's requantized output summed over its uses, ``m_n^2 · e^T C_j e`` (e: the block's change,
C_j: covariance of the K inputs at block position j from calibration data, m_n: the channel's
accumulator-to-output scale). Blocks fed by inputs that never vary (MNIST border pixels) merge
for free. Kept blocks are their own representatives, so the tol guarantee holds unchanged.

Budget search (``merge_budget``): the settings of a layer are (tol, fraction) pairs. Per-layer
sensitivity first (accuracy with only that layer merged, at each setting; a setting that breaks
the budget alone stops the larger fractions at that tol), then greedy: take the (layer, setting)
with the best unique-block saving per predicted accuracy point lost (from the sensitivities),
keep it when the joint accuracy on the given data stays within ``budget_pp`` percentage points
of the unmerged quantized model, else drop it and every setting of that layer that saves no
more and costs at least as much alone. It stops when no candidate is left (``stopped_because``;
every step is in ``history``). ``budget_pp = 0`` means no merging at all (literally: not even
merges that would cost no accuracy). The budget holds on the data the search was given; held-out
data can lose more (the search chases noise at the 1/len(y) level).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .dedup import DEFAULT_BLOCK, check_block, dedup
from .errors import WeightfabError
from .network import Dense
from .quantize import QuantizedNetwork, _run_batch, quantize_input, run_integer

DEFAULT_LEVELS = (0, 1, 2, 3, 4, 6, 8)
COVER_MAX = 8192          # distinct blocks up to which the exact greedy set cover is used
REFINE_ROUNDS = 3
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
    fractions: list = field(default_factory=list)   # share of the changing blocks merged per layer
    history: list = field(default_factory=list)   # budget search steps

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
            "metric": "L-infinity, quantization steps", "block": self.block,
            "layers": [{"name": n, "tol": int(t), "fraction": float(f), "unique_before": int(b), "unique_after": int(a)}
                       for n, t, f, b, a in zip(self.names, self.levels, self.fractions or [1.0] * len(self.names),
                                                self.unique_before, self.unique_after)],
            "unique_before": self.total_before, "unique_after": self.total_after,
            "reduction": round(self.reduction, 4), "bias_corrected": self.biases is not None,
            "accuracy_quantized": self.accuracy_quantized, "accuracy_merged": self.accuracy_merged,
            "samples": self.samples, "budget_pp": self.budget_pp, "stopped_because": self.stopped_because,
        }


# -- clustering of one layer ---------------------------------------------------------------

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


# -- whole network -------------------------------------------------------------------------

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


def _block_costs(lb, err: np.ndarray, importance) -> np.ndarray:
    """Cost of moving each distinct block by ``err`` [U, K], summed over its uses: the expected
    squared change of the requantized output, ``m_n^2 · e^T C_j e`` for a use at channel n,
    block position j (m_n: accumulator-to-output scale, C_j: covariance of the K inputs).
    Without ``importance``: use-weighted squared error."""
    if importance is None:
        return np.bincount(lb.index.reshape(-1), minlength=len(err)).astype(np.float64) * (err.astype(np.float64) ** 2).sum(1)
    m2, cov = importance               # [N], [J, K, K]
    e = err.astype(np.float64)
    # q[u, j] = e_u^T C_j e_u
    q = np.einsum("uk,jkl,ul->uj", e, cov, e)
    n, j = lb.index.shape
    per_use = q[lb.index, np.arange(j)[None, :]] * m2[:, None]
    return np.bincount(lb.index.reshape(-1), weights=per_use.reshape(-1), minlength=len(err))


def layer_importance(qnet: QuantizedNetwork, calib: np.ndarray, block: int) -> list:
    """Per layer (m_n^2 [N], input covariance per block position [J, K, K]) from calibration inputs
    run through the integer network. Convolutions use per-input-channel variances (diagonal)."""
    v = quantize_input(qnet, np.asarray(calib)[:CALIB_MAX])
    out = []
    for layer in qnet.layers:
        ops = qnet.ops
        k = next(i for i, op in enumerate(ops) if op.name == layer.name)
        op = ops[k]
        sub = replace(qnet, ops=ops[:k], output=op.inputs[0])
        xs = np.concatenate([_run_batch(sub, v[s:s + 512]) for s in range(0, len(v), 512)]).astype(np.float64)
        n, m = layer.shape
        jn = -(-m // block)
        if isinstance(op, Dense):
            xp = np.zeros((len(xs), jn * block))
            xp[:, :m] = xs
            xb = xp.reshape(len(xs), jn, block)
            xb = xb - xb.mean(axis=0)
            cov = np.einsum("bjk,bjl->jkl", xb, xb) / len(xs)
        else:
            c = op.weight.shape[1] * op.group
            var = xs.reshape(len(xs), c, -1).transpose(1, 0, 2).reshape(c, -1).var(axis=1)
            cig = op.weight.shape[1]
            col = np.zeros(jn * block)
            col[:m] = var[np.arange(m) % cig] if op.group == 1 else var.mean()
            cov = np.zeros((jn, block, block))
            idx = np.arange(block)
            cov[:, idx, idx] = col.reshape(jn, block)
        mult = (layer.multiplier.astype(np.float64) * np.exp2(-layer.shift.astype(np.float64)))
        out.append((mult ** 2, cov))
    return out


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


def bias_correct(qnet: QuantizedNetwork, weights: list, calib: np.ndarray) -> list:
    """Int32 biases that cancel the mean accumulator shift of the merged weights (see module doc)."""
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
        ref = _mean_acc(qnet, i, v)
        cur = _mean_acc(_with(qnet, weights, biases), i, v)
        biases[i] = (l.bias - np.rint(cur - ref)).astype(np.int64)
        biases[i] = np.clip(biases[i], -(2 ** 31 - 1), 2 ** 31 - 1)
    return biases


def accuracy(qnet: QuantizedNetwork, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(run_integer(qnet, x), axis=1) == np.asarray(y)))


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


def _result(qnet, lib, block, tols, weights, calib, x, y, bias_correction, why, acc_q=None) -> MergeResult:
    merged = any(not np.array_equal(w, l.weight) for w, l in zip(weights, qnet.layers))
    biases = bias_correct(qnet, weights, calib) if (merged and bias_correction and calib is not None) else None
    res = MergeResult(weights, biases, tols, [l.name for l in qnet.layers], [len(lb.unique) for lb in lib.layers],
                      _unique_counts(qnet, weights, block) if merged else [len(lb.unique) for lb in lib.layers],
                      block, stopped_because=why)
    res.fractions = [1.0 if t else 0.0 for t in tols]
    if x is not None and y is not None:
        res.accuracy_quantized = accuracy(qnet, x, y) if acc_q is None else acc_q
        res.accuracy_merged = accuracy(res.apply(qnet), x, y) if merged else res.accuracy_quantized
        res.samples = int(len(y))
    return res


DEFAULT_FRACTIONS = (0.5, 0.75, 0.85, 0.9, 0.95, 1.0)


def merge_budget(qnet: QuantizedNetwork, block: int, x: np.ndarray, y: np.ndarray, budget_pp: float,
                 levels=DEFAULT_LEVELS, *, fractions=DEFAULT_FRACTIONS, calib: np.ndarray | None = None,
                 bias_correction: bool = True, verbose: bool = False) -> MergeResult:
    """Per-layer merge settings (tolerance from ``levels`` x share of blocks from ``fractions``)
    with the fewest unique blocks found greedily whose accuracy on (x, y) stays within
    ``budget_pp`` percentage points of the unmerged quantized network. ``calib`` (default ``x``)
    feeds the cost ordering and the bias correction. ``budget_pp = 0``: no merging."""
    check_block(block)
    if budget_pp < 0:
        raise WeightfabError(f"accuracy budget {budget_pp}: must be >= 0 percentage points")
    y = np.asarray(y)
    if len(y) == 0 or len(x) != len(y):
        raise WeightfabError("budget search needs labelled data (x, y) of the same length")
    calib = x if calib is None else calib
    levels = sorted({int(v) for v in levels if int(v) > 0})
    fractions = sorted({float(f) for f in fractions if 0 < float(f) <= 1})
    lib = dedup(qnet, block)
    nl = len(qnet.layers)
    names = [l.name for l in qnet.layers]
    base = [l.weight for l in qnet.layers]
    acc_q = accuracy(qnet, x, y)
    floor = acc_q - budget_pp / 100 - 1e-12
    if budget_pp == 0 or not levels or not fractions:
        res = _result(qnet, lib, block, [0] * nl, base, None, x, y, False,
                      "budget 0: no merging" if budget_pp == 0 else "no merge levels given", acc_q)
        res.budget_pp = float(budget_pp)
        return res
    imp = layer_importance(qnet, calib, block)
    opts = [(t, f) for t in levels for f in fractions]
    none = (0, 0.0)
    wcache: dict = {}
    ucache: dict = {}

    def w_of(i, o):
        if o == none:
            return base[i]
        if (i, o) not in wcache:
            wcache[(i, o)] = _merge_layer(lib.layers[i], qnet.layers[i], o[0], o[1], imp[i])
        return wcache[(i, o)]

    def uniq(i, o):
        if o == none:
            return len(lib.layers[i].unique)
        if (i, o) not in ucache:
            ws = list(base)
            ws[i] = w_of(i, o)
            ucache[(i, o)] = len(dedup(qnet.with_weights(ws), block).layers[i].unique)
        return ucache[(i, o)]

    def evaluate(cfg):
        ws = [w_of(i, o) for i, o in enumerate(cfg)]
        bs = bias_correct(qnet, ws, calib) if bias_correction and any(o != none for o in cfg) else None
        return accuracy(_with(qnet, ws, bs), x, y)

    history = []
    sens: dict = {}
    for i in range(nl):
        failed: list = []
        for o in opts:
            if any(o[0] == t and o[1] >= f for t, f in failed):
                continue       # a smaller share at this tolerance alone already broke the budget
            cfg = [none] * nl
            cfg[i] = o
            sens[(i, o)] = evaluate(cfg)
            history.append({"step": "sensitivity", "layer": names[i], "tol": o[0], "fraction": o[1],
                            "unique": uniq(i, o), "accuracy": sens[(i, o)]})
            if verbose:
                print(history[-1], flush=True)
            if sens[(i, o)] < floor:
                failed.append(o)
    alive = {i: [o for o in opts if (i, o) in sens and sens[(i, o)] >= floor] for i in range(nl)}
    cur = [none] * nl
    cur_acc = acc_q
    eps = 0.5 / len(y)
    while True:
        cands = []
        for i in range(nl):
            lc = acc_q - (sens[(i, cur[i])] if cur[i] != none else acc_q)
            for o in alive[i]:
                save = uniq(i, cur[i]) - uniq(i, o)
                if save > 0:
                    loss = max(acc_q - sens[(i, o)] - lc, 0.0)
                    cands.append((-save / (loss + eps), -save, i, o))
        if not cands:
            why = ("no further setting fits the budget: every remaining step was rejected, "
                   "failed the budget alone, or saves no blocks")
            break
        cands.sort()
        _, negsave, i, o = cands[0]
        cfg = list(cur)
        cfg[i] = o
        a = evaluate(cfg)
        ok = a >= floor
        history.append({"step": "joint", "layer": names[i], "tol": o[0], "fraction": o[1], "saves": -negsave,
                        "accuracy": a, "accepted": bool(ok)})
        if verbose:
            print(history[-1], flush=True)
        if ok:
            cur, cur_acc = cfg, a
        # drop o, and (on rejection) every bigger step of this layer that costs at least as much alone
        lo = acc_q - sens[(i, o)]
        alive[i] = [p for p in alive[i] if p != o and
                    (ok or not (uniq(i, p) <= uniq(i, o) and acc_q - sens[(i, p)] >= lo))]
    ws = [w_of(i, o) for i, o in enumerate(cur)]
    res = _result(qnet, lib, block, [o[0] for o in cur], ws, calib if any(o != none for o in cur) else None,
                  None, None, bias_correction, why)
    res.fractions = [o[1] for o in cur]
    res.accuracy_quantized, res.accuracy_merged, res.samples = acc_q, cur_acc, int(len(y))
    res.budget_pp = float(budget_pp)
    res.history = history
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


def plot_tradeoff(rows: list[dict], path_png) -> None:
    """Unique blocks against accuracy, one point per level, as a PNG."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise WeightfabError("plotting needs matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    tot = [r["total"] for r in rows]
    acc = [100 * r["accuracy"] for r in rows]
    ax.plot(tot, acc, "o-")
    for r, a, b in zip(rows, tot, acc):
        ax.annotate(f"tol {r['level']}", (a, b), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("unique blocks (all layers)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("block merging: cells vs accuracy")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path_png), format="png")
    plt.close(fig)
