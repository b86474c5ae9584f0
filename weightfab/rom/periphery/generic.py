"""A ROM macro drawn transistor by transistor at a PDK's own rules (IHP SG13G2, GF180MCU), for PDKs
whose package ships no MOS standard cells.

Floorplan (engine coordinates, folded array: even wordlines driven from the left, odd from the right):

  left column: [decoder rows, one per island] over [predecoder rows] over [address buffer rows]
  right column: [decoder rows]                 sense rows below and above the array

Logic (domino, read while the clock is high): address buffers (two static inverters per bit)
give a_i and ab_i; a predecoder row per 2-bit chunk value j is a clocked NMOS chain
(literals, en, clk) with a PMOS precharge on clk and an output inverter: p<g>[j] rises only while
clk and en are high and the chunk equals j. A decoder row is a chain of one p line per chunk with
a precharge on clk and the wordline driver (inverter). Bitlines precharge while clk is low (PMOS
on the clk line) and are sensed by an inverter: dout[c] = 1 when the addressed bit discharged
bitline c. The right column takes the p lines and clk over Metal3 lines below the array.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...errors import WeightfabError
from ..geometry import RomGeometry, TapPlan
from .cellgen import LAYERS, Gen, Tech, draw_row, draw_row_taps, draw_row_wells, plan_row
from .draw import Drawing, Label
from .sensegen import SenseGeom, rail_ys, sense_row, tap_reach

MAX_BITS = 12                   # 4096 wordlines per macro (six predecode chunks)
READBACK_CLEAR = 1600           # dbu, see _sense_rows
MARGIN = 600                    # dbu: array pads to the columns, columns to the macro's edge
DONE = ("ihp-sg13g2", "gf180mcu")   # PDKs whose generic floorplan passes DRC and LVS (tests/test_macro_generic.py)


@dataclass(frozen=True)
class GenericLogic:
    n: int
    chunks: tuple[tuple[int, ...], ...]

    def lit(self, bit: int, v: int) -> str:
        return f"a{bit}" if v else f"ab{bit}"

    def wl_chain(self, w: int) -> list[tuple[int, str]]:
        out, shift = [], 0
        for k, ch in enumerate(self.chunks):
            out.append((k, f"p{k}[{(w >> shift) & ((1 << len(ch)) - 1)}]"))
            shift += len(ch)
        return out


def generic_logic(rows: int) -> GenericLogic:
    n = max(2, math.ceil(math.log2(max(rows, 2))))
    if n > MAX_BITS:
        raise WeightfabError(f"{rows} wordlines: the row decoder drawn here serves at most {1 << MAX_BITS} wordlines")
    return GenericLogic(n, tuple(tuple(range(i, min(i + 2, n))) for i in range(0, n, 2)))


def applies(pdk) -> bool:
    """This PDK gets the generic (drawn-transistor) periphery."""
    return pdk.name in LAYERS


def supported(pdk, geom: RomGeometry) -> str:
    if pdk.name not in DONE:
        return (f"PDK {pdk.name}: the transistor-level periphery is drawn and verified for "
                f"{', '.join(DONE)} only so far; the arrays are drawn alone")
    if geom.stack is not None:
        return "the periphery is drawn for the PDK's default programming layer only"
    missing = [v for v in LAYERS[pdk.name].values() if v and v not in pdk.layers]
    if missing:
        return f"{pdk.path}: [layers] lacks {', '.join(missing)} (the periphery draws them)"
    return ""


def _left_plan(t: Tech, lg: GenericLogic, name: str):
    dec = [[f"p{k}[{j}]" for j in range(1 << len(ch))] for k, ch in enumerate(lg.chunks)]
    lo = [lg.lit(ch[0], v) for ch in lg.chunks for v in (0, 1)]
    hi = [lg.lit(ch[1], v) for ch in lg.chunks if len(ch) > 1 for v in (0, 1)]
    slots = dec + [lo, hi, [f"{name}_en"], [f"{name}_clk"]]
    return plan_row(t, slots, [f"{name}_addr[{i}]" for i in range(lg.n)]), len(dec)


@dataclass
class _Frame:
    """Positions shared by the drawing steps of one macro (dbu, engine coordinates)."""
    g: Gen
    t: Tech
    lg: GenericLogic
    geom: RomGeometry
    name: str
    cols: int
    n_isl: int                      # slots from island 0's to the last island's (tap rows inside included)
    pl: object                      # RowPlan of the left column (x grows right from xL)
    pr: object                      # RowPlan of the right column (x grows left from xR)
    nd: int                         # first non-decoder slot of the left plan
    sg: SenseGeom
    xL: int
    xR: int
    x_riser: int
    top: int
    y_row0: int
    yr0: int
    ext: dict = field(default_factory=dict)     # left bus net -> ys its line must reach
    rys: dict = field(default_factory=dict)     # right bus net -> ys
    ys: dict = field(default_factory=dict)      # left column rows: ("buf", i, half) / ("pre", k, j) -> y
    taps: TapPlan | None = None

    def islands(self):
        """(island, slot) of every island: the decoder rows stand in the islands' slots; a tap
        row's slot holds none (its taps and wells continue through it)."""
        return enumerate(self.taps.slot(range(self.taps.islands)).tolist())

    def reach(self, net: str, y: int):
        self.ext.setdefault(net, []).append(y)


def _frame(pdk, geom: RomGeometry, cols: int, rows: int, name: str, taps: TapPlan) -> _Frame:
    t = Tech.from_pdk(pdk, geom.py)
    lg = generic_logic(rows)
    g = Gen(Drawing(), t, LAYERS[pdk.name])
    pl, nd = _left_plan(t, lg, name)
    pr = plan_row(t, [[f"p{k}[{j}]" for j in range(1 << len(ch))] for k, ch in enumerate(lg.chunks)], [f"{name}_clk"])
    (a0, a1), (b0, b1) = geom.fold_pads(cols)
    g0c, g1c = (sum(gg) // 2 for gg in geom.gates)
    sg = SenseGeom.make(t, geom.px)
    band_left = -sg.P // 2 - tap_reach(t) - t.nwt    # the sense rows' n-well reaches this far left
    xL = min(a0 - MARGIN, band_left - 2 * t.nwn - t.pitch) - pl.width   # left column origin (x grows right)
    xR = b1 + 2 * MARGIN + pr.width                   # right column origin (x grows left)
    n_isl = taps.slots
    return _Frame(g, t, lg, geom, name, cols, n_isl, pl, pr, nd, sg, xL, xR, b1 + MARGIN,
                  (n_isl - 1) * geom.py + geom.island, g0c + t.band, g1c + t.band, taps=taps)


def _left_column(f: _Frame) -> tuple[int, int]:
    """Address buffers, a gap (clock contact), predecoders and the even wordlines' decoder rows,
    bottom up; returns (y of the gap, y of the top row)."""
    g, t, lg, pl, xL, name = f.g, f.t, f.lg, f.pl, f.xL, f.name
    pre = [(k, j) for k, ch in enumerate(lg.chunks) for j in range(1 << len(ch))]
    n_buf = 2 * lg.n
    first = -(len(pre) + 1 + n_buf)
    for i in range(lg.n):
        f.ys[("buf", i, 0)] = f.y_row0 + (first + 2 * i) * t.pitch
        f.ys[("buf", i, 1)] = f.y_row0 + (first + 2 * i + 1) * t.pitch
    y_gap = f.y_row0 + (first + n_buf) * t.pitch
    for q, kj in enumerate(pre):
        f.ys[("pre",) + kj] = f.y_row0 + (first + n_buf + 1 + q) * t.pitch
    for i in range(lg.n):
        for half, (inp, out) in enumerate(((f"{name}_addr[{i}]", f"ab{i}"), (f"ab{i}", f"a{i}"))):
            y = f.ys[("buf", i, half)]
            draw_row(g, pl, xL, y, [], out, f"b{i}_{half}", None, inp, pl.lines[out])
            f.reach(inp, y + t.band)
            f.reach(out, y - t.band)
    for (k, j) in pre:
        y = f.ys[("pre", k, j)]
        ch = lg.chunks[k]
        chain = [(f.nd, lg.lit(ch[0], j & 1))]
        if len(ch) > 1:
            chain.append((f.nd + 1, lg.lit(ch[1], j >> 1)))
        chain += [(f.nd + 2, f"{name}_en"), (f.nd + 3, f"{name}_clk")]
        draw_row(g, pl, xL, y, chain, f"p{k}[{j}]", f"pn{k}_{j}", "clk", None, pl.lines[f"p{k}[{j}]"])
        for _, net in chain:
            f.reach(net, y + t.band)
        f.reach(f"p{k}[{j}]", y - t.band)
    (a0, a1), _ = f.geom.fold_pads(f.cols)
    for r, q in f.islands():
        y = f.y_row0 + q * t.pitch
        chain = lg.wl_chain(2 * r)
        draw_row(g, pl, xL, y, chain, f"wl[{2 * r}]", f"wn{2 * r}", "clk", None, (a0 + a1) // 2 - xL)
        for _, net in chain:
            f.reach(net, y + t.band)
    return y_gap, f.y_row0 + (f.n_isl - 1) * t.pitch   # the last island's slot is the last slot


def _right_column(f: _Frame):
    """The odd wordlines' decoder rows (mirrored); the p lines they take, by row."""
    t, lg = f.t, f.lg
    _, (b0, b1) = f.geom.fold_pads(f.cols)
    for r, q in f.islands():
        y = f.yr0 + q * t.pitch
        draw_row(f.g, f.pr, f.xR, y, lg.wl_chain(2 * r + 1), f"wl[{2 * r + 1}]", f"wn{2 * r + 1}", "clk", None,
                 f.xR - (b0 + b1) // 2, mirror=True)
    for k, ch in enumerate(lg.chunks):
        for j in range(1 << len(ch)):
            f.rys[f"p{k}[{j}]"] = [f.yr0 + q * t.pitch + t.band for r, q in f.islands()
                                   if dict(lg.wl_chain(2 * r + 1)).get(k) == f"p{k}[{j}]"] or [f.yr0 + t.band]


def _taps_wells_clocks(f: _Frame, y_gap: int, y_top_row: int) -> tuple[int, int]:
    """Taps and n-wells of both columns, their clock poly lines; returns the left column's
    (y_lo, y of the right column's clock contact)."""
    g, t, pl, pr, xL, xR = f.g, f.t, f.pl, f.pr, f.xL, f.xR
    y_lo = f.ys[("buf", 0, 0)] - t.pitch // 2
    y_hi = y_top_row + t.pitch // 2
    for y in range(f.ys[("buf", 0, 0)] - t.pitch // 2, y_hi + 1, t.pitch):
        draw_row_taps(g, pl, xL, y)
    for r in range(-1, f.n_isl):
        draw_row_taps(g, pr, xR, f.yr0 + r * t.pitch + t.pitch // 2, mirror=True)
    draw_row_wells(g, pl, xL, y_lo - t.pitch // 2 + t.nwt, y_hi + t.pitch // 2 - t.nwt)
    draw_row_wells(g, pr, xR, f.yr0 - t.pitch, f.yr0 + f.n_isl * t.pitch, mirror=True)
    _clock_lines(g, pl, xL, y_gap, y_top_row, False)
    yrc = f.yr0 + f.n_isl * t.pitch
    _clock_lines(g, pr, xR, yrc, f.yr0, True)
    f.reach(f"{f.name}_clk", y_gap)
    return y_lo, yrc


def _sense_rows(f: _Frame, gap: int, y_gnd: int):
    """Four staggered sense rows (columns 0, 2 mod 4 below the array, 1, 3 mod 4 above); returns
    (y of the upper rows' start, bottom edge, top edge, the rows' rail ys)."""
    sg = f.sg
    # the sense rows keep their vias out of the outline readback grows around an array on a PDK
    # with implicit n+ (1.49 µm on SG13G2: half the widest island gap over its programming layers)
    yb0 = y_gnd - 500 - READBACK_CLEAR
    yt0 = f.top + gap + 900 + READBACK_CLEAR
    bottom_edge, top_edge = yb0 - 2 * sg.H, yt0 + 2 * sg.H
    rails = []
    for (mod, y0, up) in ((0, yb0, False), (2, yb0 - sg.H, False), (1, yt0, True), (3, yt0 + sg.H, True)):
        cs = [c for c in range(f.cols) if c % 4 == mod]
        edge = -gap if not up else f.top + gap
        sense_row(f.g, sg, cs, f.geom.px, y0, up, f.name, edge, top_edge if up else bottom_edge, f.x_riser)
        if cs:
            rails.append(rail_ys(sg, y0, up))
    return yt0, bottom_edge, top_edge, rails


def _array_edges(f: _Frame, y_gnd: int) -> tuple[int, int]:
    """The odd wordlines' left end caps (the folded array draws the right ones only) and the
    array's ground rail to the right column's VSS line; returns the rail's x extent."""
    g, t, geom = f.g, f.t, f.geom
    end = geom.d.diff_width // 2 + geom.d.poly_endcap
    if end > geom.px // 2:
        lo1, hi1 = geom.gates[1]
        for _, q in f.islands():
            g.r("poly", -end, q * geom.py + lo1, -geom.px // 2, q * geom.py + hi1)
    rail0, rail1 = geom.rail_x(f.cols)
    hb = t.pad_h // 2
    g.r("m1", rail0, y_gnd - hb, rail1, geom.source)
    xv = f.xR - f.pr.x_vss
    g.r("m1", rail0, y_gnd - hb, xv + hb + t.end, y_gnd + hb)
    g.via1(xv, y_gnd, m2=False)
    return rail0, rail1


def _channel(f: _Frame, y_base: int, yrc: int, yt0: int) -> int:
    """The Metal3 crossing channel under everything (p lines and clk to the right column) and the
    clock riser from the sense rows' clock lines; returns the channel's lowest y."""
    g, t, pl, pr, name = f.g, f.t, f.pl, f.pr, f.name
    lp = t.m3w + t.m3s
    y_ch = y_base - 2 * lp
    cross = [n for n in pr.lines]
    for q, net in enumerate(cross):
        y = y_ch - q * lp
        xa, xb = f.xL + pl.lines[net], f.xR - pr.lines[net]
        g.r("m3", xa - t.v2 // 2 - t.end, y - t.m3w // 2, xb + t.v2 // 2 + t.end, y + t.m3w // 2)
        for x in (xa, xb):
            g.box("v2", x, y, t.v2, t.v2)
        f.reach(net, y)
        f.rys.setdefault(net, []).append(y)
    f.rys[f"{name}_clk"] = f.rys.get(f"{name}_clk", []) + [yrc]
    yclk = y_ch - cross.index(f"{name}_clk") * lp
    xr = f.x_riser
    g.r("m2", xr - t.m2w // 2, yclk - t.v2 // 2 - t.end, xr + t.m2w // 2,
        yt0 + f.sg.H - f.sg.v["g1"] + t.v1 // 2 + t.end)
    g.box("v2", xr, yclk, t.v2, t.v2)
    g.r("m3", xr - t.v2 // 2 - t.end, yclk - t.m3w // 2, xr + t.v2 // 2 + t.end, yclk + t.m3w // 2)
    return y_ch - (len(cross) - 1) * lp


def _power_and_buses(f: _Frame, y_pin: int, y_rbot: int, top_edge: int, rails: list[dict]):
    """VDD/VSS column lines, the sense rows' Metal3 rails, and the Metal2 bus lines."""
    g, t, pl, pr, xL, xR = f.g, f.t, f.pl, f.pr, f.xL, f.xR
    for ly in ([pl.x_vss, pl.x_vss2], [pl.x_vdd]):
        for xl_ in ly:
            _vline(g, t, xL + xl_, y_pin - t.v1 // 2 - t.end, top_edge)
    for ly in ([pr.x_vss, pr.x_vss2], [pr.x_vdd]):
        for xl_ in ly:
            _vline(g, t, xR - xl_, y_rbot, top_edge)
    pw = {"VDD": [xL + pl.x_vdd, xR - pr.x_vdd], "VSS": [xL + pl.x_vss, xL + pl.x_vss2, xR - pr.x_vss, xR - pr.x_vss2]}
    for rr in rails:
        for net, y in rr.items():
            g.r("m3", xL - MARGIN, y - 150, xR + MARGIN, y + 150)
            for x in pw[net]:
                g.box("v2", x, y, t.v2, t.v2)
    hw = t.m2w // 2
    for net, x in pl.lines.items():
        yy = f.ext.get(net, [])
        if net.startswith(f"{f.name}_"):
            yy = yy + [y_pin]
        if yy:
            g.r("m2", xL + x - hw, min(yy) - t.v1 // 2 - t.end, xL + x + hw, max(yy) + t.v1 // 2 + t.end)
    for net, x in pr.lines.items():
        yy = f.rys.get(net, [])
        if yy:
            g.r("m2", xR - x - hw, min(yy) - t.v1 // 2 - t.end, xR - x + hw, max(yy) + t.v1 // 2 + t.end)


def _pins(f: _Frame, pin_layer: str, y_pin: int, bottom_edge: int, top_edge: int) -> dict:
    """Pins (Metal2 pin purpose) at the lines' ends: address, clock, enable, power, dout."""
    g, t, pl, xL, name = f.g, f.t, f.pl, f.xL, f.name
    hw = t.m2w // 2
    pins = {}

    def pin(net, x, y):
        g.r("pin", x - hw, y - 100, x + hw, y + 100)
        g.dw.labels.append(Label(net, pin_layer, x, y))
        pins[net] = (pin_layer, x, y)

    pin_y = y_pin - t.v1 // 2 - t.end + 100
    for i in range(f.lg.n):
        pin(f"{name}_addr[{i}]", xL + pl.lines[f"{name}_addr[{i}]"], pin_y)
    pin(f"{name}_clk", xL + pl.lines[f"{name}_clk"], pin_y)
    pin(f"{name}_en", xL + pl.lines[f"{name}_en"], pin_y)
    pin("VDD", xL + pl.x_vdd, pin_y)
    pin("VSS", xL + pl.x_vss, pin_y)
    for c in range(f.cols):
        up = c % 2 == 1
        pin(f"{name}_dout[{c}]", c * f.geom.px - f.sg.xr, (top_edge - 100) if up else (bottom_edge + 100))
    return pins


def build_generic_macro(pdk, geom: RomGeometry, cols: int, rows: int, name: str):
    from .macro import Macro
    reach = sense_tap_reach(pdk, geom) if rows // 2 > 2 else None
    f = _frame(pdk, geom, cols, rows, name, geom.tap_plan(rows // 2, reach) if reach else TapPlan(rows // 2))
    t = f.t
    y_gap, y_top_row = _left_column(f)
    _right_column(f)
    y_lo, yrc = _taps_wells_clocks(f, y_gap, y_top_row)
    gap = (geom.py - geom.island) // 2
    y_gnd = -gap - 400
    yt0, bottom_edge, top_edge, rails = _sense_rows(f, gap, y_gnd)
    devs = f.g.dw.circuit.devices                     # the rows' clock nets are the clk pin
    for i, (kind, d, gg, s, w, l) in enumerate(devs):
        if gg == "clk":
            devs[i] = (kind, d, f"{name}_clk", s, w, l)
    rail0, rail1 = _array_edges(f, y_gnd)
    y_ch_lo = _channel(f, min(bottom_edge, y_lo), yrc, yt0)
    y_pin = min(y_ch_lo, y_lo) - 1000
    _power_and_buses(f, y_pin, min(bottom_edge, y_gnd) - 500, top_edge, rails)
    pins = _pins(f, LAYERS[pdk.name]["pin"], y_pin, bottom_edge, top_edge)
    bbox = (f.xL - MARGIN, y_pin - t.v1 // 2 - t.end - MARGIN, f.xR + MARGIN, top_edge + MARGIN)
    array_bbox = (-geom.px // 2, -gap, (cols - 1) * geom.px + geom.px // 2, f.top + gap)
    (a0, a1), _ = geom.fold_pads(cols)
    marks = {"decoder_contact": (f.xL + f.pl.gates[0], f.y_row0 + t.band),
             "wl_pads": [((a0 + a1) // 2, q * geom.py + (f.y_row0 - t.band)) for r, q in list(f.islands())[:2]],
             "ground": (rail0, rail1, y_gnd)}
    return Macro(f"{name}_macro", cols, rows, f.g.dw, f.lg, bbox, array_bbox, pins, marks, f.taps)


_REACH: dict = {}


def sense_tap_reach(pdk, geom: RomGeometry) -> tuple[int, int]:
    """How far the sense rows' substrate taps stand from the array (dbu): from the lowest island's
    diffusion down to the nearest p-tap diffusion under the array, and from the highest one's up to
    the nearest above it; measured on a 4 x 4 macro (the rows keep their distance at every size)."""
    key = (str(pdk.path), pdk.name, geom.px, geom.py, geom.island)
    if key not in _REACH:
        _REACH[key] = _measure_reach(pdk, geom)
    return _REACH[key]


def _measure_reach(pdk, geom: RomGeometry) -> tuple[int, int]:
    m = build_generic_macro(pdk, geom, 4, 4, "probe")
    act, pp, nw = (LAYERS[pdk.name][k] for k in ("act", "pp", "nw"))
    boxes = {k: [b for ly, b in m.drawing.shapes if ly == k] for k in (act, pp, nw)}

    def inside(b, outer):
        return any(o[0] <= b[0] and o[1] <= b[1] and o[2] >= b[2] and o[3] >= b[3] for o in outer)
    x_hi, top = 3 * geom.px, m.array_bbox[3] - (geom.py - geom.island) // 2
    taps = [b for b in boxes[act] if inside(b, boxes[pp]) and not any(
        n[0] < b[2] and n[2] > b[0] and n[1] < b[3] and n[3] > b[1] for n in boxes[nw]) and b[0] <= x_hi and b[2] >= 0]
    below = [-b[3] for b in taps if b[3] <= 0]
    above = [b[1] - top for b in taps if b[1] >= top]
    if not below or not above:
        raise WeightfabError(f"{pdk.name}: the sense rows hold no substrate tap below and above the array")
    return min(below), min(above)


def _vline(g: Gen, t: Tech, x: int, y0: int, y1: int):
    g.r("m2", x - t.m2w // 2, y0, x + t.m2w // 2, y1)


def _clock_lines(g: Gen, p, x0: int, y_contact: int, y_far: int, mirror: bool):
    """The column's vertical clock poly line (precharge gates of every domino row) from its
    contact at ``y_contact`` to the far row ``y_far``, and the contact's Metal1 to the clk line."""
    t = g.t
    s = -1 if mirror else 1
    xc = x0 + s * p.x_clk
    ha = t.act // 2
    lo, hi = sorted((y_contact, y_far))
    ext = ha + t.endcap
    g.r("poly", xc - t.L // 2, lo - (0 if lo == y_contact else ext), xc + t.L // 2, hi + (0 if hi == y_contact else ext))
    g.poly_contact(xc, y_contact)
    xl = x0 + s * p.lines[[n for n in p.lines if n.endswith("_clk")][0]]
    hb = t.pad_h // 2
    a, b = sorted((xc, xl))
    e = max(t.ct, t.v1) // 2 + t.end
    g.r("m1", a - e, y_contact - hb, b + e, y_contact + hb)
    g.via1(xl, y_contact, m2=False)
