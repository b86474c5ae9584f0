"""The transistor-level macro periphery drawn from the PDK's rules (rom/periphery/generic.py) on
IHP SG13G2: DRC clean on the PDK's deck, LVS matches the generated circuit, and seeded faults (a
decoder contact removed, two wordlines shorted) fail LVS."""
from __future__ import annotations

import gdstk
import numpy as np
import pytest

from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery.generic import build_generic_macro
from weightfab.rom.writer import macro_library
from weightfab.signoff.drc import run_drc
from weightfab.signoff.genlvs import lvs_generic
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("ihp-sg13g2")
GEOM = RomGeometry.from_pdk(PDK)


@pytest.fixture(scope="module")
def macro16():
    m = build_generic_macro(PDK, GEOM, 16, 16, "e0")
    bits = np.random.default_rng(3).integers(0, 2, (16, 16)).astype(np.uint8)
    return m, bits


def _write(tmp_path, m, bits, edit=None):
    lib = macro_library(m, PDK, bits)
    if edit:
        edit(lib, m)
    path = tmp_path / "m.gds"
    lib.write_gds(str(path))
    return path


def test_drc_clean_and_lvs_match(tmp_path, macro16):
    m, bits = macro16
    path = _write(tmp_path, m, bits)
    rep = run_drc(path, PDK)
    assert rep.violations == 0, {r.name: r.count for r in rep.rules if r.count}
    r = lvs_generic(path, PDK, m, bits)
    assert r.ok, r.differences[:10]
    assert r.devices_layout == r.devices_reference > 16 * 16
    assert {"e0_addr[0]", "e0_addr[3]", "e0_clk", "e0_en", "e0_dout[15]", "VDD", "VSS"} <= set(m.pins)


def test_other_bits_change_only_the_programming_layer(macro16):
    m, _ = macro16
    m2 = build_generic_macro(PDK, GEOM, 16, 16, "e0")
    assert m2.drawing.shapes == m.drawing.shapes


def _cell(lib, m):
    return next(c for c in lib.cells if c.name == m.name)


def test_missing_decoder_contact_fails_lvs(tmp_path, macro16):
    m, bits = macro16
    x, y = m.marks["decoder_contact"]
    cont = PDK.gds("cont_drw")

    def edit(lib, m):
        c = _cell(lib, m)
        um = PDK.dbu_um
        gone = [p for p in c.polygons if (p.layer, p.datatype) == cont and p.contain((x * um, y * um))]
        assert len(gone) == 1
        c.remove(*gone)

    r = lvs_generic(_write(tmp_path, m, bits, edit), PDK, m, bits)
    assert not r.ok and r.differences


def test_shorted_wordlines_fail_lvs(tmp_path, macro16):
    m, bits = macro16
    (x0, y0), _ = m.marks["wl_pads"]
    um = PDK.dbu_um

    def edit(lib, m):   # Metal1 from wordline 0's pad up to wordline 2's pad
        _cell(lib, m).add(gdstk.rectangle((x0 * um - 0.1, y0 * um), (x0 * um + 0.1, (y0 + GEOM.py) * um),
                                          layer=PDK.gds("metal1")[0], datatype=PDK.gds("metal1")[1]))

    r = lvs_generic(_write(tmp_path, m, bits, edit), PDK, m, bits)
    assert not r.ok and r.differences
