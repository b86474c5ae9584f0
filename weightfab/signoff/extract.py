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


def extract(regions: dict[str, kdb.Region], dbu: float, pdk: Pdk, name: str = "TOP",
            texts: dict[str, kdb.Texts] | None = None) -> Extraction:
    """Extract NMOS/PMOS devices and nets from flat regions (keys: the drawing roles, optionally
    ``psdm``/``nwell``). ``texts``: conductor name -> labels that name the nets they touch."""
    regs = {n: r.merged() for n, r in regions.items()}
    for n in ROLES + P_LAYERS:
        regs.setdefault(n, kdb.Region())
    pdiff = regs["diff"] & regs["psdm"] & regs["nwell"]
    ndiff = (regs["diff"] & regs["nsdm"]) if pdk.has("nsdm") else (regs["diff"] - regs["psdm"] - regs["pimplant"])
    ndiff -= pdiff
    regs["gate_n"], regs["sd_n"] = ndiff & regs["poly"], ndiff - regs["poly"]
    regs["gate_p"], regs["sd_p"] = pdiff & regs["poly"], pdiff - regs["poly"]
    regs["gate_ph"] = regs["gate_p"] & regs["hvtp"]
    regs["gate_p"] = regs["gate_p"] - regs["hvtp"]
    stray = regs["diff"] - ndiff - pdiff - regs["pimplant"]     # a substrate tap (p implant, no well) is no device
    l2n = kdb.LayoutToNetlist(name, dbu)
    for n, r in regs.items():
        l2n.register(r, n)
    for kind, g, sd in (("NMOS", "gate_n", "sd_n"), ("PMOS", "gate_p", "sd_p"), ("PMOS_HVT", "gate_ph", "sd_p")):
        if not regs[g].is_empty():
            l2n.extract_devices(kdb.DeviceExtractorMOS3Transistor(kind), {"SD": regs[sd], "G": regs[g], "P": regs["poly"]})
    # an upper programming layer (rom/viastack.py): li reaches mcon through the stack's vias and pads
    chain = ("li", *stack_roles(pdk), "mcon")
    for n in CONDUCTORS + chain[1:-1]:
        l2n.connect(regs.setdefault(n, kdb.Region()))
    for a, b in [v for v in VIAS if v != ("li", "mcon")] + list(zip(chain, chain[1:])):
        l2n.connect(regs[a], regs[b])
    for layer, tx in (texts or {}).items():
        l2n.register(tx, f"{layer}_text")
        l2n.connect(regs[layer], tx)
    l2n.extract_netlist()
    return Extraction(l2n, regs, stray)


def extract_netlist(path: str | Path, pdk: Pdk, cell: str | None = None, box: tuple[float, float, float, float] | None = None,
                    label_layers: tuple[str, ...] = ()) -> kdb.Netlist:
    """The transistor netlist of ``cell`` (default: the top cell) of a GDSII/OASIS file, flat,
    optionally only inside ``box`` (x0, y0, x1, y1 in µm, in the cell's coordinates).

    ``label_layers``: PDK layer names whose texts name nets; a text names the net of the met1/li
    shape under it (its layer is matched by GDS layer number). Devices are ``NMOS``/``PMOS`` with
    W and L in µm; shapes cut by the box edge keep only their inside part."""
    layout, top = read_layout(path)
    if cell is not None:
        c = layout.cell(cell)
        if c is None:
            raise LayoutReadError(f"{path}: no cell named '{cell}'")
        top = c
    clip_box = None if box is None else kdb.DBox(*box).to_itype(layout.dbu)
    idx = layer_indices(layout, pdk)
    regions = {n: clip(layout, top, i, clip_box) for n, i in idx.items()}
    if not any(not regions[n].is_empty() for n in ("diff", "poly")):
        raise LayoutReadError(f"{path}: cell '{top.name}' holds no diffusion or poly: nothing to extract")
    texts = {}
    for lname in label_layers:
        li = layout.find_layer(*pdk.gds(lname))
        if li is None:
            continue
        tx = kdb.Texts(top.begin_shapes_rec(li))
        if clip_box is not None:
            tx = tx.interacting(kdb.Region(clip_box))
        # the conductor on the pin's own metal (an upper programming layer moves role met1 up the stack)
        target = next((r for r in ("met1", "li", *stack_roles(pdk)[1::2]) if pdk.has(r)
                       and pdk.gds(lname)[0] == pdk.role_gds(r)[0]), None)
        if target is None and "met2" in pdk.layers and pdk.gds(lname)[0] == pdk.gds("met2")[0]:
            target = "met2"
        target = target or "met1"
        texts[target] = texts.get(target, kdb.Texts()) + tx
    ex = extract(regions, layout.dbu, pdk, top.name, texts)
    netlist = ex.l2n.netlist().dup()          # owned by the caller, independent of the extractor
    del ex
    return netlist
