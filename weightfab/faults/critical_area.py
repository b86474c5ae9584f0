"""Critical area of the ROM arrays, measured on the layout with KLayout.

Method (the standard geometric one, for square defects of side s on Manhattan layouts):
- extra material (shorts): a defect touches a conductor when its centre lies within s/2 of it
  (the conductor sized by s/2, square corners); it shorts two nets where two sized nets overlap.
  Nets are the merged polygons of the layer. Critical area A_short(s) = area where >= 2 overlap.
- missing material (opens): a defect cuts a line of width w when it spans the width: its centre
  lies in a band of height s - w along the line. The bands come from KLayout's width check with
  projection metrics (opposite edges closer than s), A_open(s) = sum of band areas.
- programming via, missing material: a via is lost when the defect covers it: centre within
  (s - v)/2 of the via's centre in x and y, A(s) = (s - v)^2 per via.
- programming via, extra material: a spurious via forms where a defect on the via layer touches
  a place where the lower conductor (li) and the bitline (met1) overlap: at an unprogrammed drain
  pad (the bit reads 1: via-short) or on a ground line under a bitline (the bitline is tied to
  ground: bitline-stuck). A(s) = area of that overlap sized by s/2.
Defect sizes follow the 1/s^3 distribution with peak x0 (Stapper): f(s) = s/x0^2 for s <= x0,
x0^2/s^3 above, truncated at s_max; the mean critical area is integral A(s) f(s) ds (trapezoid
rule on the size grid). Defects larger than s_max (probability x0^2 / (2 s_max^2)) are ignored;
since A(s) grows with s, the cut-off matters more than that probability: for long lines at
spacing d it removes a share of about 2 d / s_max of the textbook L x0^2 / (2 d), hence the
default s_max = 100 x0.

The arrays are regular: each engine is measured on a window of up to 32 columns x 32 wordlines
of its own layout (its interior), with shapes up to s_max/2 beyond the window taken into account,
and scaled by the engine's number of sites, programmed vias and unprogrammed sites. A defect that
hits several sites is counted once (union of areas): one defect, one fault event.
"""
from __future__ import annotations

from dataclasses import dataclass

import klayout.db as kdb
import numpy as np

from ..rom.geometry import RomGeometry
from ..rom.viastack import program
from ..signoff.drc import read_layout
from ..signoff.readback import find_arrays
from ..signoff.tiecols import col_x
from ..tech.pdk import Pdk

MECHANISMS = {  # mechanism -> (layer role, defect type, fault kind it causes)
    "via-open": ("mcon", "missing", "via-open"),
    "via-short": ("mcon", "extra", "via-short"),
    "bitline-stuck": ("mcon", "extra", "bitline-stuck"),
    "bitline-open": ("met1", "missing", "bitline-open"),
    "bitline-short": ("met1", "extra", "bitline-short"),
    "wordline-open": ("poly", "missing", "wordline-open"),
    "wordline-short": ("poly", "extra", "wordline-short"),
}


@dataclass(frozen=True)
class SizeDistribution:
    """Defect sizes: f(s) = s/x0² (s <= x0), x0²/s³ (x0 < s <= s_max); µm."""

    x0: float
    s_max: float

    def pdf(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, np.float64)
        return np.where(s <= self.x0, s / self.x0 ** 2, np.where(s <= self.s_max, self.x0 ** 2 / np.maximum(s, 1e-30) ** 3, 0.0))

    def grid(self, n: int = 32) -> np.ndarray:
        lo = np.linspace(0.0, self.x0, 9)
        hi = np.geomspace(self.x0, self.s_max, n)
        return np.unique(np.concatenate([lo, hi]))

    def mean(self, sizes: np.ndarray, area: np.ndarray) -> float:
        """Integral of area(s) · f(s) ds over the grid (trapezoid)."""
        g = np.asarray(area, np.float64) * self.pdf(sizes)
        return float(np.sum((g[1:] + g[:-1]) * np.diff(sizes)) / 2)


def _sized(region: kdb.Region, d: int, dy: int | None = None) -> kdb.Region:
    return region.sized(d, d if dy is None else dy, 2)


def short_area(region: kdb.Region, s: int, window: kdb.Box | None = None) -> int:
    """Area (dbu²) where the centre of a square defect of side s touches two different nets."""
    nets = kdb.Region()
    for p in region.merged().each():
        nets.insert(p)
    nets.merged_semantics = False
    over = _sized(nets, s // 2).merged(False, 2)
    return int((over & kdb.Region(window)).area() if window is not None else over.area())


def open_area(region: kdb.Region, s: int, window: kdb.Box | None = None) -> int:
    """Area (dbu²) where the centre of a square defect of side s cuts a line across its width."""
    pairs = region.merged().width_check(s, False, kdb.Region.Projection, None, None, None)
    bands = kdb.Region()
    for ep in pairs.each():
        a, b = ep.first, ep.second
        if a.y1 == a.y2 and b.y1 == b.y2:        # horizontal edges: a band along x
            x0, x1 = max(min(a.x1, a.x2), min(b.x1, b.x2)), min(max(a.x1, a.x2), max(b.x1, b.x2))
            mid2, d = a.y1 + b.y1, abs(a.y1 - b.y1)
            if x1 > x0 and s > d:
                bands.insert(kdb.Box(x0, (mid2 - (s - d)) // 2, x1, (mid2 + (s - d)) // 2))
        elif a.x1 == a.x2 and b.x1 == b.x2:      # vertical edges: a band along y
            y0, y1 = max(min(a.y1, a.y2), min(b.y1, b.y2)), min(max(a.y1, a.y2), max(b.y1, b.y2))
            mid2, d = a.x1 + b.x1, abs(a.x1 - b.x1)
            if y1 > y0 and s > d:
                bands.insert(kdb.Box((mid2 - (s - d)) // 2, y0, (mid2 + (s - d)) // 2, y1))
    bands.merge()
    return int((bands & kdb.Region(window)).area() if window is not None else bands.area())


def cover_area(vias: kdb.Region, s: int) -> int:
    """Area (dbu²) where a square defect of side s covers a whole via (vias are rectangles)."""
    out = kdb.Region()
    for p in vias.merged().each():
        b = p.bbox()
        if s > b.width() and s > b.height():
            out.insert(kdb.Box(b.center().x - (s - b.width()) // 2, b.center().y - (s - b.height()) // 2,
                               b.center().x + (s - b.width()) // 2, b.center().y + (s - b.height()) // 2))
    return int(out.merged().area())


def touch_area(region: kdb.Region, s: int, window: kdb.Box | None = None) -> int:
    """Area (dbu²) where a square defect of side s touches ``region``."""
    grown = _sized(region.merged(), s // 2) if s > 0 else region.merged()
    return int((grown & kdb.Region(window)).area() if window is not None else grown.area())


@dataclass(frozen=True)
class EngineCA:
    engine: int
    sites: int
    vias: int
    window_sites: int
    mean_um2: dict          # mechanism -> mean critical area of the whole engine, µm²
    layers: dict            # mechanism -> PDK layer name


def _window(a, geom: RomGeometry, cols: int = 32, islands: int = 16) -> tuple[kdb.Box, int, int]:
    """A window of bit sites in the middle of the array; in a strapped array (tiecols.py), inside
    one group of columns (the tie columns, about 0.9 % of its width, are not measured)."""
    nc, ni = min(cols, a.cols), min(islands, a.rows // 2)
    c0, i0 = (a.cols - nc) // 2, (a.rows // 2 - ni) // 2
    if getattr(a, "tie_every", 0):     # the middle of a whole group, as far from its tie columns as it can be
        g0 = a.cols // 2 // a.tie_every * a.tie_every
        g0 = g0 if a.cols - g0 >= a.tie_every else max(g0 - a.tie_every, 0)
        nc = min(nc, a.tie_every, a.cols - g0)
        c0 = g0 + (min(a.tie_every, a.cols - g0) - nc) // 2
    gap = (a.py - geom.island) // 2
    box = kdb.Box(int(col_x(a, c0)) - a.px // 2, a.y0 + i0 * a.py - gap,
                  int(col_x(a, c0 + nc - 1)) + a.px // 2, a.y0 + (i0 + ni) * a.py - gap)
    return box, nc, 2 * ni


def layer_names(pdk: Pdk, a) -> dict:
    """Mechanism -> the PDK layer it is measured on, for this array's programming layer."""
    prog = getattr(a, "program_layer", None) or pdk.programming_layer
    p = program(pdk, prog) if pdk.stack else pdk
    names = {"mcon": prog, "met1": p.roles["met1"], "poly": p.roles["poly"]}
    return {k: names[v[0]] for k, v in MECHANISMS.items()}


def engine_curves(layout, top, pdk: Pdk, a, sizes_dbu: np.ndarray) -> tuple[dict, int, int]:
    """Critical area (dbu²) per window site (per via for via-open) at each size, and the window's
    sites and vias."""
    # the programming via of this array (the default one, or an upper via of the PDK's stack), the
    # bitline metal above it and the conductor below it (li, or the stack's metal pad)
    prog = getattr(a, "program_layer", None) or pdk.programming_layer
    p = program(pdk, prog) if pdk.stack else pdk
    below = pdk.gds(pdk.stack[pdk.stack.index(prog) - 1]) if pdk.stack and prog in pdk.stack else pdk.role_gds("li")
    win, nc, nr = _window(a, RomGeometry.from_pdk(p))
    margin = int(sizes_dbu.max()) // 2 + 2 * max(a.px, a.py)
    big = win.enlarged(margin, margin)

    def region(gds):
        idx = layout.find_layer(*gds)
        return kdb.Region(top.begin_shapes_rec_touching(idx, big)) & kdb.Region(big) if idx is not None else kdb.Region()

    met1, poly, li, vias = region(p.role_gds("met1")), region(p.role_gds("poly")), region(below), region(p.role_gds("mcon"))
    li_m = li.merged()
    ground = li_m.with_bbox_width(2 * a.px, None, False)      # ground lines (li) run along whole rows
    pads = li_m - ground
    pad_overlap = pads & met1
    ground_overlap = ground & met1
    inside = kdb.Region(win)
    win_vias = vias.merged().inside(inside)
    n_vias = win_vias.count()
    sites = nc * nr
    curves = {k: [] for k in MECHANISMS}
    for s in (int(v) for v in sizes_dbu):
        curves["bitline-open"].append(open_area(met1, s, win) / sites)
        curves["bitline-short"].append(short_area(met1, s, win) / sites)
        curves["wordline-open"].append(open_area(poly, s, win) / sites)
        curves["wordline-short"].append(short_area(poly, s, win) / sites)
        curves["via-short"].append(touch_area(pad_overlap, s, win) / sites)
        curves["bitline-stuck"].append(touch_area(ground_overlap, s, win) / sites)
        curves["via-open"].append(cover_area(win_vias, s) / n_vias if n_vias else np.nan)
    return {k: np.asarray(v) for k, v in curves.items()}, sites, n_vias


def via_open_curve(pdk: Pdk, prog: str, sizes_dbu: np.ndarray) -> np.ndarray:
    """A lone programming via of the PDK's size: (s - v)² (for engines whose window holds no via)."""
    p = program(pdk, prog) if pdk.stack else pdk
    v = max(abs(b) for b in RomGeometry.from_pdk(p).prog_box(0, 0)) * 2
    return np.where(sizes_dbu > v, (sizes_dbu - v) ** 2, 0).astype(np.float64)


def layout_critical_area(path, pdk: Pdk, bits: list[np.ndarray], dist: SizeDistribution) -> list[EngineCA]:
    """Mean critical area per mechanism of every engine of the layout at ``path``; ``bits`` are the
    engines' read-back bits (for the counts of programmed and unprogrammed sites)."""
    layout, top = read_layout(path)
    arrays = find_arrays(layout, top, pdk, path)
    sizes_um = dist.grid()
    sizes = np.rint(sizes_um / layout.dbu / 2).astype(np.int64) * 2   # even dbu: s/2 is exact
    um2 = layout.dbu ** 2
    out = []
    for e, (a, b) in enumerate(zip(arrays, bits)):
        curves, _, n_vias = engine_curves(layout, top, pdk, a, sizes)
        if not n_vias:
            curves["via-open"] = via_open_curve(pdk, getattr(a, "program_layer", None) or pdk.programming_layer, sizes)
        sites, vias = int(b.size), int(np.count_nonzero(b))
        scale = {"via-open": vias, "via-short": sites - vias}
        mean = {k: dist.mean(sizes_um, curves[k]) * um2 * scale.get(k, sites) for k in MECHANISMS}
        out.append(EngineCA(e, sites, vias, int(min(32, a.cols) * 2 * min(16, a.rows // 2)), mean,
                            layer_names(pdk, a)))
    return out
