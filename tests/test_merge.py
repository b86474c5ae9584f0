"""Lossy block merging (weightfab.mapping.merge): guarantees, budget, determinism, plot."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightfab.flow.inputs import load_npz
from weightfab.mapping.dedup import dedup
from weightfab.mapping.merge import (
    MergeResult,
    accuracy,
    cluster_blocks,
    eliminate,
    merge_budget,
    merge_importance,
    merge_tol,
    tradeoff,
)
from weightfab.report.plots import plot_tradeoff
from weightfab.frontend.onnx_import import load_onnx
from weightfab.quant.quantize import quantize, run_integer

from conftest import SAMPLES


@pytest.fixture(scope="module")
def digits():
    net = load_onnx(SAMPLES / "digits_mlp.onnx")
    calib, _ = load_npz(SAMPLES / "digits_mlp.calib.npz", net.input_shape, False)
    x, y = load_npz(SAMPLES / "digits_mlp.test.npz", net.input_shape, True)
    return quantize(net, calib, "int4"), calib, x, y


def _unique_per_layer(qnet):
    return [len(lb.unique) for lb in dedup(qnet, 4).layers]


def _same(a: MergeResult, qnet):
    return all(np.array_equal(w, l.weight) for w, l in zip(a.weights, qnet.layers))


def test_tol0_changes_nothing(digits):
    q, calib, x, y = digits
    r = merge_tol(q, 4, 0, calib=calib, x=x, y=y)
    assert _same(r, q) and r.biases is None
    assert r.unique_after == r.unique_before
    assert r.accuracy_merged == r.accuracy_quantized


def test_budget0_changes_nothing(digits):
    q, calib, x, y = digits
    r = merge_budget(q, 4, x, y, 0.0, calib=calib)
    assert _same(r, q) and r.biases is None and r.levels == [0] * len(q.layers)
    assert r.unique_after == r.unique_before and "budget 0" in r.stopped_because


def _check_clusters(u, counts, tol, qmax):
    reps, assign = cluster_blocks(u, counts, tol, qmax)
    vals = set(np.unique(u).tolist())
    assert assign.shape == (len(u),)
    assert len(np.unique(reps, axis=0)) == len(reps)
    moved = reps[assign].astype(int)
    assert np.abs(moved - u.astype(int)).max(initial=0) <= tol
    lo, hi = min(vals), max(vals)
    assert reps.min(initial=0) >= max(lo, -qmax) and reps.max(initial=0) <= min(hi, qmax)
    zero = ~u.any(axis=1)
    assert not moved[zero].any()
    return reps, assign


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([2, 4, 8]), st.sampled_from([2, 4, 8]), st.integers(0, 5))
def test_representatives_valid_and_within_tol(seed, bits, k, tol):
    rng = np.random.default_rng(seed)
    qmax = 2 ** (bits - 1) - 1
    n = int(rng.integers(1, 300))
    blocks = rng.integers(-qmax, qmax + 1, (n, k)).astype(np.int8)
    blocks[rng.random(n) < 0.2] = 0
    u, counts = np.unique(blocks, axis=0, return_counts=True)
    reps, assign = _check_clusters(u, counts, tol, qmax)
    if tol == 0:
        assert np.array_equal(reps[assign], u)


def test_ternary_stays_ternary():
    rng = np.random.default_rng(1)
    u, c = np.unique(rng.integers(-1, 2, (500, 4)).astype(np.int8), axis=0, return_counts=True)
    reps, _ = _check_clusters(u, c, 1, 1)
    assert set(np.unique(reps).tolist()) <= {-1, 0, 1}


def test_merged_network_keeps_zero_blocks(digits):
    q, calib, x, y = digits
    r = merge_tol(q, 4, 3)
    for lb, w in zip(dedup(q, 4).layers, r.weights):
        n, j = lb.index.shape
        pad = np.zeros((n, j * 4), np.int8)
        pad[:, : w.shape[1]] = w
        zero_before = ~lb.weights().reshape(n, j, 4).any(axis=2) if lb.shape[1] % 4 == 0 else None
        if zero_before is not None:
            assert not pad.reshape(n, j, 4)[zero_before].any()
    assert r.total_after < r.total_before


def test_budget_honoured_and_deterministic(digits):
    q, calib, x, y = digits
    a = merge_budget(q, 4, x, y, 1.0, calib=calib)
    b = merge_budget(q, 4, x, y, 1.0, calib=calib)
    # the stored accuracy is the one of the returned network, and it holds the budget with the margin
    ok_q = np.argmax(run_integer(q, x), axis=1) == y
    ok_m = np.argmax(run_integer(a.apply(q), x), axis=1) == y
    assert accuracy(a.apply(q), x, y) == a.accuracy_merged == float(np.mean(ok_m))
    flips = np.count_nonzero(ok_q != ok_m)
    assert a.accuracy_quantized - a.accuracy_merged + a.margin * np.sqrt(flips) / len(y) <= 0.01 + 1e-12
    assert a.total_after < a.total_before and a.stopped_because
    assert a.unique_after == _unique_per_layer(a.apply(q))
    assert a.levels == b.levels and a.unique_after == b.unique_after
    assert all(np.array_equal(u, v) for u, v in zip(a.weights, b.weights))
    assert (a.biases is None) == (b.biases is None)
    if a.biases is not None:
        assert all(np.array_equal(u, v) for u, v in zip(a.biases, b.biases))
    # every merged block is a block the layer already had (valid values, in range); zero stays zero
    for lb, w in zip(dedup(q, 4).layers, a.weights):
        n, j = lb.index.shape
        pad = np.zeros((n, j * 4), np.int8)
        pad[:, : w.shape[1]] = w
        blocks = pad.reshape(n * j, 4)
        have = {tuple(r) for r in lb.unique.tolist()}
        assert all(tuple(r) in have for r in np.unique(blocks, axis=0).tolist())
        zero_before = ~lb.unique[lb.index].reshape(n * j, 4).any(axis=1)
        assert not blocks[zero_before].any()


def test_budget_margin(digits):
    q, calib, x, y = digits
    ok_q = np.argmax(run_integer(q, x), axis=1) == y
    for margin in (0.0, 3.0):
        r = merge_budget(q, 4, x, y, 1.0, calib=calib, margin=margin)
        ok_m = np.argmax(run_integer(r.apply(q), x), axis=1) == y
        bound = np.mean(ok_q) - np.mean(ok_m) + margin * np.sqrt(np.count_nonzero(ok_q != ok_m)) / len(y)
        assert bound <= 0.01 + 1e-12 and r.summary()["margin"] == margin
        assert all(h["bound"] <= 0.01 + 1e-12 for h in r.history if h["accepted"])


def test_elimination_orders_and_assigns():
    rng = np.random.default_rng(3)
    blocks = rng.integers(-7, 8, (400, 4)).astype(np.int8)
    blocks[rng.random(400) < 0.2] = 0
    u, counts = np.unique(blocks, axis=0, return_counts=True)
    a = rng.normal(size=(len(u), 4, 4))
    metric = np.einsum("uik,ujk->uij", a, a)
    metric[:5] = 0.0                       # blocks whose inputs never vary merge for free
    el = eliminate(u, counts, metric)
    el2 = eliminate(u, counts, metric)
    assert np.array_equal(el.order, el2.order) and np.array_equal(el.cost, el2.cost)
    zero = int(np.flatnonzero(~u.any(axis=1))[0])
    assert zero not in el.order.tolist() and len(el.order) == len(u) - 1
    assert np.all(np.diff(el.cost) >= -1e-9) and el.cost[0] == 0.0
    for k in (0, 10, 100, len(el.order)):
        asg = el.assignment(k)
        alive = np.setdiff1d(np.arange(len(u)), el.order[:k])
        assert set(asg.tolist()) == set(alive.tolist()) and asg[zero] == zero
        assert np.array_equal(asg[alive], alive)


def test_importance_shapes_and_free_border(digits):
    q, calib, _, _ = digits
    imp = merge_importance(q, calib, 4)
    for l, h in zip(q.layers, imp):
        n, m = l.shape
        assert h.shape == (n, -(-m // 4), 4, 4)
        assert np.all(np.diagonal(h, axis1=2, axis2=3) >= -1e-12)
    # an input that never varies costs nothing to change
    const = np.flatnonzero(np.asarray(calib).reshape(len(calib), -1).std(axis=0) == 0)
    if len(const):
        c = const[0]
        assert np.all(imp[0][:, c // 4, c % 4, c % 4] == 0)


def test_tol_deterministic(digits):
    q, calib, x, y = digits
    a, b = merge_tol(q, 4, 2, calib=calib), merge_tol(q, 4, 2, calib=calib)
    assert all(np.array_equal(u, v) for u, v in zip(a.weights, b.weights))
    assert all(np.array_equal(u, v) for u, v in zip(a.biases, b.biases))


def test_tradeoff_plot(digits, tmp_path):
    q, calib, x, y = digits
    rows = tradeoff(q, 4, x, y, levels=(0, 1, 2))
    assert [r["level"] for r in rows] == [0, 1, 2]
    assert rows[0]["total"] == sum(len(l.unique) for l in dedup(q, 4).layers)
    assert rows[2]["total"] <= rows[1]["total"] <= rows[0]["total"]
    out = tmp_path / "tradeoff.png"
    plot_tradeoff(rows, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
