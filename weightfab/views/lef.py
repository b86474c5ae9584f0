"""LEF abstract of a ROM macro, taken from its GDS cell.

* SIZE: the cell's prBoundary shape where drawn, else the bounding box of all its shapes; the
  macro is shifted so that the lower-left corner is the LEF origin (ORIGIN 0 0), and FOREIGN names
  the GDS cell at the offset that undoes the shift.
* PIN: every label on a pin layer (``<layer>_pin``, GF180MCU's ``metal2_label``) of the cell itself; its PORT shapes are the pin
  layer's shapes of the cell under the label, on the routing layer of the same GDS layer number.
  DIRECTION/USE from the name: ``_addr[i]``, ``_en`` INPUT SIGNAL, ``_clk`` INPUT CLOCK,
  ``_dout[j]`` OUTPUT SIGNAL, VDD INOUT POWER, VSS INOUT GROUND.
* OBS: on each routing layer the macro draws (SKY130 li, met1, met2; Metal1-3 elsewhere), its shapes (standard cells
  included) merged with gaps below one minimum pitch closed, minus nothing: the pins are outside
  or on top of them and keep their own PORT shapes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import klayout.db as kdb

from ..errors import LayoutReadError
from ..tech.pdk import Pdk

ROUTING = ("li", "met1", "met2", "metal1", "metal2", "metal3")   # SKY130 names, then GF180MCU/SG13G2's
_METALS = {f"metal{k}": f"Metal{k}" for k in (1, 2, 3)}
LEF_NAMES = {"sky130": {"li": "li1"}, "gf180mcu": _METALS, "ihp-sg13g2": _METALS}
CLOSE_GAP_UM = 0.3          # OBS: gaps narrower than this are filled (no route fits through)


@dataclass
class LefPin:
    name: str
    direction: str
    use: str
    shapes: list[tuple[str, tuple[float, float, float, float]]]   # (LEF layer, box in LEF µm)
    label_xy: tuple[float, float]


@dataclass
class LefMacro:
    name: str
    size: tuple[float, float]
    offset: tuple[float, float]     # GDS -> LEF: subtract this
    pins: list[LefPin]
    obs: dict[str, list[tuple[float, float, float, float]]]


def pin_kind(name: str) -> tuple[str, str]:
    if name == "VDD":
        return "INOUT", "POWER"
    if name == "VSS":
        return "INOUT", "GROUND"
    if re.search(r"_dout\[\d+\]$", name):
        return "OUTPUT", "SIGNAL"
    if name.endswith("_clk"):
        return "INPUT", "CLOCK"
    return "INPUT", "SIGNAL"


def lef_layer(pdk: Pdk, name: str) -> str:
    return LEF_NAMES.get(pdk.name, {}).get(name, name)


def _routing_of(pdk: Pdk, pin_layer: str) -> str | None:
    num = pdk.gds(pin_layer)[0]
    for r in ROUTING:
        if r in pdk.layers and pdk.gds(r)[0] == num:
            return r
    return None


def macro_abstract(layout: kdb.Layout, cell: kdb.Cell, pdk: Pdk) -> LefMacro:
    um = layout.dbu
    bidx = layout.find_layer(*pdk.gds("boundary")) if "boundary" in pdk.layers else None
    bnd = kdb.Region(cell.begin_shapes_rec(bidx)) if bidx is not None else kdb.Region()
    box = bnd.bbox() if not bnd.is_empty() else cell.bbox()
    if box.empty():
        raise LayoutReadError(f"cell '{cell.name}' is empty: no LEF")
    ox, oy = box.left, box.bottom

    def lb(b: kdb.Box) -> tuple[float, float, float, float]:
        return ((b.left - ox) * um, (b.bottom - oy) * um, (b.right - ox) * um, (b.top - oy) * um)

    pins: dict[str, LefPin] = {}
    for pl in sorted(n for n in pdk.layers if n.endswith(("_pin", "_label"))):
        idx = layout.find_layer(*pdk.gds(pl))
        route = _routing_of(pdk, pl)
        if idx is None or route is None:
            continue
        shapes = kdb.Region(cell.shapes(idx))
        for s in cell.shapes(idx).each(kdb.Shapes.STexts):
            t = s.text
            p = kdb.Point(t.x, t.y)
            under = [poly for poly in shapes.each() if poly.inside(p)]
            if not under:
                raise LayoutReadError(f"cell '{cell.name}': pin label '{t.string}' on {pl} has no {pl} shape under it")
            d, u = pin_kind(t.string)
            pin = pins.setdefault(t.string, LefPin(t.string, d, u, [], ((t.x - ox) * um, (t.y - oy) * um)))
            for poly in under:
                for b in _rects(poly):
                    pin.shapes.append((lef_layer(pdk, route), lb(b)))
    obs: dict[str, list] = {}
    gap = int(round(CLOSE_GAP_UM / um / 2))
    for r in ROUTING:
        if r not in pdk.layers:
            continue
        idx = layout.find_layer(*pdk.gds(r))
        if idx is None:
            continue
        reg = kdb.Region(cell.begin_shapes_rec(idx)).merged().sized(gap).sized(-gap).merged()
        if not reg.is_empty():
            obs[lef_layer(pdk, r)] = [lb(b) for poly in reg.each() for b in _rects(poly)]
    order = sorted(pins.values(), key=lambda p: _pin_order(p.name))
    return LefMacro(cell.name, (box.width() * um, box.height() * um), (ox * um, oy * um), order, obs)


def _rects(poly: kdb.Polygon) -> list[kdb.Box]:
    """A rectilinear polygon as boxes (horizontal slabs)."""
    if poly.is_box():
        return [poly.bbox()]
    return [t.bbox() for t in kdb.Region(poly).decompose_trapezoids_to_region().each()]


def _pin_order(name: str):
    m = re.match(r"^(.*?)(\[(\d+)\])?$", name)
    return (name in ("VDD", "VSS"), m.group(1), int(m.group(3) or 0))


def _f(v: float) -> str:
    return f"{v:.3f}"


def write_lef(m: LefMacro, site_note: str = "") -> str:
    out = ["VERSION 5.7 ;", 'BUSBITCHARS "[]" ;', 'DIVIDERCHAR "/" ;', "UNITS", "  DATABASE MICRONS 1000 ;", "END UNITS", "",
           f"MACRO {m.name}", "  CLASS BLOCK ;", f"  FOREIGN {m.name} {_f(-m.offset[0])} {_f(-m.offset[1])} ;",
           "  ORIGIN 0 0 ;", f"  SIZE {_f(m.size[0])} BY {_f(m.size[1])} ;", "  SYMMETRY X Y ;"]
    for p in m.pins:
        out += [f"  PIN {p.name}", f"    DIRECTION {p.direction} ;", f"    USE {p.use} ;"]
        if p.use in ("POWER", "GROUND"):
            out.append("    SHAPE ABUTMENT ;")
        out.append("    PORT")
        layer = None
        for lay, b in sorted(p.shapes):
            if lay != layer:
                out.append(f"      LAYER {lay} ;")
                layer = lay
            out.append(f"        RECT {' '.join(_f(v) for v in b)} ;")
        out += ["    END", f"  END {p.name}"]
    if m.obs:
        out.append("  OBS")
        for lay in sorted(m.obs):
            out.append(f"    LAYER {lay} ;")
            out += [f"      RECT {' '.join(_f(v) for v in b)} ;" for b in m.obs[lay]]
        out.append("  END")
    out += [f"END {m.name}", "", "END LIBRARY", ""]
    return "\n".join(out)


def lef_of(path: str | Path, cell: str, pdk: Pdk) -> LefMacro:
    from ..signoff.drc import read_layout
    layout, _ = read_layout(path)
    c = layout.cell(cell)
    if c is None:
        raise LayoutReadError(f"{path}: no cell named '{cell}'")
    return macro_abstract(layout, c, pdk)
