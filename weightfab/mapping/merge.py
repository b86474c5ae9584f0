"""Lossy block merging: similar weight blocks share one ROM cell, under an accuracy budget.

Exact deduplication (``dedup``) shares only identical blocks. Here a block may be replaced by
another block of its layer (its representative), so fewer distinct cells are drawn. Two ways:

``merge_tol`` (``--merge-tol T``): a fixed tolerance, L-infinity in quantization steps.

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

``merge_budget`` (``--merge-budget PP``): importance-weighted, under an accuracy budget.

1. Importance (``merge_importance``, from the calibration inputs run through the integer
   network). Changing the block at output channel n, block position j by ``e`` changes that
   channel's accumulator by ``e^T x_j`` (x_j: the K inputs of the block). Its cost is
   ``e^T H_nj e`` with ``H_nj = E[h_n (x_j - mean)(x_j - mean)^T]``: the mean is left out because
   the bias correction (below) cancels mean shifts; ``h_n`` says how much a change of
   accumulator n matters for that sample:
   - a Dense layer followed only by Dense layers (through ReLUs): the squared change of the
     network's outputs, ``h_n = sum_o (d out_o / d acc_n)^2``, the derivatives through the ReLU
     gates and requantization scales of that sample;
   - otherwise (the last layer, convolutions, layers before a convolution): ``h_n = m_n^2 a_n``,
     m_n the channel's accumulator-to-output scale and a_n = 1 where the output is not clipped
     (a ReLU that is off, or a saturated output, hides the change).
   Convolutions use the im2col columns (samples x output positions, subsampled to
   ``IMPORTANCE_ROWS``); grouped convolutions and very large layers fall back to ``m_n^2 P(a_n)``
   times the ungated statistics of ``layer_importance``. Inputs that never vary (MNIST border
   pixels) have zero covariance, so blocks fed only by them merge for free.
   Summed over the uses of a distinct block u: ``cost_u(e) = e^T B_u e``, ``B_u = sum H_nj``.
   The zero padding of a layer's last block position gets a prohibitive cost, so the block that
   is drawn is exactly the representative.
2. Elimination (``eliminate``, per layer): a reverse greedy facility location over the
   distinct blocks. Every distinct block starts as its own representative; repeatedly the
   representative whose removal adds the least cost is removed, its users moving to their
   cheapest remaining candidate (candidates of a block: the ``CANDIDATES`` other distinct blocks
   cheapest for it under its own B_u, ties in (use count, lexicographic) order, plus the zero
   block). Lazy re-evaluation keeps it exact (a removal cost only grows as the set shrinks). The
   all-zero block is never removed. Representatives are therefore always blocks the layer
   already has: valid quantized values in the layer's range, zero stays zero. Any number of kept
   blocks is a prefix of one order, so the search below only picks a count per layer.
3. One order for all layers: each layer's predicted costs are put on a common scale by one probe
   (the layer merged alone to ``PROBE_KEEP`` of its blocks; measured change of the network
   outputs on ``PROBE_SAMPLES`` calibration inputs, mean removed, divided by the predicted cost),
   and the eliminations of all layers are sorted by their scaled marginal cost.
4. Bisection over the length of that common order: a prefix is accepted when
   ``acc_q - acc + margin · sqrt(flips) / n <= budget`` on the search data (x, y), where ``flips``
   is the number of samples whose correctness differs between the merged and unmerged quantized
   networks (sqrt(flips)/n is the standard error of the paired accuracy difference); the
   longest accepted prefix is kept (at most ``MAX_EVALS`` evaluations). Each evaluation
   bias-corrects the candidate network. The margin (``DEFAULT_MARGIN`` = 1 standard error) is
   there because the search picks the best of several noisy measurements: without it, held-out
   data loses more than the search data says. Every evaluation is in ``history``;
   ``stopped_because`` says how the bisection ended. ``budget_pp = 0`` means no merging at all
   (literally: not even merges that would cost no accuracy).

The result's ``levels`` are then the largest change of any weight (steps) per layer, and
``fractions`` the share of the layer's distinct blocks merged away.

Bias correction (both ways, on by default where calibration inputs are given): after merging,
each layer's int32 bias is shifted by the mean change of its accumulator over the calibration
inputs, per output channel: ``bias -= rint(E[W' x'] - E[W x])`` where ``x`` is the layer's
input in the original integer network and ``x'`` in the merged network with the corrected
biases of the layers before it (layer by layer). The merged network to simulate or verify is
``MergeResult.apply(qnet)`` (new weights *and* biases); the ROM holds only the weights.

Everything is deterministic (no random numbers; ties broken by fixed orders).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .dedup import DEFAULT_BLOCK, check_block, dedup
from ..errors import WeightfabError
from ..frontend.network import Act, Dense, Reshape, im2col
from ..quant.quantize import QuantizedNetwork, _run_batch, quantize_input, run_integer

DEFAULT_LEVELS = (0, 1, 2, 3, 4, 6, 8)
METRIC_LINF = "L-infinity, quantization steps"
METRIC_IMPORTANCE = "output-weighted squared change (calibration statistics); representatives from the layer's blocks"
COVER_MAX = 8192          # distinct blocks up to which the exact greedy set cover is used
REFINE_ROUNDS = 3
CALIB_MAX = 1000          # calibration samples used for bias correction and cost statistics
CANDIDATES = 48           # candidate representatives per distinct block in the elimination
IMPORTANCE_ROWS = 16384    # input rows (samples x output positions) for the statistics
JACOBIAN_MAX = 20_000_000 # samples x outputs x channels up to which output derivatives are kept
GATED_MAX = 4_000_000     # N*J*K*K up to which the importance is kept per output channel
PAD_COST = 1e30           # cost of changing the zero padding of a layer's last block position


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


def _run_to(qnet: QuantizedNetwork, tensor: str, v: np.ndarray, upto: int) -> np.ndarray:
    sub = replace(qnet, ops=qnet.ops[:upto], output=tensor)
    return np.concatenate([_run_batch(sub, v[s:s + 256]) for s in range(0, len(v), 256)])


def _columns(op, xs: np.ndarray, m: int, out_hw: int) -> np.ndarray | None:
    """[rows, M] inputs of the layer's weight matrix (one row per sample, or per sample and output
    position of a convolution, in ROM column order); None for grouped convolutions."""
    if isinstance(op, Dense):
        return xs.reshape(len(xs), -1).astype(np.float64)
    if op.group != 1:
        return None
    c = op.weight.shape[1]
    kh, kw = op.weight.shape[2:]
    hw = xs[0].size // c
    fit = []          # the runner returns flat tensors: find the input height and width
    for h in range(1, hw + 1):
        if hw % h == 0:
            ho = (h + op.pads[0] + op.pads[2] - op.dilations[0] * (kh - 1) - 1) // op.strides[0] + 1
            wo = (hw // h + op.pads[1] + op.pads[3] - op.dilations[1] * (kw - 1) - 1) // op.strides[1] + 1
            if ho > 0 and wo > 0 and ho * wo == out_hw:
                fit.append(h)
    if len(fit) != 1:
        return None
    x4 = xs.reshape(len(xs), c, fit[0], hw // fit[0])
    patches, ho, wo = im2col(x4, kh, kw, op.strides, op.pads, op.dilations, 0)
    cols = patches.reshape(-1, m)
    step = -(-len(cols) // IMPORTANCE_ROWS)
    return cols[::step].astype(np.float64)


def _dense_chain(qnet: QuantizedNetwork, i: int) -> bool:
    """Layer ``i`` is a Dense layer whose output reaches the next layer, a Dense one, only through
    ReLUs and reshapes (so the derivative of the next accumulators is W_next)."""
    layers = qnet.layers
    if i + 1 >= len(layers):
        return False
    ops = qnet.ops
    k = next(t for t, op in enumerate(ops) if op.name == layers[i].name)
    k2 = next(t for t, op in enumerate(ops) if op.name == layers[i + 1].name)
    if not isinstance(ops[k], Dense) or not isinstance(ops[k2], Dense):
        return False
    t = ops[k].output
    for op in ops[k + 1:k2]:
        if not (isinstance(op, Reshape) or (isinstance(op, Act) and op.kind == "relu")) or op.inputs[0] != t:
            return False
        t = op.output
    return ops[k2].inputs[0] == t


def merge_importance(qnet: QuantizedNetwork, calib: np.ndarray, block: int) -> list:
    """Per layer [N, J, K, K]: ``E[h_n (x_j - mean)(x_j - mean)^T]`` over calibration inputs, x_j the
    K inputs at block position j, h_n the weight of a change of accumulator n:

    - the last layer, and layers that are not followed by a chain of Dense layers:
      ``h_n = m_n^2 a_n`` (m_n: accumulator-to-output scale, a_n: 1 where the output is not clipped;
      a ReLU that is off, or a saturated output, hides the change);
    - Dense layers followed only by Dense layers (through ReLUs): the squared change of the
      network's outputs, ``h_n = sum_o (d out_o / d acc_n)^2``, per sample, through the gates.

    Grouped convolutions and layers too large for per-channel statistics: ``m_n^2 P(a_n)`` times the
    ungated statistics of ``layer_importance``."""
    v = quantize_input(qnet, np.asarray(calib)[:CALIB_MAX])
    plain = None
    nl = len(qnet.layers)
    out = [None] * nl
    down = None            # [S, O, N_{i+1}]: derivative of the outputs by layer i+1's accumulators
    for i in range(nl - 1, -1, -1):
        layer = qnet.layers[i]
        k = next(t for t, op in enumerate(qnet.ops) if op.name == layer.name)
        op = qnet.ops[k]
        n, m = layer.shape
        jn = -(-m // block)
        mult = layer.multiplier.astype(np.float64) * np.exp2(-layer.shift.astype(np.float64))
        y = _run_to(qnet, op.output, v, k + 1)
        act = ((y > layer.out_min) & (y < layer.out_max))
        cols = None
        if n * jn * block * block <= GATED_MAX:
            cols = _columns(op, _run_to(qnet, op.inputs[0], v, k), m, y.shape[1] // n)
        chain = down is not None and _dense_chain(qnet, i)
        if chain:
            gate = act.reshape(len(v), n) * mult                          # d y / d acc
            nxt = qnet.layers[i + 1].weight.astype(np.float64)          # d acc_{i+1} / d y
            jac = np.einsum("son,nm->som", down, nxt) * gate[:, None, :]
            down = jac if jac.size <= JACOBIAN_MAX and i > 0 else None
        else:
            down = None
            if isinstance(op, Dense) and op.output == qnet.output and len(v) * n * n <= JACOBIAN_MAX:
                down = np.eye(n)[None] * (act.reshape(len(v), n) * mult)[:, None, :]
        if cols is None:
            plain = layer_importance(qnet, calib, block) if plain is None else plain
            p = act.reshape(len(act), n, -1).mean(axis=(0, 2))
            out[i] = np.einsum("n,jkl->njkl", mult ** 2 * p, plain[i][1])
            continue
        if chain:
            h = (jac ** 2).sum(axis=1)
        elif isinstance(op, Dense):
            h = act.reshape(len(act), n) * mult ** 2
        else:                       # [B, N, Ho*Wo] -> rows in the order of the columns
            a = act.reshape(len(act), n, -1).transpose(0, 2, 1).reshape(-1, n)
            h = a[::-(-len(a) // IMPORTANCE_ROWS)] * mult ** 2
        xp = np.zeros((len(cols), jn * block))
        xp[:, :m] = cols
        xp -= xp.mean(axis=0)
        acc = np.zeros((n, jn * block * block))
        for s in range(0, len(xp), 1024):
            xb = xp[s:s + 1024].reshape(-1, jn, block)
            outer = (xb[:, :, :, None] * xb[:, :, None, :]).reshape(len(xb), -1)
            acc += h[s:s + 1024].T @ outer
        out[i] = (acc / len(xp)).reshape(n, jn, block, block)
    return out


def _pad_guard(lb, cov: np.ndarray) -> np.ndarray:
    """``cov`` [..., J, K, K] with a prohibitive cost on the zero padding of the last block position
    (a representative must keep the padding zero there, or it would not be the block drawn)."""
    pad = lb.index.shape[1] * lb.block - lb.shape[1]
    if pad <= 0:
        return cov
    cov = cov.copy()
    idx = np.arange(lb.block - pad, lb.block)
    cov[..., -1, idx, idx] += PAD_COST
    return cov


def block_metric(lb, importance: np.ndarray) -> np.ndarray:
    """[U, K, K] per distinct block: ``B_u`` = sum of ``importance[n, j]`` over its uses (n, j), so
    moving the block by ``e`` costs ``e^T B_u e`` (expected squared change of the outputs)."""
    u = len(lb.unique)
    n, j = lb.index.shape
    k = lb.block
    imp = _pad_guard(lb, importance).reshape(n * j, k * k)
    flat = lb.index.reshape(-1)
    return np.stack([np.bincount(flat, weights=imp[:, t], minlength=u) for t in range(k * k)], 1).reshape(u, k, k)


@dataclass
class Elimination:
    """Greedy elimination of the distinct blocks of one layer (see the module docstring)."""

    order: np.ndarray        # distinct blocks (indices into LayerBlocks.unique) in elimination order
    cost: np.ndarray         # cumulative predicted cost after each elimination
    cand: np.ndarray         # [U, C] candidate representatives per block, cheapest first (-1: none)

    def assignment(self, eliminated: int) -> np.ndarray:
        """[U] representative (index into unique) of every block after the first ``eliminated``."""
        u = len(self.cand)
        alive = np.ones(u + 1, bool)
        alive[-1] = False                                 # index -1: no candidate
        alive[self.order[:eliminated]] = False
        out = np.arange(u)
        dead = np.flatnonzero(~alive[:u])
        if len(dead):
            ok = alive[self.cand[dead]]
            out[dead] = self.cand[dead, np.argmax(ok, axis=1)]
        return out


def eliminate(unique: np.ndarray, counts: np.ndarray, metric: np.ndarray, candidates: int = CANDIDATES
              ) -> Elimination:
    """Reverse greedy facility location over the distinct blocks ``unique`` [U, K] with per-block
    quadratic costs ``metric`` [U, K, K]: repeatedly remove the block whose removal (its users move
    to their cheapest remaining candidate) adds the least cost. The all-zero block is never removed.
    Candidates of a block: the ``candidates`` cheapest other blocks, ties in priority order (use
    count descending, then lexicographic), plus the zero block. Deterministic."""
    import heapq

    w = np.asarray(unique).astype(np.float64)
    counts = np.asarray(counts, np.int64)
    u, k = w.shape
    lex = np.lexsort(np.asarray(unique).T[::-1])
    prio = lex[np.argsort(-counts[lex], kind="stable")]       # priority order
    rank = np.empty(u, np.int64)
    rank[prio] = np.arange(u)
    zmask = ~np.asarray(unique).any(axis=1)
    zero = int(np.flatnonzero(zmask)[0]) if zmask.any() else -1
    c = min(candidates, max(u - 1, 0))
    cand = np.full((u, c + 1), -1, np.int64)
    ccost = np.full((u, c + 1), np.inf)
    wp = w[prio]
    step = max(1, 3_000_000 // max(u * k, 1))
    for s in range(0, u, step):
        rows = np.arange(s, min(s + step, u))
        bi = prio[rows]
        d = wp[None, :, :] - w[bi][:, None, :]                 # [r, U, K], candidates in priority order
        q = np.einsum("ruk,rkl,rul->ru", d, metric[bi], d, optimize=True)
        q[np.arange(len(rows)), rank[bi]] = np.inf             # not itself
        q[q >= PAD_COST] = np.inf                              # would change the zero padding
        o = np.argsort(q, axis=1, kind="stable")[:, :c]
        cq = np.take_along_axis(q, o, axis=1)
        cand[bi, :c] = np.where(np.isfinite(cq), prio[o], -1)
        ccost[bi, :c] = cq
        if zero >= 0:
            zc = q[:, rank[zero]]
            miss = ~(cand[bi, :c] == zero).any(axis=1) & np.isfinite(zc)
            cand[bi[miss], c] = zero
            ccost[bi[miss], c] = zc[miss]
    cand_l = [list(r[r >= 0]) for r in cand]
    cost_l = [list(r[np.isfinite(r)]) for r in ccost]
    alive = np.ones(u, bool)
    ptr = np.full(u, -1, np.int64)        # position of the current representative in cand (-1: itself)
    cur = np.zeros(u)
    members = [[i] for i in range(u)]

    def nxt(i):
        for p in range(ptr[i] + 1, len(cand_l[i])):
            if alive[cand_l[i][p]]:
                return p
        return -1

    def removal(r):
        tot = 0.0
        for i in members[r]:
            p = nxt(i)
            if p < 0:
                return np.inf
            tot += cost_l[i][p] - cur[i]
        return tot

    heap = [(removal(r), int(rank[r]), r) for r in range(u) if r != zero]
    heapq.heapify(heap)
    order, cum, total = [], [], 0.0
    while heap:
        val, rk, r = heapq.heappop(heap)
        if not np.isfinite(val):
            break
        now = removal(r)
        if now > val * (1 + 1e-9) + 1e-300 and heap and (now, rk) > heap[0][:2]:
            heapq.heappush(heap, (now, rk, r))
            continue
        if not np.isfinite(now):
            heapq.heappush(heap, (now, rk, r))
            continue
        alive[r] = False
        for i in members[r]:
            p = nxt(i)
            ptr[i] = p
            cur[i] = cost_l[i][p]
            members[cand_l[i][p]].append(i)
        members[r] = []
        total += now
        order.append(r)
        cum.append(total)
    return Elimination(np.asarray(order, np.int64), np.asarray(cum), cand)


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


DEFAULT_MARGIN = 1.0
MAX_EVALS = 14            # accuracy evaluations of the bisection
PROBE_KEEP = 0.3          # share of distinct blocks kept when a layer's output effect is measured
PROBE_SAMPLES = 500


def _keep_weights(lb, el: Elimination, keep: int) -> np.ndarray:
    """[N, M] weights of one layer with ``keep`` of its distinct blocks left (see ``eliminate``)."""
    a = el.assignment(len(lb.unique) - keep)
    n, j = lb.index.shape
    w = lb.unique[a][lb.index].reshape(n, j * lb.block)[:, : lb.shape[1]]
    return np.ascontiguousarray(w, np.int8)


@dataclass
class MergeOrder:
    """Eliminations of all layers in one order (steps 2-3 of ``merge_budget`` in the module doc)."""

    lib: object
    els: list              # Elimination per layer
    scale: list            # predicted cost -> measured output change, per layer
    layer_of: np.ndarray   # layer of each elimination, in the common order
    base: list

    @property
    def ucount(self) -> list[int]:
        return [len(lb.unique) for lb in self.lib.layers]

    def config(self, p: int) -> list[int]:
        """Distinct blocks kept per layer after the first ``p`` eliminations of the common order."""
        return [u - int(np.count_nonzero(self.layer_of[:p] == i)) for i, u in enumerate(self.ucount)]

    def weights(self, cfg: list[int]) -> list[np.ndarray]:
        return [b if r >= u else _keep_weights(lb, el, r)
                for b, r, u, lb, el in zip(self.base, cfg, self.ucount, self.lib.layers, self.els)]

    @classmethod
    def build(cls, qnet: QuantizedNetwork, block: int, calib: np.ndarray, lib=None) -> MergeOrder:
        lib = dedup(qnet, block) if lib is None else lib
        imp = merge_importance(qnet, calib, block)
        els = []
        for lb, im in zip(lib.layers, imp):
            counts = np.bincount(lb.index.reshape(-1), minlength=len(lb.unique))
            els.append(eliminate(lb.unique, counts, block_metric(lb, im)))
        order = cls(lib, els, [], np.zeros(0, np.int64), [l.weight for l in qnet.layers])
        ucount = order.ucount
        # per layer: measured output change of a probe merge / predicted cost -> one common scale
        xp = np.asarray(calib)[:PROBE_SAMPLES]
        out_q = run_integer(qnet, xp).astype(np.float64)
        for i, el in enumerate(els):
            steps = len(el.order)
            t = min(steps, ucount[i] - int(np.ceil(PROBE_KEEP * ucount[i])))
            if t <= 0 or el.cost[t - 1] <= 0:
                t = steps
            if t <= 0 or el.cost[t - 1] <= 0:
                order.scale.append(0.0)
                continue
            cfg = list(ucount)
            cfg[i] = ucount[i] - t
            d = run_integer(_with(qnet, order.weights(cfg)), xp).astype(np.float64) - out_q
            d -= d.mean(axis=0)            # a mean shift is what the bias correction removes
            order.scale.append(float((d ** 2).sum(axis=1).mean()) / el.cost[t - 1])
        steps = []
        for i, el in enumerate(els):
            inc = np.maximum.accumulate(np.diff(el.cost, prepend=0.0)) * order.scale[i]
            steps += [(float(c), i, t) for t, c in enumerate(inc)]
        steps.sort()
        order.layer_of = np.asarray([i for _, i, _ in steps], np.int64)
        return order


def merge_budget(qnet: QuantizedNetwork, block: int, x: np.ndarray, y: np.ndarray, budget_pp: float, *,
                 calib: np.ndarray | None = None, margin: float = DEFAULT_MARGIN, bias_correction: bool = True,
                 max_evals: int = MAX_EVALS, verbose: bool = False) -> MergeResult:
    """The most merged network found whose accuracy on (x, y), less a noise margin of ``margin``
    standard errors of the paired difference, stays within ``budget_pp`` percentage points of the
    unmerged quantized network. ``calib`` (default ``x``) feeds the importance statistics, the
    per-layer output probes and the bias correction. ``budget_pp = 0``: no merging. See the module
    docstring for the method."""
    check_block(block)
    if budget_pp < 0:
        raise WeightfabError(f"accuracy budget {budget_pp}: must be >= 0 percentage points")
    if margin < 0:
        raise WeightfabError(f"noise margin {margin}: must be >= 0")
    y = np.asarray(y)
    if len(y) == 0 or len(x) != len(y):
        raise WeightfabError("budget search needs labelled data (x, y) of the same length")
    calib = x if calib is None else calib
    lib = dedup(qnet, block)
    nl = len(qnet.layers)
    base = [l.weight for l in qnet.layers]
    ok_q = np.argmax(run_integer(qnet, x), axis=1) == y
    acc_q = float(np.mean(ok_q))
    if budget_pp == 0:
        res = _result(qnet, lib, block, [0] * nl, base, None, x, y, False, "budget 0: no merging", acc_q)
        res.budget_pp = float(budget_pp)
        return res
    order = MergeOrder.build(qnet, block, calib, lib)
    ucount = order.ucount
    config = order.config
    ref: dict = {}

    def network(cfg):
        ws = order.weights(cfg)
        bs = bias_correct(qnet, ws, calib, ref) if bias_correction and cfg != ucount else None
        return ws, bs

    steps = order.layer_of
    n = len(y)
    limit = budget_pp / 100 + 1e-12
    history = []

    best: dict = {}

    def evaluate(p):
        cfg = config(p)
        ws, bs = network(cfg)
        ok = np.argmax(run_integer(_with(qnet, ws, bs), x), axis=1) == y
        a = float(np.mean(ok))
        bound = acc_q - a + margin * np.sqrt(np.count_nonzero(ok != ok_q)) / n
        history.append({"step": "bisection", "eliminated": int(p), "unique": [int(c) for c in cfg],
                        "accuracy": a, "bound": float(bound), "accepted": bool(bound <= limit)})
        if verbose:
            print(history[-1], flush=True)
        if bound <= limit:
            best[p] = (ws, bs)
        return bound <= limit, a

    lo, hi, lo_acc = 0, len(steps), acc_q
    tol = max(1, len(steps) // 400)
    why = f"bisection over {len(steps)} ordered eliminations: within {tol} of the limit"
    ok, a = evaluate(hi) if hi > 0 else (True, acc_q)
    if ok:
        lo, lo_acc, why = hi, a, "every elimination fits the budget"
    else:
        while hi - lo > tol:
            if len(history) >= max_evals:
                why = f"bisection stopped after {max_evals} evaluations ({hi - lo} eliminations undecided)"
                break
            mid = (lo + hi) // 2
            ok, a = evaluate(mid)
            if ok:
                lo, lo_acc = mid, a
            else:
                hi = mid
    cur = config(lo)
    ws, bs = best[lo] if lo in best else network(cur)
    tols = [int(np.abs(w.astype(np.int16) - b).max(initial=0)) for w, b in zip(ws, base)]
    res = _result(qnet, lib, block, tols, ws, None, None, None, False, why, biases=bs)
    res.fractions = [1 - r / u for r, u in zip(cur, ucount)]
    res.metric = METRIC_IMPORTANCE
    res.accuracy_quantized, res.accuracy_merged, res.samples = acc_q, lo_acc, n
    res.budget_pp = float(budget_pp)
    res.margin = float(margin)
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
