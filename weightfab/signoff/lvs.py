"""Layout versus schematic for a ROM macro: the extracted transistor netlist (extract.py) against
the reference weightfab generates from the engine and its bits, with KLayout's NetlistComparer.

The reference is built from the macro's logical circuit (rom/periphery: the standard cells'
own SPICE netlists, flattened, and the precharge transistors) and one NMOS per bit site: gate on
its wordline, source on VSS, drain on its bitline for a 1 and on a net of its own for a 0.
Named nets (the pins: address, clock, enable, outputs, VDD, VSS, and each wordline, named at its
pad) are held to their names, so that two swapped pins are a mismatch even where the circuit alone
is symmetric, and rows of alike bits need no search.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..tech.pdk import Pdk
from .extract import extract_netlist

BIT_W, BIT_L = 0.42, 0.15
PIN_LAYERS = ("met1_pin", "met2_pin")


@dataclass
class LvsResult:
    cell: str
    ok: bool
    devices_layout: int
    devices_reference: int
    nets_layout: int
    nets_reference: int
    differences: list[str]
    seconds: float
    extracted: kdb.Netlist | None = field(default=None, repr=False)

    def summary(self) -> dict:
        return {"cell": self.cell, "ok": self.ok, "devices_layout": self.devices_layout,
                "devices_reference": self.devices_reference, "nets_layout": self.nets_layout,
                "nets_reference": self.nets_reference, "differences": self.differences[:50],
                "seconds": round(self.seconds, 3)}


def reference_circuit(name: str, classes: dict[str, str], devices, bits: np.ndarray,
                      bit_size: tuple[float, float], pins) -> kdb.Netlist:
    """A flat KLayout netlist, top circuit ``name``: three-terminal MOS device classes ``classes``
    (kind -> class name), the ``devices`` (kind, drain, gate, source, W, L), one NMOS per bit site of
    ``bits`` [columns, wordlines] (drain on bitline ``bl[c]`` for a 1, on a net of its own for a 0,
    gate ``wl[w]``, source VSS) and the ``pins``."""
    nl = kdb.Netlist()
    cls = {}
    for kind, model in classes.items():
        dc = kdb.DeviceClassMOS3Transistor()
        dc.name = model
        nl.add(dc)
        cls[kind] = dc
    c = kdb.Circuit()
    c.name = name
    nl.add(c)
    nets: dict[str, kdb.Net] = {}

    def net(n: str) -> kdb.Net:
        if n not in nets:
            nets[n] = c.create_net(n)
        return nets[n]

    def mos(kind, d, g, s, w, l):
        dev = c.create_device(cls[kind])
        for t, n in (("D", d), ("G", g), ("S", s)):
            dev.connect_terminal(t, net(n))
        dev.set_parameter("W", w)
        dev.set_parameter("L", l)

    for dev in devices:
        mos(*dev)
    cols, rows = bits.shape
    for col in range(cols):
        for w in range(rows):
            mos("NMOS", f"bl[{col}]" if bits[col, w] else f"d{col}_{w}", f"wl[{w}]", "VSS", *bit_size)
    for p in pins:
        c.create_pin(p)
        c.connect_pin(c.pin_by_name(p), net(p))
    return nl


def reference_netlist(macro, bits: np.ndarray, bit_size: tuple[float, float] = (BIT_W, BIT_L)) -> kdb.Netlist:
    """The SKY130 macro's circuit as a flat KLayout netlist (top circuit = the macro's cell name):
    its standard cells' transistors, its own devices and the bit devices."""
    from ..rom.periphery.stdcells import load

    def devices():
        for k, (cell, pins) in enumerate(macro.drawing.circuit.instances):
            local = lambda n: pins.get(n, f"x{k}.{n}")      # noqa: E731
            for d in load(cell).devices:
                yield d.kind, local(d.d), local(d.g), local(d.s), d.w, d.l
        yield from macro.drawing.circuit.devices

    kinds = {k: k for k in ("NMOS", "PMOS", "PMOS_HVT")}
    return reference_circuit(macro.name, kinds, devices(), np.asarray(bits), bit_size, macro.pins)


def compare(extracted: kdb.Netlist, reference: kdb.Netlist, named: list[str]) -> tuple[bool, list[str]]:
    """Compare two flat netlists; returns (match, differences named by net and device)."""
    for nl in (extracted, reference):
        _join_floating(nl.top_circuit())
        nl.combine_devices()
        nl.simplify()
    ca, cb = extracted.top_circuit(), reference.top_circuit()
    comp = kdb.NetlistComparer()
    diffs: list[str] = []
    for name in named:
        na, nb = ca.net_by_name(name), cb.net_by_name(name)
        if nb is None:
            continue
        if na is None:
            diffs.append(f"pin {name}: no labelled net in the layout")
            continue
        comp.same_nets(ca, cb, na, nb)
    xref = kdb.NetlistCrossReference()
    ok = comp.compare(extracted, reference, xref)
    for cp in xref.each_circuit_pair():
        for p in xref.each_net_pair(cp):
            if p.status() not in (kdb.NetlistCrossReference.Match, kdb.NetlistCrossReference.MatchWithWarning):
                a, b = _name(p.first()), _name(p.second())
                diffs.append(f"net {b} (reference) <-> {a} (layout): {_status(p.status())}")
        for p in xref.each_device_pair(cp):
            if p.status() not in (kdb.NetlistCrossReference.Match, kdb.NetlistCrossReference.MatchWithWarning):
                diffs.append(f"device {_dev(p.second())} (reference) <-> {_dev(p.first())} (layout): {_status(p.status())}")
    ok = ok and not diffs
    return ok, diffs


def _join_floating(c: kdb.Circuit):
    """Join every net that holds a single device terminal and no pin (the drain of a 0-bit) into
    one net FLOAT, on both sides alike: the comparison then needs no guessing among thousands
    of interchangeable one-terminal nets, and a 0-bit still differs from a 1-bit (whose drain is
    on its bitline). The terminals move to FLOAT and the emptied nets are purged (KLayout's
    join_nets took 4.9 s CPU for the 8,154 such nets of a 4096 x 4 macro, growing with their square)."""
    lone = [n for n in c.each_net() if n.terminal_count() == 1 and n.pin_count() == 0 and n.subcircuit_pin_count() == 0]
    if len(lone) < 2:
        return
    target = c.create_net("FLOAT")
    for n in lone:
        t = next(iter(n.each_terminal()))
        t.device().connect_terminal(t.terminal_id(), target)
    c.purge_nets()


def _status(s) -> str:
    X = kdb.NetlistCrossReference
    return {X.Mismatch: "mismatch", X.NoMatch: "no match", X.MatchWithWarning: "match with warning",
            X.Skipped: "skipped"}.get(s, str(s))


def _name(net, none: str = "(none)", most: int = 4) -> str:
    """A net's name; a net joined from many (KLayout names it by all of them) as its first
    ``most`` names and how many more."""
    if net is None:
        return none
    names = net.expanded_name().split(",")
    return ",".join(names[:most]) + (f",... (+{len(names) - most} names)" if len(names) > most else "")


def _dev(d) -> str:
    if d is None:
        return "(none)"
    terms = ", ".join(f"{t.name}={_name(d.net_for_terminal(t.id()), '-')}"
                      for t in d.device_class().terminal_definitions())
    return f"{d.device_class().name} W={d.parameter('W'):.3f} L={d.parameter('L'):.3f} ({terms})"


def well_ties(path: str | Path, pdk: Pdk, cell: str) -> list[str]:
    """The n-wells of ``cell`` that hold no contacted n-tap (a floating well: the three-terminal
    devices of the comparison carry no bulk, so the ties are checked here)."""
    if not all(n in pdk.layers for n in ("nwell", "tap")):
        return []
    from .drc import read_layout
    layout, _ = read_layout(path)
    top = layout.cell(cell)

    def region(idx):
        return kdb.Region(top.begin_shapes_rec(idx)) if idx is not None else kdb.Region()

    nwell = region(layout.find_layer(*pdk.gds("nwell"))).merged()
    tap = region(layout.find_layer(*pdk.gds("tap")))
    licon = region(layout.find_layer(*pdk.role_gds("licon")))
    tied = (tap & nwell).interacting(licon)
    out = []
    for poly in nwell.each():
        if kdb.Region(poly).interacting(tied).is_empty():
            c = poly.bbox().center()
            out.append(f"n-well at ({c.x * layout.dbu:.3f}, {c.y * layout.dbu:.3f}) µm holds no contacted n-tap "
                       "(its PMOS bulk floats)")
    return out


def wordline_probes(macro, geom) -> dict[str, tuple[int, int]]:
    """A point on each wordline's pad (dbu, in the macro's cell): even wordlines end on the left,
    odd on the right."""
    (a0, a1), (b0, b1) = geom.fold_pads(macro.cols)
    g0c, g1c = (sum(gg) // 2 for gg in geom.gates)
    slot = macro.taps.slot(range(macro.rows // 2)).tolist()     # an island's slot (tap rows between)
    return {f"wl[{w}]": ((a0 + a1) // 2 if w % 2 == 0 else (b0 + b1) // 2, slot[w // 2] * geom.py + (g1c if w % 2 else g0c))
            for w in range(macro.rows)}


def anchored(probes: dict, problems: list[str]) -> list[str]:
    """The probed names no problem mentions (those hold the comparison to their nets)."""
    named = {m for p in problems for m in re.findall(r"wl\[\d+\]", p)}
    return [n for n in probes if n not in named]


def lvs_macro(path: str | Path, pdk: Pdk, macro, bits: np.ndarray) -> LvsResult:
    """Extract the macro's cell of ``path`` and compare it with its reference circuit; every
    n-well must hold a contacted tap.

    Each wordline's poly is named at its pad (``wl[w]``): rows of alike bits (a 4-bitline macro
    has 16 patterns) are otherwise interchangeable but for the decoder's series chains, and the
    comparer's search among them grew without bound (a 64 x 4 macro did not match in 5 CPU
    minutes). Named, a wordline driven by another row's decode is a mismatch."""
    from ..rom.geometry import RomGeometry
    t0 = time.perf_counter()
    probes, problems = wordline_probes(macro, RomGeometry.from_pdk(pdk)), []
    ext = extract_netlist(path, pdk, cell=macro.name, label_layers=tuple(l for l in PIN_LAYERS if l in pdk.layers),
                          probes={n: ("poly", x, y) for n, (x, y) in probes.items()}, problems=problems)
    ref = reference_netlist(macro, np.asarray(bits))
    n_ext = sum(1 for _ in ext.top_circuit().each_device())
    n_ref = sum(1 for _ in ref.top_circuit().each_device())
    nets_ext = sum(1 for _ in ext.top_circuit().each_net())
    nets_ref = sum(1 for _ in ref.top_circuit().each_net())
    ok, diffs = compare(ext, ref, list(macro.pins) + anchored(probes, problems))
    ties = well_ties(path, pdk, macro.name)
    ok, diffs = ok and not ties and not problems, problems + diffs + ties
    return LvsResult(macro.name, ok, n_ext, n_ref, nets_ext, nets_ref, diffs, time.perf_counter() - t0, ext)


def lvs_layout(path: str | Path, pdk: Pdk, engines: list[int] | None = None) -> list[LvsResult]:
    """LVS of every macro of a compiled layout (cells named ``<engine>_macro``). The reference
    bits are the ones read back from the layout (``weightfab verify`` proves those equal the
    model's): this checks the circuit around them, transistor by transistor."""
    from ..errors import LayoutReadError
    from ..rom.geometry import RomGeometry
    from ..rom.periphery import generic
    from ..rom.periphery.macro import build_macro
    from ..rom.viastack import program
    from .genlvs import lvs_generic
    from .drc import read_layout
    from .readback import read_bits

    arrays, bits, _, _ = read_bits(path, pdk)
    if arrays and arrays[0].program_layer:          # the layer the readback found the bits on
        pdk = program(pdk, arrays[0].program_layer)
    layout, top = read_layout(path)
    geom = RomGeometry.from_pdk(pdk)
    found = []
    for inst in top.each_inst():
        name = inst.cell.name
        if name.endswith("_macro"):
            found.append((inst.bbox(), name))
    if not found:
        raise LayoutReadError(f"{path}: no macro cells (<engine>_macro): compiled without periphery, nothing to LVS")
    results = []
    for i, (a, b) in enumerate(zip(arrays, bits)):
        if engines is not None and i not in engines:
            continue
        cell = next((n for box, n in found if box.contains(kdb.Point(a.x0, a.y0))), None)
        if cell is None:
            continue
        engine = cell[: -len("_macro")]
        if generic.applies(pdk):            # periphery drawn from the PDK's rules (rom/periphery/generic.py)
            macro = generic.build_generic_macro(pdk, geom, a.cols, a.rows, engine)
            results.append(lvs_generic(path, pdk, macro, b))
        else:
            results.append(lvs_macro(path, pdk, build_macro(geom, a.cols, a.rows, engine), b))
    return results
