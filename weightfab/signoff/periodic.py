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
    parent: "Items | None" = field(default=None, repr=False, compare=False)   # a subset's layer
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # ... and which items
    memo: dict = field(default_factory=dict, repr=False, compare=False)       # Matcher's orders


def take(items: Items, box: np.ndarray, poly: np.ndarray, ref: np.ndarray) -> Items:
    """The items the masks keep, a subset of ``items`` (whose orders its matchers share)."""
    base = items.parent if items.parent is not None else items
    keep = np.concatenate([box, poly, ref])
    if items.parent is not None:      # a subset of a subset: the mask over the layer
        full = np.zeros(len(items.mask), bool)
        full[np.flatnonzero(items.mask)] = keep
        keep = full
    return Items(items.boxes[box], [items.polys[i] for i in np.flatnonzero(poly)], items.poly_bb[poly],
                 items.poly_kind[poly], items.refs[ref], parent=base, mask=keep)


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
    """Exact neighbour tests of one layer's items along one axis.

    Items are ordered once per layer and axis by (kind, extent across the axis, length, start):
    equal items one after the other by start, so their codes (group, start) come sorted and the
    neighbours at a period are one search of sorted keys. A subset of a layer's items (``subset``,
    ``piece_items``) takes its neighbours from the layer's search (done once per period): an item
    has one when the layer's match is an item of the subset."""

    def __init__(self, items: Items, refs: Refs, axis: int):
        base = items.parent if items.parent is not None else items
        full = base.memo.get(("order", axis))
        if full is None:
            full = base.memo[("order", axis)] = _order(base, refs, axis)
        self.full, self.shared = full, items.parent is not None
        # the items by their place in the layer's order (the intervals found do not depend on
        # it); their extents read from the layer's arrays where needed (little kept per subset)
        self.pos = (np.flatnonzero(items.mask[full["order"]]) if self.shared else
                    np.arange(len(full["order"]))).astype(np.int32)
        u0, u1 = self.get("u0"), self.get("u1")
        self.reach = full["reach"]
        short = np.flatnonzero(u1 - u0 <= self.reach)
        self.by_start = short[np.argsort(u0[short], kind="stable")].astype(np.int32)
        self.starts = u0[self.by_start]
        self.long = np.flatnonzero(u1 - u0 > self.reach).astype(np.int32)

    def get(self, name: str, at=slice(None)) -> np.ndarray:
        """The layer's array ``name`` (u0, u1, is_box) of the items ``at``."""
        return self.full[name][self.pos[at]]

    def neighbours(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Whether each item has an equal item ``p`` further along the axis, and ``p`` before."""
        full = self.full
        match = full.get(("match", p)) if self.shared else None
        if match is None:
            match = _match(full["code"], full["run"], p)
            if self.shared:               # the layer's search, kept for its other subsets
                full[("match", p)] = match
        run, m = full["run"][self.pos], match[self.pos]
        to = np.zeros(full["runs"], bool)
        to[m[m >= 0]] = True              # runs of equal codes p further than an item
        succ = m >= 0
        if self.shared:                   # ... whose match is in the subset
            here = np.zeros(full["runs"], bool)
            here[run] = True
            succ[succ] = here[m[succ]]
        return succ, to[run]

    def lacking(self, p: int, cache: dict):
        """The items without an equal item ``p`` further or before, sorted by start: their start,
        index and which neighbour they have (1 further, 2 before; computed once per period)."""
        if p not in cache:
            succ, pred = self.neighbours(p)
            k = np.flatnonzero(~(succ & pred))
            u0 = self.get("u0", k)
            o = np.argsort(u0, kind="stable")
            cache[p] = (u0[o], k[o].astype(np.int32), (succ[k] + 2 * pred[k]).astype(np.uint8)[o])
        return cache[p]

    def defects(self, s0: int, s1: int, p: int, cache: dict) -> np.ndarray:
        """Intervals [K, 2] along the axis where the strip [s0, s1] is not periodic with period p."""
        _, lo, hi = self.defects_many(np.array([s0]), np.array([s1]), p, cache)
        return np.stack([lo, hi], 1)

    def defects_many(self, s0: np.ndarray, s1: np.ndarray, p: int, cache: dict):
        """Where the strips [s0, s1] (arrays) are not periodic with period p: (strip, start, end)
        of each interval. An item inside a strip without its neighbour (only the items lacking
        one are searched), and an item across a strip's edge (the short ones found by their
        start, the long ones tested)."""
        u0, at, has = self.lacking(p, cache)
        k, j = _ranges(np.searchsorted(u0, s0), np.searchsorted(u0, s1))
        a0, a1, t0, t1, h = u0[j], self.get("u1", at[j]), s0[k], s1[k], has[j]
        bad = (a1 > t0) & (a1 <= t1) & (((a1 + p <= t1) & (h & 1 == 0)) | ((a0 - p >= t0) & (h & 2 == 0)))
        st, r = self.starts, self.reach
        k1, j1 = _ranges(np.searchsorted(st, s0 - r), np.searchsorted(st, s0))
        k2, j2 = _ranges(np.searchsorted(st, np.maximum(s0, s1 - r)), np.searchsorted(st, s1))
        lg = self.long
        if len(s0):
            lg = lg[(self.get("u0", lg) < s1.max()) & (self.get("u1", lg) > s0.min())]
        kk = np.concatenate([k1, k2, np.repeat(np.arange(len(s0)), len(lg))])
        near = np.concatenate([self.by_start[j1], self.by_start[j2], np.tile(lg, len(s0))])
        v0, v1, t0, t1 = self.get("u0", near), self.get("u1", near), s0[kk], s1[kk]
        part = (v1 > t0) & (v0 < t1) & ((v0 < t0) | (v1 > t1))
        is_box = self.get("is_box", near)
        box = part & is_box
        e0, e1 = box & (v0 > t0) & (v0 < t1), box & (v1 > t0) & (v1 < t1)
        other = part & ~is_box
        return (np.concatenate([k[bad], kk[e0], kk[e1], kk[other]]),
                np.concatenate([a0[bad], v0[e0], v1[e1], np.maximum(v0[other], t0[other])]),
                np.concatenate([a1[bad], v0[e0], v1[e1], np.minimum(v1[other], t1[other])]))


def _ranges(i0: np.ndarray, i1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranges [i0, i1) one after the other: (which range, index) of each element."""
    n = np.maximum(np.asarray(i1) - i0, 0)
    k = np.repeat(np.arange(len(n)), n)
    return k, np.arange(len(k)) - np.repeat(np.cumsum(n) - n - i0, n)


def _match(code: np.ndarray, run: np.ndarray, p: int) -> np.ndarray:
    """Per code (sorted): the run of equal codes ``p`` further along the axis, or -1."""
    if not len(code):
        return np.zeros(0, np.int32)
    q = code + p                          # sorted keys: a fast search
    i = np.minimum(np.searchsorted(code, q), len(code) - 1)
    return np.where(code[i] == q, run[i], -1).astype(np.int32)


def _order(items: Items, refs: Refs, axis: int) -> dict:
    """A layer's items along ``axis``: extents, kinds, their order by (kind, extent across, length,
    start) and codes (equal-item group, start) in that order, and the search by start."""
    u, v = (0, 2), (1, 3)
    if axis == 1:
        u, v = v, u
    parts = [(items.boxes, np.zeros(len(items.boxes), np.int64), True),
             (items.poly_bb, items.poly_kind, False),
             (refs.bbox[items.refs], REF_KIND + refs.kind[items.refs], False)]
    bb = np.concatenate([p[0] for p in parts]).reshape(-1, 4)
    kind = np.concatenate([p[1] for p in parts])
    is_box = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    u0, u1 = bb[:, u[0]], bb[:, u[1]]
    v0, v1 = bb[:, v[0]], bb[:, v[1]]
    ln = u1 - u0
    order = np.lexsort((u0, ln, v1, v0, kind))
    ko, v0o, v1o, lno = kind[order], v0[order], v1[order], ln[order]
    new = np.ones(len(order), bool)
    new[1:] = (ko[1:] != ko[:-1]) | (v0o[1:] != v0o[:-1]) | (v1o[1:] != v1o[:-1]) | (lno[1:] != lno[:-1])
    code = (np.cumsum(new) - 1) * (1 << 33) + (u0[order] + (1 << 32))
    # the strip's items found by a search: the short ones (length <= reach, 99 in 100) sorted by
    # start, those over [s0, s1] start in [s0 - reach, s1); the long ones always tested
    reach = int(np.quantile(ln, 0.99)) if len(ln) else 0
    run = np.ones(len(code), bool)
    run[1:] = code[1:] != code[:-1]
    return {"u0": u0[order], "u1": u1[order], "is_box": is_box[order], "code": code, "reach": reach,
            "order": order, "run": (np.cumsum(run) - 1).astype(np.int32), "runs": int(run.sum())}


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


@dataclass(frozen=True)
class Row:
    """Equal arrays (ArrayRef or Stack) side by side along x at one spacing (the groups of columns
    between a strapped array's tie columns, rom/ties.py): its pitch along x is the spacing, its
    grid the groups' column pitch where the spacing is a whole number of it (a cut from any column
    removes whole groups with their tie columns), else the spacing (a cut starts at a group's first
    column); along y it is its first group."""
    first: object
    n: int
    step: int
    groups: tuple = field(default=(), compare=False)

    def __getattr__(self, name):
        return getattr(self.first, name)

    @property
    def x(self) -> int:
        return self.first.x

    @property
    def x_end(self) -> int:
        return self.first.x + (self.n - 1) * self.step + self.first.nx * self.first.dx


def span(r, axis: int) -> tuple[int, int, int, int]:
    """(start, end, pitch, grid) of an array (ArrayRef, Stack or, along x, Row) along ``axis``."""
    if isinstance(r, Row):
        grid = r.first.dx if r.step % max(r.first.dx, 1) == 0 else r.step
        return (r.x, r.x_end, r.step, grid) if axis == 0 else span(r.first, 1)
    if axis == 0:
        return r.x, r.x + r.nx * r.dx, r.dx, r.dx
    if isinstance(r, Stack):
        return r.y, r.y_end, r.dy, r.grid
    return r.y, r.y + r.ny * r.dy, r.dy, r.dy


def strips(arrays, axis: int, p: int, halo: int):
    """Each array's cut candidate [a, b) for period p (arrays whose pitch divides p), a halo, the
    period and one grid step inside its ends, aligned to its grid from ``start``; the other arrays
    are defects: their ends, or their whole range where p is not a multiple of their pitch.
    Returns (start, a, b, grid) per candidate and its defects (candidate, lo, hi)."""
    sp = np.array([span(r, axis) for r in arrays], np.int64).reshape(-1, 4)
    s, e, d, g = sp.T
    div = (d > 0) & (p % np.maximum(d, 1) == 0)
    m = (-(-(halo + p) // np.maximum(g, 1)) + 1) * g
    a, b = s + m, e - m
    at = np.flatnonzero(div & (b - a >= 2 * p))
    if not len(at):
        return (at, at, at, at), (at, at, at)
    # pairs (candidate k, other array o) near each other
    k, o = np.repeat(np.arange(len(at)), len(sp)), np.tile(np.arange(len(sp)), len(at))
    r = at[k]
    near = (r != o) & ~((e[o] <= s[r] - halo) | (s[o] >= e[r] + halo))
    k, r, o = k[near], r[near], o[near]
    whole = ~div[o]
    grow = halo + p + np.where(whole, 0, m[r])
    ends = [(k[whole], s[o][whole] - grow[whole], e[o][whole] + grow[whole])]
    ends += [(k[~whole], v[~whole] - grow[~whole], v[~whole] + grow[~whole]) for v in (s[o], e[o])]
    bad = tuple(np.concatenate(x) for x in zip(*ends))
    return (s[at], a[at], b[at], g[at]), bad


def cuts_for(matchers: list, caches: list, arrays, axis: int, halo: int):
    """The best cuts along ``axis`` for the layers of ``matchers``: per period (a few multiples of
    each array pitch) the bands free of defects (grown by halo + period), the period that removes
    the most; [] when none. A period whose candidates together are no longer than the best cuts
    so far is not searched (its cuts lie inside its candidates: it cannot remove more)."""
    best, best_len = [], 0
    if axis == 1:        # along y a row of groups is its groups
        arrays = [g for r in arrays for g in (r.groups if isinstance(r, Row) else (r,))]
    pitches = {span(r, axis)[2] for r in arrays} | {span(u, axis)[2] for r in arrays for u in getattr(r, "runs", ())}
    pitches |= {span(u, axis)[2] for r in arrays if isinstance(r, Row) for u in r.groups}
    for p in sorted({t * d for d in pitches - {0} for t in PERIODS}):
        # a stack whose spacing does not divide p: its runs, each cut on its own
        arrs = [u for r in arrays for u in (r.runs if isinstance(r, Stack) and p % span(r, axis)[2] else
                                            r.groups if isinstance(r, Row) and p % r.step else (r,))]
        if best_len and _reach(arrs, axis, p, halo) <= best_len:
            continue
        cuts = _union(_band_cuts(arrs, matchers, caches, axis, p, halo), p)
        total = sum(b - a for a, b in cuts)
        if total > best_len:
            best, best_len = cuts, total
    return best


def _reach(arrs, axis: int, p: int, halo: int) -> int:
    """How much the cuts of period p could remove at most: the length of the union of its
    candidates (``strips``)."""
    (_, a, b, _), _ = strips(arrs, axis, p, halo)
    return int((merge_intervals(np.stack([a, b], 1)) @ np.array([-1, 1])).sum()) if len(a) else 0


def _band_cuts(arrs, matchers, caches, axis: int, p: int, halo: int) -> list[tuple[int, int]]:
    """The cuts of period p of every array's candidate (``strips``): the defects of every layer in
    its window (equal windows searched once, all windows of a layer at once), grown by halo + p."""
    (start, a, b, grid), (sid, lo, hi) = strips(arrs, axis, p, halo)
    if not len(a):
        return []
    index: dict = {}
    win = np.array([index.setdefault(w, len(index)) for w in zip((a - halo).tolist(), (b + halo).tolist())])
    ws = np.array(list(index), np.int64).reshape(-1, 2)
    sids, los, his = [sid], [lo], [hi]
    for mt, cache in zip(matchers, caches):
        k, l, h = mt.defects_many(ws[:, 0], ws[:, 1], p, cache)
        o = np.argsort(k, kind="stable")
        cnt = np.bincount(k, minlength=len(ws))
        first = np.cumsum(cnt) - cnt
        s_, j = _ranges(first[win], first[win] + cnt[win])
        sids.append(s_)
        los.append(l[o][j] - (halo + p))
        his.append(h[o][j] + (halo + p))
    return _free(np.concatenate(sids), np.concatenate(los), np.concatenate(his), start, a, b, grid, p)


def _free(sid, lo, hi, start, a, b, grid, p: int) -> list[tuple[int, int]]:
    """Per candidate [a, b): its parts clear of its defects (closed intervals (sid, lo, hi)), each
    started on the candidate's grid and cut to a multiple of p."""
    n = len(a)
    off = 4 * (int(max(np.abs(lo).max(initial=0), np.abs(hi).max(initial=0), np.abs(a).max(), np.abs(b).max())) + 1)
    if n > 1 and n * off >= 1 << 62:      # candidates one by one (no room to set them apart)
        return [c for i in range(n) for c in _free(np.zeros((sid == i).sum(), np.int64), lo[sid == i],
                                                     hi[sid == i], *(v[i:i + 1] for v in (start, a, b, grid)), p)]
    o = np.lexsort((lo, sid))
    sid, lo, hi = sid[o], lo[o], hi[o]
    base = sid * off                     # each candidate's defects merged on their own
    run = np.maximum.accumulate(hi + base) - base if len(hi) else hi
    new = np.ones(len(sid), bool)
    new[1:] = (sid[1:] != sid[:-1]) | (lo[1:] > run[:-1])
    g0 = np.flatnonzero(new)
    g1 = np.append(g0[1:], len(sid))[:len(g0)] - 1
    msid, mlo, mhi = sid[g0], lo[g0], run[g1]
    after = np.ones(len(msid), bool)     # the last merged interval of its candidate
    after[:-1] = msid[1:] != msid[:-1]
    prev = a[msid]                       # a gap before each merged interval: from the one before
    prev[1:] = np.where(after[:-1], prev[1:], mhi[:-1])
    tail = a.copy()                      # ... and one after the last
    tail[msid[after]] = mhi[after]
    gs = np.concatenate([msid, np.arange(n)])
    x0 = np.maximum(np.concatenate([prev, tail]), a[gs])
    x1 = np.minimum(np.concatenate([mlo, b]), b[gs])
    x0 = start[gs] - (start[gs] - x0) // grid[gs] * grid[gs]
    ok = (x1 - x0 >= p)
    x0, x1 = x0[ok], x1[ok]
    return list(zip(x0.tolist(), (x0 + (x1 - x0) // p * p).tolist()))


def stacks(arrays) -> list:
    """The arrays for the cuts: runs of one array stacked along y at one spacing (bit arrays
    between tap rows) as one array of that spacing, each maximal sequence of three or more equal
    runs (cell, x, columns, pitches, rows); every other array as it is; then equal arrays side
    by side at one spacing (a strapped array's groups of columns) as one Row (``rows``)."""
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
    return rows(out)


def rows(arrays) -> list:
    """Maximal sequences of three or more equal arrays (a Stack's runs compared by their count,
    spacing and rows) side by side along x at one spacing, each as a Row; the others as they are."""
    def key(r):
        return (type(r).__name__, r.cell, r.y, r.nx, r.ny, r.dx, r.dy) + \
            ((r.grid, r.rows) if isinstance(r, Stack) else ())
    groups: dict = {}
    for r in arrays:
        groups.setdefault(key(r), []).append(r)
    out = []
    for rs in groups.values():
        rs = sorted(rs, key=lambda r: r.x)
        i = 0
        while i < len(rs):
            j = i + 1
            step = rs[j].x - rs[i].x if j < len(rs) else 0
            while j < len(rs) and rs[j].x - rs[j - 1].x == step and step >= rs[i].nx * rs[i].dx > 0:
                j += 1
            if j - i >= 3:
                out.append(Row(rs[i], j - i, step, tuple(rs[i:j])))
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

def disjoint(cuts) -> bool:
    """Whether the bands are sorted and apart (each ends before or where the next starts)."""
    return all(a <= b for a, b in cuts) and all(b <= a for (_, b), (a, _) in zip(cuts, cuts[1:]))


def shift_of(c: np.ndarray, cuts) -> np.ndarray:
    """How far each coordinate moves when the bands ``cuts`` are removed (coordinates inside a
    band move to its start). Sorted bands apart: the band at or before each coordinate by one
    search, the lengths of those before it summed once."""
    c = np.asarray(c, np.int64)
    cuts = tuple(cuts)
    if len(cuts) > 2 and disjoint(cuts):
        a, b = np.array(cuts, np.int64).T
        before = np.concatenate([[0], np.cumsum(b - a)[:-1]])
        k = np.maximum(np.searchsorted(a, c, side="right") - 1, 0)
        return before[k] + np.minimum(np.maximum(c - a[k], 0), (b - a)[k])
    out = np.zeros(c.shape, np.int64)
    for a, b in cuts:
        out += np.minimum(np.maximum(c - a, 0), b - a)
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
    rk = inside(refs.bbox[items.refs]) if len(items.refs) else np.zeros(0, bool)
    return take(items, inside(items.boxes), inside(items.poly_bb), rk)


def band_index(bb: np.ndarray, bands) -> np.ndarray:
    """The band of each bounding box (by its left edge)."""
    starts = np.array([b[0] for b in bands], np.int64)
    return np.searchsorted(starts, bb[:, 0], side="right") - 1
