"""Readback: recover every weight bit from the layout geometry alone, and compare.

No cell names, properties, labels or side files are used. The arrays are found from the
implant (nsdm) areas; each array's column pitch, island pitch and origin are measured on
the diffusion, and the drain-contact rows on the contacts of the first island. The
programming shapes are mapped to (column, wordline) sites with numpy: from the file's
hierarchy, each block cell's shapes once, placed at all its placements by broadcasting
(sites.py); from a file without regular arrays, flattened, one transformation per instance
group. Only readback and DRC use KLayout.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..mapping.dedup import to_bits
from .drc import read_layout
from ..errors import LayoutReadError
from ..tech.pdk import Pdk
from ..quant.quantize import QuantizedNetwork
from ..rom.geometry import RomGeometry
from ..rom.viastack import program, program_layers
from .sites import Grid, claim, pieces, stamp
from .taprows import drop_tap_rows, island_slots, join_tap_runs, physical, site_y
from .tiecols import col_x, drop_ties, join_tie_groups, merge_bits, split
from .structure import read_structure


@dataclass(frozen=True)
class Array:
    """One engine as measured on the layout (database units)."""

    x0: int       # centre x of column 0
    y0: int       # bottom y of island 0
    px: int
    py: int
    cols: int
    rows: int     # wordlines = 2 · islands
    drains: tuple[int, int]  # drain-contact centre offsets of wordline 2r and 2r+1
    bbox: tuple[int, int, int, int]
    program_layer: str = ""  # the PDK layer the bits are programmed on, found on the layout
    tap_slots: tuple[int, ...] = ()  # island slots (0 = island 0's) holding a substrate tap row (taprows.py)
    tie_every: int = 0    # a tie column (wordline straps) every tie_every columns (tiecols.py); 0: none
    tie_width: int = 0    # what a tie column adds to the column pitch


@dataclass(frozen=True)
class Mismatch:
    layer: int
    layer_name: str
    channel: int
    weight: int
    bit: int
    kind: str          # "missing" (expected 1, no shape), "extra" (shape on a 0), "stray" (off-site)
    x_um: float
    y_um: float

    def __str__(self) -> str:
        where = f"at ({self.x_um:.3f}, {self.y_um:.3f}) µm"
        if self.kind == "stray":
            return f"stray programming shape {where} (not on a bit site)"
        return (f"layer {self.layer} '{self.layer_name}' channel {self.channel} weight {self.weight} bit {self.bit}: "
                f"{'missing programming shape' if self.kind == 'missing' else 'extra programming shape'} {where}")


MAX_LISTED = 1000  # mismatches listed per layer (and stray shapes listed); every one is counted


@dataclass
class VerifyResult:
    file: str
    total_bits: int
    matched: int
    mismatches: list[Mismatch]          # the listed ones: at most MAX_LISTED per layer and of strays
    weights: list[np.ndarray] | None   # integer weights read back, per layer
    arrays: list[Array]
    seconds: float
    program_layer: str = ""  # found on the layout (the via under the bitline metal)
    mismatch_count: int = -1  # every mismatch (bits that differ + stray shapes); -1: len(mismatches)

    def __post_init__(self):
        if self.mismatch_count < 0:
            self.mismatch_count = len(self.mismatches)

    @property
    def ok(self) -> bool:
        return self.mismatch_count == 0

    @property
    def capped(self) -> bool:
        """Whether ``mismatches`` lists fewer than ``mismatch_count``."""
        return len(self.mismatches) < self.mismatch_count

    def summary(self) -> dict:
        return {"ok": self.ok, "program_layer": self.program_layer, "bits": self.total_bits, "matched": self.matched,
                "mismatch_count": self.mismatch_count, "bits_differ": self.total_bits - self.matched,
                "stray_shapes": self.mismatch_count - (self.total_bits - self.matched),
                "mismatches": [m.__dict__ for m in self.mismatches[:100]],
                "mismatches_listed": min(100, len(self.mismatches)),
                "seconds": round(self.seconds, 4)}


def _boxes(it: kdb.RecursiveShapeIterator) -> np.ndarray:
    out = []
    while not it.at_end():
        b = it.shape().bbox().transformed(it.trans())
        out.append((b.left, b.bottom, b.right, b.top))
        it.next()
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def flat_centres(layout: kdb.Layout, top: kdb.Cell, layer: int) -> np.ndarray:
    """Centres (×2, to stay integral) of every shape on ``layer`` under ``top``, [P, 2] int64.

    Cells are visited bottom-up; a cell's points are its own shapes plus each child's
    points moved by every placement of that child, done as one numpy broadcast per
    (child, orientation) group.
    """
    pts: dict[int, np.ndarray] = {}
    wanted = set(top.called_cells()) | {top.cell_index()}
    for ci in layout.each_cell_bottom_up():
        if ci not in wanted:
            continue
        cell = layout.cell(ci)
        own = []
        for s in cell.shapes(layer).each():
            b = s.bbox()
            own.append((b.left + b.right, b.bottom + b.top))
        parts = [np.array(own, np.int64).reshape(-1, 2)]
        groups: dict[tuple[int, int], list] = {}
        for inst in cell.each_inst():
            child = inst.cell_index
            if pts[child].size == 0:
                continue
            ct = inst.cplx_trans
            if not ct.is_ortho() or ct.is_mag():
                raise LayoutReadError(f"cell '{cell.name}': instance with a non-orthogonal or magnified "
                                      "transformation is not a weightfab layout")
            t = inst.trans
            disp = np.array([[2 * t.disp.x, 2 * t.disp.y]], np.int64)
            if inst.is_regular_array():
                ia, ib = np.meshgrid(np.arange(inst.na), np.arange(inst.nb), indexing="ij")
                a, b = inst.a, inst.b
                disp = disp + 2 * np.stack([ia.ravel() * a.x + ib.ravel() * b.x, ia.ravel() * a.y + ib.ravel() * b.y], 1)
            groups.setdefault((child, t.rot), []).append(disp)
        for (child, rot), disps in groups.items():
            m = kdb.Trans(rot, False, 0, 0) if rot < 4 else kdb.Trans(rot - 4, True, 0, 0)
            ex, ey = m * kdb.Point(1, 0), m * kdb.Point(0, 1)
            mat = np.array([[ex.x, ey.x], [ex.y, ey.y]], np.int64)
            local = pts[child] @ mat.T
            d = np.concatenate(disps)
            parts.append((local[None, :, :] + d[:, None, :]).reshape(-1, 2))
        pts[ci] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return pts[top.cell_index()]


def find_arrays(layout: kdb.Layout, top: kdb.Cell, pdk: Pdk, path) -> list[Array]:
    """Locate the ROM arrays and measure their grids on the base layers. Only diffusion of a bit
    pair's size (``_islands``) is measured: a macro's periphery diffusion inside or beside an array
    area (drivers, sense and precharge transistors, taps) is not part of the array."""
    idx = {n: layout.find_layer(*pdk.role_gds(n)) for n in ("diff", "licon")}
    marker = "nsdm" if pdk.has("nsdm") else "diff"
    mark_idx = layout.find_layer(*pdk.role_gds(marker))
    if mark_idx is None or idx["diff"] is None:
        raise LayoutReadError(f"{path}: no ROM arrays found (no {marker} {pdk.role_gds(marker)} or diffusion "
                              f"{pdk.role_gds('diff')} shapes): not a weightfab layout for PDK {pdk.name}")
    diff = kdb.Region(top.begin_shapes_rec(idx["diff"]))
    islands, areas = kdb.Region(), kdb.Region()
    for (w, h), (gx, gy) in _bitpair_sizes(pdk).items():
        isl = diff.with_bbox_width(w, False).with_bbox_height(h, False)
        islands += isl
        # n+ implicit (no implant drawn): an array is its bit-pair islands grown by half the
        # column and island gaps (the largest over the programming layers of this island size),
        # merged into one rectangle; a lone island of that size (a transistor pair of the
        # periphery drawn like a bit pair) is no array
        areas += isl.sized(gx, gy, 2).merged().interacting(isl, 2)
    if marker == "nsdm":
        implants = kdb.Region(top.begin_shapes_rec(mark_idx)).merged().interacting(islands)
    else:
        implants = areas
    # a macro's periphery: implant under standard cells (areaid_sc) or over taps is no array
    for name in ("areaid_sc", "tap"):
        li = layout.find_layer(*pdk.gds(name)) if name in pdk.layers else None
        if li is not None:
            implants = implants.not_interacting(kdb.Region(top.begin_shapes_rec(li)))
    grow = None if marker == "nsdm" else _implicit_grow(pdk)
    arrays = [_measure(layout, top, pdk, path, islands, idx["licon"], poly.bbox(), grow) for poly in implants.each()]
    return join_tap_runs(arrays)


def _tie_width(pdk: Pdk) -> int:
    """What a tie column adds to the column pitch on this PDK (0: its arrays are not strapped)."""
    tie = RomGeometry.from_pdk(pdk).tie
    return tie.width if tie is not None else 0


def _tie_ys(pdk: Pdk, layer: str) -> tuple[int, int] | None:
    """The y of a tie column's two contacts in an island's slot, where the arrays programmed on
    ``layer`` are strapped."""
    tie = RomGeometry.from_pdk(program(pdk, layer) if pdk.stack else pdk).tie
    return None if tie is None else (tie.ya, tie.yb)


def _columns(xs: np.ndarray, width: int, where: str) -> tuple[int, int, int]:
    """Column pitch, tie_every and tie_width of a row of column centres ``xs``: one pitch, or
    groups of equal size one tie column (``width`` more than a pitch) apart."""
    px = int(xs[1] - xs[0]) if len(xs) > 1 else 1
    d = np.diff(xs)
    if not len(d) or np.all(d == px):
        return px, 0, 0
    gaps = np.flatnonzero(d != px)
    every = int(gaps[0]) + 1
    if width and np.all(d[gaps] == px + width) and np.array_equal(gaps, np.arange(every - 1, len(d), every)):
        return px, every, width
    raise LayoutReadError(f"{where} has an irregular diffusion grid: not a weightfab ROM array")


def _bitpair_sizes(pdk: Pdk) -> dict[tuple[int, int], tuple[int, int]]:
    """(width, length) of a bit pair's diffusion island over the programming layers the PDK
    offers, each with the growth (x, y) that joins neighbouring islands of its arrays."""
    out: dict[tuple[int, int], tuple[int, int]] = {}
    for g in (RomGeometry.from_pdk(program(pdk, p)) for p in program_layers(pdk)):
        key, gx, gy = (g.c.diff_width, g.island), (g.px - g.c.diff_width) // 2 + 1, (g.py - g.island) // 2 + 1
        ox, oy = out.get(key, (0, 0))
        out[key] = (max(ox, gx), max(oy, gy))
    return dict(sorted(out.items()))


def _within(region: kdb.Region, box: kdb.Box) -> np.ndarray:
    """Boxes (x0, y0, x1, y1) of the shapes of ``region`` that overlap or touch ``box``."""
    return np.array([(b.left, b.bottom, b.right, b.top) for b in
                     (p.bbox() for p in region.interacting(kdb.Region(box)).each())], np.int64).reshape(-1, 4)


def _measure(layout: kdb.Layout, top: kdb.Cell, pdk: Pdk, path, islands: kdb.Region, licon, bb: kdb.Box,
             grow: int | None) -> Array:
    """One array's grid: the corner island, then the islands along the bottom row and up the first
    column. Its outline: the implant area ``bb``, or without an implant its islands grown by
    ``grow`` (the outline ``structural_arrays`` gives)."""
    probe = 8_000  # dbu window at the implant's lower-left corner
    corner = _within(islands, kdb.Box(bb.left, bb.bottom, bb.left + probe, bb.bottom + probe))
    if len(corner) == 0:
        raise LayoutReadError(f"{path}: implant area at ({bb.left * layout.dbu:.3f}, {bb.bottom * layout.dbu:.3f}) µm "
                              "holds no diffusion at its corner: not a weightfab ROM array")
    yb0 = int(corner[:, 1].min())
    row = _within(islands, kdb.Box(bb.left, yb0, bb.right, yb0 + 1))
    row = row[np.argsort(row[:, 0])]
    yb = row[0, 1]
    xs = (row[:, 0] + row[:, 2]) // 2
    x0 = int(xs[0])
    col_strip = _within(islands, kdb.Box(x0, bb.bottom, x0 + 1, bb.top))
    col_strip = col_strip[np.argsort(col_strip[:, 1])]
    ys = col_strip[:, 1]
    where = f"{path}: array at ({bb.left * layout.dbu:.3f}, {bb.bottom * layout.dbu:.3f}) µm"
    px, every, tie_w = _columns(xs, _tie_width(pdk), where)
    py = int(ys[1] - ys[0]) if len(ys) > 1 else 1
    if len(ys) > 1 and np.any(np.diff(ys) != py):
        raise LayoutReadError(f"{where} has an irregular diffusion grid: not a weightfab ROM array")
    island = col_strip[0]
    lic = _boxes(top.begin_shapes_rec_touching(licon, kdb.Box(*(int(v) for v in island)))) if licon is not None else np.zeros((0, 4))
    cy = np.sort((lic[:, 1] + lic[:, 3]) // 2 - yb)
    if len(cy) != 3:
        raise LayoutReadError(f"{path}: first island of the array at ({bb.left * layout.dbu:.3f}, "
                              f"{bb.bottom * layout.dbu:.3f}) µm has {len(cy)} contacts, a bit pair has 3")
    prog = _program_layer(layout, top, pdk, x0, int(yb) + int(cy[0]), py)
    outline = (bb.left, bb.bottom, bb.right, bb.top) if grow is None else \
        (int(row[0, 0]) - grow, int(yb) - grow, int(row[-1, 2]) + grow, int(col_strip[-1, 3]) + grow)
    return Array(x0, int(yb), px, py, len(xs), 2 * len(ys), (int(cy[0]), int(cy[2])), outline, prog,
                 tie_every=every, tie_width=tie_w)


def _program_layer(layout: kdb.Layout, top: kdb.Cell, pdk: Pdk, x: int, y: int, py: int) -> str:
    """The programming layer of an array, from its first bit site (x, y): the bitline is the
    highest metal of the PDK's via stack with a shape over the site at least an island pitch
    tall (the stack's pads are shorter); the programming layer is the via below it."""
    stack = pdk.stack
    for j in range(len(stack) - 1, 1, -2):          # metals from the top, down to the first above li
        idx = layout.find_layer(*pdk.gds(stack[j]))
        if idx is not None and np.any(np.diff(_boxes(top.begin_shapes_rec_touching(
                idx, kdb.Box(x, y, x + 1, y + 1)))[:, 1::2], axis=1) >= py):
            return stack[j - 1]
    return program_layers(pdk)[0]


def read_bits(path: str | Path, pdk: Pdk) -> tuple[list[Array], list[np.ndarray], list[tuple[int, int]], float]:
    """Bits of every array ([cols, rows] uint8) and the stray shapes (µm·2 integer centres, the
    first MAX_LISTED of them)."""
    arrays, bits, stray, _, dbu = _read_bits(path, pdk)
    return arrays, bits, stray, dbu


def _read_bits(path: str | Path, pdk: Pdk):
    """read_bits, and the number of stray shapes. The file's hierarchy (structure.py) gives the
    arrays and the programming shapes without a Python loop per placement; a file whose arrays are
    not regular references (a flattened copy, another writer) is read geometrically with KLayout."""
    st = _structure(path, pdk)
    if st is not None:   # only the layers read here: an array's own contacts and metal stay unread
        st.prefill(list(st.places), layers={pdk.gds(v) for v in {*program_layers(pdk), pdk.programming_layer}}
                   | ({pdk.role_gds("nsdm")} if pdk.has("nsdm") else set()))
    arrays = structural_arrays(st, pdk) if st is not None else []
    if arrays:   # block cells mapped to sites once, placed by broadcasting (sites.py): no loop per placement
        parts, counts = split([physical(a) for a in arrays])
        bits, loose = _stamp(st, parts, pdk.gds(_one_program_layer(arrays, pdk, path)))
        dbu = pdk.dbu_um
    else:
        layout, top = read_layout(path)
        arrays = find_arrays(layout, top, pdk, path)
        prog = layout.find_layer(*pdk.gds(_one_program_layer(arrays, pdk, path)))
        pts = flat_centres(layout, top, prog) if prog is not None else np.zeros((0, 2), np.int64)
        parts, counts = split([physical(a) for a in arrays])
        bits, claimed = _assign(parts, pts)
        loose, dbu = pts[~claimed], layout.dbu
    bits, on_taps = drop_tap_rows(arrays, merge_bits(bits, counts))
    loose = drop_ties(_in_arrays(loose, arrays), arrays, _tie_ys(pdk, _one_program_layer(arrays, pdk, path)),
                      island_slots)
    loose = np.concatenate([loose, on_taps])
    loose = loose[np.lexsort((loose[:, 1], loose[:, 0]))]     # listed by position, whichever path read them
    stray = [(int(px), int(py)) for px, py in loose[:MAX_LISTED]]
    return arrays, bits, stray, len(loose), dbu


def _in_arrays(pts: np.ndarray, arrays: list[Array]) -> np.ndarray:
    """The off-site programming shapes (centres x2) that lie inside an array's implant box: the
    vias of a macro's periphery (decoder, sensing, power) are outside every array, not strays."""
    if not len(pts) or not arrays:
        return pts
    b = np.array([a.bbox for a in arrays], np.int64) * 2
    inside = ((pts[:, None, 0] >= b[None, :, 0]) & (pts[:, None, 0] <= b[None, :, 2])
              & (pts[:, None, 1] >= b[None, :, 1]) & (pts[:, None, 1] <= b[None, :, 3])).any(axis=1)
    return pts[inside]


def _structure(path, pdk: Pdk):
    return read_structure(path, pdk.dbu_um) if Path(path).is_file() else None


def _stamp(st, arrays: list[Array], layer) -> tuple[list[np.ndarray], np.ndarray]:
    """Bits of each array from a file read by structure.py, and the programming-shape centres (x2)
    that are on no site: each block cell's shapes are mapped to sites once and placed at all its
    placements by broadcasting (sites.py)."""
    g = Grid.of(arrays)
    buf = g.buffer()
    loose = stamp(g, buf, *pieces(st, layer))
    return g.bits(buf), loose


def _assign(arrays: list[Array], pts: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Bits [cols, rows] of each array from the programming-shape centres (x2) ``pts``, and which
    centres landed on a site (sites.claim: each centre given the array whose implant box starts
    left of it, then its column and wordline)."""
    g = Grid.of(arrays)
    buf = g.buffer()
    claimed = claim(g, buf, pts)
    return g.bits(buf), claimed


def _one_program_layer(arrays: list[Array], pdk: Pdk, path) -> str:
    found = sorted({a.program_layer for a in arrays})
    if len(found) > 1:
        raise LayoutReadError(f"{path}: the arrays are programmed on different layers ({', '.join(found)})")
    return found[0] if found else pdk.programming_layer


def structural_arrays(st, pdk: Pdk) -> list[Array]:
    """The ROM arrays of a file read by structure.py: every regular array of a cell holding one
    diffusion island with three contacts (a bit pair), measured on that cell; the implant box
    around it as on the geometric path. Empty when there is none."""
    diff, lic = pdk.role_gds("diff"), pdk.role_gds("licon")
    vias = [(v, pdk.gds(v)) for v in program_layers(pdk)]
    implants = _implant_boxes(st, pdk)
    grow = None if implants is not None else _implicit_grow(pdk)
    arrays, memo = [], {}
    for r in st.arrays:
        if r.cell not in memo:
            d, c = st.cell_boxes(r.cell, diff), st.cell_boxes(r.cell, lic)
            inside = c[(c[:, 0] >= d[0, 0]) & (c[:, 2] <= d[0, 2]) & (c[:, 1] >= d[0, 1]) & (c[:, 3] <= d[0, 3])] \
                if len(d) == 1 else c[:0]
            layers = st.cell_layers(r.cell)
            prog = next((v for v, g in vias if g not in layers), vias[-1][0])
            memo[r.cell] = (d, np.sort((inside[:, 1] + inside[:, 3]) // 2), prog) if len(inside) == 3 else None
        m = memo[r.cell]
        if m is None:
            continue
        d, cy, prog = m
        x0, y0 = r.x + int(d[0, 0] + d[0, 2]) // 2, r.y + int(d[0, 1])
        px, py = (r.dx if r.nx > 1 else 1), (r.dy if r.ny > 1 else 1)
        x_last, y_top = x0 + (r.nx - 1) * r.dx, y0 + (r.ny - 1) * r.dy + int(d[0, 3] - d[0, 1])
        hw = int(d[0, 2] - d[0, 0]) // 2
        if implants is None:
            bbox = (x0 - hw - grow, y0 - grow, x_last + hw + grow, y_top + grow)
        else:
            bbox = _around(implants, (x0 - hw, y0, x_last + hw, y_top))
            if bbox is None:
                continue
        arrays.append(Array(x0, y0, px, py, r.nx, 2 * r.ny, (int(cy[0]) - int(d[0, 1]), int(cy[2]) - int(d[0, 1])),
                            bbox, prog))
    return join_tie_groups(join_tap_runs(arrays), _tie_width(pdk))


def _implant_boxes(st, pdk: Pdk) -> np.ndarray | None:
    """Bounding boxes of the n-implant shapes outside the arrays (None where none is drawn)."""
    if not pdk.has("nsdm"):
        return None
    boxes, polys = st.flat_shapes(pdk.role_gds("nsdm"))
    if not polys:
        return boxes
    return np.concatenate([boxes, np.array([(p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())
                                            for p in polys], np.int64).reshape(-1, 4)])


def _around(boxes: np.ndarray, area) -> tuple[int, int, int, int] | None:
    """The bounding box of the implant shapes that cover ``area`` and of all shapes touching them."""
    hit = (boxes[:, 0] <= area[0]) & (boxes[:, 1] <= area[1]) & (boxes[:, 2] >= area[2]) & (boxes[:, 3] >= area[3])
    if not hit.any():
        return None
    while True:
        bb = (boxes[hit, 0].min(), boxes[hit, 1].min(), boxes[hit, 2].max(), boxes[hit, 3].max())
        more = hit | ((boxes[:, 0] <= bb[2]) & (boxes[:, 2] >= bb[0]) & (boxes[:, 1] <= bb[3]) & (boxes[:, 3] >= bb[1]))
        if more.sum() == hit.sum():
            return tuple(int(v) for v in bb)
        hit = more


def _implicit_grow(pdk: Pdk) -> int:
    return max(max(g.px - g.d.diff_width, g.py - g.island) // 2 + 1
               for g in (RomGeometry.from_pdk(program(pdk, p)) for p in program_layers(pdk)))


def verify_layout(path: str | Path, qnet: QuantizedNetwork, pdk: Pdk) -> VerifyResult:
    """Compare the bits of ``path`` with the quantized weights of ``qnet``."""
    t0 = time.perf_counter()
    arrays, bits, stray, n_stray, dbu = _read_bits(path, pdk)
    layers = qnet.layers
    if len(arrays) != len(layers):
        raise LayoutReadError(f"{path}: the layout holds {len(arrays)} ROM arrays, the model has {len(layers)} layers")
    mismatches: list[Mismatch] = []
    weights = []
    total = matched = 0
    for i, (a, b, layer) in enumerate(zip(arrays, bits, layers)):
        n, m = layer.shape
        if a.cols != n * layer.bits or not m <= a.rows < m + 256:
            raise LayoutReadError(f"{path}: array {i} is {a.cols} bitlines x {a.rows} wordlines; layer '{layer.name}' "
                                  f"needs {n * layer.bits} x {m} (+padding): the layout was made for another model shape")
        w, wrong = _weights(b.reshape(n, layer.bits, a.rows), layer.weight)
        weights.append(w)
        total += n * a.rows * layer.bits
        matched += n * a.rows * layer.bits - wrong
        if wrong:
            mismatches += _mismatches(i, a, b, layer, dbu)
    for sx, sy in stray:
        mismatches.append(Mismatch(-1, "", -1, -1, -1, "stray", sx / 2 * dbu, sy / 2 * dbu))
    return VerifyResult(str(path), total, matched, mismatches, weights, arrays, time.perf_counter() - t0,
                        arrays[0].program_layer if arrays else "", total - matched + n_stray)


def _weights(got: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, int]:
    """The integers [channels, wordlines] that the bits ``got`` [channel, bit, wordline] (column
    channel·bits + bit, LSB first, two's complement) hold, as dedup.from_bits reads them, and how
    many bits differ from ``weight`` (padding wordlines must be empty): one pass per bit plane."""
    n, nb, rows = got.shape
    m = weight.shape[1]
    code = np.asarray(weight).astype(np.int16) & ((1 << nb) - 1)
    u = np.zeros((n, m), np.int16)
    wrong = int(np.count_nonzero(got[:, :, m:]))
    for t in range(nb):
        plane = got[:, t, :m]
        wrong += int(np.count_nonzero(plane != ((code >> t) & 1)))
        u |= plane.astype(np.int16) << t
    return np.where(u >= 1 << (nb - 1), u - (1 << nb), u).astype(np.int8), wrong


def _mismatches(i: int, a: Array, b: np.ndarray, layer, dbu: float) -> list[Mismatch]:
    """The first MAX_LISTED bits of array ``a`` that differ from ``layer``, by channel, wordline, bit."""
    n, m = layer.shape
    nb = layer.bits
    expect = np.zeros((n, a.rows, nb), np.uint8)
    expect[:, :m, :] = to_bits(layer.weight, nb)
    diff = np.argwhere(expect != b.reshape(n, nb, a.rows).transpose(0, 2, 1))[:MAX_LISTED]
    return [Mismatch(i, layer.name, int(ch), int(w), int(t), "missing" if expect[ch, w, t] else "extra",
                     int(col_x(a, int(ch * nb + t))) * dbu, site_y(a, int(w)) * dbu) for ch, w, t in diff]
