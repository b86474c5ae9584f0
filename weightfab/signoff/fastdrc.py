"""Fast DRC: prove the file is a small template of itself, check the template, fall back to the
full check wherever the proof does not hold.

A ROM layout is regular: every bit array is one regular reference of one bit-pair cell, the
programming shapes sit only on bit sites, and the periphery is rows and columns of the same
standard cells and wires. The fast mode turns that into a proof per file:

1. Read the hierarchy (structure.py): the regular arrays, the cells placed many times that hold
   no reference (standard cells: kept whole, one item per placement, keyed by cell and
   orientation), and everything else flattened to boxes and polygons per layer.
2. Programming layer: every programming shape of the flattened cells must be a box of the via's
   size exactly on a site of a bit array (a cell's shapes are tested at its first placement, its
   other placements by their offset from the array grid; no loop per via). Then by monotonicity
   the file's programming rules are bounded by a template in which every site is programmed: a
   rule may use the programming layer only where more shapes can only add violations (the layer
   itself in width, spacing, area, exact size, separation; the inner layer of an enclosure).
   Any other programming shape stays in the template as drawn.
3. Cut and glue, per rule: along x (then y), a band of array columns (rows) whose whole strip is
   periodic *on the layers the rule reads* (periodic.py: exact matching of items one period
   apart) is removed and the two sides are glued. So a decoder whose wires differ row to row
   blocks the cuts of the metal rules only; its cells, wells and implants repeat and are cut.
   Where a strip is not periodic (a changed shape, another array's end, a cell that does not
   repeat), the band stops a halo short of it (four times the largest distance of the rules
   that read those layers, plus 1 µm), so that spot stays in the template as drawn.
   Every window of a template of the rules' interaction distance equals a window of the file;
   area and edge-length rules can only lose area or length by a cut, so a clean template
   implies a clean file.
4. Rules with equal cuts share one template (their layers only, every site programmed), checked
   flat: it is small whatever the model size.

A rule its template fails, a programming rule when step 2 cannot bound it, or every rule when the
file is not a regular weightfab layout, is run by the full check on the file, so the report
(counts, markers) is always the full check's wherever anything is found; the notes say which.
"""
from __future__ import annotations

import time

import klayout.db as kdb
import numpy as np

from ..rom.viastack import program, program_layers
from ..tech.pdk import Pdk
from .drc import DrcReport, _check, _Layers, rule_result, run_drc
from .periodic import (Items, Matcher, Refs, band_index, bands_of, clear_of, compact_boxes, compact_region, cuts_for,
                       extents, poly_kinds, shift_of, subset)
from .taprows import runs_of
from .readback import structural_arrays
from .structure import IDENT, box_transform, read_structure

DEEP_FROM = 20_000   # template shapes and instances from which the template is checked deep
MONOTONE = {  # rule kind -> positions where the programming layer may appear (more shapes, more violations)
    "width": {"layer"}, "spacing": {"layer"}, "area": {"layer"}, "exact_size": {"layer"},
    "separation": {"layer", "other"}, "enclosure": {"other"}, "enclosure_adjacent": {"other"},
}


def run_fast_drc(path, pdk: Pdk, max_examples: int = 5, progress=None) -> DrcReport:
    t0 = time.perf_counter()
    notes: list[str] = []
    plan = _prove(path, pdk, notes)
    if plan is None:
        rep = run_drc(path, pdk, max_examples, progress=progress)
        return _with(rep, notes, t0)
    ctx, full_rules, top_name = plan
    results, fails = {}, []
    todo = [r for r in pdk.rules if r.name not in full_rules]
    for (xc, yc), rules in _groups(ctx, todo).items():   # yc: per column band
        ctx.cells = {}
        layout, top = _template(ctx, rules, xc, yc)
        L = _Layers(layout, top, ctx.pdk)
        # a large template (a decoder's rows that differ, kept whole) runs deep: its cells'
        # shapes are checked once per context; a small one flat, where hierarchy costs more
        L.flat = sum(top.shapes(i).size() for i in layout.layer_indexes()) + top.child_instances() < DEEP_FROM
        for rule in rules:
            res = rule_result(rule, _check(rule, L, layout.dbu), layout.dbu, 0, {})
            if res.count:
                fails.append(rule.name)
            results[rule.name] = res
            if progress is not None:
                progress(len(results), len(pdk.rules), rule.name)
    if fails:
        notes.append(f"the template fails {', '.join(fails)}: checked in full on the file")
    full = set(full_rules) | set(fails)
    markers, store = {}, None
    if full:
        rep = run_drc(path, pdk, max_examples, rules=full, progress=progress)
        markers, store = rep.markers, rep.store
        results.update({r.name: r for r in rep.rules})
    rep = DrcReport(str(path), top_name, pdk.dbu_um, tuple(results[r.name] for r in pdk.rules), 0.0, markers,
                    store, "fast", ())
    return _with(rep, notes, t0)


def _with(rep: DrcReport, notes: list[str], t0: float) -> DrcReport:
    from dataclasses import replace
    return replace(rep, mode="fast", notes=tuple(notes), seconds=time.perf_counter() - t0)


class _Ctx:
    """What the templates are made of: the file's structure, bit arrays, items per layer, references."""

    def __init__(self, st, pdk, arrays, items, refs, notes):
        self.st, self.pdk, self.arrays, self.items, self.refs = st, pdk, arrays, items, refs
        self.notes = notes
        self.match: dict = {}
        self.cells: dict = {}


def _prove(path, pdk: Pdk, notes: list[str]):
    """(template context, rules to run in full, top name), or None (and a note) for a full check."""
    st = read_structure(path, pdk.dbu_um)
    if st is None:
        notes.append("the file's hierarchy is not one this check reads (several top cells, another database "
                     "unit, magnified or rotated-by-an-odd-angle references): full check")
        return None
    ppdk, arrays = _bit_arrays(st, pdk)
    if not arrays:
        notes.append("no regular bit arrays (not a weightfab layout): full check")
        return None
    prog = ppdk.programming_layer
    full_rules = _non_monotone(ppdk, prog)
    if full_rules:
        notes.append(f"the programming layer enters {', '.join(sorted(full_rules))} where more shapes need not "
                     "mean more violations: checked in full")
    names = _layers(ppdk)
    bit_cells = {r.cell for _, r in arrays}
    ref_cells, flat_cells = _kinds(st, ppdk.gds(prog))
    loose_b, loose_p = _programming(st, ppdk, [a for a, _ in arrays], flat_cells)
    n_loose = len(loose_b) + len(loose_p)
    if n_loose:
        notes.append(f"{n_loose:,} programming-layer shapes of flattened cells are not via boxes on bit sites "
                     "(periphery, or edited): checked as drawn")
    refs = _refs(st, ref_cells, [r for r in st.arrays if r.cell not in bit_cells])
    table: dict = {}
    items = {}
    having: dict = {}
    for c in flat_cells:
        for g in st.own_layers(c):
            having.setdefault(g, []).append(c)
    for n in names:
        if n == prog:
            b, ps = loose_b, loose_p
        else:
            b, ps = st.flat_shapes(ppdk.gds(n), having.get(ppdk.gds(n), []))
        bb, kinds = poly_kinds(ps, table)
        has = np.array([ppdk.gds(n) in _cell_layers(st, c) for c, _ in refs.kinds], bool)
        items[n] = Items(b, ps, bb, kinds, np.flatnonzero(has[refs.kind]) if len(refs.kind) else refs.kind)
    return _Ctx(st, ppdk, arrays, items, refs, notes), full_rules, st.top


def _bit_arrays(st, pdk: Pdk):
    """The PDK programmed on the via the file uses, and the file's bit arrays (readback's Array and
    the structure's ArrayRef of each)."""
    for layer in program_layers(pdk):
        p = program(pdk, layer) if pdk.stack else pdk
        found = structural_arrays(st, p)
        if found and found[0].program_layer == layer:
            refs = []
            for a in (run for j in found for run in runs_of(j)):     # a run between tap rows: one ArrayRef
                r = next(r for r in st.arrays if r.nx == a.cols and 2 * r.ny == a.rows
                         and r.x <= a.x0 < r.x + r.dx * r.nx and r.y <= a.y0 < r.y + max(r.dy, 1) * r.ny)
                refs.append((a, r))
            return p, refs
    return pdk, []


def _bases(pdk: Pdk, rule) -> set[str]:
    def base(n):
        if n in pdk.derived:
            a, _, b = pdk.derived[n]
            return base(a) | base(b)
        return {n} if n else set()
    return base(rule.layer) | base(rule.other) | base(rule.edges_on)


def _non_monotone(pdk: Pdk, prog: str) -> set[str]:
    out = set()
    for r in pdk.rules:
        if prog not in _bases(pdk, r):
            continue
        where = {k for k, n in (("layer", r.layer), ("other", r.other)) if n == prog}
        direct = {n for n in (r.layer, r.other, r.edges_on) if n} & {prog}
        derived = any(prog in _bases(pdk, type(r)(r.name, r.kind, n, 0, "")) and n != prog
                      for n in (r.layer, r.other, r.edges_on) if n)
        if derived or not direct or not where <= MONOTONE.get(r.kind, set()) or r.edges_on == prog:
            out.add(r.name)
    return out


def _layers(pdk: Pdk) -> list[str]:
    names = set()
    for r in pdk.rules:
        names |= _bases(pdk, r)
    return sorted(n for n in names if n in pdk.layers)


def _cell_layers(st, name: str) -> set:
    cache = st.__dict__.setdefault("_full_layers", {})
    if name not in cache:
        cache[name] = st.cell_layers(name)
    return cache[name]


def _kinds(st, prog_gds) -> tuple[list[str], list[str]]:
    """Cells kept whole (placed more than once, holding no reference and some layer besides the
    programming layer) and cells flattened (every other placed cell)."""
    ref_cells, flat_cells = [], []
    for name, groups in st.places.items():
        cell = st.cells[name]
        many = sum(len(org) for _, org in groups) > 1
        if many and not cell.references and st.own_layers(name) - {prog_gds}:
            ref_cells.append(name)
        else:
            flat_cells.append(name)
    return ref_cells, flat_cells


def _refs(st, ref_cells: list[str], arrays) -> Refs:
    """Every placement of the kept cells (and of the elements of regular arrays of cells other than
    the bit cells) as items: kind (cell, orientation), origin and bounding box."""
    kinds, kind, origin, bbox = [], [], [], []
    groups = [(n, m, org) for n in ref_cells for m, org in st.places[n]]
    for r in arrays:
        i, j = np.meshgrid(np.arange(r.nx), np.arange(r.ny), indexing="ij")
        groups.append((r.cell, IDENT, np.stack([r.x + i.ravel() * r.dx, r.y + j.ravel() * r.dy], 1)))
    index: dict = {}
    for name, m, org in groups:
        k = index.setdefault((name, m), len(index))
        if k == len(kinds):
            kinds.append((name, m))
        bb = st.cells[name].bounding_box()
        if bb is None:
            continue
        b = np.rint(np.array([*bb[0], *bb[1]]) * st.scale).astype(np.int64).reshape(1, 4)
        t = box_transform(b, m)
        kind.append(np.full(len(org), k, np.int64))
        origin.append(org)
        bbox.append(t + np.tile(org, 2))
    cat = (lambda xs, w: np.concatenate(xs) if xs else np.zeros((0, w) if w else 0, np.int64))
    return Refs(kinds, cat(kind, 0), cat(origin, 2).reshape(-1, 2), cat(bbox, 4).reshape(-1, 4))


# -- the programming layer -----------------------------------------------------------------------

def _via(pdk: Pdk) -> int:
    from ..rom.geometry import RomGeometry
    b = RomGeometry.from_pdk(pdk).prog_box(0, 0)
    return b[2] - b[0]


def _site_index(c2: np.ndarray, arrays) -> np.ndarray:
    """Per centre (x2): the index of the array it is a bit site of, else -1."""
    k = np.full(len(c2), -1, np.int64)
    for i, a in enumerate(arrays):
        cx, rx = np.divmod(c2[:, 0] - 2 * a.x0, 2 * a.px)
        iy, ry = np.divmod(c2[:, 1] - 2 * a.y0, 2 * a.py)
        ok = ((rx == 0) & (cx >= 0) & (cx < a.cols) & (iy >= 0) & (iy < a.rows // 2)
              & ((ry == 2 * a.drains[0]) | (ry == 2 * a.drains[1])))
        k[ok & (k < 0)] = i
    return k


def _programming(st, pdk: Pdk, arrays, flat_cells: list[str]) -> tuple[np.ndarray, list]:
    """The programming shapes of the flattened cells that are not via boxes on bit sites (top
    coordinates): boxes [N, 4] and other polygons."""
    gds, via = pdk.gds(pdk.programming_layer), _via(pdk)
    st.prefill(flat_cells)
    a0 = arrays[0]
    uniform = all((a.px, a.py, a.drains) == (a0.px, a0.py, a0.drains) for a in arrays)
    loose_b, loose_p, odd = [np.zeros((0, 4), np.int64)], [], []
    cells, bs, orgs = [], [], []
    for name in flat_cells:
        b, ps = st.own_shapes(name, gds)
        if not len(b) and not ps:
            continue
        groups = st.places[name]
        # polygons, rotated placements, or arrays that differ: all of the cell's shapes as drawn
        if ps or not uniform or any(m != IDENT for m, _ in groups):
            odd.append(name)
            continue
        cells.append(name)
        bs.append(b)
        orgs.append(groups[0][1])
    if cells:   # cells with a shape that is not a via box: as drawn
        n = np.array([len(b) for b in bs])
        b = np.concatenate(bs)
        sized = ((b[:, 2] - b[:, 0] == via) & (b[:, 3] - b[:, 1] == via)).astype(np.int64)
        good = np.minimum.reduceat(sized, np.concatenate([[0], np.cumsum(n)[:-1]])).astype(bool)
        odd += [c for c, g in zip(cells, good) if not g]
        cells = [c for c, g in zip(cells, good) if g]
        c2s = [b[:, :2] + b[:, 2:] for b, g in zip(bs, good) if g]
        orgs = [o for o, g in zip(orgs, good) if g]
    if odd:
        lb, lp = st.flat_shapes(gds, odd)
        loose_b.append(lb)
        loose_p += lp
    if cells:
        loose_b.append(_stamp(cells, c2s, orgs, arrays, via))
    return np.concatenate(loose_b), loose_p


STAMP_BATCH = 1 << 22   # placements tested at once (bounds the temporaries: ~0.3 GiB)


def _stamp(cells, c2s, orgs, arrays, via) -> np.ndarray:
    """Via boxes (top coordinates) of the flattened cells' shapes that are on no bit site. A cell's
    shapes are tested at its first placement; another placement is on sites when it sits in an
    array at the same offset from that array's grid, its shapes' extent inside the array. The
    placements are tested in batches of cells (STAMP_BATCH placements)."""
    n = np.array([len(c) for c in c2s])
    seg = np.repeat(np.arange(len(cells)), n)
    c2 = np.concatenate(c2s)
    first = np.array([o[0] for o in orgs], np.int64)
    k = _site_index(c2 + 2 * first[seg], arrays)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    kmin, kmax = np.minimum.reduceat(k, starts), np.maximum.reduceat(k, starts)
    ok = (kmin >= 0) & (kmin == kmax)
    lo = np.stack([np.minimum.reduceat(c2[:, 0], starts), np.minimum.reduceat(c2[:, 1], starts)], 1)
    hi = np.stack([np.maximum.reduceat(c2[:, 0], starts), np.maximum.reduceat(c2[:, 1], starts)], 1)
    par = np.array([[2 * a.x0, 2 * a.y0, 2 * a.px, 2 * a.py] for a in arrays], np.int64)
    kk = np.maximum(kmin, 0)
    res = np.mod(2 * first - par[kk, :2], par[kk, 2:])
    m = np.array([len(o) for o in orgs])
    single = ~ok & (m == 1)      # failed at its first placement, placed once: shape by shape
    box = np.array([[2 * a.x0, 2 * a.y0 + 2 * min(a.drains), 2 * a.x0 + (a.cols - 1) * 2 * a.px,
                     2 * a.y0 + (a.rows // 2 - 1) * 2 * a.py + 2 * max(a.drains)] for a in arrays], np.int64)
    out = []
    ends = np.searchsorted(np.cumsum(m), np.arange(STAMP_BATCH, m.sum() + STAMP_BATCH, STAMP_BATCH), side="right")
    b0 = 0
    for b1 in np.unique(np.minimum(np.maximum(ends, 1), len(cells))).tolist():
        if b1 <= b0:
            continue
        ids = np.arange(b0, b1)
        org = np.concatenate([orgs[c] for c in ids])
        pc = np.repeat(ids, m[ids])
        bad = ~_on_sites(org, pc, lo, hi, res, par, box) | ~ok[pc]
        bad &= ~single[pc]
        if bad.any():
            for c in np.flatnonzero(np.bincount(pc[bad] - b0, minlength=len(ids))) + b0:
                sel = org[(pc == c) & bad]
                out.append((2 * sel[:, None, :] + c2s[c][None]).reshape(-1, 2))
        b0 = b1
    sh = single[seg]
    if sh.any():
        p = c2[sh] + 2 * first[seg[sh]]
        out.append(p[_site_index(p, arrays) < 0])
    if not out:
        return np.zeros((0, 4), np.int64)
    cen = np.concatenate(out) // 2
    h = via // 2
    return np.concatenate([cen - h, cen + h], axis=1)


def _on_sites(org, pc, lo, hi, res, par, box) -> np.ndarray:
    """Per placement (origin, cell): its shapes' extent inside an array's sites at the cell's grid
    offset. Arrays apart along x (the usual floorplan): the one array left of each placement is
    the only candidate (one search); otherwise every array is tried."""
    p0, p1 = 2 * org + lo[pc], 2 * org + hi[pc]
    order = np.argsort(box[:, 0], kind="stable")
    if (box[order[1:], 0] > box[order[:-1], 2]).all():
        cand = [order[np.maximum(np.searchsorted(box[order, 0], p0[:, 0], side="right") - 1, 0)]]
    else:
        cand = [np.full(len(org), i, np.int64) for i in range(len(box))]
    good = np.zeros(len(org), bool)
    for i in cand:
        b = box[i]
        inside = (p0[:, 0] >= b[:, 0]) & (p1[:, 0] <= b[:, 2]) & (p0[:, 1] >= b[:, 1]) & (p1[:, 1] <= b[:, 3])
        good |= inside & (np.mod(2 * org - par[i, :2], par[i, 2:]) == res[pc]).all(axis=1)
    return good


# -- rules, cuts and templates -------------------------------------------------------------------

def _groups(ctx: _Ctx, rules) -> dict:
    """Rules by their cuts: (x-cuts, ((band x0, band x1, y-cuts), ...)) -> rules, each rule cut on
    the layers it reads; along y each column band (content separated by an empty gap wider than
    the halo) is cut on its own."""
    out: dict = {}
    bit = [r for _, r in ctx.arrays]
    by_layers: dict = {}
    for rule in rules:
        by_layers.setdefault(tuple(sorted(n for n in _bases(ctx.pdk, rule) if n in ctx.items)), []).append(rule)
    for layers, rs in by_layers.items():
        out.setdefault(_cuts(ctx, layers, bit, _halo(ctx.pdk, rs)), []).extend(rs)
    nb = sorted({len(b) for _, b in out})
    ny = sum(len(yc) for _, b in out for *_, yc in b)
    ctx.notes.append(f"templates: {len(out)}, x-cuts {'/'.join(str(n) for n in sorted({len(x) for x, _ in out}))}, "
                     f"column bands {'/'.join(map(str, nb))}, y-cuts {ny} in all; "
                     f"{len(ctx.refs.kind):,} cell placements kept whole")
    return out


def _halo(pdk: Pdk, rules) -> int:
    """How far (dbu) the cuts stay from anything that does not repeat, for ``rules``: four times
    their largest distance plus 1 µm (an area rule reaches no farther than its polygon)."""
    v = max((r.value for r in rules if r.kind != "area"), default=0.0)
    return round(4 * v / pdk.dbu_um) + round(1.0 / pdk.dbu_um)


def _cuts(ctx: _Ctx, layers, bit, halo: int):
    ms, cs = [], []
    for n in layers:
        if (n, 0) not in ctx.match:
            ctx.match[(n, 0)] = (Matcher(ctx.items[n], ctx.refs, 0), {})
        ms.append(ctx.match[(n, 0)][0])
        cs.append(ctx.match[(n, 0)][1])
    xc = tuple(cuts_for(ms, cs, bit, 0, halo))
    ext = [extents(ctx.items[n], ctx.refs) for n in layers] + [np.array([[r.x, r.x_end] for r in bit], np.int64)]
    bands = []
    for b0, b1 in bands_of(np.concatenate(ext), halo):
        arrs = [r for r in bit if b0 <= r.x and r.x_end <= b1]
        yc = ()
        if arrs:
            ms, cs = [], []
            for n in layers:
                key = (n, 1, b0, b1)
                if key not in ctx.match:
                    ctx.match[key] = (Matcher(subset(ctx.items[n], ctx.refs, b0, b1), ctx.refs, 1), {})
                ms.append(ctx.match[key][0])
                cs.append(ctx.match[key][1])
            yc = tuple(cuts_for(ms, cs, arrs, 1, halo))
        bands.append((b0, b1, yc))
    return xc, tuple(bands)


def _trans(m, x: int, y: int) -> kdb.Trans:
    for rot in range(4):
        for mirror in (False, True):
            c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][rot]
            my = -1 if mirror else 1
            if (c, -s * my, s, c * my) == tuple(m):
                return kdb.Trans(rot, mirror, int(x), int(y))
    raise ValueError(f"not an orthogonal orientation: {m}")


def _template(ctx: _Ctx, rules, xc, bands):
    """The template of ``rules``: their layers compacted along the cuts (along y per column band),
    kept cells as instances, the bit arrays with every site programmed."""
    pdk, st = ctx.pdk, ctx.st
    names = sorted({n for r in rules for n in _bases(pdk, r) if n in ctx.items})
    layout = kdb.Layout()
    layout.dbu = pdk.dbu_um
    top = layout.create_cell("TEMPLATE")
    idx = {n: layout.layer(*pdk.gds(n)) for n in names}
    across = {(n, k): kdb.Region() for n in names for k in range(len(bands))}
    for n in names:
        it = ctx.items[n]
        shapes = top.shapes(idx[n])
        bi = band_index(it.boxes, bands)
        for k, (_, _, yc) in enumerate(bands):
            for x0, y0, x1, y1 in compact_boxes(it.boxes[bi == k], xc, yc).tolist():
                shapes.insert(kdb.Box(x0, y0, x1, y1))
        for p, (k, state, dx, dy) in zip(it.polys, _place(it.poly_bb, xc, bands)):
            poly = kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in p])
            if state == 1:
                shapes.insert(poly.moved(-dx, -dy))
            elif state == 2:
                across[(n, k)].insert(poly)
    refs = ctx.refs
    use = np.unique(np.concatenate([ctx.items[n].refs for n in names])) if names else np.zeros(0, np.int64)
    for j, (k, state, dx, dy) in zip(use.tolist(), _place(refs.bbox[use], xc, bands)):
        cell, m = refs.kinds[refs.kind[j]]
        if state == 1:
            c = _cell(ctx, layout, cell, names)
            x, y = refs.origin[j]
            top.insert(kdb.CellInstArray(c.cell_index(), _trans(m, x - dx, y - dy)))
        elif state == 2:
            for n in names:
                g = pdk.gds(n)
                for poly in st.cells[cell].get_polygons(layer=g[0], datatype=g[1]):
                    pts = np.rint(poly.points * st.scale).astype(np.int64) @ np.array(m, np.int64).reshape(2, 2).T
                    pts = pts + refs.origin[j]
                    across[(n, k)].insert(kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in pts]))
    for (n, k), reg in across.items():
        if not reg.is_empty():
            top.shapes(idx[n]).insert(compact_region(compact_region(reg, xc, 0), bands[k][2], 1))
    _bit_template(ctx, layout, top, names, xc, bands)
    return layout, top


def _place(bb: np.ndarray, xc, bands) -> list:
    """Per bounding box: (band, 0 drop | 1 move | 2 across a cut, dx, dy)."""
    k = band_index(bb, bands)
    ix, cx = clear_of(bb, xc, 0, 2)
    iy, cy = np.zeros(len(bb), bool), np.zeros(len(bb), bool)
    dy = np.zeros(len(bb), np.int64)
    for b, (_, _, yc) in enumerate(bands):
        sel = k == b
        i, c = clear_of(bb[sel], yc, 1, 3)
        iy[sel], cy[sel], dy[sel] = i, c, shift_of(bb[sel, 1], yc)
    dx = shift_of(bb[:, 0], xc)
    state = np.where(ix | iy, 0, np.where(cx | cy, 2, 1))
    return list(zip(k.tolist(), state.tolist(), dx.tolist(), dy.tolist()))


def _cell(ctx: _Ctx, layout, name: str, names) -> kdb.Cell:
    key = name
    if key not in ctx.cells:
        st, pdk = ctx.st, ctx.pdk
        c = layout.create_cell(f"K{len(ctx.cells)}")
        for n in names:
            g = pdk.gds(n)
            for poly in st.cells[name].get_polygons(layer=g[0], datatype=g[1]):
                pts = np.rint(poly.points * st.scale).astype(np.int64)
                c.shapes(layout.layer(*g)).insert(kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in pts]))
        ctx.cells[key] = c
    return ctx.cells[key]


def _bit_template(ctx: _Ctx, layout, top, names, xc, bands):
    """The bit arrays, compacted, each with every site programmed."""
    pdk, st = ctx.pdk, ctx.st
    via, prog = _via(pdk), pdk.programming_layer
    keys = {pdk.gds(n) for n in names}
    cells = {}
    for a, r in ctx.arrays:
        if r.cell not in cells:
            c = layout.create_cell(f"A{len(cells)}")
            for poly in st.cells[r.cell].get_polygons():
                key = (poly.layer, poly.datatype)
                if key in keys:
                    pts = np.rint(poly.points * st.scale).astype(np.int64)
                    c.shapes(layout.layer(*key)).insert(kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in pts]))
            if prog in names:
                sx = a.x0 - r.x
                for dy in a.drains:   # every site programmed
                    sy = a.y0 - r.y + dy
                    c.shapes(layout.layer(*pdk.gds(prog))).insert(
                        kdb.Box(sx - via // 2, sy - via // 2, sx + via // 2, sy + via // 2))
            cells[r.cell] = c
        yc = bands[int(band_index(np.array([[r.x, r.y, r.x_end, r.y_end]]), bands)[0])][2]
        nx = r.nx - sum(b - a_ for a_, b in xc if r.x <= a_ < r.x_end) // max(r.dx, 1)
        ny = r.ny - sum(b - a_ for a_, b in yc if r.y <= a_ < r.y_end) // max(r.dy, 1)
        x, y = r.x - int(shift_of(np.array([r.x]), xc)[0]), r.y - int(shift_of(np.array([r.y]), yc)[0])
        top.insert(kdb.CellInstArray(cells[r.cell].cell_index(), kdb.Trans(x, y), kdb.Vector(r.dx, 0),
                                     kdb.Vector(0, r.dy), nx, ny))
