"""Electrical readback: KLayout netlist extraction of a ROM window agrees with the model's bits,
and a layout defect that changes the circuit is reported (by site), including defects the
geometric readback cannot see."""
from __future__ import annotations

from pathlib import Path

import klayout.db as kdb
import numpy as np
import pytest

import weightfab
from weightfab.signoff.drc import read_layout
from weightfab.signoff.electrical import electrical_check, expected_bits
from weightfab.tech.pdk import load_pdk
from weightfab.signoff.readback import find_arrays
from weightfab.rom.geometry import RomGeometry

PDK = load_pdk("sky130")
GEOM = RomGeometry.from_pdk(PDK)
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "digits_mlp.onnx"
SMALL = 2  # digits_mlp: engines 256x64, 128x32, 80x16 (bitlines x wordlines)


@pytest.fixture(scope="module")
def chip(tmp_path_factory):
    out = tmp_path_factory.mktemp("electrical") / "digits.gds"
    res = weightfab.compile(SAMPLE, out, drc=False, verify=False)
    layout, top = read_layout(out)
    return out, res.qnet, find_arrays(layout, top, PDK, out)


def site_box(a, col: int, w: int) -> kdb.Box:
    x, y = a.x0 + col * a.px, a.y0 + (w // 2) * a.py + a.drains[w % 2]
    h = GEOM.d["via"] // 2
    return kdb.Box(x - h, y - h, x + h, y + h)


def mutate(src: Path, dst: Path, add: dict[str, list[kdb.Box]] = {}, cut: dict[str, list[kdb.Box]] = {}) -> Path:
    """Copy of ``src`` with boxes added (top cell) or cut out (layer flattened into the top cell)."""
    layout, top = read_layout(src)
    for name, boxes in cut.items():
        li = layout.find_layer(*PDK.gds(name))
        region = kdb.Region(top.begin_shapes_rec(li))
        for b in boxes:
            region -= kdb.Region(b)
        layout.clear_layer(li)
        top.shapes(li).insert(region)
    for name, boxes in add.items():
        li = layout.layer(*PDK.gds(name))
        for b in boxes:
            top.shapes(li).insert(b)
    layout.write(str(dst))
    return dst


def test_smallest_engine_whole(chip):
    path, qnet, arrays = chip
    a = arrays[SMALL]
    r = electrical_check(path, PDK, expected=qnet)       # default: the smallest engine, whole
    assert (r.engine, r.window) == (SMALL, (0, 80, 0, 16)) and (a.cols, a.rows) == (80, 16)
    assert r.ok, r.errors[:5]
    exp = expected_bits(qnet, SMALL, a.rows)
    assert r.devices == 80 * 16
    assert r.ones == int(exp.sum()) > 0 and r.ones_connected == r.ones      # every 1-drain on its bitline
    assert r.zeros == exp.size - r.ones > 0 and r.zeros_floating == r.zeros  # every 0-drain floats
    assert np.array_equal(r.bits, exp) and np.array_equal(r.floating, exp == 0)
    assert np.array_equal(r.geometric, exp)
    # 80 bitlines, 16 wordlines, 1 ground, one net per floating drain
    assert r.nets == 80 + 16 + 1 + r.zeros


def test_window_of_largest_engine(chip):
    """A window away from the array edges, starting on an odd wordline (half an island)."""
    path, qnet, arrays = chip
    win = (100, 48, 5, 20)
    r = electrical_check(path, PDK, engine=0, window=win, expected=qnet)
    assert r.ok, r.errors[:5]
    assert r.window == win and r.devices == 48 * 20
    exp = expected_bits(qnet, 0, arrays[0].rows)[100:148, 5:25]
    assert np.array_equal(r.bits, exp) and r.ones_connected == r.ones == exp.sum()
    assert r.zeros_floating == r.zeros


def test_extra_mcon_connects_a_zero(chip, tmp_path):
    path, qnet, arrays = chip
    a = arrays[SMALL]
    exp = expected_bits(qnet, SMALL, a.rows)
    col, w = (int(v) for v in np.argwhere(exp == 0)[len(np.argwhere(exp == 0)) // 2])
    bad = mutate(path, tmp_path / "extra.gds", add={"mcon": [site_box(a, col, w)]})
    r = electrical_check(bad, PDK, engine=SMALL, expected=qnet)
    assert not r.ok and r.error_count == 1
    assert r.bits[col, w] == 1 and not r.floating[col, w]
    assert f"wordline {w} column {col} " in r.errors[0] and "expected 0" in r.errors[0]
    assert r.zeros_floating == r.zeros - 1 and r.ones_connected == r.ones
    # the geometric readback sees the same extra shape: the two readbacks agree
    assert r.geometric[col, w] == 1


def test_removed_mcon_floats_a_one(chip, tmp_path):
    path, qnet, arrays = chip
    a = arrays[SMALL]
    exp = expected_bits(qnet, SMALL, a.rows)
    col, w = (int(v) for v in np.argwhere(exp == 1)[7])
    bad = mutate(path, tmp_path / "missing.gds", cut={"mcon": [site_box(a, col, w)]})
    r = electrical_check(bad, PDK, engine=SMALL, expected=qnet)
    assert not r.ok and r.error_count == 1
    assert r.bits[col, w] == 0 and r.floating[col, w]
    assert f"wordline {w} column {col} " in r.errors[0] and "expected 1" in r.errors[0]
    assert r.ones_connected == r.ones - 1 and r.zeros_floating == r.zeros


def test_missing_li_pad_fools_geometry_not_electrical(chip, tmp_path):
    """The mcon is there (geometric readback: 1) but the li pad under it is gone: the drain floats."""
    path, qnet, arrays = chip
    a = arrays[SMALL]
    exp = expected_bits(qnet, SMALL, a.rows)
    col, w = (int(v) for v in np.argwhere(exp == 1)[3])
    pad = site_box(a, col, w).enlarged(0, (GEOM.d["li_pad_length"] - GEOM.contact) // 2)
    bad = mutate(path, tmp_path / "nopad.gds", cut={"li": [pad]})
    r = electrical_check(bad, PDK, engine=SMALL, expected=qnet)
    assert r.geometric[col, w] == 1 and r.bits[col, w] == 0 and r.floating[col, w]
    assert r.error_count == 2
    assert any("expected 1" in e for e in r.errors)
    assert any("geometric readback reads 1, electrical reads 0" in e for e in r.errors)
    # without expected bits the geometric readback is the reference: still caught
    assert electrical_check(bad, PDK, engine=SMALL).error_count == 1


def _col_edge(a, col: int) -> int:
    return a.x0 + col * a.px + a.px // 2   # between column col and col + 1


@pytest.mark.parametrize("defect", ["wordline_cut", "ground_cut", "bitline_short", "bitline_cut"])
def test_circuit_defects(chip, tmp_path, defect):
    path, qnet, arrays = chip
    a = arrays[SMALL]
    isl = 3
    y = a.y0 + isl * a.py
    e = _col_edge(a, 10)
    if defect == "wordline_cut":      # poly of wordline 2·isl cut between columns 10 and 11
        g0, g1 = GEOM.gates[0]
        bad = mutate(path, tmp_path / "d.gds", cut={"poly": [kdb.Box(e - 50, y + g0 - 10, e + 50, y + g1 + 10)]})
        want = f"wordline {2 * isl}: the gates of its transistors are on 2 nets"
    elif defect == "ground_cut":      # li ground line of island isl cut: columns 0..10 lose ground
        s, h = GEOM.source, GEOM.contact // 2
        bad = mutate(path, tmp_path / "d.gds", cut={"li": [kdb.Box(e - 50, y + s - h - 10, e + 50, y + s + h + 10)]})
        want = "source is not on the ground net"
    elif defect == "bitline_short":   # met1 bar across the bitlines of columns 10 and 11, between islands
        yb = y - (a.py - GEOM.island) // 2
        bad = mutate(path, tmp_path / "d.gds", add={"met1": [kdb.Box(e - 300, yb - 70, e + 300, yb + 70)]})
        want = "bitlines shorted together"
    else:                             # met1 bitline of column 10 cut between islands isl-1 and isl
        yb = y - (a.py - GEOM.island) // 2
        x = a.x0 + 10 * a.px
        bad = mutate(path, tmp_path / "d.gds", cut={"met1": [kdb.Box(x - 200, yb - 60, x + 200, yb + 60)]})
        want = "column 10: the met1 bitline is broken"
    r = electrical_check(bad, PDK, engine=SMALL, expected=qnet, geometric=False)
    assert not r.ok
    assert any(want in m for m in r.errors), r.errors[:5]
    if defect == "ground_cut":
        bad_sources = [m for m in r.errors if "source is not on the ground net" in m]
        assert len(bad_sources) == 11 * 2   # both wordlines of the island, columns 0..10
    if defect == "bitline_cut":             # the 1-bits above the cut no longer reach the bitline's bottom
        exp = expected_bits(qnet, SMALL, a.rows)
        assert r.ones_connected == r.ones - int(exp[10, 2 * isl:].sum())
