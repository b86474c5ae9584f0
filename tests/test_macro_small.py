"""Small SKY130 macros (1 to 3 bitlines, 1 to 3 islands of wordlines, and the 8-column
engine of a one-weight layer): every size is DRC- and LVS-clean. With four nets or fewer in
the met2 channel under the array, neighbouring tracks used to land on neighbouring bus lines
(m1.2 / m2.2 between their via pads), and a sense row of one column had no n-tap (its n-well
floated)."""
from __future__ import annotations

import numpy as np
import pytest

from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery.macro import build_macro
from weightfab.rom.writer import macro_library, write_library
from weightfab.signoff.drc import run_drc
from weightfab.signoff.lvs import lvs_macro
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
GEOM = RomGeometry.from_pdk(PDK)


@pytest.mark.parametrize("cols, rows", [(1, 2), (2, 4), (3, 2), (3, 6), (8, 4)])
def test_small_macro_is_drc_and_lvs_clean(cols, rows, tmp_path):
    m = build_macro(GEOM, cols, rows, "e0")
    bits = np.random.default_rng(cols * 100 + rows).integers(0, 2, (cols, rows)).astype(np.uint8)
    path = tmp_path / "m.gds"
    write_library(macro_library(m, PDK, bits), path)
    r = run_drc(path, PDK)
    assert r.clean, [(f.name, f.count, f.examples[:2]) for f in r.failing()]
    assert {f"e0_dout[{c}]" for c in range(cols)} <= set(m.pins)
    lv = lvs_macro(path, PDK, m, bits)
    assert lv.ok and lv.devices_layout == lv.devices_reference, lv.differences[:5]
