"""Where a layout repeats: shapes and cell references as numpy items, their periodicity along an
axis proven by exact matching, and the cut-and-glue that removes periodic bands.

The fast DRC (fastdrc.py) keeps the content of a file outside its bit arrays as *items*, per
layer: boxes (numpy rows), other polygons, and references to cells placed many times (a standard
cell is one item per placement, keyed by cell and orientation; its shapes are not flattened). An
item repeats with period ``p`` along an axis when an item of the same key, the same extent across
the axis and the same length along it sits ``p`` further (and ``p`` before). Within a strip of the
layout (the whole width across the axis), the content is periodic except near *defects*: an item
without its neighbours, the inner end of a box that enters the strip, any other item that crosses
the strip's edge. A box spanning the whole strip repeats with any period. Matching is exact
(integer keys, sorted once per layer and axis), so a changed, moved or extra shape is a defect.

Cutting a band ``[a, b)`` (its length a multiple of the period, its surroundings a halo deep free
of defects) and gluing the two sides leaves every window of the interaction distance equal to a
window of the file. Boxes are shortened with numpy; references and polygons that cross a cut are
flattened and clipped by KLayout (few: a cut stops a halo short of anything that does not repeat).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import klayout.db as kdb
import numpy as np

BIG = 2 ** 30
PERIODS = (1, 2, 4, 8, 16)   # periods tried, in array pitches
REF_KIND = 1 << 24           # item kinds: 0 box, 1.. polygon shapes, REF_KIND.. (cell, orientation)


@dataclass
class Items:
    """The content of one layer: boxes [N, 4], polygons with their bounding boxes and shape kinds,
    and the indices of the references that have shapes on the layer."""

    boxes: np.ndarray
    polys: list = field(default_factory=list)
    poly_bb: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    poly_kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    refs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class Refs:
    """References kept whole: kind (cell, orientation) per placement, origin and bounding box."""

    kinds: list                      # (cell name, matrix) per kind id
    kind: np.ndarray                 # [R] kind id
    origin: np.ndarray               # [R, 2]
    bbox: np.ndarray                 # [R, 4]


def poly_kinds(polys: list, table: dict) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes [P, 4] and shape kinds [P] (equal kinds: equal shapes up to translation)."""
    bb = np.array([[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polys],
                  np.int64).reshape(-1, 4)
    kinds = np.array([table.setdefault((p - b[:2]).tobytes(), len(table) + 1) for p, b in zip(polys, bb)],
                     np.int64)
    return bb, kinds


class Matcher:
    """Exact neighbour tests of one layer's items along one axis."""

    def __init__(self, items: Items, refs: Refs, axis: int):
        u, v = (0, 2), (1, 3)
        if axis == 1:
            u, v = v, u
        parts = [(items.boxes, np.zeros(len(items.boxes), np.int64), True),
                 (items.poly_bb, items.poly_kind, False),
                 (refs.bbox[items.refs], REF_KIND + refs.kind[items.refs], False)]
        bb = np.concatenate([p[0] for p in parts]).reshape(-1, 4)
        self.kind = np.concatenate([p[1] for p in parts])
        self.is_box = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
        self.u0, self.u1 = bb[:, u[0]], bb[:, u[1]]
        v0, v1 = bb[:, v[0]], bb[:, v[1]]
        ln = self.u1 - self.u0
        order = np.lexsort((self.u0, ln, v1, v0, self.kind))
        key = np.stack([self.kind, v0, v1, ln])[:, order]
        new = np.ones(len(order), bool)
        new[1:] = (key[:, 1:] != key[:, :-1]).any(axis=0)
        gid = np.empty(len(order), np.int64)
        gid[order] = np.cumsum(new) - 1
        self.gid = gid
        self.sorted = np.sort(self._code(gid, self.u0))
        # the strip's items found by a search: the short ones (length <= T, 99 in 100) sorted by
        # start, those over [s0, s1] start in [s0 - T, s1); the long ones always tested
        self.reach = int(np.quantile(ln, 0.99)) if len(ln) else 0
        short = ln <= self.reach
        self.by_start = np.flatnonzero(short)[np.argsort(self.u0[short], kind="stable")]
        self.starts = self.u0[self.by_start]
        self.long = np.flatnonzero(~short)

    @staticmethod
    def _code(gid, u):
        return gid * (1 << 33) + (u + (1 << 32))

    def has(self, p: int) -> np.ndarray:
        """Whether each item has an equal item ``p`` further along the axis."""
        if not len(self.sorted):
            return np.zeros(0, bool)
        q = self._code(self.gid, self.u0 + p)
        i = np.minimum(np.searchsorted(self.sorted, q), len(self.sorted) - 1)
        return self.sorted[i] == q

    def defects(self, s0: int, s1: int, p: int, cache: dict) -> np.ndarray:
        """Intervals [K, 2] along the axis where the strip [s0, s1] is not periodic with period p."""
        if p not in cache:
            cache[p] = (self.has(p), self.has(-p))
        i0, i1 = np.searchsorted(self.starts, [s0 - self.reach, s1])
        near = np.concatenate([self.by_start[i0:i1], self.long])
        succ, pred = (c[near] for c in cache[p])
        u0, u1 = self.u0[near], self.u1[near]
        over = (u1 > s0) & (u0 < s1)
        inside = over & (u0 >= s0) & (u1 <= s1)
        bad = inside & (((u1 + p <= s1) & ~succ) | ((u0 - p >= s0) & ~pred))
        out = [np.stack([u0[bad], u1[bad]], 1)]
        part = over & ~inside
        is_box = self.is_box[near]
        box = part & is_box
        for end in (u0, u1):
            e = box & (end > s0) & (end < s1)
            out.append(np.stack([end[e], end[e]], 1))
        other = part & ~is_box
        out.append(np.stack([np.maximum(u0[other], s0), np.minimum(u1[other], s1)], 1))
        return np.concatenate(out)


def merge_intervals(iv: np.ndarray) -> np.ndarray:
    """The union of closed intervals [N, 2] as sorted disjoint intervals."""
    if not len(iv):
        return iv.reshape(0, 2)
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    hi = np.maximum.accumulate(iv[:, 1])
    start = np.ones(len(iv), bool)
    start[1:] = iv[1:, 0] > hi[:-1]
    idx = np.flatnonzero(start)
    ends = np.append(idx[1:], len(iv)) - 1
    return np.stack([iv[idx, 0], hi[ends]], 1)


def subtract(iv: tuple[int, int], bad: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) minus the (merged, sorted) intervals ``bad``."""
    a, b = iv
    out, at = [], a
    for x0, x1 in bad.tolist():
        if x1 <= at or x0 >= b:
            continue
        if x0 > at:
            out.append((at, x0))
        at = max(at, x1)
        if at >= b:
            break
    if at < b:
        out.append((at, b))
    return out


@dataclass(frozen=True)
class Strip:
    """A cut candidate [a, b) inside one array's range along an axis, aligned to its grid."""
    start: int
    a: int
    b: int
    arrays: tuple   # array defect intervals
    grid: int


@dataclass(frozen=True)
class Stack:
    """Equal runs of one bit array stacked along y at one spacing (the runs between tap rows):
    its pitch along y is the spacing (``dy``, ``ny`` runs), its grid the runs' own row pitch."""
    cell: str
    x: int
    y: int
    nx: int
    ny: int
    dx: int
    dy: int
    grid: int
    rows: int        # rows per run
    runs: tuple = field(default=(), compare=False)   # the runs (ArrayRef)

    @property
    def x_end(self) -> int:
        return self.x + self.nx * self.dx

    @property
    def y_end(self) -> int:
        return self.y + (self.ny - 1) * self.dy + self.rows * self.grid


def span(r, axis: int) -> tuple[int, int, int, int]:
    """(start, end, pitch, grid) of an array (ArrayRef or Stack) along ``axis``."""
    if axis == 0:
        return r.x, r.x + r.nx * r.dx, r.dx, r.dx
    if isinstance(r, Stack):
        return r.y, r.y_end, r.dy, r.grid
    return r.y, r.y + r.ny * r.dy, r.dy, r.dy


def strips(arrays, axis: int, p: int, halo: int) -> list[Strip]:
    """Each array's cut candidate for period p (arrays whose pitch divides p), a halo, the period
    and one grid step inside its ends; the other arrays are defects: their ends, or their whole
    range where p is not a multiple of their pitch."""
    out = []
    for r in arrays:
        start, end, d0, g = span(r, axis)
        if d0 <= 0 or p % d0:
            continue
        m = (math.ceil((halo + p) / g) + 1) * g
        a, b = start + m, end - m
        if b - a < 2 * p:
            continue
        bad = []
        for o in arrays:
            if o is r:
                continue
            s, e, d, _ = span(o, axis)
            if e <= a - m - halo or s >= b + m + halo:
                continue
            if d <= 0 or p % d:
                bad.append((s - halo - p, e + halo + p))
            else:
                bad += [(s - halo - p - m, s + halo + p + m), (e - halo - p - m, e + halo + p + m)]
        out.append(Strip(start, a, b, tuple(bad), g))
    return out


def cuts_for(matchers: list, caches: list, arrays, axis: int, halo: int):
    """The best cuts along ``axis`` for the layers of ``matchers``: per period (a few multiples of
    each array pitch) the bands free of defects (grown by halo + period), the period that removes
    the most; [] when none."""
    best, best_len = [], 0
    pitches = {span(r, axis)[2] for r in arrays} | {span(u, axis)[2] for r in arrays for u in getattr(r, "runs", ())}
    for p in sorted({t * d for d in pitches - {0} for t in PERIODS}):
        cuts = []
        # a stack whose spacing does not divide p: its runs, each cut on its own
        arrs = [u for r in arrays for u in (r.runs if isinstance(r, Stack) and p % span(r, axis)[2] else (r,))]
        for s in strips(arrs, axis, p, halo):
            w0, w1 = s.a - halo, s.b + halo
            bad = [np.array(s.arrays, np.int64).reshape(-1, 2)]
            for mt, cache in zip(matchers, caches):
                dv = mt.defects(w0, w1, p, cache)
                if len(dv):
                    bad.append(dv + np.array([-(halo + p), halo + p]))
            for x0, x1 in subtract((s.a, s.b), merge_intervals(np.concatenate(bad))):
                x0 = s.start + math.ceil((x0 - s.start) / s.grid) * s.grid
                if x1 - x0 >= p:
                    cuts.append((x0, x0 + (x1 - x0) // p * p))
        cuts = _union(cuts, p)
        total = sum(b - a for a, b in cuts)
        if total > best_len:
            best, best_len = cuts, total
    return best


def stacks(arrays) -> list:
    """The arrays for the cuts: runs of one array stacked along y at one spacing (bit arrays
    between tap rows) as one array of that spacing, each maximal sequence of three or more equal
    runs (cell, x, columns, pitches, rows); every other array as it is."""
    groups: dict = {}
    for r in arrays:
        groups.setdefault((r.cell, r.x, r.nx, r.dx, r.dy, r.ny), []).append(r)
    out = []
    for rs in groups.values():
        rs = sorted(rs, key=lambda r: r.y)
        i = 0
        while i < len(rs):
            j = i + 1
            if j < len(rs):
                step = rs[j].y - rs[i].y
                while (j < len(rs) and rs[j].y - rs[j - 1].y == step and step >= rs[i].ny * rs[i].dy
                       and rs[i].dy > 0 and step % rs[i].dy == 0):
                    j += 1
            if j - i >= 3:
                r = rs[i]
                out.append(Stack(r.cell, r.x, r.y, r.nx, j - i, r.dx, step, r.dy, r.ny, tuple(rs[i:j])))
                i = j
            else:
                out.append(rs[i])
                i += 1
    return out


def _union(cuts, p):
    out = []
    for a, b in sorted(cuts):            # overlapping bands of arrays in one strip: their union
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return [(a, a + (b - a) // p * p) for a, b in out if b - a >= p]


# -- compaction ---------------------------------------------------------------------------------

def shift_of(c: np.ndarray, cuts) -> np.ndarray:
    """How far each coordinate moves when the bands ``cuts`` are removed (coordinates inside a
    band move to its start)."""
    c = np.asarray(c, np.int64)
    out = np.zeros(c.shape, np.int64)
    for a, b in cuts:
        out += np.clip(c - a, 0, b - a)
    return out


def compact_boxes(b: np.ndarray, xc, yc) -> np.ndarray:
    """Boxes with the bands removed (a box across a band is shortened; inside one, dropped)."""
    if not len(b):
        return b
    x0, x1 = b[:, 0] - shift_of(b[:, 0], xc), b[:, 2] - shift_of(b[:, 2], xc)
    y0, y1 = b[:, 1] - shift_of(b[:, 1], yc), b[:, 3] - shift_of(b[:, 3], yc)
    out = np.stack([x0, y0, x1, y1], 1)
    return out[(x1 > x0) & (y1 > y0)]


def clear_of(bb: np.ndarray, cuts, lo: int, hi: int):
    """Per bounding box: inside one band (drop), clear of every band (shift), or across one."""
    inside = np.zeros(len(bb), bool)
    cross = np.zeros(len(bb), bool)
    for a, b in cuts:
        inside |= (bb[:, lo] >= a) & (bb[:, hi] <= b)
        cross |= (bb[:, hi] > a) & (bb[:, lo] < b)
    return inside, cross & ~inside


def compact_region(reg: kdb.Region, cuts, axis: int) -> kdb.Region:
    """KLayout's cut and glue of a region along one axis (for shapes across a band)."""
    if not cuts or reg.is_empty():
        return reg
    out = kdb.Region()
    edges = [-BIG] + [v for a, b in cuts for v in (a, b)] + [BIG]
    shift = 0
    for i in range(0, len(edges), 2):
        u, v = edges[i], edges[i + 1]
        box = kdb.Box(u, -BIG, v, BIG) if axis == 0 else kdb.Box(-BIG, u, BIG, v)
        part = reg & kdb.Region(box)
        out += part.moved(-shift, 0) if axis == 0 else part.moved(0, -shift)
        if i + 2 < len(edges):
            shift += edges[i + 2] - v
    return out


# -- independent bands ---------------------------------------------------------------------------

def extents(items: Items, refs: Refs) -> np.ndarray:
    """x-extents [N, 2] of a layer's items."""
    return np.concatenate([items.boxes[:, [0, 2]], items.poly_bb[:, [0, 2]],
                           refs.bbox[items.refs][:, [0, 2]]]).reshape(-1, 2)


def bands_of(iv: np.ndarray, halo: int) -> list[tuple[int, int]]:
    """Column bands [x0, x1] of the content, separated by empty gaps wider than ``halo``: no rule
    reaches across such a gap, so each band can be cut along y on its own."""
    m = merge_intervals(iv + np.array([0, halo]))
    return [(int(a), int(b) - halo) for a, b in m.tolist()]


def subset(items: Items, refs: Refs, x0: int, x1: int) -> Items:
    """The items of one band (their x-extent inside [x0, x1])."""
    def inside(bb):
        return (bb[:, 0] >= x0) & (bb[:, 2] <= x1)
    pk = inside(items.poly_bb)
    rk = inside(refs.bbox[items.refs]) if len(items.refs) else np.zeros(0, bool)
    return Items(items.boxes[inside(items.boxes)], [p for p, k in zip(items.polys, pk) if k],
                 items.poly_bb[pk], items.poly_kind[pk], items.refs[rk])


def band_index(bb: np.ndarray, bands) -> np.ndarray:
    """The band of each bounding box (by its left edge)."""
    starts = np.array([b[0] for b in bands], np.int64)
    return np.searchsorted(starts, bb[:, 0], side="right") - 1
