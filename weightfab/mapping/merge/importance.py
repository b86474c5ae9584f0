"""Importance statistics for ``merge_budget`` (and ``fraction`` < 1 of ``merge_tol``).

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
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...quant.quantize import QuantizedNetwork, _run_batch, quantize_input
from ...frontend.network import Act, Dense, Reshape, im2col
from .common import CALIB_MAX

IMPORTANCE_ROWS = 16384    # input rows (samples x output positions) for the statistics
JACOBIAN_MAX = 20_000_000 # samples x outputs x channels up to which output derivatives are kept
GATED_MAX = 4_000_000     # N*J*K*K up to which the importance is kept per output channel
PAD_COST = 1e30           # cost of changing the zero padding of a layer's last block position


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
