"""Weight rounding optimised on calibration data, layer by layer (``--rounding optimized``).

For each weighted layer, in network order, with X_q its input as the already quantized layers
before it compute it and X its float input (both on the calibration inputs):
1. target: the float weights W' that best map X_q to the float layer's output W X (least squares,
   damped), so the error the earlier layers left is compensated where it can be;
2. clipping: per output channel, the scale (a share of max |W'|) whose nearest rounding gives the
   least layer output error (W' - s q) H (W' - s q)^T with H the covariance of X_q;
3. rounding: each weight is rounded up or down (AdaRound's choice) by coordinate descent on that
   same output error, from nearest rounding, a few sweeps over the inputs;
4. bias correction: the bias absorbs the mean output difference.
Everything is deterministic (fixed sample subset, no random initialisation) and yields ordinary
integer weights, so the integer simulation and the read-back chip stay bit-exact.
"""
from __future__ import annotations

import numpy as np

from ..frontend.network import Conv, Dense, im2col
from .integer import quantize_input, run_env

FIT_SAMPLES = 512      # calibration inputs the layers are fitted on
FIT_ROWS = 8192        # input vectors (convolution patches) per layer fit
CLIP_GRID = np.linspace(0.5, 1.0, 26)
SWEEPS = 3
DAMP = 0.01            # ridge on H, relative to its mean diagonal


class LayerFitter:
    """Holds the calibration subset's float layer inputs and its integer codes so far."""

    def __init__(self, net, calib: np.ndarray):
        step = max(1, len(calib) // FIT_SAMPLES)
        self.x = np.asarray(calib[::step][:FIT_SAMPLES], np.float32)
        self.net = net
        wanted = {op.inputs[0] for op in net.ops if isinstance(op, (Dense, Conv))}
        parts: dict[str, list] = {t: [] for t in wanted}
        for s in range(0, len(self.x), 128):
            env = net.run(self.x[s:s + 128])
            for t in wanted:
                parts[t].append(env[t])
        self.float_in = {t: np.concatenate(v).astype(np.float64) for t, v in parts.items()}
        self.codes: dict[str, np.ndarray] | None = None
        self.readers = {}
        for op in net.ops:
            for i in op.inputs:
                self.readers[i] = self.readers.get(i, 0) + 1

    def advance(self, qnet, op) -> None:
        """Compute ``op``'s integer output on the subset (after the planner fixed its parameters)."""
        if self.codes is None:
            self.codes = {qnet.input_name: quantize_input(qnet, self.x)}
        xs = [self.codes[i] for i in op.inputs]
        outs = [run_env(qnet, None, ops=[op], env=dict(zip(op.inputs, [x[s:s + 64] for x in xs])))[op.output]
                for s in range(0, len(self.x), 64)]  # 64 samples at a time: memory of one batch
        self.codes[op.output] = np.concatenate(outs)
        for i in op.inputs:  # drop what no later op reads
            self.readers[i] -= 1
            if self.readers[i] == 0 and i != qnet.output:
                self.codes.pop(i, None)

    def start(self, qnet) -> None:
        if self.codes is None:
            self.codes = {qnet.input_name: quantize_input(qnet, self.x)}

    def fit(self, op, bits: int, t_in):
        """(int8 codes [N, M], scale [N], float bias [N]) for ``op`` at ``bits``."""
        xq = self.codes[op.inputs[0]].astype(np.float64) * t_in.scale
        xf = self.float_in[op.inputs[0]]
        w = np.asarray(op.matrix(), np.float64)
        bias = np.asarray(op.bias, np.float64).copy()
        q = np.zeros(w.shape, np.int64)
        s = np.ones(len(w))
        for rows, cols, rq, rf in _groups(op, xq, xf):
            qg, sg, bg = fit_group(w[rows][:, cols], bias[rows], rq, rf, bits)
            q[np.ix_(rows, cols)], s[rows], bias[rows] = qg, sg, bg
        return q.astype(np.int8), s, bias


def _groups(op, xq, xf):
    """Per group of output channels: (rows, columns of the ROM matrix, X_q rows, X rows)."""
    if isinstance(op, Dense):
        n, m = op.weight.shape
        yield np.arange(n), np.arange(m), xq.reshape(len(xq), -1), xf.reshape(len(xf), -1)
        return
    co, cig, kh, kw = op.weight.shape
    g = op.group
    cog = co // g
    pq, ho, wo = im2col(xq, kh, kw, op.strides, op.pads, op.dilations)  # [B, ho, wo, kh, kw, C] views
    pf, _, _ = im2col(xf, kh, kw, op.strides, op.pads, op.dilations)
    total = pq.shape[0] * ho * wo
    pick = np.linspace(0, total - 1, min(total, FIT_ROWS)).astype(np.int64)
    b, h, w = pick // (ho * wo), pick % (ho * wo) // wo, pick % wo
    rows_q, rows_f = pq[b, h, w], pf[b, h, w]                               # [R, kh, kw, C], picked rows only
    for gi in range(g):
        ch = slice(gi * cig, (gi + 1) * cig)
        rq = rows_q[..., ch].reshape(len(pick), kh * kw * cig)
        rf = rows_f[..., ch].reshape(len(pick), kh * kw * cig)
        yield np.arange(gi * cog, (gi + 1) * cog), np.arange(kh * kw * cig), rq, rf


def fit_group(w: np.ndarray, b: np.ndarray, xq: np.ndarray, xf: np.ndarray, bits: int):
    """Weights [N, M] with inputs X_q / X [R, M] -> (codes [N, M], scale [N], bias [N])."""
    qmax = 2 ** (bits - 1) - 1
    mq, mf = xq.mean(axis=0), xf.mean(axis=0)
    cq, cf = xq - mq, xf - mf
    r = max(len(xq), 1)
    h = cq.T @ cq / r
    damp = DAMP * max(float(np.mean(np.diag(h))), 1e-12)
    hd = h + damp * np.eye(len(h))
    target = np.linalg.solve(hd, (cq.T @ cf / r) @ w.T).T   # [N, M]
    s = _clip_scales(target, hd, qmax)
    q = _descend(target, s, hd, qmax)
    bias = b + mf @ w.T - mq @ (q * s[:, None]).T
    return q, s, bias


def _clip_scales(w: np.ndarray, h: np.ndarray, qmax: int) -> np.ndarray:
    """Per channel, the clipping level with the least output error under nearest rounding."""
    peak = np.abs(w).max(axis=1)
    best, scale = np.full(len(w), np.inf), np.where(peak > 0, peak / qmax, 1.0)
    for ratio in CLIP_GRID[::-1]:
        s = np.where(peak > 0, ratio * peak / qmax, 1.0)
        e = np.clip(np.rint(w / s[:, None]), -qmax, qmax) * s[:, None] - w
        err = np.einsum("nm,nm->n", e @ h, e)
        better = err < best
        best, scale = np.where(better, err, best), np.where(better, s, scale)
    return scale


def _descend(w: np.ndarray, s: np.ndarray, h: np.ndarray, qmax: int) -> np.ndarray:
    """Up-or-down rounding of w / s minimising (s q - w) H (s q - w)^T, by coordinate descent."""
    u = w / s[:, None]
    lo = np.clip(np.floor(u), -qmax, qmax)
    hi = np.clip(lo + 1, -qmax, qmax)
    q = np.clip(np.rint(u), -qmax, qmax)
    e = q * s[:, None] - w
    eh = e @ h
    diag = np.diag(h)
    for _ in range(SWEEPS):
        changed = 0
        for j in range(w.shape[1]):
            d = np.where(q[:, j] == lo[:, j], hi[:, j] - lo[:, j], lo[:, j] - hi[:, j])  # the other choice
            step = s * d
            gain = 2 * step * eh[:, j] + step * step * diag[j]
            take = (gain < -1e-12 * np.abs(eh[:, j] * step).max(initial=0)) & (d != 0)
            if take.any():
                q[take, j] += d[take]
                eh += np.outer(np.where(take, step, 0.0), h[j])
                changed += int(take.sum())
        if not changed:
            break
    return q
