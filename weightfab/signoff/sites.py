"""Programming shapes onto bit sites, with numpy: the readback's inner step.

A bit site is the drain-contact centre of a wordline in a column of an array. ``claim`` maps
loose centres (x2, integral) to sites, one array at a time. ``stamp`` does the same for a file
read by structure.py without expanding the placements of the block cells: the cells' own
programming shapes are put together once (one row per shape, every cell and orientation), each
cell's shapes are mapped to (column, wordline) offsets once at a reference placement, and every
other placement of that cell that sits at the same offset from its array's grid, inside the
array, adds its column and wordline to those offsets by broadcasting (placements grouped by
their cell's shape count, so each group is one [placements, shapes] index array). A placement
that is not on that grid offset or reaches out of its array (a fault, or a cell that is not a
block) is expanded to its shapes and given to ``claim``, shape by shape, as the geometric path
does with the whole file: both find the same bits and the same shapes on no site. No Python loop
runs per placement or per shape; the loops are over arrays, batches of cells, shape counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .structure import IDENT, box_transform

BATCH = 1 << 16   # placements per batch: temporaries of a few MiB, reused by the allocator (fresh pages cost more than the arithmetic)
ROUNDS = 3        # reference placements tried per cell before the rest are read shape by shape


@dataclass(frozen=True)
class Grid:
    """The arrays as numpy columns, sorted by the left edge of their implant box; centres x2."""

    order: list[int]     # array index (in the caller's list) of each row
    par: np.ndarray      # [A, 12]: x0, y0, px, py (x2), cols, rows, drain 0, drain 1 (x2), box x0, y0, x1, y1 (x2)
    base: np.ndarray     # [A + 1]: each array's first bit in the flat buffer (column-major [cols, rows])
    kind: np.ndarray     # [A]: one number per (px, py, drains): placements map alike only within a kind
    disjoint: bool       # the arrays' boxes are apart along x: the one left of a shape is its only candidate

    @classmethod
    def of(cls, arrays) -> "Grid":
        order = sorted(range(len(arrays)), key=lambda i: arrays[i].bbox[0])
        rows = [arrays[i] for i in order]
        par = np.array([[2 * a.x0, 2 * a.y0, 2 * a.px, 2 * a.py, a.cols, a.rows, 2 * a.drains[0], 2 * a.drains[1],
                         *(2 * v for v in a.bbox)] for a in rows], np.int64).reshape(-1, 12)
        base = np.concatenate([[0], np.cumsum(par[:, 4] * par[:, 5])]).astype(np.int64)
        kinds: dict = {}
        kind = np.array([kinds.setdefault((a.px, a.py, a.drains), len(kinds)) for a in rows], np.int64)
        disjoint = bool((par[1:, 8] > par[:-1, 10]).all())
        return cls(order, par, base, kind, disjoint)

    def buffer(self) -> np.ndarray:
        return np.zeros(int(self.base[-1]), np.uint8)

    def bits(self, buf: np.ndarray) -> list[np.ndarray]:
        """Per array in the caller's order: its bits [cols, rows], views of ``buf``."""
        out: list = [None] * len(self.order)
        for j, i in enumerate(self.order):
            out[i] = buf[self.base[j]:self.base[j + 1]].reshape(int(self.par[j, 4]), int(self.par[j, 5]))
        return out


def claim(g: Grid, buf: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Set the bit of every centre (x2) of ``pts`` that is a bit site; returns which were.
    Arrays apart along x: each centre is tried on the array whose box starts left of it (one
    radix sort on that index); otherwise on every array in turn, the first that has it wins."""
    claimed = np.zeros(len(pts), bool)
    if not len(pts) or not len(g.par):
        return claimed
    if not g.disjoint:
        for j in range(len(g.par)):
            sl = np.flatnonzero(~claimed)
            claimed[sl] = _sites(g, j, buf, pts[sl])
        return claimed
    k = np.searchsorted(g.par[:, 8], pts[:, 0], side="right").astype(np.uint16 if len(g.par) < 65535 else np.int64)
    perm = np.argsort(k, kind="stable")
    bounds = np.searchsorted(k[perm], np.arange(len(g.par) + 2))
    for j in range(len(g.par)):
        sl = perm[bounds[j + 1]:bounds[j + 2]]
        claimed[sl] = _sites(g, j, buf, pts[sl])
    return claimed


def _sites(g: Grid, j: int, buf: np.ndarray, pts: np.ndarray) -> np.ndarray:
    x0, y0, px, py, cols, rows, d0, d1, bx0, by0, bx1, by1 = (int(v) for v in g.par[j])
    x, y = pts[:, 0], pts[:, 1]
    col, rx = np.divmod(x - x0, px)
    isl, ry = np.divmod(y - y0, py)
    row = np.where(ry == d0, 2 * isl, np.where(ry == d1, 2 * isl + 1, -1))
    ok = ((x >= bx0) & (x <= bx1) & (y >= by0) & (y <= by1) & (rx == 0) & (row >= 0)
          & (col >= 0) & (col < cols) & (row < rows))
    buf[g.base[j] + col[ok] * rows + row[ok]] = 1
    return ok


def pieces(st, layer) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per (cell, orientation) placed in the file with shapes on ``layer``: the shapes' boxes
    [n, 4] in that orientation (a polygon by its bounding box) and the origins [P, 2]."""
    st.prefill(list(st.places), layers={layer})
    boxes, orgs = [], []
    for name, groups in st.places.items():
        b, ps = st.own_shapes(name, layer)
        if not len(b) and not ps:
            continue
        if ps:
            b = np.concatenate([b, np.array([(p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())
                                             for p in ps], np.int64).reshape(-1, 4)])
        for m, org in groups:
            boxes.append(b if m == IDENT else box_transform(b, m))
            orgs.append(org)
    return boxes, orgs


def stamp(g: Grid, buf: np.ndarray, boxes: list[np.ndarray], orgs: list[np.ndarray]) -> np.ndarray:
    """Set the bits of every placement of every piece (``pieces``); returns the centres (x2) on no
    site. Pieces are taken in batches of about BATCH placements."""
    if not boxes:
        return np.zeros((0, 2), np.int64)
    m = np.fromiter(map(len, orgs), np.int64, len(orgs))
    ends = np.unique(np.minimum(np.searchsorted(np.cumsum(m), np.arange(BATCH, m.sum() + BATCH, BATCH),
                                                side="right") + 1, len(orgs)))
    loose, b0 = [np.zeros((0, 2), np.int64)], 0
    for b1 in ends.tolist():
        if b1 > b0:
            loose.append(_batch(g, buf, boxes[b0:b1], orgs[b0:b1]))
            b0 = b1
    return np.concatenate(loose)


def _batch(g: Grid, buf: np.ndarray, boxes: list[np.ndarray], orgs: list[np.ndarray]) -> np.ndarray:
    """``stamp`` on one batch: up to ROUNDS rounds of the fast path (each takes, per piece, its
    first placement not yet stamped as the reference; a reference that is not on sites is given
    up), then the placements given up or left, shape by shape."""
    n = np.fromiter(map(len, boxes), np.int64, len(boxes))
    s0 = np.concatenate([[0], np.cumsum(n)[:-1]])
    b = np.concatenate(boxes)
    c2 = b[:, :2] + b[:, 2:]
    m = np.fromiter(map(len, orgs), np.int64, len(orgs))
    org = 2 * np.concatenate(orgs)
    pid = np.repeat(np.arange(len(orgs)), m)
    rest = np.ones(len(org), bool)
    if g.disjoint and len(g.par):
        k = np.searchsorted(g.par[:, 8], org[:, 0] + np.repeat(c2[s0, 0], m), side="right") - 1
        pending = k >= 0
        rest = ~pending
        place = _on_grid(g, org, np.maximum(k, 0))
        for _ in range(ROUNDS):
            idx = np.flatnonzero(pending)
            if not len(idx):
                break
            sub = place if len(idx) == len(org) else {key: a[idx] for key, a in place.items()}
            good, refs = _round(g, buf, c2, n, s0, pid[idx], sub)
            pending[idx[good]] = False
            bad = idx[refs[~good[refs]]]
            pending[bad], rest[bad] = False, True
        rest |= pending
    at = np.flatnonzero(rest)
    if not len(at):
        return np.zeros((0, 2), np.int64)
    nl = n[pid[at]]
    first = np.repeat(np.cumsum(nl) - nl, nl)
    pts = np.repeat(org[at], nl, axis=0) + c2[np.repeat(s0[pid[at]], nl) + np.arange(int(nl.sum())) - first]
    return pts[~claim(g, buf, pts)]


def _on_grid(g: Grid, org: np.ndarray, k: np.ndarray) -> dict:
    """Per placement (origin x2 ``org`` in array ``k``): its array, its grid cell (u, v), its
    offset from it as one number, its first bit in the buffer and its array's size."""
    col = lambda c: np.take(g.par[:, c], k) if len(g.par) > 1 else np.full(len(k), g.par[0, c])  # noqa: E731
    if len(np.unique(g.kind)) == 1:      # one pitch: divisions by a scalar
        px, py = int(g.par[0, 2]), int(g.par[0, 3])
    else:
        px, py = col(2), col(3)
    dx, dy = org[:, 0] - col(0), org[:, 1] - col(1)
    u, v = dx // px, dy // py
    rows = col(5)
    return {"k": k, "u": u, "v": 2 * v, "off": (dx - u * px) * int(g.par[:, 3].max()) + (dy - v * py),
            "base": np.take(g.base, k) + u * rows + 2 * v, "cols": col(4), "rows": rows}


def _round(g: Grid, buf: np.ndarray, c2, n, s0, p, place: dict) -> tuple[np.ndarray, np.ndarray]:
    """One round of the fast path over placements of pieces ``p`` (non-decreasing; ``place`` as
    ``_on_grid`` gives): which were stamped, and the reference of each piece (its first placement
    here). A placement is stamped when it is in an array of the reference's kind at the
    reference's offset, and its piece's shapes, mapped once at the reference, are on sites and
    inside its array."""
    k, u, v, off = place["k"], place["u"], place["v"], place["off"]
    refs = np.flatnonzero(np.concatenate([[True], p[1:] != p[:-1]]))
    ref = np.zeros(len(n), np.int64)
    ref[p[refs]] = refs
    pr = g.par[k[ref]]
    r0, q0 = np.divmod(off[ref], int(g.par[:, 3].max()))
    seg = np.repeat(np.arange(len(n)), n)
    cq, rx = np.divmod(r0[seg] + c2[:, 0], pr[seg, 2])
    iq, ry = np.divmod(q0[seg] + c2[:, 1], pr[seg, 3])
    wq = np.where(ry == pr[seg, 6], 2 * iq, np.where(ry == pr[seg, 7], 2 * iq + 1, -1))
    bad = np.maximum.reduceat(((rx != 0) | (wq < 0)).astype(np.int8), s0).astype(bool)
    lo = np.stack([np.minimum.reduceat(cq, s0), np.minimum.reduceat(wq, s0)])
    hi = np.stack([np.maximum.reduceat(cq, s0), np.maximum.reduceat(wq, s0)])
    key = np.where(bad, -1, off[ref])            # a reference off sites stamps nothing
    if len(np.unique(g.kind)) > 1:
        key = key * len(g.kind) + g.kind[k[ref]]
        own = off * len(g.kind) + np.take(g.kind, k)
    else:
        own = off
    good = (own == key[p]) & (u >= -lo[0][p]) & (u < place["cols"] - hi[0][p])
    good &= (v >= -lo[1][p]) & (v < place["rows"] - hi[1][p])
    gi = np.flatnonzero(good)
    base, rg, pg = place["base"][gi], place["rows"][gi], p[gi]
    for nr in np.unique(rg).tolist() if len(np.unique(g.par[:, 5])) > 1 else [int(g.par[0, 5])]:
        m = slice(None) if len(np.unique(g.par[:, 5])) == 1 else rg == nr
        _scatter(buf, base[m], pg[m], n, s0, cq * nr + wq)
    return good, refs


def _scatter(buf: np.ndarray, base: np.ndarray, p: np.ndarray, n, s0, off: np.ndarray) -> None:
    """buf[base_i + off[s]] = 1 for every shape s of piece p_i: one [placements, n] index array
    per shape count n, each row the piece's offsets from a small table (placements sorted by
    shape count with a radix sort)."""
    nn = np.take(n.astype(np.uint16 if n.max() < 65535 else np.int64), p)
    order = np.argsort(nn, kind="stable")
    counts = np.bincount(nn, minlength=int(n.max()) + 1)
    at = 0
    for nv in np.flatnonzero(counts).tolist():
        sel = order[at:at + counts[nv]]
        at += counts[nv]
        these = np.flatnonzero(n == nv)
        row = np.zeros(len(n), np.int64)
        row[these] = np.arange(len(these))
        table = off[s0[these][:, None] + np.arange(nv)]
        np.put(buf, base[sel][:, None] + table[np.take(row, p[sel])], 1)
