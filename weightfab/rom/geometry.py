"""Geometry of the NOR mask ROM, in integer database units; no layout library here.

Bit pair ("island"): one diffusion strip, drain D0 - gate 0 - shared source - gate 1 - drain D1,
bottom to top. Wordlines are horizontal poly lines (gate 0 of island r is wordline 2r, gate 1
is wordline 2r+1); the source contacts tie to horizontal local-interconnect ground lines that
end on a ground rail at the right; bitlines are vertical met1 lines over each column. A bit
is 1 when the programming contact (mcon) joins its drain pad to the bitline, 0 when absent.

Array of an engine: column c (bitline) has its centre at x = c·px; island r starts at y = r·py.
Wordlines reach poly contact pads on the left (staggered, gate 0 nearer the array), where the
row decoder would connect in local interconnect.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import PdkError
from ..tech.bitcell import Bitcell
from ..tech.pdk import Pdk
from .viastack import StackPlan, plan as stack_plan


@dataclass(frozen=True)
class Shape:
    """A rectangle on a layer, optionally repeated nx × ny times at pitch (dx, dy)."""

    layer: str
    box: tuple[int, int, int, int]
    nx: int = 1
    ny: int = 1
    dx: int = 0
    dy: int = 0


@dataclass(frozen=True)
class RomGeometry:
    px: int                 # column (bitline) pitch
    py: int                 # island pitch: two wordlines
    island: int             # diffusion length of one island
    drain: tuple[int, int]  # drain-contact centre y of wordline 2r and 2r+1 within an island
    source: int             # source-contact centre y within an island
    gates: tuple[tuple[int, int], tuple[int, int]]  # poly y-extent of gate 0 and gate 1
    contact: int
    c: Bitcell              # bitcell parameters in dbu (tech/bitcell.py)
    stack: StackPlan | None = None  # the via stack up to an upper programming layer (viastack.py)
    has_npc: bool = False
    has_nsdm: bool = False

    @property
    def d(self) -> Bitcell:
        """The bitcell parameters in dbu (typed; also readable by name, ``g.d["via"]``)."""
        return self.c

    @classmethod
    def from_pdk(cls, pdk: Pdk) -> "RomGeometry":
        d = Bitcell.from_table(pdk.bitcell).to_dbu(pdk.to_dbu)
        ct, cg, gl, de = d.contact, d.contact_to_gate, d.gate_length, d.diff_end
        px = d.diff_width + d.diff_space
        # an upper programming layer: the stack may need a wider pitch and drain sites further
        # apart (the extra length goes to both sides of the shared source contact)
        stack = stack_plan(pdk, px, 2 * ct + 4 * cg + 2 * gl, 2 * de + ct + d.island_space)
        sg = 0 if stack is None else (stack.din - (2 * ct + 4 * cg + 2 * gl)) // 2
        if stack is not None:
            px, d = stack.px, replace(d, island_space=stack.dout - (2 * de + ct))
        island = 2 * de + 3 * ct + 4 * cg + 2 * gl + 2 * sg
        d0 = de + ct // 2
        g0 = (de + ct + cg, de + ct + cg + gl)
        s = g0[1] + cg + sg + ct // 2
        g1 = (s + ct // 2 + cg + sg, s + ct // 2 + cg + sg + gl)
        d1 = g1[1] + cg + ct // 2
        if px % 2 or d.diff_width % 2:
            raise PdkError(f"{pdk.path}: [bitcell] diff_width and diff_width + diff_space must be even numbers "
                           f"of database units (the cell is centred on its column)")
        return cls(px=px, py=island + d.island_space, island=island, drain=(d0, d1), source=s, gates=(g0, g1),
                   contact=ct, c=d, stack=stack, has_npc=pdk.has("npc"), has_nsdm=pdk.has("nsdm"))

    # -- the repeated bit pair -------------------------------------------------------------
    def bitpair(self) -> list[Shape]:
        """One column × two wordlines. Wordline, ground-line and bitline segments reach the cell
        edges, so that abutting copies form continuous lines and the array is one regular
        reference of one cell (which hierarchical DRC checks once)."""
        d = self.d
        h, ct = d.diff_width // 2, self.contact // 2
        pw, pl, lw = d.li_pad_width // 2, d.li_pad_length // 2, d.li_width // 2
        hx, gap = self.px // 2, (self.py - self.island) // 2
        w = d.met1_bitline_width // 2
        shapes = [Shape("diff", (-h, 0, h, self.island))]
        for y in (self.drain[0], self.source, self.drain[1]):
            shapes.append(Shape("licon", (-ct, y - ct, ct, y + ct)))
        for y in self.drain:
            shapes.append(Shape("li", (-pw, y - pl, pw, y + pl)))
        for g_lo, g_hi in self.gates:
            shapes.append(Shape("poly", (-hx, g_lo, hx, g_hi)))
        shapes.append(Shape("li", (-hx, self.source - lw, hx, self.source + lw)))
        if self.stack is not None:  # pads and vias up to the programming layer at both drains
            w = self.stack.bitline // 2
            shapes += [Shape(role, (x0, y + y0, x1, y + y1))
                       for y in self.drain for role, (x0, y0, x1, y1) in self.stack.site_shapes()]
        shapes.append(Shape("met1", (-w, -gap, w, self.island + gap)))
        return shapes

    def prog_box(self, x: int, y: int) -> tuple[int, int, int, int]:
        """The programming via (role mcon) of the bit site centred at (x, y)."""
        h = (self.d.via if self.stack is None else self.stack.via) // 2
        return (x - h, y - h, x + h, y + h)

    # -- one engine's regular (model-independent) geometry ------------------------------------
    def _pads(self) -> tuple[int, int, int, int]:
        """x-extent of the poly pads of gate 0 (a) and gate 1 (b): (a0, a1, b0, b1)."""
        d = self.d
        a1 = -(d.diff_width // 2 + d.contact_to_diff + d.poly_pad_x)
        if self.stack is not None:  # a wider pitch: the pads keep their distance to the cell edge
            a1 -= (self.px - self.stack.px0) // 2
        a0 = a1 - d.poly_pad_x
        b1 = a0 - d.poly_pad_space
        return a0, a1, b1 - d.poly_pad_x, b1

    def rail_x(self, cols: int) -> tuple[int, int]:
        """x-extent of the ground rail (li) right of a ``cols``-column array."""
        last_x = (cols - 1) * self.px
        end = self.d.diff_width // 2 + self.d.poly_endcap
        rail0 = last_x + max(self.px // 2, end) + 2 * self.d.contact_to_diff
        return rail0, rail0 + 2 * self.contact

    def fold_pads(self, cols: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """x-extent of the wordline pads of a folded array: gate 0 (even wordlines) on the left,
        gate 1 (odd wordlines) right of the ground rail."""
        a0, a1, _, _ = self._pads()
        r1 = self.rail_x(cols)[1] + 2 * self.contact
        return (a0, a1), (r1, r1 + self.d.poly_pad_x)

    def _wordline_pad(self, p0: int, p1: int, gc: int, n: int) -> list[Shape]:
        """A wordline's contact: poly pad from x ``p0`` to ``p1`` centred on ``gc``, its licon and li pad,
        repeated over the ``n`` bit-pair rows."""
        d, ct = self.d, self.contact // 2
        py2, pl, lw = d.poly_pad_y // 2, d.li_pad_length // 2, d.li_width // 2
        cx = (p0 + p1) // 2
        return [Shape("poly", (p0, gc - py2, p1, gc + py2), 1, n, 0, self.py),
                Shape("licon", (cx - ct, gc - ct, cx + ct, gc + ct), 1, n, 0, self.py),
                Shape("li", (cx - pl, gc - lw, cx + pl, gc + lw), 1, n, 0, self.py)]

    def engine(self, cols: int, rows: int, fold: bool = False) -> list[Shape]:
        """Everything but the programming layer for a cols × rows array (rows even).
        fold: the odd wordlines (gate 1) end on pads right of the ground rail instead of left
        of the array, so that each side's row periphery has one wordline per island pitch."""
        if fold:
            return self._engine_folded(cols, rows)
        d, ct = self.d, self.contact // 2
        n = rows // 2
        hx = self.px // 2
        top = (n - 1) * self.py + self.island
        right = (cols - 1) * self.px + d.diff_width // 2
        a0, a1, b0, b1 = self._pads()
        shapes = [Shape("bitpair", (0, 0, 0, 0), cols, n, self.px, self.py)]
        lw, lic_x = d.li_width // 2, (d.poly_pad_x - self.contact) // 2
        last_x = (cols - 1) * self.px
        end = d.diff_width // 2 + d.poly_endcap   # wordline end beyond the last column's centre
        for g_lo, g_hi in self.gates:
            if end > hx:  # the bit-pair segment stops at the cell edge: extend to the endcap
                shapes.append(Shape("poly", (last_x + hx, g_lo, last_x + end, g_hi), 1, n, 0, self.py))
        for (g_lo, g_hi), (p0, p1) in zip(self.gates, ((a0, a1), (b0, b1))):
            # wordline from its contact pad to the first column's segment
            gc = (g_lo + g_hi) // 2
            shapes.append(Shape("poly", (p0, g_lo, -hx, g_hi), 1, n, 0, self.py))
            shapes += self._wordline_pad(p0, p1, gc, n)
        if self.has_npc:
            npc = d.npc_enclosure
            g0c = sum(self.gates[0]) // 2
            g1c = sum(self.gates[1]) // 2
            shapes.append(Shape("npc", (b0 + lic_x - npc, g0c - ct - npc, a1 - lic_x + npc, (n - 1) * self.py + g1c + ct + npc)))
        # ground: the source lines continue to a rail right of the array
        last = last_x + hx
        rail0 = last_x + max(hx, end) + 2 * d.contact_to_diff
        rail1 = rail0 + 2 * self.contact
        shapes.append(Shape("li", (last, self.source - lw, rail0, self.source + lw), 1, n, 0, self.py))
        shapes.append(Shape("li", (rail0, self.source - lw, rail1, (n - 1) * self.py + self.source + lw)))
        if self.has_nsdm:
            ns = d.nsdm_enclosure
            shapes.append(Shape("nsdm", (-d.diff_width // 2 - ns, -ns, right + ns, top + ns)))
        return shapes

    def _engine_folded(self, cols: int, rows: int) -> list[Shape]:
        d, ct = self.d, self.contact // 2
        n = rows // 2
        hx = self.px // 2
        top = (n - 1) * self.py + self.island
        last_x = (cols - 1) * self.px
        end = d.diff_width // 2 + d.poly_endcap
        lw, lic_x = d.li_width // 2, (d.poly_pad_x - self.contact) // 2
        (a0, a1), (b0, b1) = self.fold_pads(cols)
        rail0, rail1 = self.rail_x(cols)
        shapes = [Shape("bitpair", (0, 0, 0, 0), cols, n, self.px, self.py)]
        (g0_lo, g0_hi), (g1_lo, g1_hi) = self.gates
        if end > hx:   # gate 0 ends in its endcap on the right
            shapes.append(Shape("poly", (last_x + hx, g0_lo, last_x + end, g0_hi), 1, n, 0, self.py))
        shapes.append(Shape("poly", (a0, g0_lo, -hx, g0_hi), 1, n, 0, self.py))
        shapes.append(Shape("poly", (last_x + hx, g1_lo, b1, g1_hi), 1, n, 0, self.py))
        for (g_lo, g_hi), (p0, p1) in zip(self.gates, ((a0, a1), (b0, b1))):
            gc = (g_lo + g_hi) // 2
            shapes += self._wordline_pad(p0, p1, gc, n)
            if self.has_npc:
                npc = d.npc_enclosure
                shapes.append(Shape("npc", (p0 + lic_x - npc, gc - ct - npc, p1 - lic_x + npc,
                                            (n - 1) * self.py + gc + ct + npc)))
        shapes.append(Shape("li", (last_x + hx, self.source - lw, rail0, self.source + lw), 1, n, 0, self.py))
        shapes.append(Shape("li", (rail0, self.source - lw, rail1, (n - 1) * self.py + self.source + lw)))
        if self.has_nsdm:
            ns = d.nsdm_enclosure
            right = last_x + d.diff_width // 2
            shapes.append(Shape("nsdm", (-d.diff_width // 2 - ns, -ns, right + ns, top + ns)))
        return shapes

    def engine_bbox(self, cols: int, rows: int) -> tuple[int, int, int, int]:
        xs, ys = [], []
        for s in self.engine(cols, rows):
            x0, y0, x1, y1 = s.box
            if s.layer == "bitpair":
                bx = [b.box for b in self.bitpair()]
                x0, y0 = min(b[0] for b in bx), min(b[1] for b in bx)
                x1, y1 = max(b[2] for b in bx), max(b[3] for b in bx)
            xs += [x0, x1 + (s.nx - 1) * s.dx]
            ys += [y0, y1 + (s.ny - 1) * s.dy]
        return min(xs), min(ys), max(xs), max(ys)

    # -- bit sites ------------------------------------------------------------------------
    def site_xy(self, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre of the programming site of (column, wordline), engine coordinates."""
        row = np.asarray(row)
        drain = np.asarray(self.drain)[row % 2]
        return np.asarray(col) * self.px, (row // 2) * self.py + drain


@dataclass(frozen=True)
class EnginePlace:
    cols: int
    rows: int
    origin: tuple[int, int]      # where the engine's (0, 0) lands on the die
    bbox: tuple[int, int, int, int]  # engine-local bounding box


@dataclass(frozen=True)
class Placement:
    engines: tuple[EnginePlace, ...]
    die: tuple[int, int, int, int]


def floorplan(sizes: list[tuple[int, int]], geom: RomGeometry, gap: int = 10_000, margin: int = 10_000,
              bboxes: list | None = None) -> Placement:
    """Engines left to right in layer order, bottoms aligned, inside a die boundary. bboxes: an
    engine's own bounding box where it is a macro (array plus periphery), else None."""
    engines = []
    x = margin
    for i, (cols, rows) in enumerate(sizes):
        given = bboxes[i] if bboxes else None
        bx0, by0, bx1, by1 = given if given is not None else geom.engine_bbox(cols, rows)
        origin = (x - bx0, margin - by0)
        engines.append(EnginePlace(cols, rows, origin, (bx0, by0, bx1, by1)))
        x += (bx1 - bx0) + gap
    height = max(e.bbox[3] - e.bbox[1] for e in engines)
    return Placement(tuple(engines), (0, 0, x - gap + margin, height + 2 * margin))
