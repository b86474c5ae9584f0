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

The tap-distance rules (kind max_distance: n diffusion within v of a substrate tap) are local too:
whether a point is within v of a tap depends on the disc of radius v around it, and the cuts stay
2v + 1 µm from anything that does not repeat on the rule's layers. So an array's tap rows (a stack
of runs one tap row apart) are proven once per period, a missing or moved tap row (or a periphery
tap) stops the cuts and stays in the template as drawn, and the file is never read again.

A rule its template fails, a programming rule when step 2 cannot bound it, or every rule when the
file is not a regular weightfab layout, is run by the full check on the file, so the report
(counts, markers) is always the full check's wherever anything is found; the notes say which.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..rom.viastack import program, program_layers
from ..tech.pdk import Pdk
from .drc import DrcReport, _check, _Layers, rule_result, run_drc
from .periodic import Items, Matcher, Refs, bands_of, cuts_for, extents, poly_kinds, stacks, subset
from .template import Builder, Frame, Piece, compact_x, in_cores, piece_items, window
from .taprows import runs_of
from .readback import structural_arrays
from . import drccache, forkpool, twins
from .structure import IDENT, box_transform, read_structure

DEEP_FROM = 15_000   # flattened template shapes from which a template that its cells shrink twice is checked deep
DEEP_ALWAYS = 30_000   # ... and from which any template is
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
    (ctx, md_ctx), full_rules, top_name = plan
    todo = [r for r in pdk.rules if r.name not in full_rules]
    parts = [(ctx, todo)] if md_ctx is ctx else [(ctx, [r for r in todo if r.kind != "max_distance"]),
                                                 (md_ctx, [r for r in todo if r.kind == "max_distance"])]
    grouped = _all_groups([(c, rs) for c, rs in parts if rs])
    notes.append(_template_note([g for _, g in grouped], len(ctx.refs.kind)))
    cache = drccache.Cache()
    results, fails = _check_all(grouped, cache, progress, len(pdk.rules))
    cached = cache.note(sum(len(g) for _, g in grouped))
    if cached:
        notes.append(cached)
    fails = [r.name for r in pdk.rules if r.name in fails]
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
    return replace(rep, mode="fast", notes=tuple(notes), seconds=time.perf_counter() - t0)


def _check_all(grouped, cache: drccache.Cache, progress, total: int) -> tuple[dict, set]:
    """Every template of ``grouped`` built and checked (on every core: forkpool.py), the largest
    first: results per rule and the rules a template fails."""
    tasks = [(c, xc, pieces, rules) for c, groups in grouped for (xc, pieces), rules in groups.items()]
    cost = [len(rules) * _size(c, {n for r in rules for n in _bases(c.pdk, r)}) for c, _, _, rules in tasks]
    order = sorted(range(len(tasks)), key=lambda i: -cost[i])
    results: dict = {}
    fails: set = set()

    def done(_, out):
        res, hit, stored, error = out
        cache.hits += hit
        cache.stored += stored
        cache.error = cache.error or error
        for r in res:
            results[r.name] = r
            if r.count:
                fails.add(r.name)
            if progress is not None:
                progress(len(results), total, r.name)
    forkpool.run(lambda i: _check_template(*tasks[i], cache), order, done=done)
    return results, fails


def _size(ctx, names) -> int:
    """How many items the layers ``names`` hold (the cost of their cuts and templates, roughly)."""
    return sum(len(it.boxes) + len(it.polys) + len(it.refs) for n, it in ctx.items.items() if n in names)


def _check_template(ctx, xc, pieces, rules, cache: drccache.Cache):
    """Build the template of ``rules`` (their cuts) and check them on it, unless it was found
    clean in an earlier run (drccache.py): the rules' results, and whether the cache was hit,
    written and why not."""
    names = sorted({n for r in rules for n in _bases(ctx.pdk, r) if n in ctx.items})
    frame = Frame(pieces, xc, *ctx.yspan)
    b = Builder(ctx, names, frame)
    layout, top = b.build()
    k = drccache.key(layout, rules, ctx.pdk) if cache.dir is not None else ""
    if k and cache.found(k):
        return [rule_result(rule, [], layout.dbu, 0, {}) for rule in rules], 1, 0, ""
    L = _Layers(layout, top, ctx.pdk, threads=0)
    # a large template whose cells (standard cells, bit cells) hold most of its shapes runs
    # deep: a cell's shapes are checked once per context; otherwise flat, where hierarchy costs more
    L.flat = b.flat < DEEP_FROM or (b.flat < 2 * b.hier and b.flat < DEEP_ALWAYS)
    cores = frame.cores() if frame.split else None
    out = []
    for rule in rules:
        found = _check(rule, L, layout.dbu)
        res = rule_result(rule, found, layout.dbu, 0, {})
        if res.count and cores is not None and not in_cores(found, cores):
            res = replace(res, count=0, examples=())   # only beside a split piece's window edge
        out.append(res)
    stored = bool(k) and not any(r.count for r in out) and cache.write(k)
    return out, 0, int(stored), cache.error


class _Ctx:
    """What the templates are made of: the file's structure, bit arrays, items per layer, references."""

    def __init__(self, st, pdk, arrays, items, refs, notes):
        self.st, self.pdk, self.arrays, self.items, self.refs = st, pdk, arrays, items, refs
        self.notes = notes
        self.match: dict = {}
        self.via = _via(pdk)
        ys = [np.concatenate([it.boxes[:, [1, 3]], it.poly_bb[:, [1, 3]]]) for it in items.values()]
        ys += [refs.bbox[:, [1, 3]], np.array([[r.y, r.y_end] for _, r in arrays], np.int64)]
        ys = np.concatenate(ys)
        self.yspan = (int(ys.min()), int(ys.max()))


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
    _, flat_cells = _kinds(st, ppdk.gds(prog))
    loose_b, loose_p = _programming(st, ppdk, [a for a, _ in arrays], flat_cells)
    n_loose = len(loose_b) + len(loose_p)
    if n_loose:
        notes.append(f"{n_loose:,} programming-layer shapes of flattened cells are not via boxes on bit sites "
                     "(periphery, or edited): checked as drawn")
    md = [r for r in ppdk.rules if r.kind == "max_distance" and r.name not in full_rules]
    twin_of, boxes = _twins(st, ppdk, [r for r in ppdk.rules if r.kind != "max_distance"], loose_b, loose_p)
    if not twin_of:
        ctx = _context(st, ppdk, arrays, _layers(ppdk), (loose_b, loose_p), notes)
        return (ctx, ctx), full_rules, st.top
    by = {}
    for n, k in twin_of.items():
        by.setdefault(k, []).append(n)
    notes.append("engines equal but for their programming, checked as one (max_distance rules on the whole file): "
                 + "; ".join(f"{', '.join(sorted(v))} as {k}" for k, v in sorted(by.items())))
    md_ctx = _context(st, ppdk, arrays, _layers(ppdk, md), (loose_b, loose_p), notes) if md else None
    st2 = st.without(twin_of)
    kept = set(st2.arrays)
    loose = twins.outside(loose_b, loose_p, [boxes[n] for n in twin_of])
    ctx = _context(st2, ppdk, [(a, r) for a, r in arrays if r in kept], _layers(ppdk), loose, notes)
    return (ctx, md_ctx), full_rules, st.top


def _twins(st, ppdk: Pdk, rules, loose_b, loose_p):
    """Engine cells left out of the templates of ``rules`` (twins.py), each with the one that
    stays, and the engine cells' bounding boxes."""
    layers = {ppdk.gds(n) for n in _layers(ppdk, rules)}
    return twins.find(st, ppdk.gds(ppdk.programming_layer), _halo(ppdk, rules), layers, loose_b, loose_p)


def _context(st, ppdk: Pdk, arrays, names: list[str], loose, notes: list[str]) -> "_Ctx":
    """Items per layer of ``names`` and the kept references of the structure ``st``."""
    prog = ppdk.programming_layer
    bit_cells = {r.cell for _, r in arrays}
    ref_cells, flat_cells = _kinds(st, ppdk.gds(prog))
    refs = _refs(st, ref_cells, [r for r in st.arrays if r.cell not in bit_cells])
    table: dict = {}
    items = {}
    having: dict = {}
    for c in flat_cells:
        for g in st.own_layers(c):
            having.setdefault(g, []).append(c)
    for n in names:
        if n == prog:
            b, ps = loose
        else:
            b, ps = st.flat_shapes(ppdk.gds(n), having.get(ppdk.gds(n), []))
        bb, kinds = poly_kinds(ps, table)
        has = np.array([ppdk.gds(n) in _cell_layers(st, c) for c, _ in refs.kinds], bool)
        items[n] = Items(b, ps, bb, kinds, np.flatnonzero(has[refs.kind]) if len(refs.kind) else refs.kind)
    return _Ctx(st, ppdk, arrays, items, refs, notes)


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


def _layers(pdk: Pdk, rules=None) -> list[str]:
    names = set()
    for r in pdk.rules if rules is None else rules:
        names |= _bases(pdk, r)
    return sorted(n for n in names if n in pdk.layers)


def _cell_layers(st, name: str) -> set:
    cache = st.__dict__.setdefault("_full_layers", {})
    if name not in cache:
        cache[name] = st.cell_layers(name)
    return cache[name]


def _kinds(st, prog_gds) -> tuple[list[str], list[str]]:
    """Cells kept whole (placed more than once, holding no reference and some layer besides the
    programming layer) and cells flattened (every other placed cell); found once per structure."""
    memo = st.__dict__.setdefault("_kinds", {})
    if prog_gds in memo:
        return memo[prog_gds]
    ref_cells, flat_cells = [], []
    for name, groups in st.places.items():
        cell = st.cells[name]
        many = sum(len(org) for _, org in groups) > 1
        if many and not cell.references and st.own_layers(name) - {prog_gds}:
            ref_cells.append(name)
        else:
            flat_cells.append(name)
    memo[prog_gds] = ref_cells, flat_cells
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
    """Per centre (x2): the index of the array it is a bit site of, else -1. Each centre is tested
    against the one array whose sites' box could hold it (``_candidates``), or against every
    array when the boxes are not laid out apart."""
    k = np.full(len(c2), -1, np.int64)
    cand = _candidates(c2, _site_boxes(arrays)) if len(c2) else None
    if cand is not None:
        order = np.argsort(cand, kind="stable")
        ends = np.searchsorted(cand[order], np.arange(len(arrays) + 1))
    for i, a in enumerate(arrays):
        at = order[ends[i]:ends[i + 1]] if cand is not None else slice(None)
        p = c2[at]
        cx, rx = np.divmod(p[:, 0] - 2 * a.x0, 2 * a.px)
        iy, ry = np.divmod(p[:, 1] - 2 * a.y0, 2 * a.py)
        ok = ((rx == 0) & (cx >= 0) & (cx < a.cols) & (iy >= 0) & (iy < a.rows // 2)
              & ((ry == 2 * a.drains[0]) | (ry == 2 * a.drains[1])))
        if cand is not None:
            k[at[ok]] = i
        else:
            k[ok & (k < 0)] = i
    return k


def _site_boxes(arrays) -> np.ndarray:
    """Per array, the box (x2) of its sites' centres."""
    return np.array([[2 * a.x0, 2 * a.y0 + 2 * min(a.drains), 2 * a.x0 + (a.cols - 1) * 2 * a.px,
                      2 * a.y0 + (a.rows // 2 - 1) * 2 * a.py + 2 * max(a.drains)] for a in arrays],
                    np.int64).reshape(-1, 4)


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
    box = _site_boxes(arrays)
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
    offset. Each placement is tried against the one array that could hold it (``_candidates``);
    when the arrays do not lie in columns apart along x, each stacked apart along y, every array
    is tried."""
    p0, p1 = 2 * org + lo[pc], 2 * org + hi[pc]
    cand = _candidates(p0, box)
    cand = [cand] if cand is not None else [np.full(len(org), i, np.int64) for i in range(len(box))]
    good = np.zeros(len(org), bool)
    for i in cand:
        b = box[i]
        inside = (p0[:, 0] >= b[:, 0]) & (p1[:, 0] <= b[:, 2]) & (p0[:, 1] >= b[:, 1]) & (p1[:, 1] <= b[:, 3])
        good |= inside & (np.mod(2 * org - par[i, :2], par[i, 2:]) == res[pc]).all(axis=1)
    return good


def _candidates(p0: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """Per point, the only array whose box could hold it: arrays grouped in columns of equal x
    extent (an engine's runs between tap rows), the columns apart along x and the arrays of a
    column apart along y; the column left of the point, then the array below it (two searches).
    None when the boxes are not laid out so."""
    cols, col_of = np.unique(box[:, [0, 2]], axis=0, return_inverse=True)
    if len(cols) > 1 and not (cols[1:, 0] > cols[:-1, 1]).all():
        return None
    out = np.zeros(len(p0), np.int64)
    col = np.maximum(np.searchsorted(cols[:, 0], p0[:, 0], side="right") - 1, 0)
    for c in range(len(cols)):
        members = np.flatnonzero(col_of.ravel() == c)
        members = members[np.argsort(box[members, 1], kind="stable")]
        if len(members) > 1 and not (box[members[1:], 1] > box[members[:-1], 3]).all():
            return None
        at = np.flatnonzero(col == c)
        out[at] = members[np.maximum(np.searchsorted(box[members, 1], p0[at, 1], side="right") - 1, 0)]
    return out


# -- rules, cuts and templates -------------------------------------------------------------------

def _all_groups(parts) -> list[tuple["_Ctx", dict]]:
    """Per part (context, rules): its rules by their cuts, (x-cuts, pieces (template.Piece)) ->
    rules, each rule cut on the layers it reads; along y each column band (content separated by an
    empty gap wider than the halo) is cut on its own, or split at its arrays' x-edges where that
    removes more. The cuts of each set of layers are found on every core (forkpool.py), the
    largest sets first."""
    sets = []
    for k, (ctx, rules) in enumerate(parts):
        by_layers: dict = {}
        for rule in rules:
            by_layers.setdefault(tuple(sorted(n for n in _bases(ctx.pdk, rule) if n in ctx.items)), []).append(rule)
        sets += [(k, layers, rs) for layers, rs in by_layers.items()]
    bits = [stacks([r for _, r in ctx.arrays]) for ctx, _ in parts]
    order = sorted(range(len(sets)), key=lambda i: -_size(parts[sets[i][0]][0], set(sets[i][1])))

    def cut(i):
        k, layers, rs = sets[i]
        return _cuts(parts[k][0], layers, bits[k], _halo(parts[k][0].pdk, rs))
    found = dict(zip(order, forkpool.run(cut, order)))
    out = [(ctx, {}) for ctx, _ in parts]
    for i, (k, _, rs) in enumerate(sets):
        out[k][1].setdefault(found[i], []).extend(rs)
    return out


def _template_note(groups: list[dict], kept: int) -> str:
    out = {k: v for g in groups for k, v in g.items()}
    nb = sorted({len(b) for _, b in out})
    ny = sum(len(pc.yc) for _, b in out for pc in b)
    ns = sum(1 for _, b in out for pc in b if pc.halo)
    return (f"templates: {sum(len(g) for g in groups)}, x-cuts {'/'.join(str(n) for n in sorted({len(x) for x, _ in out}))}, "
            f"pieces {'/'.join(map(str, nb))} ({ns} split at arrays), y-cuts {ny} in all; "
            f"{kept:,} cell placements kept whole")


def _halo(pdk: Pdk, rules) -> int:
    """How far (dbu) the cuts stay from anything that does not repeat, for ``rules``: four times
    their largest distance plus 1 µm (an area rule reaches no farther than its polygon; a
    max_distance rule, ``layer`` not within v of ``other``, reaches v: twice that)."""
    v = max((r.value * (0.5 if r.kind == "max_distance" else 1.0) for r in rules if r.kind != "area"), default=0.0)
    return round(4 * v / pdk.dbu_um) + round(1.0 / pdk.dbu_um)


def _matchers(ctx: _Ctx, layers, axis: int, key: tuple, pick):
    """Matchers (and their caches) of ``layers`` along ``axis`` on the items ``pick`` chooses."""
    ms, cs = [], []
    for n in layers:
        k = (n, axis) + key
        if k not in ctx.match:
            ctx.match[k] = (Matcher(pick(ctx.items[n]), ctx.refs, axis), {})
        ms.append(ctx.match[k][0])
        cs.append(ctx.match[k][1])
    return ms, cs


def _cuts(ctx: _Ctx, layers, bit, halo: int):
    """(x-cuts, pieces) of ``layers``: x-cuts over the whole file, then per column band its y-cuts
    (the band whole, or split at its arrays' x-edges)."""
    xc = tuple(cuts_for(*_matchers(ctx, layers, 0, (), lambda it: it), bit, 0, halo))
    ext = [extents(ctx.items[n], ctx.refs) for n in layers] + [np.array([[r.x, r.x_end] for r in bit], np.int64)]
    pieces = []
    for b0, b1 in bands_of(np.concatenate(ext), halo):
        arrs = [r for r in bit if b0 <= r.x and r.x_end <= b1]
        yc = ()
        if arrs:
            ms, cs = _matchers(ctx, layers, 1, (b0, b1), lambda it: subset(it, ctx.refs, b0, b1))
            yc = tuple(cuts_for(ms, cs, arrs, 1, halo))
        pieces += _split(ctx, layers, Piece(b0, b1, yc, 0), arrs, xc, halo)
    return xc, tuple(pieces)


def _split(ctx: _Ctx, layers, whole: Piece, arrs, xc, halo: int) -> list[Piece]:
    """The column band ``whole``, or its parts between its arrays' x-edges, each with its own
    y-cuts proven on the items its window meets (template.py), when they keep less: the content
    beside an array (a row decoder's metal) may differ from row to row where the array repeats."""
    seams = sorted({v for r in arrs for v in (r.x, r.x_end) if whole.c0 < v < whole.c1})
    if not seams:
        return [whole]
    edges = [whole.c0, *seams, whole.c1]
    parts = []
    for c0, c1 in zip(edges[:-1], edges[1:]):
        pc = Piece(c0, c1, (), halo)
        lo, hi = window(pc, xc)
        near = [r for r in arrs if compact_x([r.x_end], xc)[0] >= lo and compact_x([r.x], xc)[0] <= hi]
        if near:
            ms, cs = _matchers(ctx, layers, 1, (c0, c1, halo, xc), lambda it: piece_items(it, ctx.refs, pc, xc))
            pc = pc._replace(yc=tuple(cuts_for(ms, cs, near, 1, halo)))
        parts.append(pc)
    height = ctx.yspan[1] - ctx.yspan[0]

    def kept(pc, extra):
        a, b = compact_x([pc.c0, pc.c1], xc).tolist()
        return (b - a + extra) * (height - sum(v - u for u, v in pc.yc))
    if sum(kept(pc, 2 * halo) for pc in parts) < kept(whole, 0):
        return parts
    return [whole]
