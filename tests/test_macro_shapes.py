"""Macros of one shape drawn once (rom/periphery/shapes.py): each engine's copy equals the macro
built afresh under its own name (shapes, references, labels, circuit, logic, pins, marks), and the
engines' drawings do not share their lists."""
from __future__ import annotations

import dataclasses

import pytest

from weightfab.errors import WeightfabError
from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery import generic
from weightfab.rom.periphery.macro import build_macro, build_macros
from weightfab.rom.periphery.shapes import PLACEHOLDER
from weightfab.tech.pdk import load_pdk

# "sky130" and "inv_1" start cell names and nets of the periphery: a copy must rename the
# engine's nets alone
NAMES = ["fc1", "sky130", "inv_1", "fc1_0"]


def _fresh(pdk, geom, cols, rows, name):
    if generic.applies(pdk):
        return generic.build_generic_macro(pdk, geom, cols, rows, name)
    return build_macro(geom, cols, rows, name)


@pytest.mark.parametrize("pdk_name,cols,rows", [("sky130", 6, 8), ("sky130", 4, 40), ("ihp-sg13g2", 6, 8),
                                                ("gf180mcu", 4, 12)])
def test_copies_equal_fresh_builds(pdk_name, cols, rows):
    pdk = load_pdk(pdk_name)
    geom = RomGeometry.from_pdk(pdk)
    macros, reasons = build_macros([(cols, rows)] * len(NAMES) + [(2, 8)], NAMES + ["last"], pdk, geom)
    assert reasons == [""] * (len(NAMES) + 1)
    for m, name in zip(macros, NAMES + ["last"]):
        fresh = _fresh(pdk, geom, m.cols, m.rows, name)
        assert m.name == f"{name}_macro"
        for f in dataclasses.fields(fresh.drawing):
            assert getattr(m.drawing, f.name) == getattr(fresh.drawing, f.name), (name, f.name)
        for f in dataclasses.fields(fresh):
            assert getattr(m, f.name) == getattr(fresh, f.name), (name, f.name)
        assert not any(PLACEHOLDER in lab.text for lab in m.drawing.labels)
    a, b = macros[0], macros[1]
    assert a.drawing.shapes is not b.drawing.shapes and a.drawing.refs is not b.drawing.refs
    assert a.drawing.labels != b.drawing.labels and a.pins.keys() != b.pins.keys()
    a.drawing.shapes.append(("met1", (0, 0, 1, 1)))
    assert b.drawing.shapes == _fresh(pdk, geom, cols, rows, NAMES[1]).drawing.shapes


def test_shape_that_cannot_be_drawn_names_each_engine():
    pdk = load_pdk("sky130")
    geom = RomGeometry.from_pdk(pdk)
    macros, reasons = build_macros([(4, 1 << 13), (4, 1 << 13)], ["a", "b"], pdk, geom)
    assert macros == [None, None]
    with pytest.raises(WeightfabError) as fresh:
        build_macro(geom, 4, 1 << 13, "a")
    assert reasons == [str(fresh.value)] * 2 and PLACEHOLDER not in reasons[0]
