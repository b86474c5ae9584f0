"""Quantization and exact dedup: invariants (hypothesis) and the integer datapath."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from weightfab.mapping.dedup import dedup, from_bits, to_bits
from weightfab.errors import WeightfabError
from weightfab.frontend.network import Act, Dense, Network
from weightfab.quant.quantize import WEIGHT_BITS, _multiplier, quantize, quantize_weights, run_integer

finite = st.floats(-100, 100, allow_nan=False, allow_subnormal=False, width=32)
matrices = arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(1, 40)), elements=finite)


@settings(max_examples=200, deadline=None)
@given(w=matrices, mode=st.sampled_from(["int8", "int4", "int2"]))
def test_quantization_error_is_at_most_half_a_step(w, mode):
    q, scale = quantize_weights(w, mode)
    qmax = 2 ** (WEIGHT_BITS[mode] - 1) - 1
    assert q.dtype == np.int8 and np.all(np.abs(q) <= qmax)
    err = np.abs(w.astype(np.float64) - q * scale[:, None])
    assert np.all(err <= scale[:, None] / 2 * (1 + 1e-9) + 1e-12)


@settings(max_examples=200, deadline=None)
@given(w=matrices, bits=st.sampled_from([4, 2]))
def test_mse_clipping_never_reconstructs_worse_than_max_scaling(w, bits):
    """int4-mse/int2-mse: valid values, and per channel a squared weight error no larger than
    max scaling's (whose clipping level is among the candidates), with a scale no larger."""
    plain, mse = f"int{bits}", f"int{bits}-mse"
    q0, s0 = quantize_weights(w, plain)
    q1, s1 = quantize_weights(w, mse)
    qmax = 2 ** (bits - 1) - 1
    assert q1.dtype == np.int8 and np.all(np.abs(q1) <= qmax) and WEIGHT_BITS[mse] == bits
    w64 = w.astype(np.float64)
    e0 = ((q0 * s0[:, None] - w64) ** 2).sum(axis=1)
    e1 = ((q1 * s1[:, None] - w64) ** 2).sum(axis=1)
    assert np.all(e1 <= e0 * (1 + 1e-9) + 1e-12)
    assert np.all(s1 <= s0 * (1 + 1e-12))


def test_mse_clipping_clips_an_outlier():
    """A bell of small weights and one outlier: max scaling spends the range on the outlier,
    MSE clipping gives it up for a finer step and a smaller total error."""
    w = np.random.default_rng(0).normal(0, 0.05, (1, 200))
    w[0, 0] = 0.5
    q0, s0 = quantize_weights(w, "int4")
    q1, s1 = quantize_weights(w, "int4-mse")
    e0, e1 = ((q0 * s0[:, None] - w) ** 2).sum(), ((q1 * s1[:, None] - w) ** 2).sum()
    assert s1[0] < 0.8 * s0[0] and e1 < 0.8 * e0
    assert q1[0, 0] == 7  # the outlier is clipped to the top level


@settings(max_examples=100, deadline=None)
@given(w=matrices)
def test_ternary_values(w):
    q, scale = quantize_weights(w, "ternary")
    assert set(np.unique(q)) <= {-1, 0, 1} and np.all(scale > 0)


@settings(max_examples=200, deadline=None)
@given(w=arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 50)), elements=st.integers(-127, 127)),
       k=st.sampled_from([2, 4, 6, 8, 16]))
def test_exact_dedup_is_lossless(w, k):
    from types import SimpleNamespace
    layer = SimpleNamespace(name="l", weight=w, shape=w.shape, bits=8)
    lib = dedup(SimpleNamespace(layers=(layer,)), k)
    lb = lib.layers[0]
    assert np.array_equal(lb.weights(), w)
    assert lb.blocks == w.shape[0] * -(-w.shape[1] // k)
    assert len(lb.unique) == len({bytes(r) for r in lb.unique})  # unique entries are distinct
    assert len(lb.unique) <= lb.blocks


@settings(max_examples=200, deadline=None)
@given(bits=st.sampled_from([2, 4, 8]), data=st.data())
def test_bits_round_trip(bits, data):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    v = data.draw(arrays(np.int8, st.integers(1, 30), elements=st.integers(lo, hi)))
    b = to_bits(v, bits)
    assert b.shape == (len(v), bits) and set(np.unique(b)) <= {0, 1}
    assert np.array_equal(from_bits(b, bits), v)


def test_two_complement_layout_of_bits():
    assert to_bits(np.array([-1]), 4).tolist() == [[1, 1, 1, 1]]
    assert to_bits(np.array([5]), 4).tolist() == [[1, 0, 1, 0]]  # LSB first


@settings(max_examples=200, deadline=None)
@given(real=st.floats(1e-9, 1e3))
def test_multiplier_and_shift_represent_the_scale(real):
    m, s = _multiplier(np.array([real]))
    assert 2 ** 30 <= m[0] < 2 ** 31
    assert abs(m[0] / 2.0 ** s[0] - real) <= real * 2 ** -30


def test_block_must_be_even():
    with pytest.raises(WeightfabError, match="even"):
        dedup(None, 3)


def test_integer_inference_tracks_float():
    rng = np.random.default_rng(0)
    l1 = Dense("a", ("x",), "h", rng.normal(0, 0.3, (16, 10)).astype(np.float32), rng.normal(0, 0.1, 16).astype(np.float32))
    r1 = Act("r", ("h",), "hr", "relu")
    l2 = Dense("b", ("hr",), "y", rng.normal(0, 0.3, (4, 16)).astype(np.float32), rng.normal(0, 0.1, 4).astype(np.float32))
    net = Network("n", "x", (10,), (l1, r1, l2), "y", True)
    x = rng.uniform(0, 1, (300, 10)).astype(np.float32)
    q = quantize(net, x, "int8")
    y = run_integer(q, x)
    assert y.dtype == np.int64 and np.all(np.abs(y) <= 2 ** 15)
    ref = net.forward(x)
    got = y * q.tq["y"].scale
    assert np.max(np.abs(got - ref)) < 0.05 * np.max(np.abs(ref))
    assert np.mean(np.argmax(got, 1) == np.argmax(ref, 1)) > 0.95
    # integer path is deterministic and exact: same inputs, same integers
    assert np.array_equal(run_integer(q, x), y)
