"""LVS of a transistor-level generic macro (rom/periphery/generic.py: IHP SG13G2, GF180MCU), with
KLayout's LayoutToNetlist and NetlistComparer as lvs.py does for SKY130 (its comparison is reused).

Devices: the PDK's low-voltage MOS, named as its models (SG13G2 ``sg13_lv_nmos`` = N+ Activ
(Activ not pSD) under GatPoly outside NWell, ``sg13_lv_pmos`` = Activ in pSD and NWell under
GatPoly; GF180MCU ``nfet_03v3`` = COMP in Nplus outside Nwell under Poly2, ``pfet_03v3`` = COMP in
Pplus and Nwell under Poly2, 3.3 V devices outside Dualgate), three-terminal with W and L in µm.
Conductors: source/drain, n- and p-taps, poly - contact - Metal1 - Via1 - Metal2 - Via2 - Metal3;
the labels on the PDK's Metal2 pin layer (SG13G2 Metal2.pin, GF180MCU Metal2_Label) name their nets.
"""
from __future__ import annotations

import time
from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..rom.geometry import RomGeometry
from .drc import read_layout
from .extract import name_probed
from .lvs import LvsResult, anchored, compare, reference_circuit, wordline_probes

MODELS = {"ihp-sg13g2": ("sg13_lv_nmos", "sg13_lv_pmos"), "gf180mcu": ("nfet_03v3", "pfet_03v3")}
KEYS = ("act", "poly", "cont", "m1", "v1", "m2", "v2", "m3", "nw", "pp", "np")


def extract_generic(path: str | Path, pdk, cell: str, probes: dict[str, tuple[int, int]] | None = None,
                    problems: list[str] | None = None) -> kdb.Netlist:
    """The macro cell's netlist; ``probes`` (net name -> a point on its Metal1, dbu) name nets as
    labels would (a point on no Metal1, or two names on one net, is added to ``problems``)."""
    from ..rom.periphery.cellgen import LAYERS
    layout, _ = read_layout(path)
    top = layout.cell(cell)
    names = LAYERS[pdk.name]
    reg = {}
    for k in KEYS:
        idx = layout.find_layer(*pdk.gds(names[k])) if names.get(k) else None
        reg[k] = kdb.Region(top.begin_shapes_rec(idx)).merged() if idx is not None else kdb.Region()
    nmos, pmos = MODELS[pdk.name]
    act, poly = reg["act"], reg["poly"]
    pdiff = act & reg["pp"] & reg["nw"]
    ndiff = (act & reg["np"]) if names.get("np") else (act - reg["pp"])
    ndiff -= reg["nw"]
    ntap = (act - reg["pp"]) & reg["nw"] if not names.get("np") else (act & reg["np"] & reg["nw"])
    ptap = (act & reg["pp"]) - reg["nw"]
    rg = {"gate_n": ndiff & poly, "sd_n": ndiff - poly, "gate_p": pdiff & poly, "sd_p": pdiff - poly,
          "ntap": ntap, "ptap": ptap, **{k: reg[k] for k in ("poly", "cont", "m1", "v1", "m2", "v2", "m3")}}
    l2n = kdb.LayoutToNetlist(cell, layout.dbu)
    for n, r in rg.items():
        l2n.register(r, n)
    for kind, gt, sd in ((nmos, "gate_n", "sd_n"), (pmos, "gate_p", "sd_p")):
        l2n.extract_devices(kdb.DeviceExtractorMOS3Transistor(kind), {"SD": rg[sd], "G": rg[gt], "P": rg["poly"]})
    for n in ("sd_n", "sd_p", "ntap", "ptap", "poly", "cont", "m1", "v1", "m2", "v2", "m3"):
        l2n.connect(rg[n])
    for a in ("sd_n", "sd_p", "ntap", "ptap", "poly"):
        l2n.connect(rg[a], rg["cont"])
    for a, b in (("cont", "m1"), ("m1", "v1"), ("v1", "m2"), ("m2", "v2"), ("v2", "m3")):
        l2n.connect(rg[a], rg[b])
    pin = layout.find_layer(*pdk.gds(names["pin"]))
    if pin is not None:
        tx = kdb.Texts(top.begin_shapes_rec(pin))
        l2n.register(tx, "pin_text")
        l2n.connect(rg["m2"], tx)
    l2n.extract_netlist()
    name_probed(l2n, rg, {n: ("m1", x, y) for n, (x, y) in (probes or {}).items()},
                problems if problems is not None else [], layout.dbu)
    return l2n.netlist().dup()


def reference_generic(macro, bits: np.ndarray, pdk, bit_size: tuple[float, float]) -> kdb.Netlist:
    """The macro's circuit (its drawing's devices) plus one NMOS per bit site, flat."""
    nmos, pmos = MODELS[pdk.name]
    return reference_circuit(macro.name, {"NMOS": nmos, "PMOS": pmos}, macro.drawing.circuit.devices,
                             np.asarray(bits), bit_size, macro.pins)


def well_ties_generic(path, pdk, cell: str) -> list[str]:
    """N-wells without a contacted n-tap (their PMOS bulk would float)."""
    from ..rom.periphery.cellgen import LAYERS
    names = LAYERS[pdk.name]
    layout, _ = read_layout(path)
    top = layout.cell(cell)

    def reg(k):
        idx = layout.find_layer(*pdk.gds(names[k])) if names.get(k) else None
        return kdb.Region(top.begin_shapes_rec(idx)) if idx is not None else kdb.Region()

    nw = reg("nw").merged()
    tied = ((reg("act") - reg("pp")) & nw).interacting(reg("cont"))
    return [f"n-well at ({p.bbox().center().x * layout.dbu:.3f}, {p.bbox().center().y * layout.dbu:.3f}) µm "
            "holds no contacted n-tap" for p in nw.each() if kdb.Region(p).interacting(tied).is_empty()]


def lvs_generic(path: str | Path, pdk, macro, bits: np.ndarray) -> LvsResult:
    t0 = time.perf_counter()
    d = pdk.bitcell
    probes, problems = wordline_probes(macro, RomGeometry.from_pdk(pdk)), []
    ext = extract_generic(path, pdk, macro.name, probes, problems)
    ref = reference_generic(macro, np.asarray(bits), pdk, (float(d["diff_width"]), float(d["gate_length"])))
    counts = [sum(1 for _ in nl.top_circuit().each_device()) for nl in (ext, ref)]
    nets = [sum(1 for _ in nl.top_circuit().each_net()) for nl in (ext, ref)]
    # the wordlines, named at their pads, anchor the comparison: a large decoder's series chains
    # are otherwise alike enough for the comparer to pair their inner nodes wrongly
    ok, diffs = compare(ext, ref, list(macro.pins) + anchored(probes, problems))
    ties = well_ties_generic(path, pdk, macro.name)
    return LvsResult(macro.name, ok and not ties and not problems, counts[0], counts[1], nets[0], nets[1],
                     problems + diffs + ties, time.perf_counter() - t0, ext)
