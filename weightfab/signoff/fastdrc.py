"""Fast DRC: prove the file is a small template of itself, check the template, fall back to the
full check wherever the proof does not hold.

A ROM layout is regular: every bit array is one regular reference of one bit-pair cell, and the
programming shapes sit only on bit sites. The fast mode turns that into a proof per file:

1. Read the hierarchy (structure.py): the regular arrays and, flattened, everything else
   ("content": wordline pads, rails, implants, periphery, any stray shape, block cells' shapes
   other than the programming layer).
2. Programming layer: every programming shape must be a box of the via's size exactly on a site
   of a bit array (the readback's stamp finds every shape that is on none). Then by monotonicity
   the file's programming rules are bounded by a template in which every site is programmed: a
   rule may use the programming layer only where more shapes can only add violations (the layer
   itself in width, spacing, area, exact size, separation; the inner layer of an enclosure).
3. Base layers: the layout is cut and glued. Along x (then y), a band of array columns whose
   whole-height strip is periodic (the arrays by construction; the content checked by XOR of the
   strip with itself moved by one period) is removed and the two sides are glued; every shape
   crossing the band is shortened by the band's width. Where the strip is not periodic (a
   changed shape, another array's end, a periphery cell that does not repeat), the band stops a
   halo short of it, so that spot stays in the template as drawn. Every window of the template
   of the rules' interaction distance equals a window of the file; area and edge-length rules
   can only lose area or length by a cut, so a clean template implies a clean file.
4. The template (the compacted content, the compacted arrays, every site programmed) is checked
   with every rule, flat: it is small whatever the model size.

A rule the template fails, or a programming rule when step 2 fails, or every rule when the file
is not a regular weightfab layout, is run by the full check on the file, so the report (counts,
markers) is always the full check's wherever anything is found; the notes say which and why.
"""
from __future__ import annotations

import copy
import math
import time

import klayout.db as kdb
import numpy as np

from ..rom.viastack import program, program_layers
from ..tech.pdk import Pdk
from .drc import DrcReport, _check, _Layers, rule_result, run_drc
from .readback import _stamp, structural_arrays
from .structure import read_structure

BIG = 2 ** 30  # beyond any coordinate (KLayout boxes are 32-bit)
PERIODS = (1, 2, 4, 8, 16)   # content periods tried, in array pitches
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
    (layout, top), full_rules, top_name = plan
    L = _Layers(layout, top, pdk)
    L.flat = True
    results, markers, fails = [], {}, []
    for rule in pdk.rules:
        if rule.name in full_rules:
            results.append(None)
            continue
        res = rule_result(rule, _check(rule, L, layout.dbu), layout.dbu, 0, {})
        if res.count:
            fails.append(rule.name)
        results.append(res)
        if progress is not None:
            progress(len(results), len(pdk.rules), rule.name)
    if fails:
        notes.append(f"the template fails {', '.join(fails)}: checked in full on the file")
    full = set(full_rules) | set(fails)
    if full:
        rep = run_drc(path, pdk, max_examples, rules=full, progress=progress)
        by_name = {r.name: r for r in rep.rules}
        markers, store = rep.markers, rep.store
        results = [by_name[rule.name] if rule.name in full else r for rule, r in zip(pdk.rules, results)]
    else:
        store = None
    rep = DrcReport(str(path), top_name, pdk.dbu_um, tuple(results), 0.0, markers, (store, layout), "fast", ())
    return _with(rep, notes, t0)


def _with(rep: DrcReport, notes: list[str], t0: float) -> DrcReport:
    from dataclasses import replace
    return replace(rep, mode="fast", notes=tuple(notes), seconds=time.perf_counter() - t0)


def _prove(path, pdk: Pdk, notes: list[str]):
    """(template (layout, top), rules to run in full), or None (and a note) for a full check."""
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
    loose = _programming(st, ppdk, arrays)
    if loose:
        notes.append(f"{len(loose):,} programming-layer shapes are not via boxes on bit sites (periphery, or "
                     "edited): checked as drawn")
    return _template(st, ppdk, arrays, loose, notes), full_rules, st.top


def _bit_arrays(st, pdk: Pdk):
    """The PDK programmed on the via the file uses, and the file's bit arrays (readback's Array and
    the structure's ArrayRef of each)."""
    for layer in program_layers(pdk):
        p = program(pdk, layer) if pdk.stack else pdk
        found = structural_arrays(st, p)
        if found and found[0].program_layer == layer:
            refs = []
            for a in found:
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


def _programming(st, pdk: Pdk, refs) -> list[np.ndarray]:
    """The programming-layer shapes that are not via-sized boxes on a bit site, as polygons in top
    coordinates: every shape of a cell holding any other shape, and the off-site boxes."""
    gds = pdk.gds(pdk.programming_layer)
    via = _via(pdk)
    odd = {name for name in st.places if len(st._own_centres(name, gds)[1])
           and not (st._own_centres(name, gds)[1] == via).all()}
    out = []
    for name in odd:
        out += [p for p in st.flat_polygons(gds, skip=set(st.places) - {name})]
    view = copy.copy(st)          # the structure without the odd cells (caches shared)
    view.places = {k: v for k, v in st.places.items() if k not in odd}
    _, loose = _stamp(view, [a for a, _ in refs], gds)
    h = via // 2
    for cx, cy in loose // 2:
        out.append(np.array([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]], np.int64))
    return out


def _via(pdk: Pdk) -> int:
    from ..rom.geometry import RomGeometry
    b = RomGeometry.from_pdk(pdk).prog_box(0, 0)
    return b[2] - b[0]


# -- the template ------------------------------------------------------------------------------

def _layers(pdk: Pdk) -> list[str]:
    names = set()
    for r in pdk.rules:
        names |= _bases(pdk, r)
    return sorted(n for n in names if n in pdk.layers)


def _region(polys) -> kdb.Region:
    r = kdb.Region()
    for p in polys:
        x0, y0 = p.min(axis=0)
        x1, y1 = p.max(axis=0)
        if len(p) == 4 and set(p[:, 0].tolist()) == {x0, x1} and set(p[:, 1].tolist()) == {y0, y1}:
            r.insert(kdb.Box(int(x0), int(y0), int(x1), int(y1)))
        else:
            r.insert(kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in p]))
    return r


def _content(st, pdk: Pdk, names: list[str], bit_cells: set[str]) -> dict[str, kdb.Region]:
    """Everything but the bit arrays and the programming layer, flat, per layer; regular arrays of
    other cells are expanded (they are content like any shape)."""
    out = {}
    for n in names:
        gds = pdk.gds(n)
        polys = st.flat_polygons(gds)
        for r in st.arrays:
            if r.cell in bit_cells:
                continue
            own = [np.rint(p.points * st.scale).astype(np.int64) for p in st.cells[r.cell].get_polygons(
                layer=gds[0], datatype=gds[1])]
            for i in range(r.nx):
                for j in range(r.ny):
                    polys += [p + (r.x + i * r.dx, r.y + j * r.dy) for p in own]
        out[n] = _region(polys)
    return out


def _cuts(refs, content: dict[str, kdb.Region], halo: int, axis: int, span) -> list[tuple[int, int]]:
    """Bands [a, b) along ``axis`` (0: x, 1: y) that can be removed: array columns (rows) whose
    whole strip is periodic, a halo away from anything that is not. One period for the axis: the
    shortest (in array pitches) at which no strip has a defect, else one pitch."""
    d0 = refs[0][1].dx if axis == 0 else refs[0][1].dy
    if any((r.dx if axis == 0 else r.dy) != d0 for _, r in refs) or d0 <= 0:
        return []
    plans = {}
    for t in PERIODS:
        p = t * d0
        m = math.ceil((halo + p) / d0) + 1
        plan = []
        for _, r in refs:
            start, n = (r.x, r.nx) if axis == 0 else (r.y, r.ny)
            if n - 2 * m >= 2 * t:
                a, b = start + m * d0, start + (n - m) * d0
                plan.append((start, a, b, _array_defects(refs, r, axis, a, b, m),
                             _xor_defects(content, axis, a - halo, b + halo, p, halo, span)))
        plans[t] = plan
        if not any(x for *_, x in plan):
            break
    else:
        t = PERIODS[0]
    p, cuts = t * d0, []
    for start, a, b, arr, xor in plans[t]:
        for x0, x1 in _subtract((a, b), arr + xor):
            x0 = start + math.ceil((x0 - start) / d0) * d0
            if x1 - x0 >= p:
                cuts.append((x0, x1))
    out = []
    for a, b in sorted(cuts):            # overlapping bands of arrays in one strip: their union
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return [(a, a + (b - a) // p * p) for a, b in out if b - a >= p]


def _array_defects(refs, me, axis, a, b, m) -> list[tuple[int, int]]:
    out = []
    for _, r in refs:
        if r is me:
            continue
        s, n, d = (r.x, r.nx, r.dx) if axis == 0 else (r.y, r.ny, r.dy)
        e = s + n * d
        if e <= a - m * d or s >= b + m * d:
            continue
        s0 = me.x if axis == 0 else me.y
        if (s - s0) % d:
            out.append((s - m * d, e + m * d))
        else:
            out += [(s - m * d, s + m * d), (e - m * d, e + m * d)]
    return out


def _xor_defects(content, axis, a, b, p, halo, span) -> list[tuple[int, int]]:
    """Where the content in the strip [a, b] is not periodic with period p (expanded by halo + p)."""
    y0, y1 = span
    box = (lambda u, v: kdb.Box(u, y0, v, y1)) if axis == 0 else (lambda u, v: kdb.Box(y0, u, y1, v))
    mv = (p, 0) if axis == 0 else (0, p)
    bad = kdb.Region()
    for reg in content.values():
        if reg.is_empty():
            continue
        one = (reg & kdb.Region(box(a, b - p))).moved(*mv)
        two = reg & kdb.Region(box(a + p, b))
        bad += (one ^ two).extents()
    if bad.is_empty():
        return []
    # the defects grown along the axis and merged: one piece per run of defects in a row or column
    grow = halo + p
    bands = (bad.sized(grow, 0) if axis == 0 else bad.sized(0, grow)).merged()
    out = []
    for poly in bands.each():
        bb = poly.bbox()
        out.append((bb.left, bb.right) if axis == 0 else (bb.bottom, bb.top))
    return out


def _subtract(iv, bad):
    runs = [iv]
    for x0, x1 in sorted(bad):
        nxt = []
        for a, b in runs:
            if x1 <= a or x0 >= b:
                nxt.append((a, b))
                continue
            if x0 > a:
                nxt.append((a, x0))
            if x1 < b:
                nxt.append((x1, b))
        runs = nxt
    return runs


def _union(cuts):
    out = []
    for a, b in sorted(cuts):
        if out and a <= out[-1][1]:
            if (b - a) and a != out[-1][1]:   # overlapping bands of two arrays: keep the first
                continue
        out.append((a, b))
    return out


def _shift(c: int, cuts) -> int:
    return sum(b - a for a, b in cuts if b <= c)


def _compact(reg: kdb.Region, cuts, axis: int) -> kdb.Region:
    if not cuts:
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


def _template(st, pdk: Pdk, refs, loose: list[np.ndarray], notes: list[str]):
    names = [n for n in _layers(pdk) if n != pdk.programming_layer]
    bit_cells = {r.cell for _, r in refs}
    content = _content(st, pdk, names, bit_cells)
    content[pdk.programming_layer] = _region(loose)
    names.append(pdk.programming_layer)
    vmax = max(r.value for r in pdk.rules if r.kind != "area")
    halo = round(4 * vmax / pdk.dbu_um) + round(1.0 / pdk.dbu_um)
    allc = kdb.Region()
    for reg in content.values():
        allc += reg
    bb = allc.bbox()
    for _, r in refs:
        bb += kdb.Box(r.x - halo, r.y - halo, r.x_end + halo, r.y_end + halo)
    xc = _cuts(refs, content, halo, 0, (bb.bottom - halo, bb.top + halo))
    yc = _cuts(refs, content, halo, 1, (bb.left - halo, bb.right + halo))
    layout = kdb.Layout()
    layout.dbu = pdk.dbu_um
    top = layout.create_cell("TEMPLATE")
    for n in names:
        reg = _compact(_compact(content[n], xc, 0), yc, 1)
        top.shapes(layout.layer(*pdk.gds(n))).insert(reg)
    via = _via(pdk)
    cells = {}
    for a, r in refs:
        if r.cell not in cells:
            c = layout.create_cell(f"A{len(cells)}")
            for poly in st.cells[r.cell].get_polygons():
                key = (poly.layer, poly.datatype)
                name = next((n for n in names if pdk.gds(n) == key), None)
                if name is not None:
                    pts = np.rint(poly.points * st.scale).astype(np.int64)
                    c.shapes(layout.layer(*key)).insert(kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in pts]))
            sx = a.x0 - r.x
            for dy in a.drains:   # every site programmed
                sy = a.y0 - r.y + dy
                c.shapes(layout.layer(*pdk.gds(pdk.programming_layer))).insert(
                    kdb.Box(sx - via // 2, sy - via // 2, sx + via // 2, sy + via // 2))
            cells[r.cell] = c
        nx = r.nx - sum(b - a_ for a_, b in xc if r.x <= a_ < r.x_end) // max(r.dx, 1)
        ny = r.ny - sum(b - a_ for a_, b in yc if r.y <= a_ < r.y_end) // max(r.dy, 1)
        x, y = r.x - _shift(r.x, xc), r.y - _shift(r.y, yc)
        top.insert(kdb.CellInstArray(cells[r.cell].cell_index(), kdb.Trans(x, y), kdb.Vector(r.dx, 0),
                                     kdb.Vector(0, r.dy), nx, ny))
    kept = sum(r.nx * r.ny for _, r in refs)
    small = sum(i.size() for i in top.each_inst())
    notes.append(f"template: {small:,} of {kept:,} bit pairs, {len(xc)} x-cuts and {len(yc)} y-cuts; "
                 f"content {allc.count():,} shapes")
    return layout, top
