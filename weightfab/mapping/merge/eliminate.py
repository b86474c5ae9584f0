"""Steps 2 and 3 of ``merge_budget``.

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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...quant.quantize import QuantizedNetwork, run_integer
from ..dedup import dedup
from .importance import PAD_COST, block_metric, merge_importance
from .common import _with

CANDIDATES = 48           # candidate representatives per distinct block in the elimination
PROBE_KEEP = 0.3          # share of distinct blocks kept when a layer's output effect is measured
PROBE_SAMPLES = 500


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


def _candidates(unique: np.ndarray, counts: np.ndarray, metric: np.ndarray, candidates: int):
    """Per distinct block, its cheapest other blocks as representatives, [U, C+1] indices (-1: none)
    and their costs; the priority rank of every block and the zero block's index (-1: none)."""
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
    return cand, ccost, rank, zero


def eliminate(unique: np.ndarray, counts: np.ndarray, metric: np.ndarray, candidates: int = CANDIDATES
              ) -> Elimination:
    """Reverse greedy facility location over the distinct blocks ``unique`` [U, K] with per-block
    quadratic costs ``metric`` [U, K, K]: repeatedly remove the block whose removal (its users move
    to their cheapest remaining candidate) adds the least cost. The all-zero block is never removed.
    Candidates of a block: the ``candidates`` cheapest other blocks, ties in priority order (use
    count descending, then lexicographic), plus the zero block. Deterministic."""
    import heapq

    u = len(unique)
    cand, ccost, rank, zero = _candidates(unique, counts, metric, candidates)
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
