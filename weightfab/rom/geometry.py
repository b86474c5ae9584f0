"""Geometry of the NOR mask ROM, in integer database units; no layout library here.

Bit pair ("island"): one diffusion strip, drain D0 - gate 0 - shared source - gate 1 - drain D1,
bottom to top. Wordlines are horizontal poly lines (gate 0 of island r is wordline 2r, gate 1
is wordline 2r+1); the source contacts tie to horizontal local-interconnect ground lines that
end on a ground rail at the right; bitlines are vertical met1 lines over each column. A bit
is 1 when the programming contact (mcon) joins its drain pad to the bitline, 0 when absent.

Array of an engine: column c (bitline) has its centre at x = c·px; island r starts at y = r·py. A
strapped array (wider than 128 bitlines where the PDK has a tie column, ties.py) holds a tie column
before column 0, every 64 columns and after the last: column c at x = c·px + (c // 64)·width
(``columns``); islands stand in slots around substrate tap rows (``tap_plan``).
Wordlines reach poly contact pads on the left (staggered, gate 0 nearer the array), where the
row decoder would connect in local interconnect.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import PdkError
from ..tech.bitcell import Bitcell
from ..tech.pdk import Pdk
from .ties import STRAP_ABOVE, STRAP_EVERY, ColumnPlan, TieSpec, tie_spec
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
    li_space: int = 0       # the li role's spacing rule (the wordline pads and the ground rail keep it)
    tie: TieSpec | None = None  # the wordline straps' tie column (ties.py); None: arrays are not strapped

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
        li_space = next((r.value for r in pdk.rules if r.kind == "spacing" and r.layer == pdk.roles["li"]), None)
        if li_space is None:
            raise PdkError(f"{pdk.path}: no spacing rule on layer '{pdk.roles['li']}' (role li): the wordline "
                           f"pads and the ground rail are drawn at it")
        li_space = pdk.to_dbu(li_space)
        tie = tie_spec(pdk, d, px, (s, d.li_width // 2, li_space)) if stack is None else None
        return cls(px=px, py=island + d.island_space, island=island, drain=(d0, d1), source=s, gates=(g0, g1),
                   contact=ct, c=d, stack=stack, has_npc=pdk.has("npc"), has_nsdm=pdk.has("nsdm"),
                   li_space=li_space, tie=tie)

    def columns(self, cols: int) -> ColumnPlan:
        """Where the columns of a ``cols``-bitline array stand: with tie columns for the wordline
        straps where the PDK has them and the array is wider than STRAP_ABOVE bitlines."""
        if self.tie is None or cols <= STRAP_ABOVE:
            return ColumnPlan(cols, self.px)
        return ColumnPlan(cols, self.px, STRAP_EVERY, self.tie.width)

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
    def _pads(self, cols: int = 0) -> tuple[int, int, int, int]:
        """x-extent of the poly pads of gate 0 (a) and gate 1 (b): (a0, a1, b0, b1). Gate 0's pad
        stands as near the array as its contact (contact_to_diff from the diffusion) and its li pad
        allow: li_space from the source lines, which reach the cell edge (px / 2, also at an upper
        programming layer's wider pitch) 0.045 µm above the pad on SKY130; in a strapped array of
        ``cols`` columns, its npc the npc spacing from the edge tie column's. Gate 1's is staggered
        to its left."""
        d = self.d
        cx = -max(d.diff_width // 2 + d.contact_to_diff + self.contact // 2,
                  self.px // 2 + self.li_space + d.li_pad_length // 2)
        plan = self.columns(cols)
        if plan.strapped:
            cx = min(cx, -plan.half - self.tie.npc_reach() - self.contact // 2 - d.npc_enclosure)
        a1 = cx + d.poly_pad_x // 2
        a0 = a1 - d.poly_pad_x
        b1 = a0 - d.poly_pad_space
        return a0, a1, b1 - d.poly_pad_x, b1

    def rail_x(self, cols: int) -> tuple[int, int]:
        """x-extent of the ground rail (li) right of a ``cols``-column array: li_space from the last
        column's drain pads (the source lines run into it; the wordlines pass under it), and not
        inside the last column's cell (readback and the electrical check find it right of the array)."""
        plan = self.columns(cols)
        reach = max(self.d.li_pad_width // 2 + self.li_space, self.px // 2)
        if plan.strapped:                      # li_space from the last tie column's li pads
            reach = max(reach, plan.half + self.tie.li_x + self.li_space)
        rail0 = int(plan.x(cols - 1)) + reach
        return rail0, rail0 + 2 * self.contact

    def fold_pads(self, cols: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """x-extent of the wordline pads of a folded array: gate 0 (even wordlines) on the left,
        gate 1 (odd wordlines) right of the ground rail."""
        a0, a1, _, _ = self._pads(cols)
        cx = self.rail_x(cols)[1] + self.li_space + self.d.li_pad_length // 2   # li pad li_space from the rail
        r1 = cx - self.d.poly_pad_x // 2
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

    def engine(self, cols: int, rows: int, fold: bool = False, taps: "TapPlan | None" = None) -> list[Shape]:
        """Everything but the programming layer for a cols × rows array (rows even).
        fold: the odd wordlines (gate 1) end on pads right of the ground rail instead of left
        of the array, so that each side's row periphery has one wordline per island pitch.
        taps: where its substrate tap rows go (default: an array alone, ``tap_plan``)."""
        plan = self.tap_plan(rows // 2) if taps is None else taps
        isl, whole = self._engine_folded(cols) if fold else self._engine_flat(cols)
        isl = self._bitpairs(cols) + isl + self._ties(cols)
        shapes = [replace(sh, box=(sh.box[0], sh.box[1] + s0 * self.py, sh.box[2], sh.box[3] + s0 * self.py),
                          ny=count, dy=self.py) for s0, count in plan.runs() for sh in isl]
        return shapes + whole(plan.slots) + self._implant_runs(cols, plan) + self._tap_rows(cols, plan)

    def _bitpairs(self, cols: int) -> list[Shape]:
        """One row of bit pairs per group of columns between tie columns (one row without)."""
        plan = self.columns(cols)
        return [Shape("bitpair", (int(plan.x(c0)), 0, int(plan.x(c0)), 0), n, 1, self.px, 0) for c0, n in plan.groups()]

    def tie_cells(self, cols: int) -> dict[str, list[Shape]]:
        """The tie cells of a ``cols``-column array (one island's tie: its pads and the bridges to
        its neighbouring columns): ``tie`` between two groups, ``tie_first`` / ``tie_last`` at the
        array's ends (no bridge outwards). None where the array is not strapped."""
        plan = self.columns(cols)
        if not plan.strapped:
            return {}
        pads = self.tie.island(self)
        left, right = (self.tie.bridges(self, plan.half, side) for side in (0, 1))
        return {"tie": pads + left + right, "tie_first": pads + right, "tie_last": pads + left}

    def _ties(self, cols: int) -> list[Shape]:
        """One island's tie cells over every tie column, and its two met2 straps from the first
        tie column to the last (none in an array that is not strapped)."""
        plan = self.columns(cols)
        if not plan.strapped:
            return []
        t = plan.tie_centres()
        out = [Shape("tie_first", (int(t[0]), 0, int(t[0]), 0)), Shape("tie_last", (int(t[-1]), 0, int(t[-1]), 0))]
        if len(t) > 2:
            out.append(Shape("tie", (int(t[1]), 0, int(t[1]), 0), len(t) - 2, 1, plan.pitch, 0))
        t0, t1 = plan.span()
        hy, end = self.tie.m2
        out += [Shape("layer:met2", (t0 - end, y - hy, t1 + end, y + hy)) for y in (self.tie.ya, self.tie.yb)]
        return out

    def _engine_flat(self, cols: int):
        """The unfolded array: per-island shapes (island 0; repeated over each run of islands) and a
        function of the slot count giving the shapes that span all slots."""
        d, ct = self.d, self.contact // 2
        hx = self.px // 2
        last_x = int(self.columns(cols).x(cols - 1))
        a0, a1, b0, b1 = self._pads(cols)
        isl = []
        lw, lic_x = d.li_width // 2, (d.poly_pad_x - self.contact) // 2
        end = d.diff_width // 2 + d.poly_endcap   # wordline end beyond the last column's centre
        for g_lo, g_hi in self.gates:
            if end > hx:  # the bit-pair segment stops at the cell edge: extend to the endcap
                isl.append(Shape("poly", (last_x + hx, g_lo, last_x + end, g_hi)))
        for (g_lo, g_hi), (p0, p1) in zip(self.gates, ((a0, a1), (b0, b1))):
            # wordline from its contact pad to the first column's segment
            gc = (g_lo + g_hi) // 2
            isl.append(Shape("poly", (p0, g_lo, -hx, g_hi)))
            isl += self._wordline_pad(p0, p1, gc, 1)
        # ground: the source lines continue to a rail right of the array
        rail0, rail1 = self.rail_x(cols)
        if rail0 > last_x + hx:     # the rail may start at the last cell's edge: nothing to bridge
            isl.append(Shape("li", (last_x + hx, self.source - lw, rail0, self.source + lw)))

        def whole(slots: int) -> list[Shape]:
            out = [self._rail(cols, slots)]
            if self.has_npc:
                npc = d.npc_enclosure
                g0c, g1c = sum(self.gates[0]) // 2, sum(self.gates[1]) // 2
                out.append(Shape("npc", (b0 + lic_x - npc, g0c - ct - npc, a1 - lic_x + npc,
                                         (slots - 1) * self.py + g1c + ct + npc)))
            return out
        return isl, whole

    def _engine_folded(self, cols: int):
        d, ct = self.d, self.contact // 2
        hx = self.px // 2
        last_x = int(self.columns(cols).x(cols - 1))
        end = d.diff_width // 2 + d.poly_endcap
        lw, lic_x = d.li_width // 2, (d.poly_pad_x - self.contact) // 2
        (a0, a1), (b0, b1) = self.fold_pads(cols)
        rail0, rail1 = self.rail_x(cols)
        isl = []
        (g0_lo, g0_hi), (g1_lo, g1_hi) = self.gates
        if end > hx:   # gate 0 ends in its endcap on the right
            isl.append(Shape("poly", (last_x + hx, g0_lo, last_x + end, g0_hi)))
        isl.append(Shape("poly", (a0, g0_lo, -hx, g0_hi)))
        isl.append(Shape("poly", (last_x + hx, g1_lo, b1, g1_hi)))
        for (g_lo, g_hi), (p0, p1) in zip(self.gates, ((a0, a1), (b0, b1))):
            isl += self._wordline_pad(p0, p1, (g_lo + g_hi) // 2, 1)
        if rail0 > last_x + hx:     # the rail may start at the last cell's edge: nothing to bridge
            isl.append(Shape("li", (last_x + hx, self.source - lw, rail0, self.source + lw)))

        def whole(slots: int) -> list[Shape]:
            out = [self._rail(cols, slots)]
            for (g_lo, g_hi), (p0, p1) in zip(self.gates, ((a0, a1), (b0, b1))):
                gc, npc = (g_lo + g_hi) // 2, d.npc_enclosure
                if self.has_npc:
                    out.append(Shape("npc", (p0 + lic_x - npc, gc - ct - npc, p1 - lic_x + npc,
                                             (slots - 1) * self.py + gc + ct + npc)))
            return out
        return isl, whole

    def _rail(self, cols: int, slots: int) -> Shape:
        """The ground rail (li) right of the array, from the lowest slot's source line to the highest."""
        rail0, rail1 = self.rail_x(cols)
        lw = self.d.li_width // 2
        return Shape("li", (rail0, self.source - lw, rail1, (slots - 1) * self.py + self.source + lw))

    def _implant_runs(self, cols: int, plan: "TapPlan") -> list[Shape]:
        """The n implant over each run of islands (a tap row between two runs takes the p implant)."""
        if not self.has_nsdm:
            return []
        ns, h = self.d.nsdm_enclosure, self.d.diff_width // 2
        cp = self.columns(cols)
        left, right = -h - ns, int(cp.x(cols - 1)) + h + ns
        if cp.strapped:                          # over the edge tie columns' pads too
            reach = cp.half + self.contact // 2 + self.tie.npc
            left, right = min(left, -reach), max(right, int(cp.x(cols - 1)) + reach)
        return [Shape("nsdm", (left, s0 * self.py - ns, right, (s0 + n - 1) * self.py + self.island + ns))
                for s0, n in plan.runs()]

    def _tap_rows(self, cols: int, plan: "TapPlan") -> list[Shape]:
        """A substrate tap row in each tap slot: p+ tap diffusion over the array's width in its p
        implant, a contact under each column, a ground line (li) on them to the ground rail, and the
        bitlines continued over it (interior rows). Wordlines do not cross it."""
        d, ct, h = self.d, self.contact // 2, self.d.diff_width // 2
        cp = self.columns(cols)
        right, lw = int(cp.x(cols - 1)) + h, d.li_width // 2
        e, rail0 = d.tap_implant + d.tap_inset, self.rail_x(cols)[0]
        line = self.bitpair()[-1]                   # the bitline segment of one slot
        out = []
        for ts in plan.tap_slots():
            y0, ys = ts * self.py, ts * self.py + self.source
            out += [Shape("tap", (-h, y0 + d.tap_inset, right, y0 + self.island - d.tap_inset)),
                    Shape("pimplant", (-h - e, y0 - d.tap_implant, right + e, y0 + self.island + d.tap_implant)),
                    Shape("li", (-self.px // 2, ys - lw, rail0, ys + lw))]
            for c0, n in cp.groups():
                x0 = int(cp.x(c0))
                out.append(Shape("licon", (x0 - ct, ys - ct, x0 + ct, ys + ct), n, 1, self.px, 0))
                if 0 <= ts < plan.slots:
                    out.append(replace(line, box=(line.box[0] + x0, line.box[1] + y0, line.box[2] + x0, line.box[3] + y0),
                                       nx=n, dx=self.px))
        return out

    # -- substrate tap rows --------------------------------------------------------------------
    def tap_plan(self, islands: int, reach: tuple[int, int] | None = None) -> "TapPlan":
        """Where the tap rows of an array of ``islands`` islands go: as few as keep every point of
        its diffusion within the PDK's tap distance (less 10 dbu) of a tap (straight up or down: the
        rows span the diffusion's width). ``reach``: the distances
        from the lowest island's diffusion to the nearest tap below it and from the highest one's to
        the nearest above (a macro's periphery); None: an array alone, tap rows at both edges.
        The inner groups are even (blocks of four wordlines do not straddle their tap rows), the end
        groups near half of what is left each (even where they can be)."""
        v = self.d.tap_distance
        if not v:
            return TapPlan(islands)
        s = self.py - self.island
        lim = 2 * (v - 10)                        # 10 dbu short of the distance, on both sides
        e_lo, e_hi = (s, s) if reach is None else reach

        def most(e0: int, e1: int) -> int:       # the most islands between taps e0 below and e1 above
            return (lim - e0 - e1 + s) // self.py

        k = most(s, s) // 2 * 2
        if k < 2 or min(most(e_lo, s), most(s, e_hi)) < 1:
            raise PdkError(f"[bitcell] tap_distance {v * 1e-3:g} µm: shorter than two islands between tap rows "
                           f"(island pitch {self.py * 1e-3:g} µm)")
        if islands <= most(e_lo, e_hi):
            return TapPlan(islands, (), reach is None)
        for t in range(1, islands + 1):
            rest = islands - (t - 1) * k                 # the two end groups share what the inner ones leave
            lo, hi = max(1, rest - most(s, e_hi)), min(most(e_lo, s), rest - 1)
            if lo <= hi:                                 # the bottom group's size: even if it can be, near half
                b = min(max(-(-rest // 2), lo), hi)
                b = next((c for c in (b, b - 1, b + 1) if lo <= c <= hi and c % 2 == 0), b)
                return TapPlan(islands, tuple(b + j * k for j in range(t)), reach is None)
        raise PdkError(f"no tap rows fit an array of {islands} islands")  # not reached: t = islands fits

    def engine_bbox(self, cols: int, rows: int) -> tuple[int, int, int, int]:
        xs, ys = [], []
        subs = {"bitpair": self.bitpair(), **self.tie_cells(cols)}
        for s in self.engine(cols, rows):
            x0, y0, x1, y1 = s.box
            if s.layer in subs:
                bx = [b.box for b in subs[s.layer]]
                x0, y0 = x0 + min(b[0] for b in bx), y0 + min(b[1] for b in bx)
                x1, y1 = x1 + max(b[2] for b in bx), y1 + max(b[3] for b in bx)
            xs += [x0, x1 + (s.nx - 1) * s.dx]
            ys += [y0, y1 + (s.ny - 1) * s.dy]
        return min(xs), min(ys), max(xs), max(ys)

    # -- bit sites ------------------------------------------------------------------------
    def site_xy(self, col: np.ndarray, row: np.ndarray, taps: "TapPlan | None" = None,
                cols: ColumnPlan | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Centre of the programming site of (column, wordline), engine coordinates; ``taps``: the
        array's tap rows (None: island r in slot r, as within a block); ``cols``: its tie columns
        (None: column c at c·px, as within a block)."""
        row = np.asarray(row)
        drain = np.asarray(self.drain)[row % 2]
        slot = row // 2 if taps is None else taps.slot(row // 2)
        x = np.asarray(col) * self.px if cols is None else cols.x(np.asarray(col))
        return x, slot * self.py + drain


@dataclass(frozen=True)
class TapPlan:
    """Where an array's substrate tap rows go. The islands stand on a grid of slots one island
    pitch apart; a tap row fills one slot. ``before``: for each tap row inside the array, the
    number of islands below it; ``edges``: tap rows also in the slots just below island 0 and just
    above the last island (an array with no periphery to tap its edges)."""
    islands: int
    before: tuple[int, ...] = ()
    edges: bool = False

    @property
    def slots(self) -> int:
        """Slots from island 0's to the last island's, tap rows inside included."""
        return self.islands + len(self.before)

    def slot(self, island):
        """The slot of each island (numpy)."""
        island = np.asarray(island)
        return island + np.searchsorted(np.asarray(self.before, np.int64), island, side="right")

    def tap_slots(self) -> list[int]:
        inner = [b + j for j, b in enumerate(self.before)]
        return inner + ([-1, self.slots] if self.edges else [])

    def runs(self) -> list[tuple[int, int]]:
        """(first slot, islands) of each run of islands between tap rows."""
        bounds = [0, *self.before, self.islands]
        return [(bounds[j] + j, bounds[j + 1] - bounds[j]) for j in range(len(bounds) - 1)]


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
