"""Wordline straps: a met2 line over each wordline, tied down to its poly in tie columns.

A wide array's poly wordline is slow (48.2 ohm/sq on SKY130: past about 128 bitlines its RC is
more than the rest of the read, README's bank-size study). A wider array gets a **tie column**
before its first bitline, after every ``every`` bitlines and after its last one: no diffusion,
each wordline's poly jogs to a contact pad there (poly pad + licon in npc, li pad, mcon, met1 pad,
via) under a met2 **strap** that runs over the array's width. Two straps per island pitch, each
over its own wordline's pads; a wordline's driver reaches the strap at the edge tie next to its
pad, and each stretch of poly between two ties is fed from both ends.

Column c then stands at ``x = c·px + (c // every)·width`` (``ColumnPlan``), as island r stands in
slot ``TapPlan.slot(r)``. The tie column's pads lie between the source lines (li) of two islands:
gate 1 of island r and gate 0 of island r + 1, each li pad ``li_space`` from its island's source
line, the poly pads ``poly.2`` apart across the island gap; the tie's width is what its poly
contact needs (``contact_to_diff`` from the neighbouring diffusion; its npc ``npc.4`` from their
gates) and at least the n-implant spacing (``nsd.2``: the macro's sense cells stand that far apart
across a tie column), rounded up to a whole column pitch: the columns and the tie columns then
stand on one grid, and the fast DRC cuts a strapped array by whole groups starting at any column
(periodic.Row; SKY130: 0.38 µm needed, 0.69 µm drawn).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRAP_EVERY = 64     # bitlines between tie columns (README: 8.31 ns for 784 x 2400 at tt, 32 gains nothing)
STRAP_ABOVE = 128    # arrays of more bitlines are strapped (README: at 128 the poly's 0.5·R·C is 1.19 ns of a
                     # 2.54 ns read; at 256, 4.75 of 6.09 ns)


@dataclass(frozen=True)
class ColumnPlan:
    """Where an array's columns stand along x: tie columns ``width`` wide before column 0, after
    every ``every`` columns and after the last (``every`` 0: none, column c at c·px)."""
    cols: int
    px: int
    every: int = 0
    width: int = 0

    @property
    def strapped(self) -> bool:
        return self.every > 0

    @property
    def pitch(self) -> int:
        """Tie column to tie column (a group of ``every`` columns and one tie)."""
        return self.every * self.px + self.width

    @property
    def half(self) -> int:
        """A tie column's centre to its neighbouring columns' centres."""
        return (self.px + self.width) // 2

    def x(self, col):
        """Centre x of column ``col`` (numpy or int)."""
        col = np.asarray(col) if not isinstance(col, int) else col
        return col * self.px + (col // self.every) * self.width if self.every else col * self.px

    def groups(self) -> list[tuple[int, int]]:
        """(first column, columns) of each group between tie columns."""
        if not self.every:
            return [(0, self.cols)]
        return [(g, min(self.every, self.cols - g)) for g in range(0, self.cols, self.every)]

    def ties(self) -> list[tuple[int, int, int]]:
        """The tie columns as (centre x of the first, count, pitch) runs: one regular run and,
        when the last group is short, the tie after it."""
        if not self.every:
            return []
        n = -(-self.cols // self.every)
        regular = n + (self.cols % self.every == 0)
        out = [(-self.half, regular, self.pitch)]
        if self.cols % self.every:
            out.append((int(self.x(self.cols - 1)) + self.half, 1, self.pitch))
        return out

    def sided(self, side: int) -> list[tuple[int, int, int]]:
        """``ties`` but the first (side 0: the ties with columns on their left) or the last (side 1:
        with columns on their right)."""
        runs = [list(r) for r in self.ties()]
        if side == 0:
            runs[0] = [runs[0][0] + runs[0][2], runs[0][1] - 1, runs[0][2]]
        else:
            runs[-1][1] -= 1
        return [tuple(r) for r in runs if r[1] > 0]

    def tie_centres(self) -> np.ndarray:
        return np.concatenate([x0 + np.arange(n) * p for x0, n, p in self.ties()]).astype(np.int64) \
            if self.every else np.zeros(0, np.int64)

    def span(self) -> tuple[int, int]:
        """x of the first and the last tie column (the straps' extent)."""
        t = self.tie_centres()
        return int(t[0]), int(t[-1])


@dataclass(frozen=True)
class TieSpec:
    """A tie column's drawing (dbu, x from the tie's centre, y in an island's slot)."""
    width: int          # added to the column pitch by a tie column
    ya: int             # pad centre of gate 0's tie (wordline 2r) in island r's slot
    yb: int             # ... of gate 1's (wordline 2r + 1)
    contact: int        # licon and mcon size
    poly_x: int         # poly pad half-width (licon.8 each side)
    poly_y: int         # poly beyond the licon along y (licon.8a)
    li_x: int           # li pad half-length (li.5)
    via: int            # via size
    m1: tuple[int, int]  # met1 pad half-sizes (x, y): mcon and via enclosed
    m2: tuple[int, int]  # strap half-height, its end beyond the edge ties' vias
    npc: int            # npc enclosure of the licon
    npc_space: int      # npc.2: the end pads' npc stays this far from the edge tie's

    def bridges(self, geom, half: int, side: int) -> list:
        """The poly wordlines and the li ground line across one side of a tie (0: left, 1: right)
        to the neighbouring cell's edge (``half``: tie centre to the neighbouring columns)."""
        from .geometry import Shape
        (g0lo, g0hi), (g1lo, g1hi) = geom.gates
        lw, s = geom.d.li_width // 2, geom.source
        a, b = (-(half - geom.px // 2), 0) if side == 0 else (0, half - geom.px // 2)
        return [Shape("poly", (a, g0lo, b, g0hi)), Shape("poly", (a, g1lo, b, g1hi)), Shape("li", (a, s - lw, b, s + lw))]

    def island(self, geom) -> list:
        """One island's tie shapes but the bridges: both pads (poly pad + licon in npc, li, mcon,
        met1, via)."""
        from .geometry import Shape
        ct, (g0lo, g0hi), (g1lo, g1hi) = self.contact // 2, *geom.gates
        lw = geom.d.li_width // 2
        out = [Shape("poly", (-self.poly_x, self.ya - ct - self.poly_y, self.poly_x, g0hi)),
               Shape("poly", (-self.poly_x, g1lo, self.poly_x, self.yb + ct + self.poly_y))]
        for y in (self.ya, self.yb):
            out += [Shape("licon", (-ct, y - ct, ct, y + ct)), Shape("li", (-self.li_x, y - lw, self.li_x, y + lw)),
                    Shape("mcon", (-ct, y - ct, ct, y + ct)),
                    Shape("met1", (-self.m1[0], y - self.m1[1], self.m1[0], y + self.m1[1])),
                    Shape("layer:via", (-self.via // 2, y - self.via // 2, self.via // 2, y + self.via // 2))]
        n = ct + self.npc
        if (self.yb - n) - (self.ya + n) >= self.npc_space:
            out += [Shape("npc", (-n, y - n, n, y + n)) for y in (self.ya, self.yb)]
        else:
            out.append(Shape("npc", (-n, self.ya - n, n, self.yb + n)))
        return out

    def npc_reach(self) -> int:
        """The tie's npc beyond its centre, plus the spacing another npc keeps from it."""
        return self.contact // 2 + self.npc + self.npc_space


def _value(pdk, kind: str, layer: str, other: str = "") -> float | None:
    return next((r.value for r in pdk.rules if r.kind == kind and r.layer == layer and r.other == other), None)


def tie_spec(pdk, d, px: int, island_span: tuple[int, int, int]) -> TieSpec | None:
    """The tie column of a PDK (``d``: its bitcell in dbu), or None where no strap is drawn: the
    wordline contact needs an npc (SKY130's poly licon), the programming layer is the lowest via
    (the strap's met2 is free over the array: the caller asks only then) and the PDK lists via and met2 with their rules."""
    if not pdk.has("npc") or "via" not in pdk.layers or "met2" not in pdk.layers:
        return None
    li_layer, m1, via_l, m2 = pdk.roles["li"], pdk.roles["met1"], "via", "met2"
    vals = {k: _value(pdk, *k) for k in (("exact_size", via_l), ("enclosure", m1, via_l),
                                          ("enclosure_adjacent", m1, via_l), ("enclosure", m2, via_l),
                                          ("enclosure_adjacent", m2, via_l), ("spacing", "npc"),
                                          ("spacing", li_layer), ("enclosure", m1, pdk.programming_layer),
                                          ("enclosure_adjacent", m1, pdk.programming_layer), ("area", m1))}
    if any(v is None for v in vals.values()):
        return None
    dbu = {k: pdk.to_dbu(v) for k, v in vals.items() if k[0] != "area"}
    source, lw, li_space = island_span
    ct = d.contact
    via = dbu[("exact_size", via_l)]
    e_lo, e_hi = dbu[("enclosure", m1, via_l)], dbu[("enclosure_adjacent", m1, via_l)]
    c_lo, c_hi = dbu[("enclosure", m1, pdk.programming_layer)], dbu[("enclosure_adjacent", m1, pdk.programming_layer)]
    m1x = max(via // 2 + e_hi, ct // 2 + c_hi)
    m1y = max(via // 2 + e_lo, ct // 2 + c_lo)
    area = vals[("area", m1)] / pdk.dbu_um ** 2
    while 4 * m1x * m1y < area:       # m1.6: the pad grows along y on the 5 nm grid
        m1y += 5
    # tie width: its poly licon contact_to_diff from the neighbours' diffusion, its npc npc.4
    # (taken as contact_to_diff's margin) from their gates; at least the n-implant spacing
    need = 2 * (d.diff_width // 2 + d.contact_to_diff + ct // 2) - px
    nsd = _value(pdk, "spacing", pdk.roles["nsdm"]) if pdk.has("nsdm") else None
    width = max(need, pdk.to_dbu(nsd) if nsd else 0)
    width = -(-width // px) * px         # whole column pitches: every column and tie on one grid of px
    #                                      (the fast DRC cuts a strapped array by whole groups from any column)
    ya = source - lw - li_space - d.li_width // 2
    yb = source + lw + li_space + d.li_width // 2
    return TieSpec(width, ya, yb, ct, d.poly_pad_y // 2, (d.poly_pad_x - ct) // 2, d.li_pad_length // 2, via,
                   (m1x, m1y), (via // 2 + dbu[("enclosure", m2, via_l)], via // 2 + dbu[("enclosure_adjacent", m2, via_l)]),
                   d.npc_enclosure, dbu[("spacing", "npc")])


def why_not(geom, cols: int) -> str:
    """Why an array of ``cols`` bitlines on ``geom`` gets no wordline strap ("" when it does)."""
    if geom.tie is not None:
        return "" if cols > STRAP_ABOVE else (
            f"{cols} bitlines (strapped above {STRAP_ABOVE}): the poly wordline's 0.5·R·C is at most 1.19 ns at 128 "
            "(README bank-size study)")
    if geom.stack is not None:
        return (f"programming layer {geom.stack.program_layer}: the bitlines run on {geom.stack.bitline_layer}, and a "
                "strap one metal above them is not drawn yet (the wordlines stay poly)")
    return "the tie column is drawn for SKY130's poly contact (licon in npc) only: the wordlines stay poly"
