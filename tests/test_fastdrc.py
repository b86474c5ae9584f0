"""Fast DRC against the full check: clean layouts agree, and every seeded violation the full check
finds, the fast mode finds with the same counts (the template's own finding, or a named fallback)."""
from __future__ import annotations

import re

import gdstk
import numpy as np
import pytest

import weightfab
from conftest import SAMPLE, compiled_mlp, mlp_model
from weightfab.signoff.drc import run_drc
from weightfab.signoff.readback import read_bits
from weightfab.signoff.tiecols import col_x
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
UM = PDK.dbu_um
PROG = PDK.role_gds("mcon")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A synthetic int8 MLP whose arrays are large enough to be cut in x and y."""
    d = tmp_path_factory.mktemp("fast")
    model = mlp_model(d / "m.onnx", sizes=(40, 24, 6), seed=3)
    np.savez(d / "m.calib.npz", x=np.random.default_rng(0).random((16, 40), dtype=np.float32))
    out = d / "m.gds"
    weightfab.compile(model, out, calib=d / "m.calib.npz", drc=False, verify=False)
    return out


def counts(rep):
    return {r.name: r.count for r in rep.rules}


def agree(path, expect_dirty=True):
    fast, full = run_drc(path, PDK, fast=True), run_drc(path, PDK)
    assert fast.mode == "fast" and full.mode == "full"
    assert counts(fast) == counts(full), (fast.notes, fast.failing(), full.failing())
    if expect_dirty:
        assert full.violations > 0, "the seeded change should be a violation"
    return fast, full


def templates(rep) -> dict:
    """The fast check's template note as numbers: templates, x-cuts (fewest over the templates),
    y-cuts (in all), cell placements kept whole; asserts that nothing ran in full."""
    assert not any("full" in n for n in rep.notes), rep.notes
    note = next(n for n in rep.notes if n.startswith("templates: "))
    m = re.fullmatch(r"templates: (\d+), x-cuts ([\d/]+), pieces [\d/]+ \((\d+) split at arrays\), y-cuts (\d+) in all; "
                     r"([\d,]+) cell placements kept whole", note)
    assert m, note
    return {"templates": int(m[1]), "x_cuts": min(int(v) for v in m[2].split("/")),
            "x_cuts_max": max(int(v) for v in m[2].split("/")), "split": int(m[3]),
            "y_cuts": int(m[4]), "kept": int(m[5].replace(",", ""))}


def test_clean_layouts_agree_and_use_the_template(small):
    """With the periphery: the arrays are cut along x in every template and along y in some, the
    standard cells stay references, and the periphery's own contacts are checked as drawn."""
    fast, full = agree(small, expect_dirty=False)
    assert fast.clean and full.clean
    t = templates(fast)
    # x-cuts in every template but the latch-up one (halo 31 µm from each tie column of the
    # strapped 192-bitline array: a cut needs 8 groups of 64 bitlines, periodic.Row)
    assert t["x_cuts_max"] >= 1 and t["y_cuts"] >= 1 and t["kept"] > 100, fast.notes
    assert any("not via boxes on bit sites (periphery, or edited): checked as drawn" in n for n in fast.notes)


def test_sample_agrees(tmp_path):
    out = tmp_path / "s.oas"
    weightfab.compile(SAMPLE, out, drc=False, verify=False)
    fast, _ = agree(out, expect_dirty=False)
    t = templates(fast)
    assert t["x_cuts_max"] >= 3 and t["y_cuts"] >= 3 and t["kept"] > 500, fast.notes   # fc1 strapped: as above


def test_arrays_alone_need_no_periphery_note(tmp_path):
    """Without the periphery every programming shape is a via box on a bit site and nothing is kept
    whole; the template is cut in x and y."""
    out = tmp_path / "s.oas"
    weightfab.compile(SAMPLE, out, drc=False, verify=False, periphery=False)
    fast, _ = agree(out, expect_dirty=False)
    t = templates(fast)
    # kept whole: only fc1's tie cells (wordline straps: 5 tie columns x 32 islands)
    from weightfab.rom.geometry import RomGeometry
    ties = len(RomGeometry.from_pdk(PDK).columns(256).tie_centres()) * 32
    assert t["kept"] == ties and t["x_cuts_max"] >= 3 and t["y_cuts"] >= 3, fast.notes   # fc1 strapped: as above
    assert not any("bit sites" in n for n in fast.notes), fast.notes


def _lib(path):
    lib = gdstk.read_gds(str(path))
    return lib, lib.top_level()[0]


def _holder(lib):
    """The cell that places the block cells (an engine or macro cell)."""
    return next(c for c in lib.cells if any("_blk_" in r.cell.name for r in c.references))


def _blocks(lib):
    return [c for c in lib.cells if "_blk_" in c.name]


def _write(lib, path):
    lib.write_gds(str(path))
    return path


def _interior(path, i=0):
    """A point (µm) in the middle of array i, away from every edge, between two columns and two
    islands (where no layer but the implant has a shape)."""
    from weightfab.rom.geometry import RomGeometry
    a = read_bits(path, PDK)[0][i]
    gap = a.py - RomGeometry.from_pdk(PDK).island
    return (int(col_x(a, a.cols // 2)) + a.px // 2) * UM, (a.y0 + (a.rows // 4 + 1) * a.py - gap // 2) * UM


@pytest.mark.slow
@pytest.mark.parametrize("how", ["moved", "enlarged", "duplicated"])
def test_programming_shape_edits(small, tmp_path, how):
    lib, _ = _lib(small)
    blk = _blocks(lib)[0]
    poly = blk.polygons[0]
    if how == "moved":
        poly.translate(0.005, 0)                   # one grid step off its site
    elif how == "enlarged":
        (x0, y0), (x1, y1) = poly.bounding_box()
        blk.remove(poly)
        blk.add(gdstk.rectangle((x0 - 0.005, y0 - 0.005), (x1 + 0.005, y1 + 0.005), layer=PROG[0], datatype=PROG[1]))
    else:
        (x0, y0), (x1, y1) = poly.bounding_box()
        blk.add(gdstk.rectangle((x0 + 0.1, y0), (x1 + 0.1, y1), layer=PROG[0], datatype=PROG[1]))
    fast, _ = agree(_write(lib, tmp_path / "m.gds"))
    assert any("template fails" in n for n in fast.notes), fast.notes


def test_edited_block_cell_used_once_among_thousands(small, tmp_path):
    """One unique block cell's programming shape moved off site; the cell is placed once."""
    lib, _ = _lib(small)
    eng = _holder(lib)
    once = {r.cell.name for r in eng.references if r.repetition.size == 0}
    blk = next(c for c in _blocks(lib) if c.name in once)
    blk.polygons[0].translate(0.005, 0)
    fast, _ = agree(_write(lib, tmp_path / "m.gds"))
    assert any("template fails" in n for n in fast.notes), fast.notes


def test_base_shape_added_inside_one_block_cell(small, tmp_path):
    lib, _ = _lib(small)
    blk = _blocks(lib)[1]
    (x0, y0), _ = blk.polygons[0].bounding_box()
    blk.add(gdstk.rectangle((x0, y0), (x0 + 0.05, y0 + 0.05), layer=PDK.gds("poly")[0], datatype=PDK.gds("poly")[1]))
    fast, _ = agree(_write(lib, tmp_path / "m.gds"))
    assert any("template fails" in n for n in fast.notes), fast.notes


@pytest.mark.parametrize("where", ["edge", "corner"])
def test_base_shape_at_engine_edge_and_corner(small, tmp_path, where):
    lib, top = _lib(small)
    a = read_bits(small, PDK)[0][0]
    x = int(col_x(a, a.cols // 2 if where == "edge" else a.cols - 1)) * UM
    y = a.y0 * UM - 0.05                       # just below the first island row
    li = PDK.gds("li")
    top.add(gdstk.rectangle((x, y), (x + 0.1, y + 0.05), layer=li[0], datatype=li[1]))
    fast, _ = agree(_write(lib, tmp_path / "m.gds"))
    assert any("template fails" in n for n in fast.notes), fast.notes


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["diff", "poly", "licon", "li", "mcon", "met1", "nsdm", "npc"])
def test_stray_shape_on_any_layer_inside_an_array(small, tmp_path, layer):
    lib, top = _lib(small)
    x, y = _interior(small)
    g = PDK.gds(layer)
    top.add(gdstk.rectangle((x - 0.025, y - 0.025), (x + 0.025, y + 0.025), layer=g[0], datatype=g[1]))
    fast, full = agree(_write(lib, tmp_path / "m.gds"), expect_dirty=layer != "nsdm")  # nsdm covers the array
    if layer != "nsdm":   # found by the template (its cuts stop a halo short of the shape), no fallback
        assert any("template fails" in n for n in fast.notes), fast.notes


def test_bit_pair_cell_edited(small, tmp_path):
    """The cell of every bit changed (met1 bitline narrowed): the template fails; counts are the full check's."""
    lib, _ = _lib(small)
    pair = next(c for c in lib.cells if c.name.endswith("_bitpair"))
    m1 = PDK.gds("met1")
    bl = next(p for p in pair.polygons if (p.layer, p.datatype) == m1)
    (x0, y0), (x1, y1) = bl.bounding_box()
    pair.remove(bl)
    pair.add(gdstk.rectangle((x0 + 0.02, y0), (x1 - 0.02, y1), layer=m1[0], datatype=m1[1]))
    fast, full = agree(_write(lib, tmp_path / "m.gds"))
    assert full.violations > 1000


def test_foreign_layout_falls_back_and_says_so(tmp_path):
    lib = gdstk.Library()
    cell = lib.new_cell("FOREIGN")
    p = PDK.gds("poly")
    cell.add(gdstk.rectangle((0, 0), (0.1, 2), layer=p[0], datatype=p[1]))
    cell.add(gdstk.rectangle((0.15, 0), (1, 2), layer=p[0], datatype=p[1]))
    fast, full = agree(_write(lib, tmp_path / "f.gds"))
    assert any("not a weightfab layout" in n and "full check" in n for n in fast.notes)


@pytest.fixture(scope="module")
def tall(tmp_path_factory):
    """One macro of 200 wordlines (100 islands) and 64 bitlines: its decoder rows are cut along y,
    its sense rows along x."""
    return compiled_mlp(tmp_path_factory.mktemp("tall"), "t", (200, 8), 4)


_CUTS: dict = {}


def _cuts_of(path, layers):
    """The clean layout's cuts for the rules on exactly ``layers``: (x-cuts, pieces); cached."""
    from weightfab.signoff import fastdrc
    from weightfab.signoff.periodic import stacks
    key = (str(path), tuple(layers))
    if key not in _CUTS:
        (ctx, _), _, _ = fastdrc._prove(path, PDK, [])
        halo = fastdrc._halo(PDK, [r for r in PDK.rules if fastdrc._bases(PDK, r) == set(layers)])
        _CUTS[key] = fastdrc._cuts(ctx, tuple(layers), stacks([r for _, r in ctx.arrays]), halo)
    return _CUTS[key]


def _cut_at(path, layers, x, y) -> str:
    """Whether the clean layout's template for ``layers`` removes the point (µm): "x" inside an
    x-cut, "y" inside a y-cut of its piece of the column band, else ""."""
    xc, pieces = _cuts_of(path, layers)
    px, py = round(x / UM), round(y / UM)
    if any(a < px < b for a, b in xc):
        return "x"
    yc = next((pc.yc for pc in pieces if pc.c0 <= px <= pc.c1), ())
    return "y" if any(a < py < b for a, b in yc) else ""


def _middle_first(items):
    """``items`` ordered by their distance from the middle one."""
    return sorted(items, key=lambda i: abs(items.index(i) - len(items) // 2))


def _placements(lib, where):
    """The macro, its periphery cell (placed at the macro's origin), and the inv_2 references of
    the sense row below the array ("sense") or of the row drivers beside it ("decoder"), in the
    order along their row."""
    macro = next(c for c in lib.cells if c.name.endswith("_macro"))
    per = next(r.cell for r in macro.references if "_periphery_" in r.cell.name)
    inv = [r for r in per.references if r.cell.name.endswith("__inv_2")]
    if where == "sense":
        low = min(r.origin[1] for r in inv if r.rotation == 0)
        return macro, per, sorted((r for r in inv if r.rotation == 0 and r.origin[1] == low), key=lambda r: r.origin[0])
    col = {}
    for r in inv:
        if r.rotation != 0:
            col.setdefault(round(r.origin[0], 3), []).append(r)
    best = max(col.values(), key=len)
    return macro, per, sorted(best, key=lambda r: r.origin[1])


@pytest.mark.parametrize("where", ["sense", "decoder"])
def test_periphery_cell_edited_in_one_placement_among_many(tall, tmp_path, where):
    """One of the many inv_2 placements of a sense row (cut along x) or of the row drivers (cut
    along y) points to a copy whose li shapes are narrowed: the cuts stop short of it, the template
    keeps it as drawn and fails."""
    lib, top = _lib(tall)
    macro, per, refs = _placements(lib, where)
    assert len(refs) > 30
    at = next(r for r in top.references if r.cell.name == macro.name).origin
    cut = where[0].replace("s", "x").replace("d", "y")

    def centre(r):
        (x0, y0), (x1, y1) = r.bounding_box()
        return at[0] + (x0 + x1) / 2, at[1] + (y0 + y1) / 2
    # the placement nearest the middle that the clean layout's template cuts away
    ref = next(r for r in _middle_first(refs) if _cut_at(tall, ["li"], *centre(r)) == cut)
    edit = ref.cell.copy(ref.cell.name + "_edit")
    li = PDK.gds("li")
    for poly in [p for p in edit.polygons if (p.layer, p.datatype) == li]:
        (u0, v0), (_, v1) = poly.bounding_box()
        edit.remove(poly)
        edit.add(gdstk.rectangle((u0, v0), (u0 + 0.1, v1), layer=li[0], datatype=li[1]))
    lib.add(edit)
    per.remove(ref)
    per.add(gdstk.Reference(edit, ref.origin, ref.rotation, ref.magnification, ref.x_reflection))
    fast, _ = agree(_write(lib, tmp_path / "m.gds"))
    assert any("template fails" in n for n in fast.notes), fast.notes


def _empty_spot(path, layer, xs, ys, clear):
    """The first point (µm) of the grid xs x ys with no shape of ``layer`` within ``clear`` µm."""
    import klayout.db as kdb
    ly = kdb.Layout()
    ly.read(str(path))
    reg = kdb.Region(ly.top_cells()[0].begin_shapes_rec(ly.find_layer(*PDK.gds(layer))))
    c = round(clear / UM)
    for y in ys:
        for x in xs:
            b = kdb.Box(round(x / UM) - c, round(y / UM) - c, round(x / UM) + c, round(y / UM) + c)
            if reg.interacting(kdb.Region(b)).is_empty():
                return x, y
    raise AssertionError(f"no empty spot on {layer}")


@pytest.mark.parametrize("layer,where", [("met1", "sense"), ("poly", "decoder")])
def test_stray_shape_in_the_periphery(tall, tmp_path, layer, where):
    """A small square in a periphery spot the clean layout's template cuts away (the sense row
    below the array, halfway along; the row drivers, halfway up): found by the template."""
    lib, top = _lib(tall)
    a = read_bits(tall, PDK)[0][0]
    if where == "sense":
        xs = [int(col_x(a, a.cols // 2)) * UM + d for d in np.arange(0, 3, 0.1)]
        ys = [a.y0 * UM - d for d in np.arange(1, 15, 0.25)]
    else:   # inside a y-cut (between tap rows), as near a quarter of the height as there is one
        yc = next(pc.yc for pc in _cuts_of(tall, [layer])[1] if pc.c0 <= a.x0 <= pc.c1)
        lo, hi = min(yc, key=lambda c: abs(c[0] - (a.y0 + a.rows // 4 * a.py)))
        xs = [a.x0 * UM - d for d in np.arange(0.5, 10, 0.25)]
        ys = [lo * UM + d for d in np.arange(1, (hi - lo) * UM - 1, 0.1)]
    x, y = _empty_spot(tall, layer, xs, ys, clear=0.4)
    assert _cut_at(tall, [layer], x, y) == ("x" if where == "sense" else "y")
    g = PDK.gds(layer)
    top.add(gdstk.rectangle((x - 0.03, y - 0.03), (x + 0.03, y + 0.03), layer=g[0], datatype=g[1]))
    fast, _ = agree(_write(lib, tmp_path / "m.gds"))
    assert any("template fails" in n for n in fast.notes), fast.notes


@pytest.fixture(scope="module")
def hundreds(tmp_path_factory):
    """One macro of 520 wordlines (260 islands in runs of 20 between tap rows) and 64 bitlines: the li
    rules' template removes whole runs of decoder rows (a stack of runs one tap row apart); the
    mcon/met1 enclosure rules' template is split at the array's edges (the array's rows cut, the
    decoder beside it kept whole)."""
    d = tmp_path_factory.mktemp("hundreds")
    model = mlp_model(d / "h.onnx", sizes=(520, 8), seed=6, softmax=False)   # 400: the split keeps more
    np.savez(d / "h.calib.npz", x=np.random.default_rng(0).random((16, 520), dtype=np.float32))
    out = d / "h.gds"
    weightfab.compile(model, out, calib=d / "h.calib.npz", drc=False, verify=False)
    return out


def _row_shape(lib, top, layer, x0, x1, y0, y1, mid):
    """The cell holding it (the macro cell, or its periphery cell placed at the macro's origin), a
    shape of ``layer`` drawn in it with its top-coordinate box inside [x0, x1] x [y0, y1], the one
    nearest ``mid`` along y, and the macro's origin."""
    macro = next(c for c in lib.cells if c.name.endswith("_macro"))
    at = next(r for r in top.references if r.cell.name == macro.name).origin
    per = next(r for r in macro.references if "_periphery_" in r.cell.name)
    assert tuple(per.origin) == (0, 0)
    g = PDK.gds(layer)
    found = []
    for holder in (macro, per.cell):
        for p in holder.polygons:
            (u0, v0), (u1, v1) = p.bounding_box()
            u0, v0, u1, v1 = u0 + at[0], v0 + at[1], u1 + at[0], v1 + at[1]
            if (p.layer, p.datatype) == g and x0 <= u0 and u1 <= x1 and y0 <= v0 and v1 <= y1:
                found.append((abs((v0 + v1) / 2 - mid), len(found), holder, p, (u0, v0, u1, v1)))
    assert found, f"no {layer} shape of the macro in the window"
    _, _, holder, p, box = min(found, key=lambda f: f[:2])
    return holder, p, box, at


def test_one_decoder_row_widened_among_hundreds_of_rows_cut_by_runs(hundreds, tmp_path):
    """The li pad of one wordline at the decoder's edge, in a run the clean layout's li template
    removes whole (runs and tap rows one period apart), is widened up to 0.07 µm from the next
    wordline's pad: the stack's cut stops short of it; fast and full find the same violations."""
    a = read_bits(hundreds, PDK)[0][0]
    x_arr = a.x0 * UM
    lo, hi = max((c for pc in _cuts_of(hundreds, ["li"])[1] if pc.c0 <= a.x0 <= pc.c1 for c in pc.yc),
                 key=lambda c: c[1] - c[0])
    assert (hi - lo) * UM > 3 * 29, "the li template should cut whole runs of decoder rows"
    lib, top = _lib(hundreds)
    macro, p, (u0, v0, u1, v1), at = _row_shape(lib, top, "li", x_arr - 2, x_arr, lo * UM, hi * UM,
                                                (lo + hi) / 2 * UM)
    assert _cut_at(hundreds, ["li"], (u0 + u1) / 2, (v0 + v1) / 2) == "y"
    g = PDK.gds("li")
    macro.remove(p)
    macro.add(gdstk.rectangle((u0 - at[0], v0 - at[1]), (u1 - at[0], v1 - at[1] + 1.18), layer=g[0], datatype=g[1]))
    fast, full = agree(_write(lib, tmp_path / "m.gds"))
    assert full.violations < 10, full.failing()       # one row's edit, not many
    assert any("template fails" in n for n in fast.notes), fast.notes


def test_one_decoder_row_narrowed_beside_an_array_row_cut_away(hundreds, tmp_path):
    """The met1 pad over one wordline's contact, in the decoder within the window of the split
    template's array piece and in a row that piece cuts away, is narrowed so that it no longer
    encloses its mcon (m1.4): the decoder piece keeps every row; fast and full agree."""
    a = read_bits(hundreds, PDK)[0][0]
    pieces = _cuts_of(hundreds, ["mcon", "met1"])[1]
    arr = next(pc for pc in pieces if pc.halo and pc.c0 <= a.x0 < pc.c1)
    assert arr.halo and arr.yc, "the mcon/met1 template should be split at the array's edge"
    lo, hi = arr.yc[len(arr.yc) // 2]
    lib, top = _lib(hundreds)
    x_arr = arr.c0 * UM
    macro, p, (u0, v0, u1, v1), at = _row_shape(lib, top, "met1", x_arr - arr.halo * UM, x_arr, lo * UM, hi * UM,
                                                (lo + hi) / 2 * UM)
    assert lo * UM < v0 and v1 < hi * UM and u1 <= x_arr     # beside the array, in a row its piece removes
    g = PDK.gds("met1")
    macro.remove(p)
    macro.add(gdstk.rectangle((u0 - at[0] + 0.06, v0 - at[1]), (u1 - at[0] - 0.06, v1 - at[1]), layer=g[0],
                              datatype=g[1]))
    fast, full = agree(_write(lib, tmp_path / "m.gds"))
    assert 0 < full.violations < 10 and "m1.4" in {r.name for r in full.failing()}, full.failing()
    assert any("template fails" in n for n in fast.notes), fast.notes
