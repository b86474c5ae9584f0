"""The fast DRC's cut search and compaction (periodic.py, template.py) against plain reference
versions written item by item: equal cuts, shifts and piece selections on random layouts."""
from __future__ import annotations

import numpy as np
import pytest

from weightfab.signoff.periodic import PERIODS, REF_KIND, Items, Matcher, Refs, cuts_for, shift_of, span, subset
from weightfab.signoff.structure import ArrayRef
from weightfab.signoff.template import Piece, compact_x, piece_items, select, uncompact


def _rows(items: Items, refs: Refs, axis: int):
    u, v = ((0, 2), (1, 3)) if axis == 0 else ((1, 3), (0, 2))
    parts = [(items.boxes, np.zeros(len(items.boxes), np.int64), True), (items.poly_bb, items.poly_kind, False),
             (refs.bbox[items.refs], REF_KIND + refs.kind[items.refs], False)]
    return [((int(k), int(b[v[0]]), int(b[v[1]]), int(b[u[1]] - b[u[0]])), int(b[u[0]]), int(b[u[1]]), box)
            for bb, kind, box in parts for b, k in zip(bb.reshape(-1, 4), kind)]


def _defects(rows, s0, s1, p):
    """The strip's defects, one item at a time."""
    present = {(key, u0) for key, u0, _, _ in rows}
    out = []
    for key, u0, u1, box in rows:
        over = u1 > s0 and u0 < s1
        inside = over and u0 >= s0 and u1 <= s1
        if inside and ((u1 + p <= s1 and (key, u0 + p) not in present) or (u0 - p >= s0 and (key, u0 - p) not in present)):
            out.append((u0, u1))
        if over and not inside:
            out += [(e, e) for e in (u0, u1) if s0 < e < s1] if box else [(max(u0, s0), min(u1, s1))]
    return out


def _free(a, b, bad):
    """[a, b) minus the union of the closed intervals ``bad``."""
    merged = []
    for x0, x1 in sorted(bad):
        if merged and x0 <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], x1)
        else:
            merged.append([x0, x1])
    gaps, at = [], a
    for x0, x1 in merged:
        if x1 > at and x0 < b:
            if x0 > at:
                gaps.append((at, x0))
            at = max(at, x1)
    return gaps + ([(at, b)] if at < b else [])


def _cuts(rows_per_layer, arrays, axis, halo):
    """cuts_for, one strip and one item at a time."""
    best, best_len = [], 0
    pitches = {span(r, axis)[2] for r in arrays}
    for p in sorted({t * d for d in pitches - {0} for t in PERIODS}):
        cuts = []
        for r in arrays:
            start, end, d0, g = span(r, axis)
            if d0 <= 0 or p % d0:
                continue
            m = (-(-(halo + p) // g) + 1) * g
            a, b = start + m, end - m
            if b - a < 2 * p:
                continue
            bad = []
            for o in arrays:
                s, e, d, _ = span(o, axis)
                if o is r or e <= a - m - halo or s >= b + m + halo:
                    continue
                bad += ([(s - halo - p, e + halo + p)] if d <= 0 or p % d else
                        [(s - halo - p - m, s + halo + p + m), (e - halo - p - m, e + halo + p + m)])
            for rows in rows_per_layer:
                bad += [(x0 - halo - p, x1 + halo + p) for x0, x1 in _defects(rows, a - halo, b + halo, p)]
            for x0, x1 in _free(a, b, bad):
                x0 = start - (start - x0) // g * g
                if x1 - x0 >= p:
                    cuts.append((x0, x0 + (x1 - x0) // p * p))
        out = []
        for a, b in sorted(cuts):
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(b, out[-1][1]))
            else:
                out.append((a, b))
        cuts = [(a, a + (b - a) // p * p) for a, b in out if b - a >= p]
        if sum(b - a for a, b in cuts) > best_len:
            best, best_len = cuts, sum(b - a for a, b in cuts)
    return best


def _layout(seed: int):
    """Two bit arrays side by side, periodic boxes, polygons and cell placements over them, and a
    few defects (missing, moved, extra items; items across the arrays' ends)."""
    rng = np.random.default_rng(seed)
    arrays = [ArrayRef("B", 0, 0, 40, 60, 100, 80), ArrayRef("B", 4200, 0, 24, 60, 100, 80)]
    boxes, polys, rk, ro = [], [], [], []
    for r in arrays:
        for i in range(r.nx):
            for j in range(0, r.ny, 2):
                x, y = r.x + i * r.dx, r.y + j * r.dy
                boxes.append((x + 10, y + 5, x + 40, y + 60))
                if j % 4 == 0:
                    polys.append(np.array([[x, y], [x + 30, y], [x + 30, y + 10], [x + 10, y + 10], [x + 10, y + 40],
                                           [x, y + 40]]))
                rk.append(i % 2)
                ro.append((x, y + 20))
    boxes += [(x, 4850, x + 20, 4870) for x in range(1500, 7000, 100)]     # runs that start inside an array
    boxes += [(3020, y, 3040, y + 20) for y in range(2000, 6000, 80)]
    boxes = np.array(boxes, np.int64)
    drop = rng.choice(len(boxes), 2, replace=False)
    boxes[drop[0], [0, 2]] += 7
    boxes = np.delete(boxes, drop[1:], axis=0)
    extra = rng.integers(-300, 7000, (1, 2))
    boxes = np.concatenate([boxes, np.concatenate([extra, extra + [30, 50]], 1),
                            [[-500, 100, 7000, 140], [1000, -400, 1040, 5000]]])
    polys.append(np.array([[-200, 700], [1200, 700], [1200, 760], [-200, 760]]))
    bb = np.array([[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polys], np.int64)
    kind = np.array([1 if len(p) == 6 else 2 for p in polys], np.int64)
    cell = np.array([[0, 0, 50, 30], [0, 0, 60, 30]], np.int64)
    rk, ro = np.array(rk), np.array(ro, np.int64)
    refs = Refs([("A", (1, 0, 0, 1)), ("C", (1, 0, 0, 1))], rk, ro, cell[rk] + np.tile(ro, 2))
    return arrays, Items(boxes, polys, bb, kind, np.delete(np.arange(len(rk)), rng.integers(len(rk)))), refs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cuts_match_the_item_by_item_search(seed):
    arrays, items, refs = _layout(seed)
    rows = _rows(items, refs, 0)
    for axis, halo in ((0, 150), (1, 150), (1, 250), (0, 400)):
        got = cuts_for([Matcher(items, refs, axis)], [{}], arrays, axis, halo)
        assert got == _cuts([_rows(items, refs, axis)], arrays, axis, halo), (axis, halo)
    assert rows == _rows(items, refs, 0)
    rng = np.random.default_rng(seed)
    s0 = rng.integers(-600, 7000, 12)
    s1 = s0 + rng.integers(0, 5000, 12)
    for axis in (0, 1):
        m, rows = Matcher(items, refs, axis), _rows(items, refs, axis)
        for p in (80, 100, 160, 200, 400):
            k, lo, hi = m.defects_many(s0, s1, p, {})
            for i in range(len(s0)):
                assert set(zip(lo[k == i].tolist(), hi[k == i].tolist())) == set(_defects(rows, s0[i], s1[i], p))


@pytest.mark.parametrize("seed", [0, 3])
def test_cuts_of_a_subset_match_the_subset_searched_alone(seed):
    """A band's or piece's items share the layer's order and neighbour searches; their cuts are
    those of the same items made a layer of their own."""
    arrays, items, refs = _layout(seed)
    shared = {}
    for x0, x1 in ((-600, 4100), (4100, 7000), (-50, 4010)):
        sub = subset(items, refs, x0, x1)
        alone = Items(sub.boxes, sub.polys, sub.poly_bb, sub.poly_kind, sub.refs)
        arrs = [r for r in arrays if x0 <= r.x and r.x_end <= x1]
        m = Matcher(sub, refs, 1)
        got = cuts_for([m], [shared.setdefault((x0, x1), {})], arrs, 1, 150)
        assert got == cuts_for([Matcher(alone, refs, 1)], [{}], arrs, 1, 150)
        assert got == _cuts([_rows(alone, refs, 1)], arrs, 1, 150)
    pc = Piece(4000, 4300, (), 300)
    part = piece_items(items, refs, pc, ((500, 1300),))
    inner = subset(part, refs, 3900, 7000)      # a subset of a subset
    alone = Items(inner.boxes, inner.polys, inner.poly_bb, inner.poly_kind, inner.refs)
    assert len(inner.boxes) and inner.parent is items
    for p in (100, 200, 80):
        assert [a.tolist() for a in Matcher(inner, refs, 1).neighbours(p)] == \
            [a.tolist() for a in Matcher(alone, refs, 1).neighbours(p)]


def test_shift_and_window_agree_with_coordinate_by_coordinate():
    rng = np.random.default_rng(1)
    v = np.arange(-120, 120)
    for _ in range(2000):
        k = int(rng.integers(0, 7))
        pts = np.sort(rng.integers(-50, 50, 2 * k))
        cuts = tuple((int(pts[2 * i]), int(pts[2 * i + 1])) for i in range(k))
        ref = sum((np.clip(v - a, 0, b - a) for a, b in cuts), np.zeros(len(v), np.int64))
        assert (shift_of(v, cuts) == ref).all(), cuts
        lo, hi = sorted(rng.integers(-80, 80, 2).tolist())
        t0, t1 = uncompact(lo, hi, cuts)
        assert ((v - ref >= lo) == (v >= t0)).all() and ((v - ref <= hi) == (v <= t1)).all(), (cuts, lo, hi)
        bb = np.sort(rng.integers(-120, 120, (40, 2)), axis=1)[:, [0, 0, 1, 1]]
        pc = Piece(int(rng.integers(-60, 0)), int(rng.integers(0, 60)), (), int(rng.integers(1, 20)))
        lo, hi = pc.c0 - int(shift_of([pc.c0], cuts)[0]) - pc.halo, pc.c1 - int(shift_of([pc.c1], cuts)[0]) + pc.halo
        assert (select(bb, pc, cuts) == ((compact_x(bb[:, 2], cuts) >= lo) & (compact_x(bb[:, 0], cuts) <= hi))).all()
    overlapping = ((0, 10), (5, 20), (30, 40))      # not bands apart: summed band by band
    assert (shift_of(v, overlapping) == sum(np.clip(v - a, 0, b - a) for a, b in overlapping)).all()
    assert uncompact(0, 5, overlapping) is None
