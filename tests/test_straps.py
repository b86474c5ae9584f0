"""Wordline straps (rom/ties.py): a SKY130 macro wider than 128 bitlines gets a tie column before
its first bitline, every 64 bitlines and after its last, each wordline's poly contacted there under
a met2 strap over the array. A 64 x 256 macro is DRC-clean (full and fast, which agree on a
violation seeded in a tie column), LVS-clean, and reads back every bit on both readback paths;
a strap shorted to the neighbouring wordline's fails LVS, naming both wordlines; a programming
shape in a tie column off its contacts is a stray."""
from __future__ import annotations

from pathlib import Path

import klayout.db as kdb
import numpy as np
import pytest

from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery.macro import build_macro
from weightfab.rom.ties import STRAP_ABOVE, STRAP_EVERY
from weightfab.rom.writer import macro_library, write_library
from weightfab.signoff.drc import read_layout, run_drc
from weightfab.signoff.fastdrc import run_fast_drc
from weightfab.signoff.lvs import lvs_macro
from weightfab.signoff.readback import _assign, find_arrays, flat_centres, read_bits
from weightfab.signoff.taprows import drop_tap_rows, physical
from weightfab.signoff.tiecols import merge_bits, split
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
GEOM = RomGeometry.from_pdk(PDK)
COLS, ROWS = 256, 64


@pytest.fixture(scope="module")
def macro(tmp_path_factory):
    m = build_macro(GEOM, COLS, ROWS, "e0")
    bits = np.random.default_rng(11).integers(0, 2, (COLS, ROWS)).astype(np.uint8)
    path = tmp_path_factory.mktemp("straps") / "m.gds"
    write_library(macro_library(m, PDK, bits), path)
    return m, bits, path


def _edit(src: Path, dst: Path, layer: str, boxes) -> Path:
    """A copy of ``src`` with boxes (dbu) added on a PDK layer in the top cell."""
    layout = kdb.Layout()
    layout.read(str(src))
    top = layout.top_cells()[0]
    li = layout.layer(*PDK.gds(layer))
    for b in boxes:
        top.shapes(li).insert(kdb.Box(*b))
    layout.write(str(dst))
    return dst


def test_only_wide_arrays_are_strapped():
    assert not GEOM.columns(STRAP_ABOVE).strapped
    cp = GEOM.columns(STRAP_ABOVE + 2)
    assert cp.strapped and cp.every == STRAP_EVERY
    # the tie column: its poly contact contact_to_diff (licon.14, 0.19 µm) from the neighbours' diffusion
    assert cp.half - GEOM.d.diff_width // 2 - GEOM.contact // 2 >= GEOM.d.contact_to_diff
    assert list(cp.x(np.array([63, 64]))) == [63 * GEOM.px, 64 * GEOM.px + cp.width]
    assert len(cp.tie_centres()) == -(-cp.cols // cp.every) + 1


def test_strapped_macro_is_drc_clean_and_draws_its_straps(macro):
    m, bits, path = macro
    r = run_drc(path, PDK)
    assert r.clean, [(f.name, f.count, f.examples[:2]) for f in r.failing()]
    layout, top = read_layout(path)
    cp = GEOM.columns(COLS)
    vias = kdb.Region(top.begin_shapes_rec(layout.find_layer(*PDK.gds("via"))))
    straps = kdb.Region(top.begin_shapes_rec(layout.find_layer(*PDK.gds("met2")))).with_bbox_width(
        cp.span()[1] - cp.span()[0] + 2 * GEOM.tie.m2[1], False)
    ties = len(cp.tie_centres())
    assert straps.count() == ROWS                       # one met2 strap per wordline ...
    assert (vias & straps).count() == ROWS * ties       # ... on a via in every tie column


def test_strapped_macro_fast_drc_is_clean(macro):
    _, _, path = macro
    r = run_fast_drc(path, PDK)
    assert r.clean, [(f.name, f.count, f.examples[:2]) for f in r.failing()]


def test_strapped_macro_is_lvs_clean(macro):
    m, bits, path = macro
    r = lvs_macro(path, PDK, m, bits)
    assert r.ok, r.differences[:5]
    assert r.devices_layout == r.devices_reference > COLS * ROWS


def test_every_bit_reads_back_on_both_paths(macro):
    m, bits, path = macro
    arrays, got, stray, _ = read_bits(path, PDK)
    assert len(arrays) == 1 and arrays[0].tie_every == STRAP_EVERY and arrays[0].cols == COLS
    assert np.array_equal(got[0], bits) and not stray
    layout, top = read_layout(path)
    found = find_arrays(layout, top, PDK, path)
    assert (found[0].tie_every, found[0].tie_width) == (arrays[0].tie_every, arrays[0].tie_width)
    pts = flat_centres(layout, top, layout.find_layer(*PDK.gds("mcon")))
    parts, counts = split([physical(a) for a in found])
    flat, claimed = _assign(parts, pts)
    geometric, _ = drop_tap_rows(found, merge_bits(flat, counts))
    assert np.array_equal(geometric[0], bits)
    assert claimed.sum() == bits.sum()


def test_shape_in_a_tie_column_off_its_contacts_is_a_stray(macro, tmp_path):
    _, _, path = macro
    cp, t = GEOM.columns(COLS), GEOM.tie
    x = int(cp.tie_centres()[1])
    h = GEOM.d.via // 2
    y = (t.ya + t.yb) // 2
    bad = _edit(path, tmp_path / "stray.gds", "mcon", [(x - h, y - h, x + h, y + h)])
    _, got, stray, _ = read_bits(bad, PDK)
    assert stray == [(2 * x, 2 * y)]


def test_strap_shorted_to_its_neighbour_fails_lvs(macro, tmp_path):
    m, bits, path = macro
    cp, t = GEOM.columns(COLS), GEOM.tie
    x = (int(cp.x(100)) + int(cp.x(101))) // 2          # over the array, between two bitlines
    hy = t.m2[0]
    bad = _edit(path, tmp_path / "short.gds", "met2", [(x - 100, t.ya - hy, x + 100, t.yb + hy)])
    r = lvs_macro(bad, PDK, m, bits)
    assert not r.ok
    assert any("wl[0]" in d and "wl[1]" in d for d in r.differences), r.differences[:5]


def test_fast_and_full_drc_agree_on_a_tie_column_violation(macro, tmp_path):
    """A met1 pad of a tie column grown 0.1 µm towards its neighbour bitline (m1.2)."""
    _, _, path = macro
    cp, t = GEOM.columns(COLS), GEOM.tie
    x = int(cp.tie_centres()[2])
    y = 3 * GEOM.py + t.ya
    reach = cp.half - GEOM.d.met1_bitline_width // 2 - 100      # 0.1 µm from the bitline
    bad = _edit(path, tmp_path / "m1.gds", "met1", [(x, y - t.m1[1], x + reach, y + t.m1[1])])
    full = {f.name: f.count for f in run_drc(bad, PDK).failing()}
    fast = {f.name: f.count for f in run_fast_drc(bad, PDK).failing()}
    assert full.get("m1.2", 0) >= 1
    assert fast == full


def test_report_says_which_arrays_are_strapped():
    from weightfab.rom.periphery.macro import figures
    from weightfab.rom.viastack import program
    wide = figures(build_macro(GEOM, COLS, 16, "w"), "", PDK.dbu_um)["wordline_strap"]
    assert wide["every"] == STRAP_EVERY and wide["layer"] == "met2"
    assert wide["tie_width_um"] == pytest.approx(GEOM.tie.width * PDK.dbu_um)
    narrow = figures(build_macro(GEOM, STRAP_ABOVE, 16, "n"), "", PDK.dbu_um)["wordline_strap"]
    assert narrow["every"] == 0 and "128" in narrow["why_not"]
    via = RomGeometry.from_pdk(program(PDK, "via"))
    up = figures(build_macro(via, COLS, 16, "v"), "", PDK.dbu_um)["wordline_strap"]
    assert up["every"] == 0 and "programming layer via" in up["why_not"]
    assert not via.columns(COLS).strapped


def test_wide_strapped_macro_is_cut_by_whole_groups(tmp_path):
    """16 groups of columns: the fast DRC cuts whole groups with their tie columns (periodic.Row),
    its templates pass, and two violations seeded in tie columns either side of the cut band's
    middle give the full check's counts."""
    cols = 16 * STRAP_EVERY
    m = build_macro(GEOM, cols, 16, "e0")
    bits = np.random.default_rng(3).integers(0, 2, (cols, 16)).astype(np.uint8)
    path = tmp_path / "w.gds"
    write_library(macro_library(m, PDK, bits), path)
    r = run_fast_drc(path, PDK)
    assert r.clean and not any("checked in full" in n for n in r.notes), r.notes
    cp, t = GEOM.columns(cols), GEOM.tie
    x, x2 = (int(v) for v in cp.tie_centres()[[8, 5]])
    y, y2 = 3 * GEOM.py + t.ya, 5 * GEOM.py + t.ya + t.contact // 2 + t.poly_y
    bad = tmp_path / "bad.gds"
    _edit(path, bad, "met1", [(x, y - t.m1[1], x + cp.half - GEOM.d.met1_bitline_width // 2 - 100, y + t.m1[1])])
    _edit(bad, bad, "poly", [(x2 - t.poly_x, y2 + 100, x2 + t.poly_x, y2 + 200)])
    full = {f.name: f.count for f in run_drc(bad, PDK).failing()}
    assert {"m1.2", "poly.2"} <= set(full)
    assert {f.name: f.count for f in run_fast_drc(bad, PDK).failing()} == full
