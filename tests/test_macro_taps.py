"""Substrate tap rows inside the bit arrays (issue 11), on every built-in PDK: the rows the
geometry plans keep every n diffusion within the PDK's tap distance (latchup.15 on SKY130,
weightfab's own limit; DF.14 on GF180MCU; LU.b on SG13G2), a compiled macro is clean with that
rule in the fast and the full DRC and reads back, and a macro with one tap row taken out fails the
rule in both modes with the same count."""
from __future__ import annotations

from pathlib import Path

import klayout.db as kdb
import numpy as np
import pytest

import weightfab
from conftest import mlp_model
from weightfab.rom.geometry import RomGeometry, TapPlan
from weightfab.signoff.drc import run_drc
from weightfab.signoff.readback import read_bits
from weightfab.tech.pdk import load_pdk

RULE = {"sky130": "latchup.15", "gf180mcu": "DF.14", "ihp-sg13g2": "LU.b"}
K = {"sky130": 20, "gf180mcu": 16, "ihp-sg13g2": 24}   # islands between two tap rows inside an array


@pytest.mark.parametrize("name", RULE)
def test_tap_plan_follows_the_rule(name):
    """Inner groups of K islands; every group's farthest diffusion within the distance of the taps
    around it (tap rows, or the given reach of the periphery's taps at the ends); fewer islands than
    fit between the ends' taps need no row."""
    geom = RomGeometry.from_pdk(load_pdk(name))
    v, s = geom.d.tap_distance, geom.py - geom.island
    for islands, reach in ((200, None), (200, (8000, 4635)), (33, (4000, 4000)), (3, (2000, 2000))):
        plan = geom.tap_plan(islands, reach)
        bounds = [0, *plan.before, islands]
        groups = np.diff(bounds)
        assert groups.min() >= 1 and groups.sum() == islands
        if len(groups) > 2:
            assert set(groups[1:-1]) == {K[name]}
        e = [s if reach is None else reach[0]] + [s] * (len(groups) - 1)
        f = [s] * (len(groups) - 1) + [s if reach is None else reach[1]]
        far = (groups * geom.py - s + np.array(e) + np.array(f)) / 2     # the farthest point from both taps
        assert far.max() <= v, (islands, reach, plan)
        assert plan.edges == (reach is None)
    assert geom.tap_plan(3, (2000, 2000)).before == ()
    assert TapPlan(10, (4, 8)).slot(np.arange(10)).tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]


def _drop_first_tap_row(src: Path, dst: Path, pdk, geom: RomGeometry) -> Path:
    """A copy of ``src`` whose first macro has lost its lowest tap row's diffusion."""
    layout = kdb.Layout()
    layout.read(str(src))
    li = layout.find_layer(*pdk.role_gds("tap"))
    h = geom.d.diff_width // 2
    for cell in sorted((c for c in layout.each_cell() if c.name.endswith("_macro")), key=lambda c: c.name):
        rows = sorted((s for s in cell.shapes(li).each() if s.bbox().left == -h and s.bbox().width() > 4 * geom.px
                       and s.bbox().height() <= geom.island), key=lambda s: s.bbox().bottom)   # a row spans the array
        if rows:
            cell.shapes(li).erase(rows[0])
            break
    else:
        raise AssertionError("no tap row in any macro")
    layout.write(str(dst))
    return dst


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("taps")
    m = mlp_model(d / "t.onnx", sizes=(80, 16, 3), seed=5)   # 80 wordlines x 128 bitlines: tap rows inside
    np.savez(d / "t.calib.npz", x=np.random.default_rng(0).random((16, 80), dtype=np.float32))
    return m, d / "t.calib.npz"


@pytest.mark.slow
@pytest.mark.parametrize("name", RULE)
def test_missing_tap_row_fails_fast_and_full(name, model, tmp_path):
    pdk = load_pdk(name)
    geom = RomGeometry.from_pdk(pdk)
    out = tmp_path / "c.gds"
    res = weightfab.compile(model[0], out, pdk=name, calib=model[1], drc=False, verify=False)
    arrays, bits, stray, _ = read_bits(out, pdk)
    assert not stray and arrays[0].tap_slots and arrays[0].rows == 80
    assert sum(int(b.sum()) for b in bits) > 0 and res is not None
    clean = run_drc(out, pdk, fast=True)
    assert clean.clean and clean.mode == "fast", [(f.name, f.count) for f in clean.failing()]
    assert RULE[name] in {r.name for r in clean.rules}
    bad = _drop_first_tap_row(out, tmp_path / "bad.gds", pdk, geom)
    fast, full = run_drc(bad, pdk, fast=True), run_drc(bad, pdk)
    counts = [{r.name: r.count for r in rep.rules} for rep in (fast, full)]
    assert counts[0][RULE[name]] > 0, counts[0]
    assert counts[0] == counts[1], (fast.notes, counts)


def test_readback_across_tap_rows_and_a_via_on_one(tmp_path):
    """A SKY130 16 x 64 macro (one tap row): every bit reads back across the row; a via put on the
    tap row's slot, where a drain would be, is a stray shape, not a bit."""
    from weightfab.rom.periphery.macro import build_macro
    from weightfab.rom.writer import macro_library, write_library
    pdk = load_pdk("sky130")
    geom = RomGeometry.from_pdk(pdk)
    m = build_macro(geom, 16, 64, "e0")
    assert len(m.taps.before) == 1
    bits = np.random.default_rng(2).integers(0, 2, (16, 64)).astype(np.uint8)
    path = tmp_path / "m.gds"
    write_library(macro_library(m, pdk, bits), path)
    arrays, got, stray, _ = read_bits(path, pdk)
    assert len(arrays) == 1 and arrays[0].rows == 64 and arrays[0].tap_slots == (m.taps.before[0],)
    assert not stray and np.array_equal(got[0], bits)
    layout = kdb.Layout()
    layout.read(str(path))
    x, y = 3 * geom.px, m.taps.before[0] * geom.py + geom.drain[0]      # column 3, on the tap row
    layout.cell("e0_macro").shapes(layout.find_layer(*pdk.role_gds("mcon"))).insert(kdb.Box(*geom.prog_box(x, y)))
    layout.write(str(tmp_path / "v.gds"))
    arrays, got, stray, _ = read_bits(tmp_path / "v.gds", pdk)
    assert np.array_equal(got[0], bits) and stray == [(2 * x, 2 * y)]
