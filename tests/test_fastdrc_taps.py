"""The fast DRC checks the tap-distance rule (SKY130 latchup.15) on its templates, not on the
whole file: the clean layout's template for the rule removes the middle of a tall array (nineteen
tap rows) and of a wide one (512 bitlines) with the periphery beside them, and a tap taken out
there (a tap row in the middle of the tall array; the taps of the sense row below the middle
columns of the wide one) stops the cuts, so the fast check finds what the full check finds, with
the same counts."""
from __future__ import annotations

import klayout.db as kdb
import pytest

from conftest import compiled_mlp
from weightfab.signoff import fastdrc
from weightfab.signoff.drc import run_drc
from weightfab.signoff.periodic import stacks
from weightfab.signoff.readback import read_bits
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
RULE = next(r for r in PDK.rules if r.kind == "max_distance")


@pytest.fixture(scope="module")
def tall(tmp_path_factory):
    """One macro of 800 wordlines (400 islands, a tap row after every 20) and 64 bitlines: tall
    enough for the rule's cuts (2 x 15 + 1 µm from anything that does not repeat)."""
    return compiled_mlp(tmp_path_factory.mktemp("taps"), "h", (800, 8), 6)


def _cuts(path) -> tuple:
    """The clean layout's cuts (dbu) for the tap-distance rule: (x-cuts, pieces)."""
    (_, ctx), _, _ = fastdrc._prove(path, PDK, [])   # the max_distance rules' context
    layers = tuple(sorted(n for n in fastdrc._bases(PDK, RULE) if n in ctx.items))
    rules = [r for r in PDK.rules if tuple(sorted(n for n in fastdrc._bases(PDK, r) if n in ctx.items)) == layers]
    return fastdrc._cuts(ctx, layers, stacks([r for _, r in ctx.arrays]), fastdrc._halo(PDK, rules))


def _y_cuts(path, x: int) -> tuple:
    """The clean layout's y-cuts (dbu) for the tap-distance rule in the piece that holds ``x``."""
    return next(pc.yc for pc in _cuts(path)[1] if pc.c0 <= x <= pc.c1)


def _macro(path):
    """The layout, its macro cell, the macro's origin in the top cell and its tap-layer shapes."""
    layout = kdb.Layout()
    layout.read(str(path))
    macro = next(c for c in layout.each_cell() if c.name.endswith("_macro"))
    at = next(i.trans.disp for i in layout.top_cells()[0].each_inst() if i.cell_index == macro.cell_index())
    tap = layout.find_layer(*PDK.role_gds("tap"))
    return layout, macro, at, tap


def _agree(path):
    """The fast check's counts equal the full check's on every rule that reads the tap layer or
    that the fast check finds failing (the others: 0 in the fast check); the rule fails."""
    fast = run_drc(path, PDK, fast=True)
    got = {r.name: r.count for r in fast.rules}
    names = {r.name for r in PDK.rules if "tap" in fastdrc._bases(PDK, r)} | {n for n, c in got.items() if c}
    full = {r.name: r.count for r in run_drc(path, PDK, rules=names).rules}
    assert fast.mode == "fast" and {n: got[n] for n in full} == full, (fast.notes, got, full)
    assert full[RULE.name] > 0, full
    assert any("template fails" in n and RULE.name in n for n in fast.notes), fast.notes
    return fast, full


@pytest.mark.slow
def test_clean_tall_macro_cuts_the_tap_rows(tall):
    """The clean macro is clean in the fast check, and its template for the rule removes tap rows
    (a stack of runs one tap row apart cut whole)."""
    fast = run_drc(tall, PDK, fast=True)
    assert fast.clean and fast.mode == "fast", fast.failing()
    assert not any("full" in n for n in fast.notes), fast.notes
    a = read_bits(tall, PDK)[0][0]
    rows = [a.y0 + s * a.py for s in a.tap_slots]
    yc = _y_cuts(tall, a.x0)
    assert len(a.tap_slots) >= 16
    assert sum(any(lo < y < hi for lo, hi in yc) for y in rows) >= 3, (rows, yc)


@pytest.mark.slow
def test_tap_row_removed_in_the_middle_of_a_tall_array(tall, tmp_path):
    """The tap row nearest the middle of the array, inside a y-cut of the clean template, is taken
    out: the islands on both sides are too far from a tap; fast and full agree."""
    a = read_bits(tall, PDK)[0][0]
    yc = _y_cuts(tall, a.x0)
    mid = a.y0 + a.rows // 4 * a.py
    slot = min((s for s in a.tap_slots if any(lo < a.y0 + s * a.py < hi for lo, hi in yc)),
               key=lambda s: abs(a.y0 + s * a.py - mid))
    layout, macro, at, tap = _macro(tall)
    y = a.y0 + slot * a.py - at.y       # the row's slot, macro coordinates
    rows = [s for s in macro.shapes(tap).each() if s.bbox().bottom <= y + a.py and s.bbox().top >= y
            and s.bbox().width() > 4 * a.px]
    assert len(rows) == 1, [str(s.bbox()) for s in rows]
    macro.shapes(tap).erase(rows[0])
    out = tmp_path / "row.gds"
    layout.write(str(out))
    _agree(out)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """One macro of 40 wordlines (one tap row) and 512 bitlines: the sense row's taps below the
    array are cut along x by the rule's template."""
    return compiled_mlp(tmp_path_factory.mktemp("wide"), "w", (40, 64), 6)


@pytest.mark.slow
def test_periphery_taps_removed_below_the_middle_columns(wide, tmp_path):
    """The periphery's taps below the array (the sense row's and the strip under the array) lose
    40 µm in the middle of the array's width, inside an x-cut of the clean template: the sense
    row's n diffusion there is too far from a tap; fast and full agree."""
    a = read_bits(wide, PDK)[0][0]
    xc, _ = _cuts(wide)
    lo, hi = max(xc, key=lambda c: c[1] - c[0])
    assert hi - lo > 40_000, xc
    layout, macro, at, tap = _macro(wide)
    per = next(i for i in macro.each_inst() if "_periphery_" in layout.cell(i.cell_index).name)
    assert per.trans.disp == kdb.Vector(0, 0)
    per = layout.cell(per.cell_index)          # the periphery cell, placed at the macro's origin
    c = (lo + hi) // 2 - at.x
    hole = kdb.Region(kdb.Box(c - 20_000, -10**7, c + 20_000, a.bbox[1] - at.y))
    taps = kdb.Region(per.shapes(tap))
    assert (taps & hole).count() > 10
    per.shapes(tap).clear()
    per.shapes(tap).insert(taps - hole)
    out = tmp_path / "sense.gds"
    layout.write(str(out))
    _, counts = _agree(out)
    assert counts[RULE.name] < 40, counts
