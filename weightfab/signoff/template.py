"""The fast DRC's templates (fastdrc.py): the file's content for a set of rules, cut and glued, as a
small KLayout layout, in *pieces*.

A piece is an x-range of a column band with its own y-cuts. A whole column band (content set apart
from the rest by an empty gap wider than the rules' reach) is one piece with nothing beyond its
edges. A band may also be split at its arrays' x-edges when the arrays repeat along y but what is
beside them does not (a row decoder whose metal differs from wordline to wordline would otherwise
keep every array row in the metal rules' templates): each part, its *core*, is a piece of its own
with a *window* that reaches ``halo`` beyond the core on both sides. The window holds every item
(box, polygon, cell placement, array column) whose x-extent in the x-compacted template meets it,
whole, and the piece's y-cuts are proven on exactly those items (periodic.py), so every window of
the rules' reach inside the core and ``halo`` around it is a window of the file. Beyond the window
content is missing, which can only make violations appear near the window's edges (a shape whose
neighbour is left out), never hide one in the core: a violation counts when its marker touches a
core (``core_boxes``), and cores tile the band. The pieces of one band are placed one above the
other, far enough apart that no rule reaches from one to the next.
"""
from __future__ import annotations

from typing import NamedTuple

import klayout.db as kdb
import numpy as np

from .periodic import Items, Refs, clear_of, compact_boxes, compact_region, disjoint, shift_of, take


class Piece(NamedTuple):
    c0: int          # core x-range, file coordinates
    c1: int
    yc: tuple        # y-cuts ((a, b), ...)
    halo: int        # 0: a whole column band; else how far its window reaches beyond the core


def compact_x(v, xc) -> np.ndarray:
    v = np.asarray(v, np.int64)
    return v - shift_of(v, xc)


def shift1(v: int, cuts) -> int:
    """shift_of for one coordinate (plain integers: no numpy call per array and piece)."""
    return sum(min(max(v - a, 0), b - a) for a, b in cuts)


def window(pc: Piece, xc) -> tuple[int, int]:
    """The piece's window along x in template (x-compacted) coordinates."""
    return pc.c0 - shift1(pc.c0, xc) - pc.halo, pc.c1 - shift1(pc.c1, xc) + pc.halo


def uncompact(lo: int, hi: int, xc) -> tuple[int, int] | None:
    """The file x-range [t0, t1] whose compacted coordinates lie in [lo, hi] (compaction does not
    decrease a coordinate's order: ``compact_x(v) >= lo`` iff ``v >= t0``, ``compact_x(v) <= hi``
    iff ``v <= t1``); None when the cuts are not sorted bands apart."""
    if not disjoint(xc):
        return None
    t0 = t1 = None
    removed = 0
    for a, b in xc:           # a band [a, b] compacts to the one point a - removed
        if t0 is None and lo + removed <= a:
            t0 = lo + removed
        if t1 is None and hi + removed < a:
            t1 = hi + removed
        removed += b - a
    return (lo + removed if t0 is None else t0), (hi + removed if t1 is None else t1)


def select(bb: np.ndarray, pc: Piece, xc) -> np.ndarray:
    """Which bounding boxes [N, 4] (file coordinates) belong to the piece: a whole band takes the
    items that start in it; a split piece every item whose compacted x-extent meets its window
    (the window taken back to file coordinates once, not every item compacted)."""
    if not pc.halo:
        return (bb[:, 0] >= pc.c0) & (bb[:, 0] <= pc.c1)
    lo, hi = window(pc, xc)
    t = uncompact(lo, hi, xc)
    if t is None:
        return (compact_x(bb[:, 2], xc) >= lo) & (compact_x(bb[:, 0], xc) <= hi)
    return (bb[:, 2] >= t[0]) & (bb[:, 0] <= t[1])


class Frame:
    """Where each piece goes in the template: split pieces one above the other (``step`` apart,
    more than the content's height and twice the largest halo), whole bands where they are."""

    def __init__(self, pieces, xc, y0: int, y1: int):
        h = max([pc.halo for pc in pieces] + [1])
        self.margin = 2 * h + 1000
        self.step = (y1 - y0) + 2 * self.margin
        self.y0, self.y1, self.xc = y0, y1, xc
        self.oy, k = [], 0
        for pc in pieces:
            if pc.halo:
                k += 1
            self.oy.append(k * self.step if pc.halo else 0)
        self.split = k > 0
        self.pieces = pieces

    def cores(self) -> np.ndarray:
        """The cores [P, 4] in template coordinates (a whole band: its range and a margin)."""
        out = []
        for pc, oy in zip(self.pieces, self.oy):
            a, b = compact_x([pc.c0, pc.c1], self.xc).tolist()
            m = 0 if pc.halo else self.margin
            out.append((a - m, self.y0 + oy - self.margin, b + m, self.y1 + oy + self.margin))
        return np.array(out, np.int64).reshape(-1, 4)


def in_cores(collections, cores: np.ndarray) -> int:
    """How many markers of ``collections`` touch a core."""
    n = 0
    for c in collections:
        if c.is_empty():
            continue
        for item in c.each():
            b = item.bbox()
            n += bool(((cores[:, 0] <= b.right) & (cores[:, 2] >= b.left) & (cores[:, 1] <= b.top)
                       & (cores[:, 3] >= b.bottom)).any())
    return n


def place(bb: np.ndarray, xc, yc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bounding box: 0 drop (inside a cut), 1 move, 2 across a cut; and its shift (dx, dy)."""
    ix, cx = clear_of(bb, xc, 0, 2)
    iy, cy = clear_of(bb, yc, 1, 3)
    state = np.where(ix | iy, 0, np.where(cx | cy, 2, 1))
    return state, shift_of(bb[:, 0], xc), shift_of(bb[:, 1], yc)


_ORIENT: dict = {}      # matrix -> (rotation, mirror)


def trans(m, x: int, y: int) -> kdb.Trans:
    m = tuple(m)
    if m not in _ORIENT:
        for rot in range(4):
            for mirror in (False, True):
                c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][rot]
                my = -1 if mirror else 1
                if (c, -s * my, s, c * my) == m:
                    _ORIENT.setdefault(m, (rot, mirror))
        if m not in _ORIENT:
            raise ValueError(f"not an orthogonal orientation: {m}")
    rot, mirror = _ORIENT[m]
    return kdb.Trans(rot, mirror, int(x), int(y))


def _inside(cuts, a: int, b: int) -> int:
    """How much of [a, b) the cuts remove."""
    return sum(max(0, min(v, b) - max(u, a)) for u, v in cuts)


def _polygon(pts) -> kdb.Polygon:
    return kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in pts])


class Builder:
    """One template: ``names`` layers of the context ``ctx`` (fastdrc._Ctx) in the pieces of ``frame``."""

    def __init__(self, ctx, names, frame: Frame):
        self.ctx, self.names, self.frame = ctx, names, frame
        self.layout = kdb.Layout()
        self.layout.dbu = ctx.pdk.dbu_um
        self.top = self.layout.create_cell("TEMPLATE")
        self.idx = {n: self.layout.layer(*ctx.pdk.gds(n)) for n in names}
        self.cells: dict = {}
        self.size: dict = {}      # cell -> its shapes
        self.flat = 0             # shapes of the placements below the top cell, flattened

    def build(self):
        ctx, xc = self.ctx, self.frame.xc
        refs = ctx.refs
        use = np.unique(np.concatenate([ctx.items[n].refs for n in self.names])) if self.names else np.zeros(0, np.int64)
        for pc, oy in zip(self.frame.pieces, self.frame.oy):
            across = {n: kdb.Region() for n in self.names}
            for n in self.names:
                self._layer(n, pc, oy, across[n])
            sel = use[select(refs.bbox[use], pc, xc)]
            state, dx, dy = place(refs.bbox[sel], xc, pc.yc)
            self._instances(sel[state == 1], dx[state == 1], dy[state == 1] - oy)
            for j in sel[state == 2].tolist():
                self._flat_ref(j, across)
            for n, reg in across.items():
                if not reg.is_empty():
                    self.top.shapes(self.idx[n]).insert(
                        compact_region(compact_region(reg, xc, 0), pc.yc, 1).moved(0, oy))
            self._arrays(pc, oy)
        own = sum(self.top.shapes(i).size() for i in self.layout.layer_indexes())
        self.flat += own
        self.hier = own + sum(self.size.values()) + self.top.child_instances()
        return self.layout, self.top

    def _layer(self, n: str, pc: Piece, oy: int, across: kdb.Region):
        it, xc = self.ctx.items[n], self.frame.xc
        shapes = self.top.shapes(self.idx[n])
        b = it.boxes[select(it.boxes, pc, xc)]
        insert, box = shapes.insert_box, kdb.Box       # not the overloaded insert: 5x faster per shape
        for x0, y0, x1, y1 in (compact_boxes(b, xc, pc.yc) + np.array([0, oy, 0, oy])).tolist():
            insert(box(x0, y0, x1, y1))
        sel = np.flatnonzero(select(it.poly_bb, pc, xc))
        state, dx, dy = place(it.poly_bb[sel], xc, pc.yc)
        x, y = it.poly_bb[sel, 0] - dx, it.poly_bb[sel, 1] + oy - dy
        for i, s, u, v in zip(sel.tolist(), state.tolist(), x.tolist(), y.tolist()):
            if s == 1:
                shapes.insert_polygon(self._shape(it, i).moved(u, v))
            elif s == 2:
                across.insert(_polygon(it.polys[i]))

    def _shape(self, it: Items, i: int) -> kdb.Polygon:
        """Polygon ``i`` of ``it`` moved to the origin by its bounding box (made once per shape kind)."""
        cache = self.ctx.__dict__.setdefault("shape_of_kind", {})
        k = int(it.poly_kind[i])
        if k not in cache:
            cache[k] = _polygon(it.polys[i] - it.poly_bb[i, :2])
        return cache[k]

    def _instances(self, js: np.ndarray, dx: np.ndarray, dy: np.ndarray):
        """References ``js`` placed whole, moved back by (dx, dy); their cells made in the order
        of their first placement."""
        refs = self.ctx.refs
        kind = refs.kind[js]
        ks, first, count = np.unique(kind, return_index=True, return_counts=True)
        how = {}
        for k, n in sorted(zip(ks.tolist(), count.tolist()), key=lambda t: first[np.searchsorted(ks, t[0])]):
            cell, m = refs.kinds[k]
            c = self._cell(cell)
            self.flat += self.size[cell] * n
            trans(m, 0, 0)                  # checks the orientation
            how[k] = (c.cell_index(), *_ORIENT[tuple(m)])
        x, y = (refs.origin[js] - np.stack([dx, dy], 1)).T if len(js) else ((), ())
        insert, inst, tr = self.top.insert, kdb.CellInstArray, kdb.Trans
        for k, u, v in zip(kind.tolist(), np.asarray(x).tolist(), np.asarray(y).tolist()):
            c, rot, mirror = how[k]
            insert(inst(c, tr(rot, mirror, u, v)))

    def _flat_ref(self, j: int, across: dict):
        ctx = self.ctx
        st, refs = ctx.st, ctx.refs
        cell, m = refs.kinds[refs.kind[j]]
        mat = np.array(m, np.int64).reshape(2, 2).T
        for n in self.names:
            for pts in self._points(cell, ctx.pdk.gds(n)):
                across[n].insert(_polygon(pts @ mat + refs.origin[j]))

    def _points(self, cell: str, g) -> list:
        """The cell's polygons on layer ``g`` (dbu points; gdstk flattens anew on every call: once
        per cell and layer)."""
        cache = self.ctx.__dict__.setdefault("cell_points", {})
        if (cell, g) not in cache:
            st = self.ctx.st
            cache[cell, g] = [np.rint(poly.points * st.scale).astype(np.int64)
                              for poly in st.cells[cell].get_polygons(layer=g[0], datatype=g[1])]
        return cache[cell, g]

    def _cell(self, name: str) -> kdb.Cell:
        if name not in self.cells:
            pdk = self.ctx.pdk
            c = self.layout.create_cell(f"K{len(self.cells)}")
            for n in self.names:
                g = pdk.gds(n)
                for pts in self._points(name, g):
                    c.shapes(self.layout.layer(*g)).insert(_polygon(pts))
            self.cells[name] = c
            self.size[name] = sum(c.shapes(i).size() for i in self.layout.layer_indexes())
        return self.cells[name]

    def _bit_cell(self, a, r) -> kdb.Cell:
        """The bit array's cell with every site programmed (its layers among ``names``)."""
        key = ("A", r.cell)
        if key not in self.cells:
            ctx = self.ctx
            pdk, st = ctx.pdk, ctx.st
            via, prog = ctx.via, pdk.programming_layer
            keys = {pdk.gds(n) for n in self.names}
            c = self.layout.create_cell(f"A{len(self.cells)}")
            for poly in st.cells[r.cell].get_polygons():
                k = (poly.layer, poly.datatype)
                if k in keys:
                    c.shapes(self.layout.layer(*k)).insert(_polygon(np.rint(poly.points * st.scale).astype(np.int64)))
            if prog in self.names:
                sx = a.x0 - r.x
                for dy in a.drains:   # every site programmed
                    sy = a.y0 - r.y + dy
                    c.shapes(self.layout.layer(*pdk.gds(prog))).insert(
                        kdb.Box(sx - via // 2, sy - via // 2, sx + via // 2, sy + via // 2))
            self.cells[key] = c
            self.size[key] = sum(c.shapes(i).size() for i in self.layout.layer_indexes())
        return self.cells[key]

    def _x_extent(self, name: str) -> tuple[int, int]:
        """The cell's x-extent (dbu); gdstk measures a cell anew on every call: once per cell."""
        cache = self.ctx.__dict__.setdefault("x_extent", {})
        if name not in cache:
            bb = self.ctx.st.cells[name].bounding_box()
            cache[name] = (round(bb[0][0] * self.ctx.st.scale), round(bb[1][0] * self.ctx.st.scale))
        return cache[name]

    def _arrays(self, pc: Piece, oy: int):
        """The bit arrays of the piece, compacted (a split piece: the columns its window meets)."""
        xc = self.frame.xc
        for a, r in self.ctx.arrays:
            nx = r.nx - _inside(xc, r.x, r.x_end) // max(r.dx, 1)
            ny = r.ny - _inside(pc.yc, r.y, r.y_end) // max(r.dy, 1)
            if nx <= 0 or ny <= 0:      # a run of a stack cut away whole
                continue
            x = r.x - shift1(r.x, xc)
            j0, j1 = 0, nx
            if not pc.halo:
                if not pc.c0 <= r.x <= pc.c1:
                    continue
            else:
                lo, hi = window(pc, xc)
                cb0, cb1 = self._x_extent(r.cell)
                dx = max(r.dx, 1)
                j0 = max(0, -((x + cb1 - lo) // dx))
                j1 = min(nx, (hi - cb0 - x) // dx + 1)
                if j1 <= j0:
                    continue
            y = r.y - shift1(r.y, pc.yc) + oy
            c = self._bit_cell(a, r)
            self.flat += self.size[("A", r.cell)] * (j1 - j0) * ny
            self.top.insert(kdb.CellInstArray(c.cell_index(), kdb.Trans(x + j0 * r.dx, y), kdb.Vector(r.dx, 0),
                                              kdb.Vector(0, r.dy), j1 - j0, ny))


def piece_items(items: Items, refs: Refs, pc: Piece, xc) -> Items:
    """The items of one piece (``select``)."""
    return take(items, select(items.boxes, pc, xc), select(items.poly_bb, pc, xc),
                select(refs.bbox[items.refs], pc, xc))
