"""views(): the integration views of every engine macro of a layout, written to a directory.

Per engine ``<e>`` (the model's layer name):
* ``<e>_macro.v``: Verilog behavioural model holding the words read back from the layout;
* ``<e>_macro.lef``: LEF abstract of the macro cell (where the layout draws one);
* ``<e>_macro.<corner>.lib``: Liberty timing and power characterised in ngspice (macro cells only;
  an array of more than REDUCE_ABOVE_ROWS wordlines on its netlist reduced to the two words read);
* ``<e>_macro.extracted.spice`` / ``<e>_macro.reference.spice``: the extracted netlist (devices
  with W/L, ground capacitance per net) and the reference netlist LVS compares it with.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LayoutReadError, UsageError
from ..signoff.readback import read_bits
from ..tech.pdk import load_pdk
from .simulate import PIN_LAYERS, REDUCE_ABOVE_ROWS, macro_cells, model_bits


@dataclass
class ViewsRun:
    out: Path
    files: list[Path] = field(default_factory=list)
    engines: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _address_bits(rows: int) -> int:
    return max(4, math.ceil(math.log2(max(rows, 2))))


def views(layout: str | Path, model: str | Path, out: str | Path, *, pdk="sky130", weights: str = "int8",
          rounding: str = "optimized", calib=None, liberty: bool = True, corners: tuple[str, ...] = ("tt", "ss", "ff"),
          engines: list[int] | None = None) -> ViewsRun:
    layout, out = Path(layout), Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    pdk_ = load_pdk(pdk)
    layers = model_bits(Path(model), weights, rounding, calib, pdk_)
    macros = set(macro_cells(layout))
    _, rb, _, _ = read_bits(layout, pdk_)
    if len(rb) != len(layers):
        raise LayoutReadError(f"{layout}: {len(rb)} ROM arrays read back, the model has {len(layers)} layers")
    run = ViewsRun(out)
    try:
        for i, (name, mbits) in enumerate(layers):
            if engines is None or i in engines:
                _engine_views(run, layout, pdk_, i, name, mbits, rb[i].astype(np.uint8), name + "_macro" in macros,
                              liberty, corners)
    except BaseException:          # no partial set of views is left behind
        for f in run.files:
            f.unlink(missing_ok=True)
        raise
    return run


def _engine_views(run: ViewsRun, layout: Path, pdk_, i: int, name: str, mbits: np.ndarray, bits: np.ndarray,
                  has_macro: bool, liberty: bool, corners) -> None:
    from ..views.lef import lef_of, write_lef
    from ..views.verilog import write_verilog
    out = run.out
    info = {"engine": i, "layer": name, "columns": int(bits.shape[0]), "wordlines": int(bits.shape[1]),
            "readback_equals_model": bool(np.array_equal(bits[:, :mbits.shape[1]], mbits))}
    cell = f"{name}_macro"
    tco, nbits = None, _address_bits(bits.shape[1])
    if has_macro:
        lef = lef_of(layout, cell, pdk_)
        p = out / f"{cell}.lef"
        p.write_text(write_lef(lef))
        run.files.append(p)
        info["lef"] = {"size_um": [round(lef.size[0], 3), round(lef.size[1], 3)], "pins": len(lef.pins)}
        nbits = sum(1 for pin in lef.pins if pin.name.startswith(f"{name}_addr["))
        t0 = time.perf_counter()
        files, ext = _spice_views(layout, pdk_, cell, name, bits, out)
        run.files += files
        info["spice_seconds"] = round(time.perf_counter() - t0, 1)      # extraction and both netlists written
        if ext is None:
            run.notes.append(f"engine {i} '{name}': no Liberty on {pdk_.name} (the characterisation runs "
                             "with the SKY130 device models only)")
        if liberty and ext is not None:
            lib = _liberty(ext, name, cell, bits, corners, lef.size[0] * lef.size[1], out)
            run.files += lib.pop("files")
            info["liberty"] = lib
            tco = lib["tco_ns"].get("tt", next(iter(lib["tco_ns"].values())))
    v = out / f"{cell}.v"
    v.write_text(write_verilog(name, bits, nbits, 1.0 if tco is None else tco, f"({layout.name})"))
    run.files.append(v)
    if not has_macro:
        run.notes.append(f"engine {i} '{name}': the layout draws no macro cell '{cell}': Verilog only")
    run.engines.append(info)


def _liberty(ext, prefix: str, cell: str, bits: np.ndarray, corners, area: float, out: Path) -> dict:
    """Characterise the extracted macro at each corner and write one .lib per corner."""
    from ..signoff.characterize import macro_pins
    from ..signoff.libchar import characterize
    from ..views.liberty import write_liberty
    ports = macro_pins(ext)
    reduce = bits.shape[1] > REDUCE_ABOVE_ROWS
    info = {"files": [], "netlist": "reduced to the two words read" if reduce else "extracted", "tco_ns": {},
            "setup_ns": {}, "hold_ns": {}, "en_setup_ns": {}, "en_hold_ns": {}, "energy_pj": {}, "leakage_nw": {},
            "pin_cap_ff": {}, "seconds": {}, "period_ns": {}}
    for c in corners:
        t = characterize(ext, bits[ports.douts], c, reduce=reduce)
        p = out / f"{cell}.{c}.lib"
        p.write_text(write_liberty(cell, prefix, ports.nbits, len(ports.douts), t, area))
        info["files"].append(p)
        # the figure quoted: middle clock transition, middle load of the table
        info["tco_ns"][c] = round(float(t.tco[1, 1]) * 1e9, 4)
        info["setup_ns"][c] = round(t.setup * 1e9, 4)
        info["hold_ns"][c] = round(t.hold * 1e9, 4)
        info["energy_pj"][c] = round(t.energy * 1e12, 4)
        info["leakage_nw"][c] = round(t.leakage * 1e9, 3)
        info["en_setup_ns"][c] = round(t.en_setup * 1e9, 4)
        info["en_hold_ns"][c] = round(t.en_hold * 1e9, 4)
        info["pin_cap_ff"][c] = {k: round(v * 1e15, 3) for k, v in t.pin_cap.items()}
        info["seconds"][c] = round(t.seconds, 1)
        info["period_ns"][c] = round(t.period * 1e9, 3)
    return info


def _spice_views(layout: Path, pdk_, cell: str, name: str, bits: np.ndarray, out: Path):
    """The extracted and the reference SPICE netlists of one macro; returns the files and the
    extracted netlist to characterise (None where the flow has no device models: not SKY130)."""
    from ..rom.geometry import RomGeometry
    from ..rom.periphery import generic
    from ..signoff.spice import write_spice
    geom = RomGeometry.from_pdk(pdk_)
    if generic.applies(pdk_):       # periphery drawn from the PDK's rules: its own extraction and reference
        from ..signoff.genlvs import MODELS, extract_generic, reference_generic
        macro = generic.build_generic_macro(pdk_, geom, bits.shape[0], bits.shape[1], name)
        d = pdk_.bitcell
        ext = extract_generic(layout, pdk_, cell)
        ref = reference_generic(macro, bits, pdk_, (float(d["diff_width"]), float(d["gate_length"])))
        nmos, pmos = MODELS[pdk_.name]
        models = {nmos: (nmos, "VSS"), pmos: (pmos, "VDD")}
        ports, what, sim = sorted(macro.pins), f"{nmos}/{pmos}, W/L in um; no wire parasitics", None
    else:
        from ..rom.periphery.macro import build_macro
        from ..signoff.characterize import macro_pins
        from ..signoff.lvs import reference_netlist
        from ..signoff.parasitics import extract_with_caps
        ext = extract_with_caps(layout, pdk_, cell, tuple(l for l in PIN_LAYERS if l in pdk_.layers))
        ref = reference_netlist(build_macro(geom, bits.shape[0], bits.shape[1], name), bits)
        ports, what, sim = macro_pins(ext).names, "devices W/L in um; wire C to VSS from drawn area and perimeter", ext
        models = None
    files = [out / f"{cell}.extracted.spice", out / f"{cell}.reference.spice"]
    files[0].write_text(write_spice(ext, f"{cell} extracted from {layout.name} ({what})", ports, models))
    files[1].write_text(write_spice(ref, f"{cell} reference netlist (LVS) from the bits read back", ports, models))
    return files, sim
