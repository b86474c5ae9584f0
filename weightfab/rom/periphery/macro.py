"""One engine's ROM macro: the folded array plus its periphery, pins and logical circuit.

Floorplan (engine coordinates: column c at x = c·px, island r at y = r·py; a strapped array's tie
columns shift the columns: x = ColumnPlan.x(c), rom/ties.py):

  [bus0/bus2][L][bus1][bus3][D-left] pads |array| rail pads [D-right][bus-right]

* D-left drives the even wordlines (gate 0 of each island) from the left, D-right the odd ones
  from the right: one band per island on each side, pitch-matched. One logic column L holds the
  segments A (address buffers and clock gate), B (chunk predecoders) and C (group lines), bottom
  to top, from just over the channel's lowest track; bus0 (A's inputs, the pins) and bus2 (B's
  outputs, C's inputs) share their tracks, since A stands below B and C.
* The group lines D-right needs, and the clock, cross under the array in a met2 channel; the
  bottom sense row's precharge stands under it.
* Bitlines: the even ones end below the array in a PMOS precharge (gate = clk: on while the
  clock is low) and a sense inverter (sky130_fd_sc_hd__inv_2), the odd ones above it, mirrored.
  dout[c] is the inverter's output: 1 when the addressed bit transistor discharged bitline c.
* Power: every column's rails and both sense rows join a VDD/VSS strap pair above the macro
  (over the ends of the top sense row's outputs).

Pins (labels on met1.pin / met2.pin): ``<e>_addr[i]``, ``<e>_clk``, ``<e>_en`` on the bus0 lines,
``<e>_dout[c]`` at the end of each output wire, ``VDD``, ``VSS`` on the straps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry import RomGeometry, TapPlan
from ..ties import why_not
from .bands import (BUS_PITCH, GAP as GAP_BAND, M1_RAILS, PITCH, TEMPLATE, X1, XL, Band, draw_band,
                    draw_column_fill, rails_x)
from .clock import BASIS as PERIOD_BASIS
from .clock import read_period
from .draw import M1_W, M2_W, Drawing, Ref
from .logic import Logic, logic
from .stdcells import load

W_PRE, L_PRE = 0.42, 0.15     # precharge PMOS (µm)
BUS_GAP = 600                 # last line of one bus to the first of the next (their via pads clear at any height)
EDGE_BUS = 520                # a column's c2 (VGND rail) edge to the first bus line: rail 0.24 + m1.2 0.14 + pad 0.13
TAP_BUS = 480                 # a column's outer end to the first bus line, over the column's outer tap gap (no met1
                              # there; c1's VGND rail ends 1.0 µm in: 0.52 µm from the line)
GAP_SEG = 640                 # between two segments of the logic column: the joining bars (met1 0.48) 0.14 µm clear
                              # of the via pads of the bands above and below (0.095 / 0.055 µm into them)
C_PHASE = (-40, 20)           # column C's offset from the island grid (see _c_phase)
SENSE_PTAP = 4635             # a sense row's p-tap strip to the array edge (its v: -(0.52 + 1.08 + 2.72 + 0.315) µm)
RISER_VSS, RISER_VDD = 500, 460   # bus-right's last line to the VSS riser, VSS riser to VDD riser (met2 pads 0.32)
CH_TOP, CH_TOP_STACK = 270, 660  # island 0's band bottom to the channel's first track (mcon; upper programming layers)
CH_PITCH = 340                # channel tracks: a track passes 0.14 µm under the via pad ending the bus line above
                              # it; neighbouring tracks land on bus lines two apart (their pads clear diagonally)


@dataclass
class Macro:
    name: str
    cols: int
    rows: int
    drawing: Drawing
    logic: Logic
    bbox: tuple[int, int, int, int]
    array_bbox: tuple[int, int, int, int]
    pins: dict[str, tuple[str, int, int]] = field(default_factory=dict)   # name -> (layer, x, y)
    marks: dict = field(default_factory=dict)   # places of note (for tests and seeded faults), dbu
    taps: TapPlan | None = None                 # the array's substrate tap rows (None: TapPlan(rows // 2), none)
    strap: dict = field(default_factory=dict)   # the wordline straps (rom/ties.py): every, tie width, or why_not

    def __post_init__(self):
        if self.taps is None:
            self.taps = TapPlan(self.rows // 2)


class _Bus:
    """Vertical met1 lines of one bus region; each net's line spans all its landings."""

    def __init__(self, x_first: int, step: int, nets: list[str], slots: dict[str, int] | None = None):
        self.x = {n: x_first + step * (slots[n] if slots else k) for k, n in enumerate(nets)}
        self.ys: dict[str, list[int]] = {n: [] for n in nets}

    def draw(self, dw: Drawing, extra: dict[str, list[int]] = {}):
        for n, x in self.x.items():
            ys = self.ys[n] + extra.get(n, [])
            if ys:
                dw.rect("met1", x - M1_W // 2, min(ys) - 160, x + M1_W // 2, max(ys) + 160)


def _column(dw: Drawing, bands: list[Band | None], x0: int, s: int, slot0: int, y_base: int, bus_in: _Bus,
            bus_out: _Bus | None, out_to=None) -> tuple[int, int]:
    """Draw a column of bands from slot ``slot0``; returns its (y0, y1). A band None leaves its
    slot empty (beside a tap row of the array: rails, wells and tap strips continue through it)."""
    y = y_base + slot0 * PITCH
    y0, cells = y, []
    for i, b in enumerate(bands):
        if b is None:
            y += PITCH
            continue
        target = out_to(i, y) if out_to else None
        for net in b.inputs:
            bus_in.ys[net].append(y + _in_y(b, net))
        if bus_out is not None and target is None:
            bus_out.ys[b.out].append(y + (630 if b.mid_out else 700))
            if b.mid_out:
                bus_out.ys[b.mid].append(y + 985)
        xs = {**bus_in.x, **(bus_out.x if bus_out else {})}
        draw_band(dw, b, x0, y, s, xs, out_to=target, out_x=None if target else bus_out.x[b.out])
        cells.append((y, 1380))
        y += b.slots * PITCH
    draw_column_fill(dw, x0, s, y0, y, cells)
    return y0, y


def _in_y(b: Band, net: str) -> int:
    from .bands import INPUT_Y, pins
    return INPUT_Y[b.c1][pins(b.c1)[b.inputs.index(net)]]


@dataclass
class _Decoders:
    """Where the decoder columns and their buses went (dbu)."""
    x: dict[str, tuple[int, int]]                 # column -> (x0, side)
    yr: dict[str, tuple[int, int]]                # column -> (y0, y1)
    buses: list[_Bus]                             # bus0, bus1, bus2, bus3, bus-right
    right_nets: list[str | None]                  # group lines and clock D-right takes, in channel order
    ins0: list[str]                               # the macro's input pins (bus0)


def _right_tracks(lg: Logic, n_isl: int, name: str) -> tuple[list[str], list[str], list[str | None]]:
    """Bus3's nets (the group lines), the ones D-right takes, and the channel's tracks top to bottom."""
    bl = [lg.p_net(0, j) for j in range(1 << len(lg.groups[0]))] + [lg.p_net(1, j) for j in range(1 << len(lg.groups[1]))]
    used = {i for r in range(n_isl) for i in lg.wl_inputs(2 * r + 1)}
    groups = [n for n in bl if n in used]                         # in bus3's order
    return bl, groups, _track_order(groups, _Bus(0, 1, bl)) + [f"{name}_clk"]   # the clock's crossing lowest


def _decoders(dw: Drawing, geom: RomGeometry, lg: Logic, cols: int, taps: TapPlan, name: str,
              y_base: int) -> _Decoders:
    """The logic column L (segments A, B, C) with its buses, and the final decode on both sides."""
    (a0, a1), (b0, b1) = geom.fold_pads(cols)
    g0c, g1c = (sum(g) // 2 for g in geom.gates)
    xl_pad, xr_pad = (a0 + a1) // 2, (b0 + b1) // 2
    x_d = xl_pad - 605                              # D-left: c2's outer edge
    x_dr = xr_pad + 605                             # D-right (mirrored)

    # -- buses and one logic column L left of D: A (flowing right), B (left), C (right), stacked
    # bottom to top, so that A's outputs (bus1) and C's (bus3) are on L's right, B's (bus2) and
    # the pins (bus0) on its left
    bl, groups, tracks = _right_tracks(lg, taps.islands, name)
    bus3 = _Bus(x_d + XL + TAP_BUS, -BUS_PITCH, bl)
    lits = [f"a{i}" for i in range(lg.n)] + [f"ab{i}" for i in range(lg.n)] + ["ce"]
    bus1 = _Bus(min(bus3.x.values()) - BUS_GAP, -BUS_PITCH, lits)
    x_l = min(bus1.x.values()) - EDGE_BUS
    # chunk lines by value first: the two lines of a one-bit chunk's band (its stubs 0.355 µm apart)
    # land on bus lines two or more apart
    chunk_lines = sorted({i for b in lg.C for i in b.inputs}, key=lambda n: (int(n[n.index("[") + 1:-1]), n))
    bus2 = _Bus(x_l + XL - EDGE_BUS, -BUS_PITCH, chunk_lines)
    ins0 = [f"{name}_addr[{i}]" for i in range(lg.n)] + [f"{name}_clk", f"{name}_en"]
    bus0 = _Bus(x_l + XL - EDGE_BUS, -BUS_PITCH, ins0)   # on bus2's tracks: A's inputs stand below B and C
    cols_yr = {}

    def wl_band(w):
        p, q = lg.wl_inputs(w)
        return Band("nand2_1", (p, q), f"wl[{w}]", f"wlb[{w}]")

    at = dict(zip(taps.slot(range(taps.islands)).tolist(), range(taps.islands)))   # slot -> island
    left = [wl_band(2 * at[q]) if q in at else None for q in range(taps.slots)]
    right = [wl_band(2 * at[q] + 1) if q in at else None for q in range(taps.slots)]
    busr = _Bus(x_dr - XL - TAP_BUS, BUS_PITCH, groups + [f"{name}_clk"], _slots(groups + [f"{name}_clk"], tracks))
    # L stands over the channel: nothing but the clock's track (from bus0) passes under it, 0.14 µm
    # below the lowest via pad of an address buffer (0.16 µm over its band's bottom)
    y_l = y_base - (CH_TOP if geom.stack is None else CH_TOP_STACK) - (len(tracks) - 1) * CH_PITCH + 50
    ya = _column(dw, list(lg.A), x_l, 1, 0, y_l, bus0, bus1)
    yb = _column(dw, list(lg.B), x_l + XL, -1, 0, ya[1] + GAP_SEG, bus1, bus2)
    yc = _column(dw, list(lg.C), x_l, 1, 0, _c_phase(yb[1] + GAP_SEG, y_base), bus2, bus3)
    for (_, lo), (hi, _) in ((ya, yb), (yb, yc)):
        _join_segments(dw, x_l, lo, hi)
    cols_yr["L"] = (ya[0], yc[1])

    # -- final decode on both sides, one band per island (band i in slot i: wordline at i·py)
    cols_yr["DL"] = _column(dw, left, x_d, 1, 0, y_base, bus3, None,
                            out_to=lambda i, y: (xl_pad, i * geom.py + g0c))
    cols_yr["DR"] = _column(dw, right, x_dr, -1, 0, y_base, busr, None,
                            out_to=lambda i, y: (xr_pad, i * geom.py + g1c))
    col_x = {"L": (x_l, 1), "DL": (x_d, 1), "DR": (x_dr, -1)}
    return _Decoders(col_x, cols_yr, [bus0, bus1, bus2, bus3, busr], tracks, ins0)


def _track_order(nets: list[str], bus3: _Bus) -> list[str | None]:
    """The channel's group lines from top to bottom (None: a track left empty). Two neighbouring
    tracks (0.34 µm apart) must not land on neighbouring bus3 lines (their via pads would be
    0.08 µm apart diagonally): every other net of bus3's order, the odd positions first (within
    each half two lines apart, and from four nets on the junction back to position 0 three lines or
    more); where two neighbours still land on neighbouring lines, an empty track between them."""
    idx = {n: k for k, n in enumerate(bus3.x)}
    order = [nets[i] for i in list(range(1, len(nets), 2)) + list(range(0, len(nets), 2))]
    out: list[str | None] = []
    for n in order:
        if out and abs(idx[out[-1]] - idx[n]) < 2:
            out.append(None)
        out.append(n)
    return out


def _slots(nets: list[str], tracks: list[str | None]) -> dict[str, int]:
    """Bus-right positions of the nets (in bus3's order), one slot left empty wherever two
    neighbouring nets also have neighbouring tracks, so their via pads clear diagonally."""
    rank = {n: k for k, n in enumerate(tracks) if n is not None}
    slots, s = {}, 0
    for i, n in enumerate(nets):
        if i and abs(rank[n] - rank[nets[i - 1]]) == 1:
            s += 1
        slots[n] = s
        s += 1
    return slots


def _c_phase(y: int, y_base: int) -> int:
    """The lowest y >= ``y`` where column C may start: its outputs land on bus3 at 0.70 µm in a
    band, which the final decode's input stubs (0.20 and 1.18 µm in its bands, on the island
    grid from ``y_base``) cross; C's bands stay within C_PHASE of that grid, so the via pads
    keep m1.2/m2.2: 0.14 µm from a stub's pad on the same line (met1 pads 0.32 µm tall: C's at
    0.66 to 0.72 µm), 0.115 µm or more diagonally from one on the next line."""
    lo, hi = C_PHASE
    k = -(-(y - y_base - hi) // PITCH)          # the first grid point whose window reaches y
    return max(y, y_base + k * PITCH + lo)


def _join_segments(dw: Drawing, x: int, y1: int, y0: int):
    """Join two segments of the logic column across the gap [y1, y0] between them: one flowing
    right at ``x`` (c2's outer edge), one flowing left (the mirror image, c2's outer edge at
    x + XL). Each segment's met1 rails continue across the gap (the VDD rails overlap), two bars
    in the middle join the VSS rails, and the n-wells are bridged where they overlap."""
    (m0, m1), (q0, _) = M1_RAILS
    for x0 in (x, x + XL):                         # both segments' rails, continued
        s = 1 if x0 == x else -1
        for a, b in ((X1 + m0, X1 + m1), (-m1, -m0), (X1 + q0, -q0)):
            dw.rect("met1", x0 + s * a, y1, x0 + s * b, y0)
    ym = (y1 + y0) // 2
    dw.rect("met1", x - GAP_BAND - m1, ym - 240, x + m1, ym + 240)
    dw.rect("met1", x + XL + m0, ym - 240, x + X1 + m1, ym + 240)
    n0 = TEMPLATE["nwell"][0]
    dw.rect("nwell", x + X1 + n0, y1, x - GAP_BAND - n0, y0)


def _ground_and_channel(dw: Drawing, geom: RomGeometry, cols: int, y_base: int, dec: _Decoders) -> int:
    """The array's ground rail to D-right's VGND, and the met2 channel under the array that takes
    the group lines and the clock to the right-hand bus; returns the channel's depth below island 0."""
    bus0, bus3, busr = dec.buses[0], dec.buses[3], dec.buses[4]
    x_dr = dec.x["DR"][0]
    # -- the array's ground rail joins VSS: li under the right pads to D-right's VGND rail
    rail0, rail1 = geom.rail_x(cols)
    dw.rect("li", rail0, y_base - 265, rail1, geom.source)
    dw.rect("li", rail0, y_base - 265, x_dr + 85, y_base - 95)
    dw.rect("li", x_dr - 85, y_base - 265, x_dr + 85, y_base)

    # -- channel under the array: group lines and the clock to the right-hand bus (below the
    # bitlines' drop stacks where the programming layer is an upper via)
    ch0 = y_base - (CH_TOP if geom.stack is None else CH_TOP_STACK)
    for k, net in enumerate(dec.right_nets):            # neighbouring tracks land two bus lines apart
        if net is None:
            continue
        yk = ch0 - k * CH_PITCH
        src = bus3 if net in bus3.x else bus0
        src.ys[net].append(yk)
        busr.ys[net].append(yk)
        dw.stack(src.x[net], yk, li=False)
        dw.stack(busr.x[net], yk, li=False)
        dw.wire("met2", src.x[net], yk, busr.x[net], yk)
    return _channel_depth(ch0, len(dec.right_nets))


def _power(dw: Drawing, dec: _Decoders, ends: dict, x_lo: int, x_hi: int) -> tuple[int, int]:
    """VDD/VSS straps above everything, joined by every column's rails and both sense rows;
    returns the straps' y (VDD, VSS)."""
    # above the columns' rail stubs (0.40 + 0.16 µm) and the top sense row's VSS rail; over the
    # ends of its dout wires (met2) and its p-tap strip
    y_top = max(y1 for _, y1 in dec.yr.values()) + 800
    if "VSS" in ends["top"]["rails"]:
        y_top = max(y_top, ends["top"]["rails"]["VSS"] + 380)
    else:
        y_top = max(y_top, ends["top"]["edge"] + 800)
    y_vdd, y_vss = y_top + 240, y_top + 1240
    for y in (y_vdd, y_vss):
        dw.rect("met1", x_lo, y - 240, x_hi, y + 240)
    for key, (x0, s) in dec.x.items():
        y1 = dec.yr[key][1]
        for net, xs in rails_x(x0, s).items():
            for x in xs:
                _rail_up(dw, x, y1, y_vdd if net == "VDD" else y_vss, net)
    # sense rows: rails continued right to two met2 risers at the macro's right edge
    riser = {"VDD": x_hi - 300, "VSS": x_hi - 300 - RISER_VDD}
    for e in ends.values():
        for net, y in e["rails"].items():
            dw.rect("met1", e["x1"], y - 240, x_hi, y + 240)
            dw.stack(riser[net], y, li=False)
    for net, x in riser.items():
        ys = [e["rails"][net] for e in ends.values() if net in e["rails"]]
        yst = y_vdd if net == "VDD" else y_vss
        dw.stack(x, yst, li=False)
        dw.wire("met2", x, min(ys), x, yst, 260)
    return y_vdd, y_vss


def _pins(dw: Drawing, dec: _Decoders, ends: dict, x_lo: int, y_vdd: int, y_vss: int) -> dict:
    """Pin shapes and labels: VDD, VSS on the straps, the inputs on bus0, dout at the sense outputs."""
    bus0 = dec.buses[0]
    dw.labels += [_label("VDD", "met1_pin", x_lo + 300, y_vdd), _label("VSS", "met1_pin", x_lo + 300, y_vss)]
    for y in (y_vdd, y_vss):
        dw.rect("met1_pin", x_lo, y - 240, x_lo + 600, y + 240)
    pins = {"VDD": ("met1_pin", x_lo + 300, y_vdd), "VSS": ("met1_pin", x_lo + 300, y_vss)}
    for net in dec.ins0:
        x, y = bus0.x[net], min(bus0.ys[net]) - 160 + 70
        dw.rect("met1_pin", x - M1_W // 2, y - 70, x + M1_W // 2, y + 70)
        dw.labels.append(_label(net, "met1_pin", x, y))
        pins[net] = ("met1_pin", x, y)
    for e in ends.values():
        for net, (x, y) in e["dout"].items():
            dw.rect("met2_pin", x - M2_W // 2, y - 70, x + M2_W // 2, y + 70)
            dw.labels.append(_label(net, "met2_pin", x, y))
            pins[net] = ("met2_pin", x, y)
    return pins


def _tap_plan(geom: RomGeometry, lg: Logic, n_isl: int, name: str) -> TapPlan:
    """The array's tap rows, counting the sense rows' p-tap strips: their edge is 4.635 µm (the
    row's v) from the array's diffusion above it and that plus the channel's depth below it.
    A reach below of more than the tap distance counts as the distance (less the plan's 10 dbu):
    the bottom group is then held within it of the tap row above it alone, as the plan holds
    an end group's middle within it of both ends (a 12-bit decoder's channel, 97 tracks, is
    32.3 µm deep)."""
    n_tracks = len(_right_tracks(lg, n_isl, name)[2])
    gap = (geom.py - geom.island) // 2
    ch0 = -gap - (CH_TOP if geom.stack is None else CH_TOP_STACK)
    below = SENSE_PTAP + _channel_depth(ch0, n_tracks)
    if geom.d.tap_distance:
        below = min(below, geom.d.tap_distance - 10)
    return geom.tap_plan(n_isl, (below, SENSE_PTAP))


def _channel_depth(ch0: int, n_tracks: int) -> int:
    """The channel's depth below island 0's diffusion: the sense row's highest met2 (the bitlines'
    jumps, 0.93 µm under its v = 0) 0.16 µm under the lowest track, its precharge under the
    channel; at least 0.07 µm (its li 0.17 µm under the array's ground li)."""
    return max(-(ch0 - (n_tracks - 1) * CH_PITCH) - 700, 70)


def build_macro(geom: RomGeometry, cols: int, rows: int, name: str) -> Macro:
    dw = Drawing()
    lg = logic(rows, name)
    n_isl = rows // 2
    taps = _tap_plan(geom, lg, n_isl, name)
    gap = (geom.py - geom.island) // 2
    y_base = -gap                                   # band grid origin: island 0's band bottom
    top = (taps.slots - 1) * geom.py + geom.island  # top edge of the top island's diffusion
    dec = _decoders(dw, geom, lg, cols, taps, name, y_base)
    bus0, busr = dec.buses[0], dec.buses[4]
    ch = _ground_and_channel(dw, geom, cols, y_base, dec)

    # -- precharge and sensing: even columns below, odd columns above (mirrored)
    x_lo = min(min(bus0.x.values()), min(dec.buses[2].x.values())) - 400
    x_hi = max(busr.x.values()) + RISER_VSS + RISER_VDD + 300
    ends = {}
    y_lo, y_hi = _drops(dw, geom, cols, y_base, top + gap)
    cp = geom.columns(cols)
    ends["bottom"] = _sense(dw, geom, name, (cp, list(range(0, cols, 2))), lambda v: v - ch, False,
                            (bus0, f"{name}_clk"), y_lo)
    ends["top"] = _sense(dw, geom, name, (cp, list(range(1, cols, 2))), lambda v: top - v, True,
                         (busr, f"{name}_clk"), y_hi)
    for b in dec.buses:
        b.draw(dw)

    y_vdd, y_vss = _power(dw, dec, ends, x_lo, x_hi)
    pins = _pins(dw, dec, ends, x_lo, y_vdd, y_vss)
    bbox = (x_lo, ends["bottom"]["edge"], x_hi, y_vss + 240)
    array_bbox = (-geom.px // 2, y_base, int(cp.x(cols - 1)) + geom.px // 2, top + gap)
    from .bands import NTAP, PTAP, _x_pin
    x_d = dec.x["DL"][0]
    (a0, a1), _ = geom.fold_pads(cols)
    g0c = sum(geom.gates[0]) // 2
    marks = {"decoder_contact": (x_d + _x_pin("nand2_1", "A", True), y_base + 1180),
             "wl_pads": [((a0 + a1) // 2, int(taps.slot(r)) * geom.py + g0c) for r in range(min(2, n_isl))],
             "ntap_left": (x_d + NTAP[0], x_d + NTAP[1]), "ptap_left": (x_d + PTAP[0], x_d + PTAP[1]),
             "decoder_left": (x_d + XL, y_base, x_d, dec.yr["DL"][1])}
    why = why_not(geom, cols)
    strap = {"every": cp.every, "tie_width_um": cp.width / 1000, "layer": "met2"} if not why else \
        {"every": 0, "why_not": why}
    return Macro(f"{name}_macro", cols, rows, dw, lg, bbox, array_bbox, pins, marks, taps, strap)


DROP = 265     # array edge to the centre of a bitline's drop stack (upper programming layers)


def _drops(dw: Drawing, geom: RomGeometry, cols: int, y_bottom: int, y_top: int) -> tuple[int, int]:
    """Where the programming layer is an upper via, the bitlines run on the metal above it: each
    is carried down to met1 just outside the array (even columns below, odd above) by a stack of
    the vias from the programming via's level down to ``via``, with the bit sites' own pads
    between them; returns the y where each side's met1 bitline starts (the array edges at mcon).
    The stack is the same for every model: the periphery holds no programming via of a bit."""
    st = geom.stack
    if st is None:
        return y_bottom, y_top
    vias = [(role.split(":", 1)[1], v) for role, v in st.vias[1:]] + [(st.program_layer, st.via)]
    pads = [(role.split(":", 1)[1], wx, wy) for role, wx, wy in st.pads]
    ext = max(wy for _, _, wy in pads) // 2        # the bitline's end beyond its via (>= via/2 + enclosure)
    half = st.bitline // 2
    ys = (y_bottom - DROP, y_top + DROP)
    cp = geom.columns(cols)
    for c in range(cols):
        x, side = int(cp.x(c)), c % 2
        yd, edge = ys[side], (y_bottom, y_top)[side]
        dw.rect(st.bitline_layer, x - half, edge, x + half, yd + (ext if side else -ext))
        for layer, v in vias:
            dw.box(layer, x, yd, v, v)
        for layer, wx, wy in pads:
            dw.box(layer, x, yd, wx, wy)
    return ys


def _label(text, layer, x, y):
    from .draw import Label
    return Label(text, layer, x, y)


def _rail_up(dw: Drawing, x: int, y1: int, y_strap: int, net: str):
    """Join a column's met1 rail ending at (x, y1) to its strap at y_strap through met2."""
    yv = y1 + 400
    dw.wire("met1", x, y1, x, yv, 480)
    dw.stack(x, yv, li=False)
    dw.stack(x, y_strap, li=False)
    dw.wire("met2", x, yv, x, y_strap, 260)


def _sense(dw: Drawing, geom: RomGeometry, name: str, columns, fy, mirror: bool, clk, edge_y: int) -> dict:
    """Precharge PMOS and sense inverter under (mirror=False) or over the given columns
    (``columns``: the array's ColumnPlan and the columns; a tie column leaves a gap between two
    inverters, at least the implant spacing wide). ``fy`` maps a local v (<= 0, away from the
    array edge) to y."""
    px = geom.px
    cp, cols = columns
    inv = load("inv_2")
    circ = dw.circuit

    def r(layer, x0, v0, x1, v1):
        dw.rect(layer, x0, fy(v0), x1, fy(v1))

    yt = -520                     # top of the precharge diffusion
    yr = yt - 1080                # top edge (VPWR) of the sense row
    yb = yr - inv.height          # bottom edge (VGND)
    xs = [int(v) for v in cp.x(np.asarray(cols, np.int64))]
    col_of = dict(zip(xs, cols))
    if not xs:
        return {"edge": fy(yb - 900), "rails": {}, "dout": {}, "x1": 0}
    x0, x1 = xs[0] - px // 2, xs[-1] + 3 * px // 2
    bus, clk_net = clk
    xclk = bus.x[clk_net]
    # precharge: one PMOS island per column, gate line shared, source on the VDD li strip
    for x in xs:
        r("diff", x - 210, yt - 720, x + 210, yt)
        r("licon", x - 85, yt - 230, x + 85, yt - 60)
        r("licon", x - 85, yt - 660, x + 85, yt - 490)
        r("li", x - 85, yt - 310, x + 85, yt + 20)
        r("mcon", x - 85, yt - 230, x + 85, yt - 60)
        dw.rect("met1", x - 115, edge_y, x + 115, fy(yt - 540))     # the bitline, past its precharge
        circ.devices.append(("PMOS", f"bl[{col_of[x]}]", clk_net, "VDD", W_PRE, L_PRE))
    for x in xs[:-1] or xs:       # n-taps between the columns (beside a row's only column)
        xo = x + px
        r("tap", xo - 210, yt - 755, xo + 210, yt - 490)
        r("licon", xo - 85, yt - 660, xo + 85, yt - 490)
        r("nsdm", xo - 335, yt - 880, xo + 335, yt - 365)
    for x in xs:
        r("psdm", x - 335, yt - 890, x + 335, yt + 125)
    r("nwell", x0 - 400, yr + 190, x1 + 400, yt + 180)
    xpoly = xclk
    r("poly", min(xpoly, x0) - 165, yt - 435, max(xpoly, x1) + 165 if mirror else x1, yt - 285)
    r("poly", xpoly - 165, yt - 495, xpoly + 165, yt - 225)
    r("licon", xpoly - 85, yt - 445, xpoly + 85, yt - 275)
    r("npc", xpoly - 185, yt - 545, xpoly + 185, yt - 175)
    r("li", xpoly - 165, yt - 445, xpoly + 165, yt - 275)
    dw.stack(xpoly, fy(yt - 360), top="met1")
    bus.ys[clk_net].append(fy(yt - 360))
    r("li", x0, yt - 490, x1, yr - 85)               # VDD: precharge sources, n-taps, row rail
    # the sense row: one inverter per column
    doutp = {}
    for x in xs:
        ox = x - 345
        oy = fy(yb) if not mirror else fy(yb)
        dw.refs.append(Ref(inv.name, ox, oy, 0, mirror))
        c = col_of[x]
        circ.instances.append((inv.name, {"A": f"bl[{c}]", "Y": f"{name}_dout[{c}]", "VPWR": "VDD", "VPB": "VDD",
                                          "VGND": "VSS", "VNB": "VSS"}))
        ya, yo = yr - 1520, yr - 2150
        dw.stack(x - 75, fy(yt - 540), li=False)
        dw.stack(x - 75, fy(ya))
        dw.wire("met2", x - 75, fy(yt - 540), x - 75, fy(ya))
        dw.stack(x + 345, fy(yo))
        edge = yb - 900
        dw.wire("met2", x + 345, fy(yo), x + 345, fy(edge))
        doutp[f"{name}_dout[{c}]"] = (x + 345, fy(edge) + (70 if not mirror else -70))
    for layer, (a, b) in (("met1", (-240, 240)), ("met1", (2480, 2960))):
        r(layer, x0, yb + (a if not mirror else a), x1, yb + b)   # row rails, drawn continuous
    if cp.strapped:    # the inverters' n-wells across the gaps a tie column leaves between them
        r("nwell", x0 - 190, yb + 1305, x1 + 190, yb + 2910)
    # p-tap strip under the row
    r("tap", x0 + 200, yb - 595, x1 - 200, yb - 315)
    r("psdm", x0 + 75, yb - 720, x1 - 75, yb - 190)
    r("li", x0 + 200, yb - 625, x1 - 200, yb + 85)
    for x in xs:
        r("licon", x + 690 - 85, yb - 540, x + 690 + 85, yb - 370)
    return {"edge": fy(yb - 900), "rails": {"VDD": fy(yr), "VSS": fy(yb)}, "dout": doutp, "x1": x1}


def supported(pdk, geom: RomGeometry) -> str:
    """Why this PDK/bitcell gets no periphery ("" when it does): the periphery is drawn from
    sky130_fd_sc_hd cells at the SKY130 bitcell's pitch (two columns per 1.38 µm cell)."""
    need = ("nwell", "tap", "hvtp", "via", "met2", "met1_pin", "met2_pin", "areaid_sc", "psdm")
    missing = [n for n in need if n not in pdk.layers]
    if missing:
        return f"PDK {pdk.name} lists no {', '.join(missing)} layer: the periphery is drawn for SKY130 only"
    if (geom.px, geom.py) != (690, 1420):
        return (f"the periphery is drawn at the SKY130 bitcell's own pitch (0.69 x 1.42 µm: programming layer "
                f"mcon, via or via2), not at {geom.px / 1000:g} x {geom.py / 1000:g} µm")
    try:
        load("inv_2")
    except Exception as exc:            # the standard cells are data of the sky130 package
        return str(exc)
    return ""


def engine_names(names: list[str]) -> list[str]:
    """Pin and cell prefix of each engine: the layer name, made a valid and unique identifier."""
    import re
    out, seen = [], set()
    for i, n in enumerate(names):
        e = re.sub(r"[^A-Za-z0-9_]", "_", n).strip("_") or f"engine{i}"
        e = e if e[0].isalpha() else "e_" + e
        while e in seen:
            e = f"{e}_{i}"
        seen.add(e)
        out.append(e)
    return out


def build_macros(sizes: list[tuple[int, int]], names: list[str], pdk, geom: RomGeometry) -> tuple[list, list[str]]:
    """A Macro per engine, or None with the reason (unsupported PDK, too many wordlines). The
    engines of one shape are drawn once and copied under each name (shapes.ShapeCache)."""
    from . import generic        # PDKs without MOS standard cells: the periphery drawn from their rules
    from .shapes import ShapeCache
    why = generic.supported(pdk, geom) if generic.applies(pdk) else supported(pdk, geom)
    cache = ShapeCache((lambda c, r, n: generic.build_generic_macro(pdk, geom, c, r, n)) if generic.applies(pdk)
                       else (lambda c, r, n: build_macro(geom, c, r, n)))
    macros, reasons = [], []
    for (cols, rows), e in zip(sizes, engine_names(names)):
        if why:
            macros.append(None)
            reasons.append(why)
            continue
        try:
            macros.append(cache.get(cols, rows, e))
            reasons.append("")
        except Exception as exc:
            from ...errors import WeightfabError
            if not isinstance(exc, WeightfabError):
                raise
            macros.append(None)
            reasons.append(str(exc))
    return macros, reasons


def pin_order(name: str) -> tuple:
    """Pins by bus and index: ``dout[2]`` before ``dout[10]``."""
    base, _, rest = name.partition("[")
    return (base, int(rest.rstrip("]")) if rest.rstrip("]").isdigit() else -1, name)


def figures(macro: Macro | None, note: str, um: float) -> dict:
    """The report's entry for one engine: areas (µm²), density with the periphery and the clock
    period its read needs by its wordline count (clock.py: a rule from simulated banks, not a
    simulation of this macro)."""
    if macro is None:
        return {"drawn": False, "why_not": note}
    ax0, ay0, ax1, ay1 = macro.array_bbox
    x0, y0, x1, y1 = macro.bbox
    arr = (ax1 - ax0) * (ay1 - ay0) * um * um
    tot = (x1 - x0) * (y1 - y0) * um * um
    return {"drawn": True, "cell": macro.name, "banks": 1, "bits": macro.cols * macro.rows,
            "array_um2": round(arr, 3), "periphery_um2": round(tot - arr, 3), "macro_um2": round(tot, 3),
            "width_um": round((x1 - x0) * um, 3), "height_um": round((y1 - y0) * um, 3),
            "bits_per_um2": round(macro.cols * macro.rows / tot, 4), "address_bits": macro.logic.n,
            "read_period_ns": round(read_period(macro.rows) * 1e9, 3), "read_period_basis": PERIOD_BASIS,
            "pins": sorted(macro.pins, key=pin_order),
            "wordline_strap": macro.strap or {"every": 0, "why_not": GENERIC_STRAP}}


GENERIC_STRAP = ("the wordline strap is drawn on SKY130 only (the GF180MCU and SG13G2 periphery is drawn from rules; "
                 "their tie column is not drawn yet): the wordlines stay poly")
