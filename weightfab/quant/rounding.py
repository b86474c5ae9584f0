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
Cost: H is used through a factor F (H + d·I = F^T F + dd·I): the centred inputs themselves when
there are fewer samples than inputs (rank R), else its Cholesky factor, so an error costs N·M·K with
K = min(R, M). The descent keeps e·H for a block of 128 inputs and passes each block's steps on in
one matrix product, so a sweep is two BLAS-3 products plus O(N·M) vector work (a 1600 x 1600 layer
on 64 samples: about 1 s; column by column it took about 110 s).
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
BLOCK = 128            # inputs per block of the coordinate descent
ROW_CHUNK = 4096       # output channels fitted at a time


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
        q = np.zeros(w.shape, np.int8)
        s = np.ones(len(w))
        for rows, cols, rq, rf in _groups(op, xq, xf):
            qg, sg, bg = fit_group(w[rows][:, cols], bias[rows], rq, rf, bits)
            q[np.ix_(rows, cols)], s[rows], bias[rows] = qg, sg, bg
        return q, s, bias


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
    r = max(len(xq), 1)
    a, af = (xq - mq) / np.sqrt(r), (xf - mf) / np.sqrt(r)    # H = A^T A (covariance of X_q)
    m = a.shape[1]
    if len(a) < m:
        # fewer samples than inputs: H = A^T A + d·I is kept as its factor A (rank R), and the least
        # squares target uses (A^T A + d I)^-1 A^T = A^T (A A^T + d I)^-1 (R x R instead of M x M)
        damp = DAMP * max(float(np.einsum("rm,rm->", a, a)) / m, 1e-12)
        small = a @ a.T + damp * np.eye(len(a))
        target = (a.T @ np.linalg.solve(small, af @ w.T)).T
        f, dd = a, damp
    else:
        h = a.T @ a
        damp = DAMP * max(float(np.mean(np.diag(h))), 1e-12)
        hd = h + damp * np.eye(m)
        target = np.linalg.solve(hd, (a.T @ af) @ w.T).T     # [N, M]
        f, dd = np.linalg.cholesky(hd).T, 0.0                 # H + d I = F^T F
    q = np.zeros(w.shape, np.int8)
    s = np.ones(len(w))
    for lo in range(0, len(w), ROW_CHUNK):  # output channels are independent: bounded memory
        rows = slice(lo, lo + ROW_CHUNK)
        s[rows] = _clip_scales(target[rows], f, dd, qmax)
        q[rows] = _descend(target[rows], s[rows], f, dd, qmax)
    bias = b + mf @ w.T - mq @ (q * s[:, None]).T
    return q, s, bias


def _clip_scales(w: np.ndarray, f: np.ndarray, dd: float, qmax: int) -> np.ndarray:
    """Per channel, the clipping level with the least output error under nearest rounding. The
    error is compared on w / (max |w| / qmax) (a per-channel factor does not move the minimum), in
    binary32 (the choice only)."""
    peak = np.abs(w).max(axis=1)
    unit = np.where(peak > 0, peak / qmax, 1.0)
    u = (w / unit[:, None]).astype(np.float32)
    f32, t = f.astype(np.float32), np.empty_like(u)
    best, ratio_of = np.full(len(w), np.inf), np.ones(len(w))
    for ratio in CLIP_GRID[::-1]:
        np.multiply(u, np.float32(1 / ratio), out=t)
        np.rint(t, out=t)
        np.minimum(np.maximum(t, -qmax, out=t), qmax, out=t)
        t *= np.float32(ratio)
        t -= u
        ef = t @ f32.T
        err = np.einsum("nk,nk->n", ef, ef, dtype=np.float64) + dd * np.einsum("nm,nm->n", t, t, dtype=np.float64)
        better = err < best
        best, ratio_of = np.where(better, err, best), np.where(better, ratio, ratio_of)
    return ratio_of * unit


def _descend(w: np.ndarray, s: np.ndarray, f: np.ndarray, dd: float, qmax: int) -> np.ndarray:
    """Up-or-down rounding of w / s minimising (s q - w) H (s q - w)^T, H = F^T F + dd·I, by coordinate
    descent over the inputs. Arrays are held input-major (one input's column contiguous); the
    gradient e H is kept for one block of inputs at a time, channel-major ([N, b]: a step's update
    of the block's later inputs reads whole rows of it), and the block's changes reach the others
    in one matrix product (the same steps as column by column). Returns int8 codes [N, M]."""
    wt = np.ascontiguousarray(w.T)                      # [M, N]
    u = wt / s
    lo = _clamp(np.floor(u), qmax).astype(np.int8)
    hi = np.minimum(lo + 1, qmax).astype(np.int8)
    q = _clamp(np.rint(u, out=u), qmax).astype(np.int8)
    e = q * s                                           # [M, N]
    e -= wt
    del u, wt
    ef = (f @ e).T                                      # e F^T, [N, K]
    diag = np.einsum("km,km->m", f, f) + dd
    n, m = w.shape
    for _ in range(SWEEPS):
        changed = 0
        for j0 in range(0, m, BLOCK):
            cols = slice(j0, min(j0 + BLOCK, m))
            fb = f[:, cols]
            g = ef @ fb + dd * e[cols].T                # e H on this block, [N, b]
            b = g.shape[1]
            hb = fb.T @ fb + dd * np.eye(b)
            lb, hib = lo[cols], hi[cols]
            d = np.where(q[cols] == lb, hib - lb, lb - hib)   # the other choice, [b, N]
            steps = s * d
            taken, before = np.zeros((b, n)), changed
            for k in range(b):
                step, gk = steps[k], g[:, k]
                gain = step * (2 * gk + step * diag[j0 + k])
                take = np.flatnonzero((gain < -1e-12 * np.abs(gk * step).max(initial=0)) & (d[k] != 0))
                if take.size:
                    st = step[take]
                    q[j0 + k, take] += d[k, take]
                    e[j0 + k, take] += st
                    g[take, k + 1:] += np.outer(st, hb[k, k + 1:])   # inputs up to k are not read again
                    taken[k, take] = st
                    changed += take.size
            if changed > before:
                ef += (fb @ taken).T
        if not changed:
            break
    return np.ascontiguousarray(q.T)


def _clamp(x: np.ndarray, qmax: int) -> np.ndarray:
    """x clipped to [-qmax, qmax] in place (np.clip's result, without its slow path on large arrays)."""
    np.maximum(x, -qmax, out=x)
    return np.minimum(x, qmax, out=x)
