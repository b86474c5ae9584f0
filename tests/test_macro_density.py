"""Issue 11's 8 kbit SKY130 macro (128 bitlines x 64 wordlines, one substrate tap row) at 1.0
bit/µm² with its periphery: the array's wordline pads and ground rail stand at the li spacing
rule from it (the rule, not a margin, places them: 5 nm nearer fails it; the rail no nearer than
the array's edge), and the macro measured is full-DRC clean with the tap rules and matches its
reference in LVS."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from test_macro import with_tap_rules
from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery.generic import build_generic_macro
from weightfab.rom.periphery.macro import build_macro, figures
from weightfab.rom.writer import macro_library, write_library
from weightfab.signoff.drc import run_drc
from weightfab.signoff.lvs import lvs_macro
from weightfab.tech.pdk import load_pdk

LI_RULE = {"sky130": "li.3", "gf180mcu": "M1.2a", "ihp-sg13g2": "M1.b"}


def _li_gaps(geom: RomGeometry, cols: int) -> tuple[int, int, int]:
    """Gaps (dbu) on the li role of a folded engine: left wordline pad to the source lines, ground
    rail to the last column's drain pads, rail to the right wordline pads."""
    li = [s for s in geom.engine(cols, 4, fold=True) if s.layer == "li"]
    rail0, rail1 = geom.rail_x(cols)
    left = max(s.box[2] for s in li if s.box[2] < -geom.px // 2)     # the left pads' li right edge
    right = min(s.box[0] for s in li if s.box[0] > rail1)            # the right pads' li left edge
    drain = (cols - 1) * geom.px + geom.d.li_pad_width // 2
    return -geom.px // 2 - left, rail0 - drain, right - rail1


@pytest.mark.parametrize("name", sorted(LI_RULE))
def test_pads_and_rail_stand_at_the_li_rule(name, tmp_path):
    pdk = load_pdk(name)
    geom = RomGeometry.from_pdk(pdk)
    rule = next(r for r in pdk.rules if r.name == LI_RULE[name])
    assert geom.li_space == pdk.to_dbu(rule.value)
    # the rail stands at the rule or at the array's edge (SKY130's 0.69 µm pitch)
    edge = geom.px // 2 - geom.d.li_pad_width // 2
    assert _li_gaps(geom, 8) == (geom.li_space, max(geom.li_space, edge), geom.li_space)
    # 5 nm nearer: the drawn macro fails exactly that rule
    near = replace(geom, li_space=geom.li_space - 5)
    assert _li_gaps(near, 8) == (geom.li_space - 5, max(geom.li_space - 5, edge), geom.li_space - 5)
    m = build_macro(near, 8, 8, "e0") if name == "sky130" else build_generic_macro(pdk, near, 8, 8, "e0")
    path = tmp_path / "m.gds"
    write_library(macro_library(m, pdk, np.ones((8, 8), np.uint8), near), path)
    failing = {f.name for f in run_drc(path, pdk).failing()}
    assert failing == {LI_RULE[name]}


@pytest.mark.slow
def test_8kbit_macro_density_is_clean(tmp_path):
    """The macro test_macro.test_density_is_measured measures: >= 1.0 bit/µm², DRC clean (the deck
    with latchup.15 and the periphery's tap rules), LVS match."""
    pdk = load_pdk("sky130")
    geom = RomGeometry.from_pdk(pdk)
    m = build_macro(geom, 128, 64, "d")
    assert m.taps.before == (15,)
    assert figures(m, "", pdk.dbu_um)["bits_per_um2"] >= 1.0
    bits = np.random.default_rng(11).integers(0, 2, (128, 64)).astype(np.uint8)
    path = tmp_path / "m.gds"
    write_library(macro_library(m, pdk, bits), path)
    r = run_drc(path, with_tap_rules(pdk))
    assert r.clean, [(f.name, f.count, f.examples[:2]) for f in r.failing()]
    assert {"latchup.15", "li.3", "tap.n", "tap.p"} <= {x.name for x in r.rules}
    lv = lvs_macro(path, pdk, m, bits)
    assert lv.ok, lv.differences[:5]
    assert lv.devices_layout == lv.devices_reference == 9600
