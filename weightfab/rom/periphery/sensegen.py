"""Bitline sense cells drawn from a PDK's rules (see cellgen.py): one per bitline, in two staggered
rows on each side of the array (columns 0 mod 4 and 2 mod 4 below, 1 and 3 mod 4 above), so each
cell has four column pitches of width.

Cell (local u across, v away from the array, v <= 0; mirrored above the array):
  PMOS diffusion: bitline contact | clock gate (the row's shared poly line) | VDD | bitline gate | dout
  NMOS diffusion: dout | bitline gate | VSS
The two bitline gates are one poly shape (a runner beside the diffusions) contacted between the wells
and joined to the bitline contact by a Metal1 line on the right; dout joins both drains on a Metal1
line on the left and leaves on Metal2. VDD and VSS go up a Via1+Via2 stack to Metal3 rails; an
n-tap (left) and a p-tap (right) per cell.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import WeightfabError
from .cellgen import Gen, Tech, _grid, tap_half


@dataclass(frozen=True)
class SenseGeom:
    P: int          # cell pitch (4 columns)
    H: int          # row height
    v: dict         # named v positions (dbu, <= 0)
    xr: int         # u of the right-hand (bitline) Metal1 line; the dout line is at -xr

    @classmethod
    def make(cls, t: Tech, px: int) -> "SenseGeom":
        g = t.grid
        ha, hc = t.act // 2, t.ct // 2
        v = {}
        v["bv"] = -t.nwp                                   # bitline Via1, at the PMOS diffusion's top
        v["act_top"] = -t.nwp
        v["cbl"] = v["act_top"] - t.ce - hc
        v["g1"] = v["cbl"] - hc - t.cg - t.L // 2
        v["vdd"] = min(v["g1"] - t.L // 2 - t.cg - hc, v["cbl"] - t.pad_h // 2 - t.m1s - t.pad_l // 2)
        v["g2"] = v["vdd"] - hc - t.cg - t.L // 2
        v["out"] = min(v["g2"] - t.L // 2 - t.cg - hc, v["vdd"] - t.pad_l // 2 - t.m1s - t.pad_h // 2)
        v["act_bot"] = v["out"] - hc - t.ce
        v["nw_bot"] = v["act_bot"] - t.nwp
        v["gap"] = v["nw_bot"]
        v["nact_top"] = min(v["nw_bot"] - t.nwn, v["gap"] - hc - t.pca - 0)
        v["out2"] = v["nact_top"] - t.ce - hc
        v["g3"] = v["out2"] - hc - t.cg - t.L // 2
        v["vss"] = min(v["g3"] - t.L // 2 - t.cg - hc, v["out2"] - t.pad_h // 2 - t.m1s - t.pad_l // 2)
        v["nact_bot"] = v["vss"] - hc - t.ce
        v["tn"] = v["g1"] - t.L // 2 - t.gd - ha           # n-tap centre: clear of the clock line
        v = {k: -_grid(-x, g) for k, x in v.items()}
        H = _grid(-(v["nact_bot"] - t.nwn) + t.pad_l, 100)
        # the bitline (right) and dout (left) Metal1 lines: clear of the cell's pads, of the next
        # cells' tap Metal1, and (dout, on Metal2) of the other row's VDD/VSS stacks it passes
        # (and the dout line's Via1 clear of the cell's VSS stack on Metal2)
        P = 4 * px
        hi = min(P // 2 - tap_m1(t) - t.m1s - t.pad_h // 2, 2 * px - t.m2pad[0] // 2 - t.m2w // 2 - t.m2s)
        hi -= hi % g
        xr = max(min(_grid(t.pad_h + t.m1s + 100, g), hi), _grid(t.m2pad[0] // 2 + t.m2s + t.m2w // 2, g))
        if not t.pad_h + t.m1s <= xr <= hi:
            raise WeightfabError(f"sense cell: {P} dbu of pitch is too narrow for the PDK's metal rules")
        return cls(P, H, v, xr)


def tap_m1(t: Tech) -> int:
    """Half length of a sense-cell tap's Metal1 (the tap's contact pad)."""
    return t.pad_l // 2


def tap_reach(t: Tech) -> int:
    """Half length of a sense-cell tap's diffusion (its contact pad, or the minimum diffusion area)."""
    return max(tap_m1(t), tap_half(t))


def sense_cell(g: Gen, sg: SenseGeom, xc: int, y0: int, up: bool, col: int, dout: str):
    """One cell centred on column x ``xc``; its row starts at y0 (the n-well edge nearer the
    array); ``up``: the cell lies above the array (mirrored)."""
    t, v = g.t, sg.v
    s = 1 if up else -1

    def R(key, u0, v0, u1, v1):
        ya, yb = y0 - s * v0, y0 - s * v1
        g.r(key, xc + u0, min(ya, yb), xc + u1, max(ya, yb))

    def Y(vv):
        return y0 - s * vv

    ha, hc, hb, hl = t.act // 2, t.ct // 2, t.pad_h // 2, tap_m1(t)
    ht = tap_reach(t)
    P = sg.P
    bl = f"bl[{col}]"
    # PMOS diffusion and its implant
    R("act", -ha, v["act_bot"], ha, v["act_top"])
    e = max(t.psdp, t.impg)
    R("pp", -ha - e, v["act_bot"] - e, ha + e, v["act_top"] + e)
    # bitline contact, its Via1 (bitline end) and the Metal1 to the right-hand line
    g.box("cont", xc, Y(v["cbl"]), t.ct, t.ct)
    xr = sg.xr                                        # right line centre (u)
    xl = -xr                                          # left line centre
    R("m1", -hc - t.end, v["cbl"] - hb, xr + hb, v["cbl"] + hb)
    R("m1", -hb, v["cbl"], hb, v["bv"] + t.v1 // 2 + t.end)
    g.box("v1", xc, Y(v["bv"]), t.v1, t.v1)
    # VDD contact, Metal1 pad, Via1+Via2 stack
    g.box("cont", xc, Y(v["vdd"]), t.ct, t.ct)
    R("m1", -hb, v["vdd"] - hl, hb, v["vdd"] + hl)
    g.stack3(xc, Y(v["vdd"]))
    # dout contact of the PMOS
    g.box("cont", xc, Y(v["out"]), t.ct, t.ct)
    R("m1", xl - hb, v["out"] - hb, hc + t.end, v["out"] + hb)
    # NMOS diffusion
    R("act", -ha, v["nact_bot"], ha, v["nact_top"])
    g.nplus(xc - ha, min(Y(v["nact_bot"]), Y(v["nact_top"])), xc + ha, max(Y(v["nact_bot"]), Y(v["nact_top"])),
            gate=True)
    g.box("cont", xc, Y(v["out2"]), t.ct, t.ct)
    R("m1", xl - hb, v["out2"] - hb, hc + t.end, v["out2"] + hb)
    g.box("cont", xc, Y(v["vss"]), t.ct, t.ct)
    R("m1", -hb, v["vss"] - hl, hb, v["vss"] + hl)
    g.stack3(xc, Y(v["vss"]))
    # dout line (left) down to the VSS level, Via1 to Metal2
    R("m1", xl - hb, v["vss"] - t.v1 // 2 - t.end, xl + hb, v["out"] + hb)
    g.box("v1", xc + xl, Y(v["vss"]), t.v1, t.v1)
    # bitline gates: PMOS gate, NMOS gate and the runner, contacted between the wells
    rx0 = ha + t.gd
    R("poly", -ha - t.endcap, v["g2"] - t.L // 2, rx0 + t.L, v["g2"] + t.L // 2)
    R("poly", -ha - t.endcap, v["g3"] - t.L // 2, rx0 + t.L, v["g3"] + t.L // 2)
    R("poly", rx0, v["g3"] - t.L // 2, rx0 + t.L, v["g2"] + t.L // 2)
    cx = rx0 + t.L // 2
    pp = t.ct // 2 + t.pce
    R("poly", cx - pp, v["gap"] - pp, cx + pp, v["gap"] + pp)
    g.box("cont", xc + cx, Y(v["gap"]), t.ct, t.ct)
    R("m1", cx - hc - t.end, v["gap"] - hb, xr + hb, v["gap"] + hb)
    R("m1", xr - hb, v["gap"] - hb, xr + hb, v["cbl"] + hb)            # right line: bitline
    # taps: n-tap left (VDD), p-tap right (VSS)
    R("act", -P // 2 - ht, v["tn"] - ha, -P // 2 + ht, v["tn"] + ha)
    g.nplus(xc - P // 2 - ht, min(Y(v["tn"] - ha), Y(v["tn"] + ha)), xc - P // 2 + ht, max(Y(v["tn"] - ha), Y(v["tn"] + ha)))
    g.box("cont", xc - P // 2, Y(v["tn"]), t.ct, t.ct)
    R("m1", -P // 2 - hl, v["tn"] - hb, hb, v["tn"] + hb)
    R("act", P // 2 - ht, v["vss"] - ha, P // 2 + ht, v["vss"] + ha)
    e = t.psdpw
    R("pp", P // 2 - ht - e, v["vss"] - ha - e, P // 2 + ht + e, v["vss"] + ha + e)
    g.box("cont", xc + P // 2, Y(v["vss"]), t.ct, t.ct)
    R("m1", -hb, v["vss"] - hb, P // 2 + hl, v["vss"] + hb)
    # the circuit
    g.mos("PMOS", bl, "clk", "VDD")
    g.mos("PMOS", dout, bl, "VDD")
    g.mos("NMOS", dout, bl, "VSS")


def sense_row(g: Gen, sg: SenseGeom, cols: list[int], px: int, y0: int, up: bool, name: str,
              array_edge: int, out_edge: int, x_riser: int) -> None:
    """A row of sense cells: bitline extensions from the array edge, the shared clock line (to
    a contact on the riser at ``x_riser``), the n-well, the Metal3 rails are drawn by the caller."""
    t, v = g.t, sg.v
    s = 1 if up else -1
    Y = lambda vv: y0 - s * vv                                 # noqa: E731
    hw = t.m2w // 2
    for c in cols:
        xc = c * px
        sense_cell(g, sg, xc, y0, up, c, f"{name}_dout[{c}]")
        yb = Y(v["bv"] - t.v1 // 2 - t.end)
        g.r("m2", xc - hw, min(array_edge, yb), xc + hw, max(array_edge, yb))
        xd = xc - sg.xr
        yd = Y(v["vss"] + t.v1 // 2 + t.end)
        g.r("m2", xd - hw, min(yd, out_edge), xd + hw, max(yd, out_edge))
    if not cols:
        return
    x0, x1 = cols[0] * px - sg.P // 2 - tap_reach(t), cols[-1] * px + sg.P // 2
    g.r("nw", x0 - t.nwt, min(Y(0), Y(v["nw_bot"])), x1, max(Y(0), Y(v["nw_bot"])))
    yg = Y(v["g1"])
    g.r("poly", x0, yg - t.L // 2, x_riser, yg + t.L // 2)
    g.poly_contact(x_riser, yg)
    hb, hl = t.pad_h // 2, t.pad_l // 2
    g.r("m1", x_riser - hb, yg - hl, x_riser + hb, yg + hl)
    g.via1(x_riser, yg, m2=False)


def rail_ys(sg: SenseGeom, y0: int, up: bool) -> dict[str, int]:
    s = 1 if up else -1
    return {"VDD": y0 - s * sg.v["vdd"], "VSS": y0 - s * sg.v["vss"]}
