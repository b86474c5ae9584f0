"""Transistor-level extraction of a layout (or a window of it) with KLayout's ``LayoutToNetlist``.

One function, :func:`extract`, turns flat regions into a netlist; the callers choose the regions:
``electrical.py`` clips one engine's window, :func:`extract_netlist` takes a whole cell (an engine,
a macro) or a box of it, and ``lvs.py`` compares the result with a generated reference.

Devices (KLayout's three-terminal MOS extractor, so every device carries W and L in µm):

* ``NMOS``: gate = n diffusion & poly, source/drain = n diffusion - poly. n diffusion is the
  diffusion under the n implant (role ``nsdm``), or all diffusion not under the p implant where
  the PDK's n+ is implicit.
* ``PMOS``: the same on p diffusion (diffusion under a ``psdm`` layer inside an ``nwell`` layer),
  where the PDK lists those layers; the ROM array itself has none. ``PMOS_HVT``: a PMOS whose
  gate lies under the ``hvtp`` layer (SKY130's pfet_01v8_hvt, in the standard cells).

Conductors: source/drain - contact (role licon) - li - via (role mcon) - met1, poly - contact.
Texts on the layers named in ``labels`` name the nets they sit on (KLayout's label join).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import klayout.db as kdb

from ..errors import LayoutReadError
from ..rom.viastack import stack_roles
from ..tech.pdk import Pdk
from .drc import read_layout

ROLES = ("diff", "poly", "licon", "li", "mcon", "met1", "nsdm", "pimplant")   # pimplant: the arrays' tap rows
P_LAYERS = ("psdm", "nwell", "via", "met2", "hvtp")  # PDK layer names: p devices (where both listed), met2
# routing, the high-threshold implant (PMOS under it are PMOS_HVT: the standard cells' pfet_01v8_hvt)
CONDUCTORS = ("sd_n", "sd_p", "poly", "licon", "li", "mcon", "met1", "via", "met2")
VIAS = (("sd_n", "licon"), ("sd_p", "licon"), ("poly", "licon"), ("licon", "li"), ("li", "mcon"), ("mcon", "met1"),
        ("met1", "via"), ("via", "met2"))


@dataclass
class Extraction:
    l2n: kdb.LayoutToNetlist
    regions: dict[str, kdb.Region]   # the input regions plus gate_n/sd_n/gate_p/sd_p
    stray_diff: kdb.Region           # diffusion that is neither n nor p: not extracted

    @property
    def netlist(self) -> kdb.Netlist:
        return self.l2n.netlist()

    @property
    def circuit(self) -> kdb.Circuit:
        return self.l2n.netlist().top_circuit()

    def errors(self) -> list[str]:
        return [str(e) for e in self.l2n.each_error()]

    def probe(self, layer: str, x: int, y: int) -> int | None:
        """Cluster id of the net on ``layer`` at (x, y) dbu, or None where there is no shape."""
        net = self.l2n.probe_net(self.regions[layer], kdb.Point(x, y))
        return None if net is None else net.cluster_id


def layer_indices(layout: kdb.Layout, pdk: Pdk) -> dict[str, int | None]:
    """Layout layer index of each drawing role (None where the layout or PDK has none) and of
    the p-device layers the PDK lists."""
    idx = {n: layout.find_layer(*pdk.role_gds(n)) if pdk.has(n) else None for n in ROLES + stack_roles(pdk)}
    used = {pdk.roles[r] for r in ("mcon", "met1", *stack_roles(pdk)) if pdk.has(r)}   # already read by role
    for name in P_LAYERS:
        idx[name] = layout.find_layer(*pdk.gds(name)) if name in pdk.layers and name not in used else None
    return idx


def clip(layout: kdb.Layout, top: kdb.Cell, index: int | None, box: kdb.Box | None) -> kdb.Region:
    """Flat region of one layer under ``top``, clipped to ``box`` (all of it when box is None)."""
    if index is None:
        return kdb.Region()
    if box is None:
        return kdb.Region(top.begin_shapes_rec(index))
    if box.width() <= 0 or box.height() <= 0:
        return kdb.Region()
    return kdb.Region(top.begin_shapes_rec_touching(index, box)) & kdb.Region(box)


def _derive(regs: dict[str, kdb.Region], pdk: Pdk) -> kdb.Region:
    """Add the device layers (gate_n/sd_n/gate_p/gate_ph/sd_p) to ``regs``; returns the stray diffusion."""
    pdiff = regs["diff"] & regs["psdm"] & regs["nwell"]
    ndiff = (regs["diff"] & regs["nsdm"]) if pdk.has("nsdm") else (regs["diff"] - regs["psdm"] - regs["pimplant"])
    ndiff -= pdiff
    regs["gate_n"], regs["sd_n"] = ndiff & regs["poly"], ndiff - regs["poly"]
    regs["gate_p"], regs["sd_p"] = pdiff & regs["poly"], pdiff - regs["poly"]
    regs["gate_ph"] = regs["gate_p"] & regs["hvtp"]
    regs["gate_p"] = regs["gate_p"] - regs["hvtp"]
    return regs["diff"] - ndiff - pdiff - regs["pimplant"]    # a substrate tap (p implant, no well) is no device


def _devices_and_nets(l2n: kdb.LayoutToNetlist, regs: dict[str, kdb.Region], pdk: Pdk, empty) -> None:
    """Device extraction and the conductor stack (``empty``: makes an empty layer of l2n's kind)."""
    for kind, g, sd in (("NMOS", "gate_n", "sd_n"), ("PMOS", "gate_p", "sd_p"), ("PMOS_HVT", "gate_ph", "sd_p")):
        if not regs[g].is_empty():
            l2n.extract_devices(kdb.DeviceExtractorMOS3Transistor(kind), {"SD": regs[sd], "G": regs[g], "P": regs["poly"]})
    # an upper programming layer (rom/viastack.py): li reaches mcon through the stack's vias and pads
    chain = ("li", *stack_roles(pdk), "mcon")
    for n in CONDUCTORS + chain[1:-1]:
        if n not in regs:
            regs[n] = empty(n)
        l2n.connect(regs[n])
    for a, b in [v for v in VIAS if v != ("li", "mcon")] + list(zip(chain, chain[1:])):
        l2n.connect(regs[a], regs[b])


def extract(regions: dict[str, kdb.Region], dbu: float, pdk: Pdk, name: str = "TOP",
            texts: dict[str, kdb.Texts] | None = None) -> Extraction:
    """Extract NMOS/PMOS devices and nets from flat regions (keys: the drawing roles, optionally
    ``psdm``/``nwell``). ``texts``: conductor name -> labels that name the nets they touch."""
    regs = {n: r.merged() for n, r in regions.items()}
    for n in ROLES + P_LAYERS:
        regs.setdefault(n, kdb.Region())
    stray = _derive(regs, pdk)
    l2n = kdb.LayoutToNetlist(name, dbu)
    for n, r in regs.items():
        l2n.register(r, n)
    _devices_and_nets(l2n, regs, pdk, lambda n: kdb.Region())
    for layer, tx in (texts or {}).items():
        l2n.register(tx, f"{layer}_text")
        l2n.connect(regs[layer], tx)
    l2n.extract_netlist()
    return Extraction(l2n, regs, stray)


def label_target(pdk: Pdk, lname: str) -> str:
    """The conductor a pin label names (matched by GDS layer number; an upper programming layer
    moves role met1 up the stack)."""
    num = pdk.gds(lname)[0]
    target = next((r for r in ("met1", "li", *stack_roles(pdk)[1::2]) if pdk.has(r) and num == pdk.role_gds(r)[0]), None)
    if target is None and "met2" in pdk.layers and num == pdk.gds("met2")[0]:
        target = "met2"
    return target or "met1"


def extract_cell(layout: kdb.Layout, cell: kdb.Cell, pdk: Pdk, label_layers: tuple[str, ...] = ()) -> Extraction:
    """Hierarchical extraction of ``cell`` (KLayout's deep mode): every distinct cell is extracted
    once and becomes a circuit, its placements subcircuits; the netlist is hierarchical
    (:func:`flatten` makes it flat). Labels on ``label_layers`` name the nets they sit on."""
    l2n = kdb.LayoutToNetlist(kdb.RecursiveShapeIterator(layout, cell, []))
    l2n.threads = 1
    idx = layer_indices(layout, pdk)
    regs = {n: (l2n.make_layer(i, n) if i is not None else l2n.make_layer(n)) for n, i in idx.items()}
    for n in ROLES + P_LAYERS:
        if n not in regs:
            regs[n] = l2n.make_layer(n)
    stray = _derive(regs, pdk)
    regs["poly_field"] = regs["poly"] - regs["diff"]        # for wire capacitance (parasitics.py)
    for n in ("gate_n", "sd_n", "gate_p", "sd_p", "gate_ph", "poly_field"):
        l2n.register(regs[n], n)
    _devices_and_nets(l2n, regs, pdk, l2n.make_layer)
    l2n.connect(regs["poly_field"])
    l2n.connect(regs["poly"], regs["poly_field"])
    for lname in label_layers:
        li = layout.find_layer(*pdk.gds(lname))
        if li is not None:
            l2n.connect(regs[label_target(pdk, lname)], l2n.make_text_layer(li, f"{lname}_text"))
    l2n.extract_netlist()
    return Extraction(l2n, regs, stray)


def extract_netlist(path: str | Path, pdk: Pdk, cell: str | None = None, box: tuple[float, float, float, float] | None = None,
                    label_layers: tuple[str, ...] = (), probes: dict[str, tuple[str, int, int]] | None = None,
                    problems: list[str] | None = None) -> kdb.Netlist:
    """The transistor netlist of ``cell`` (default: the top cell) of a GDSII/OASIS file, flat,
    optionally only inside ``box`` (x0, y0, x1, y1 in µm, in the cell's coordinates).

    ``label_layers``: PDK layer names whose texts name nets; a text names the net of the met1/li
    shape under it (its layer is matched by GDS layer number). Devices are ``NMOS``/``PMOS`` with
    W and L in µm; shapes cut by the box edge keep only their inside part. A whole cell is
    extracted hierarchically (:func:`extract_cell`) and flattened; a box, flat.

    ``probes`` (net name -> (conductor, x, y) in dbu) name nets as labels would (see
    :func:`name_probed`; what does not hold is added to ``problems``)."""
    probes, problems = probes or {}, problems if problems is not None else []
    layout, top = read_layout(path)
    if cell is not None:
        c = layout.cell(cell)
        if c is None:
            raise LayoutReadError(f"{path}: no cell named '{cell}'")
        top = c
    idx = layer_indices(layout, pdk)
    if box is None:
        if all(idx[n] is None or top.bbox_per_layer(idx[n]).empty() for n in ("diff", "poly")):
            raise LayoutReadError(f"{path}: cell '{top.name}' holds no diffusion or poly: nothing to extract")
        ex = extract_cell(layout, top, pdk, label_layers)
        name_probed(ex.l2n, ex.regions, probes, problems, layout.dbu)
        netlist = flatten(ex.netlist)[0]           # built anew: independent of the extractor
        del ex
        return netlist
    clip_box = kdb.DBox(*box).to_itype(layout.dbu)
    regions = {n: clip(layout, top, i, clip_box) for n, i in idx.items()}
    if not any(not regions[n].is_empty() for n in ("diff", "poly")):
        raise LayoutReadError(f"{path}: cell '{top.name}' holds no diffusion or poly: nothing to extract")
    texts = {}
    for lname in label_layers:
        li = layout.find_layer(*pdk.gds(lname))
        if li is None:
            continue
        tx = kdb.Texts(top.begin_shapes_rec(li)).interacting(kdb.Region(clip_box))
        target = label_target(pdk, lname)
        texts[target] = texts.get(target, kdb.Texts()) + tx
    ex = extract(regions, layout.dbu, pdk, top.name, texts)
    name_probed(ex.l2n, ex.regions, probes, problems, layout.dbu)
    netlist = ex.l2n.netlist().dup()          # owned by the caller, independent of the extractor
    del ex
    return netlist


def name_probed(l2n: kdb.LayoutToNetlist, regions: dict[str, kdb.Region], probes: dict[str, tuple[str, int, int]],
                problems: list[str], dbu: float) -> None:
    """Name the top circuit's net under each probe (net name -> (region key, x, y) in dbu) that
    has no name yet. A point on no shape, two names on one net or a net that does not reach the
    top circuit is added to ``problems``."""
    top = l2n.netlist().top_circuit()
    seen: dict[int, str] = {}
    for name, (layer, x, y) in probes.items():
        net = l2n.probe_net(regions[layer], kdb.Point(x, y))
        where = f"({x * dbu:.3f}, {y * dbu:.3f}) µm"
        if net is None:
            problems.append(f"{name}: no {layer} at its pad {where}")
        elif net.circuit().cell_index != top.cell_index:
            problems.append(f"{name}: its {layer} at {where} is not on a net of the top cell")
        elif net.cluster_id in seen:
            problems.append(f"{name} and {seen[net.cluster_id]} are one net (at {where})")
        else:
            seen[net.cluster_id] = name
            if not net.name:
                net.name = name


@dataclass
class _Template:
    """One circuit, expanded: its nets (pin id or None), devices and the subcircuits' contents."""
    pins: list[int | None]                          # per local net: the circuit's pin id, or None
    devices: list[tuple]                            # (class name, params, DCplxTrans, [(terminal, net)])
    caps: list[float]                               # per local net not on a pin: net_cap's value (else 0)


def _template(circuit: kdb.Circuit, cache: dict[int, _Template], net_cap=None) -> _Template:
    """The circuit with its subcircuits expanded into it (cached per circuit)."""
    got = cache.get(circuit.cell_index)
    if got is not None:
        return got
    nets = list(circuit.each_net())
    index = {n.cluster_id: k for k, n in enumerate(nets)}
    pins = [None] * len(nets)
    for p in circuit.each_pin():
        n = circuit.net_for_pin(p.id())
        if n is not None:
            pins[index[n.cluster_id]] = p.id()
    caps = [net_cap(circuit, n) if net_cap is not None and pins[k] is None else 0.0 for k, n in enumerate(nets)]
    devices = []
    for d in circuit.each_device():
        dc = d.device_class()
        params = [d.parameter(q.id()) for q in dc.parameter_definitions()]
        terms = [(t.id(), index[d.net_for_terminal(t.id()).cluster_id]) for t in dc.terminal_definitions()
                 if d.net_for_terminal(t.id()) is not None]
        devices.append((dc.name, params, d.trans, terms))
    for sc in circuit.each_subcircuit():
        sub = _template(sc.circuit_ref(), cache, net_cap)
        local = []                                   # the child's nets in this circuit's numbering
        for pin, cap in zip(sub.pins, sub.caps):
            n = sc.net_for_pin(pin) if pin is not None else None
            if n is None:
                local.append(len(pins))
                pins.append(None)
                caps.append(cap)
            else:
                local.append(index[n.cluster_id])
        devices += [(c, p, sc.trans * t, [(tid, local[k]) for tid, k in terms]) for c, p, t, terms in sub.devices]
    got = _Template(pins, devices, caps)
    cache[circuit.cell_index] = got
    return got


def flatten(netlist: kdb.Netlist, net_cap=None) -> tuple[kdb.Netlist, dict[int, kdb.Net], dict[int, float]]:
    """A flat copy of a hierarchical netlist's top circuit, its nets by cluster id (the top circuit's
    keep theirs; nets inside a subcircuit get new ids above them) and, with ``net_cap(circuit, net)``,
    the value it gives each net inside a subcircuit (not on its pins) by the flat net's id, computed
    once per circuit. (KLayout's ``Netlist.flatten`` is quadratic in the number of placements: over
    10 minutes for the 64,900 of a 120 kbit macro.)"""
    top = netlist.top_circuit()
    out = kdb.Netlist()
    classes = {}
    for dc in netlist.each_device_class():
        copy = dc.dup()
        out.add(copy)
        classes[dc.name] = copy
    c = kdb.Circuit()
    c.name = top.name
    out.add(c)
    by_id: dict[int, kdb.Net] = {}
    for n in top.each_net():
        f = c.create_net(n.name or "")
        f.cluster_id = n.cluster_id
        by_id[n.cluster_id] = f
    for p in top.each_pin():
        q = c.create_pin(p.name())
        n = top.net_for_pin(p.id())
        if n is not None:
            c.connect_pin(q, by_id[n.cluster_id])
    next_id = max(by_id, default=0) + 1
    cache: dict[int, _Template] = {}
    inner_caps: dict[int, float] = {}
    own = [(d.device_class().name, [d.parameter(q.id()) for q in d.device_class().parameter_definitions()], d.trans,
            [(t.id(), by_id[d.net_for_terminal(t.id()).cluster_id]) for t in d.device_class().terminal_definitions()
             if d.net_for_terminal(t.id()) is not None]) for d in top.each_device()]
    _place(c, classes, own)
    for sc in top.each_subcircuit():
        sub = _template(sc.circuit_ref(), cache, net_cap)
        nets = []
        for pin, cap in zip(sub.pins, sub.caps):
            n = sc.net_for_pin(pin) if pin is not None else None
            if n is None:
                n = c.create_net("")
                n.cluster_id = next_id
                by_id[next_id] = n
                if cap:
                    inner_caps[next_id] = cap
                next_id += 1
                nets.append(n)
            else:
                nets.append(by_id[n.cluster_id])
        _place(c, classes, [(k, p, sc.trans * t, [(tid, nets[i]) for tid, i in terms]) for k, p, t, terms in sub.devices])
    return out, by_id, inner_caps


def _place(c: kdb.Circuit, classes: dict, devices: list[tuple]) -> None:
    for cname, params, trans, terms in devices:
        d = c.create_device(classes[cname])
        for k, v in enumerate(params):
            d.set_parameter(k, v)
        d.trans = trans
        for tid, net in terms:
            d.connect_terminal(tid, net)
