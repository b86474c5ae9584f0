"""4. Bisection over the length of that common order: a prefix is accepted when
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
"""
from __future__ import annotations

import numpy as np

from ...quant.quantize import QuantizedNetwork, run_integer
from ...errors import WeightfabError
from ..dedup import check_block, dedup
from .eliminate import MergeOrder
from .common import METRIC_IMPORTANCE, MergeResult, _result, _with, bias_correct

DEFAULT_MARGIN = 1.0
MAX_EVALS = 14            # accuracy evaluations of the bisection


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

    lo, lo_acc, why = _bisect(evaluate, len(steps), acc_q, max_evals, history)
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


def _bisect(evaluate, n_steps: int, acc_q: float, max_evals: int, history: list) -> tuple[int, float, str]:
    """The longest accepted prefix of the common order: (eliminations, accuracy, why it stopped)."""
    lo, hi, lo_acc = 0, n_steps, acc_q
    tol = max(1, n_steps // 400)
    why = f"bisection over {n_steps} ordered eliminations: within {tol} of the limit"
    ok, a = evaluate(hi) if hi > 0 else (True, acc_q)
    if ok:
        return hi, a, "every elimination fits the budget"
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
    return lo, lo_acc, why
