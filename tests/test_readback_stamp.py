"""Readback of the file's hierarchy (signoff/sites.py: block cells stamped by broadcasting) against
the geometric readback of a flattened copy, on seeded edits of block placements and block cells:
both find the same bits and the same stray shapes, and the edit is named."""
from __future__ import annotations

import gdstk
import numpy as np
import pytest

import weightfab
from conftest import SAMPLE
from weightfab.signoff import readback as rb
from weightfab.signoff.readback import verify_layout
from weightfab.signoff.taprows import physical
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
UM = PDK.dbu_um
PROG = PDK.role_gds("mcon")


@pytest.fixture(scope="module")
def chip(tmp_path_factory):
    out = tmp_path_factory.mktemp("stamp") / "chip.gds"
    res = weightfab.compile(SAMPLE, out, weights="int2", drc=False, verify=False)   # blocks repeat
    st = rb._structure(out, PDK)
    a = rb.structural_arrays(st, PDK)[0]
    # block cells of the first array placed at least three times, with at least two shapes
    blocks = []
    for name, groups in st.places.items():
        b, _ = st.own_shapes(name, PROG)
        if len(b) >= 2 and len(groups) == 1 and len(groups[0][1]) >= 3 and groups[0][0] == (1, 0, 0, 1):
            org = groups[0][1]
            if (org[:, 0] > a.bbox[0]).all() and (org[:, 0] < a.bbox[2]).all():
                blocks.append((name, org, b))
    assert blocks
    return out, res, a, blocks


def edited(path, tmp_path, edit) -> str:
    lib = gdstk.read_gds(str(path))
    edit(lib)
    out = tmp_path / "edited.gds"
    lib.write_gds(str(out))
    return out


def ref_at(lib, name: str, org, parent=False):
    """The reference of cell ``name`` placed (in top coordinates, dbu) at ``org`` (and the cell
    holding it)."""
    top = lib.top_level()[0]
    for p in top.references:
        for r in p.cell.references:
            if r.cell.name == name and np.allclose(np.add(p.origin, r.origin), np.asarray(org) * UM, atol=1e-6):
                return (p.cell, r) if parent else r
    raise AssertionError(f"no placement of {name} at {org}")


def move(lib, name: str, org, dx_um: float, dy_um: float) -> None:
    r = ref_at(lib, name, org)
    r.origin = (r.origin[0] + dx_um, r.origin[1] + dy_um)


def agree(path, tmp_path):
    """Bits and stray shapes of the structural path (the fast one) and of the geometric path on a
    flattened copy: equal. Returns (stray count, sorted strays)."""
    st = rb._structure(path, PDK)
    assert rb.structural_arrays(st, PDK), "the file's arrays should be read from its hierarchy"
    _, bits, stray, n, _ = rb._read_bits(path, PDK)
    lib = gdstk.read_gds(str(path))
    top = lib.top_level()[0]
    top.flatten()
    for c in [c for c in lib.cells if c is not top]:
        lib.remove(c)
    lib.write_gds(str(tmp_path / "flat.gds"))
    assert not rb._structure(tmp_path / "flat.gds", PDK).arrays
    _, gbits, gstray, gn, _ = rb._read_bits(tmp_path / "flat.gds", PDK)
    assert n == gn and sorted(stray) == sorted(gstray)
    assert all(np.array_equal(x, y) for x, y in zip(bits, gbits))
    return n, sorted(stray)


def kinds(v):
    return sorted(m.kind for m in v.mismatches)


def test_clean(chip, tmp_path):
    path, res, _, _ = chip
    assert agree(path, tmp_path) == (0, [])
    assert verify_layout(path, res.qnet, PDK).ok


@pytest.mark.parametrize("which", [0, 1, -1])
def test_placement_half_a_column_off(chip, tmp_path, which):
    """One placement of a block cell (its first, second or last as read) moved half a column pitch:
    each of its shapes is a stray and each of its bits is missing; its other placements read."""
    path, res, a, blocks = chip
    name, org, b = blocks[0]
    out = edited(path, tmp_path, lambda lib: move(lib, name, org[which], a.px / 2 * UM, 0))
    n, stray = agree(out, tmp_path)
    c2 = b[:, :2] + b[:, 2:] + 2 * org[which]
    assert n == len(b) and stray == sorted((int(x) + a.px, int(y)) for x, y in c2)
    v = verify_layout(out, res.qnet, PDK)
    assert kinds(v) == ["missing"] * len(b) + ["stray"] * len(b)
    assert sorted((round(m.x_um / UM), round(m.y_um / UM)) for m in v.mismatches if m.kind == "missing") == \
        sorted((int(x) // 2, int(y) // 2) for x, y in c2)


def test_first_two_placements_off_the_rest_on_sites(chip, tmp_path):
    """The reference placements of a cell (the first two as read) off sites, the rest on: those two
    are strays, the others read as drawn."""
    path, res, a, blocks = chip
    name, org, b = blocks[0]

    def edit(lib):
        for o in org[:2]:
            move(lib, name, o, 0, a.py / 2 * UM)
    n, _ = agree(edited(path, tmp_path, edit), tmp_path)
    v = verify_layout(tmp_path / "edited.gds", res.qnet, PDK)
    assert n == 2 * len(b) and kinds(v) == ["missing"] * (2 * len(b)) + ["stray"] * (2 * len(b))


def test_placement_moved_one_column(chip, tmp_path):
    """On the grid but one column over: no stray; the bits read where the shapes are."""
    path, res, a, blocks = chip
    name, org, b = blocks[-1]
    out = edited(path, tmp_path, lambda lib: move(lib, name, org[1], a.px * UM, 0))
    assert agree(out, tmp_path)[0] == 0
    v = verify_layout(out, res.qnet, PDK)
    assert not v.ok and "stray" not in kinds(v)


@pytest.mark.parametrize("axis", [0, 1])
def test_placement_reaching_out_of_its_array(chip, tmp_path, axis):
    """A block moved so that its first shapes land on the array's last column (axis 0) or top
    island (axis 1) and the others past it: the ones inside are read (shape by shape), the ones
    past it are no bits; both paths agree."""
    path, res, a, blocks = chip
    a = physical(a)                 # islands on the grid of slots (tap rows included)
    pitch, first = (a.px, a.x0) if axis == 0 else (a.py, a.y0)
    last = a.cols - 1 if axis == 0 else a.rows // 2 - 1
    idx = lambda b, o: ((b[:, axis] + b[:, axis + 2]) // 2 + o[axis] - first) // pitch  # noqa: E731
    name, org, b = next(t for t in blocks if np.ptp(idx(t[2], t[1][0])) > 0)
    o = org[0]
    shift = (last - idx(b, o).min()) * pitch
    out = edited(path, tmp_path, lambda lib: move(lib, name, o, shift * UM * (axis == 0), shift * UM * (axis == 1)))
    n, _ = agree(out, tmp_path)
    v = verify_layout(out, res.qnet, PDK)
    assert not v.ok and n == sum(m.kind == "stray" for m in v.mismatches)
    if axis == 0:
        assert rb._read_bits(out, PDK)[1][0][a.cols - 1].any()


def test_rotated_and_duplicated_placements(chip, tmp_path):
    """A second reference of a block on top of one of its placements changes nothing; a block
    placed rotated by 180 degrees elsewhere is read shape by shape."""
    path, res, a, blocks = chip
    name, org, b = blocks[0]

    def edit(lib):
        cell, r = ref_at(lib, name, org[0], parent=True)
        cell.add(gdstk.Reference(r.cell, r.origin))
        cell.add(gdstk.Reference(r.cell, (r.origin[0] + 3 * a.px * UM, r.origin[1]), rotation=np.pi))
    out = edited(path, tmp_path, edit)
    agree(out, tmp_path)
    v = verify_layout(out, res.qnet, PDK)
    assert v.total_bits == verify_layout(path, res.qnet, PDK).total_bits


def test_block_cell_with_an_off_site_shape(chip, tmp_path):
    """A shape between two columns added to a block cell: one stray per placement of that cell,
    every bit still read."""
    path, res, a, blocks = chip
    name, org, b = blocks[0]
    x, y = (b[0, 0] + b[0, 2]) / 2 + a.px / 2, (b[0, 1] + b[0, 3]) / 2
    h = (b[0, 2] - b[0, 0]) / 2

    def edit(lib):
        cell = next(c for c in lib.cells if c.name == name)
        cell.add(gdstk.rectangle(((x - h) * UM, (y - h) * UM), ((x + h) * UM, (y + h) * UM), *PROG))
    out = edited(path, tmp_path, edit)
    n, stray = agree(out, tmp_path)
    assert n == len(org) and stray == sorted((int(2 * x) + 2 * int(o[0]), int(2 * y) + 2 * int(o[1])) for o in org)
    assert kinds(verify_layout(out, res.qnet, PDK)) == ["stray"] * len(org)


def test_shapes_read_for_some_layers_then_the_rest(chip):
    """A structure read on the programming and implant layers only (as readback reads it) gives the
    same shapes as one read on every layer, on those layers and, read on demand, on the others."""
    path = chip[0]
    some, full = rb._structure(path, PDK), rb._structure(path, PDK)
    nsdm, diff, li = PDK.role_gds("nsdm"), PDK.role_gds("diff"), PDK.role_gds("li")
    some.prefill(list(some.places), layers={PROG, nsdm})
    full.prefill(list(full.places))
    assert some.__dict__["_shape_cache"].keys() < full.__dict__["_shape_cache"].keys()
    for layer in (PROG, nsdm, diff, li):
        a, b = some.flat_shapes(layer), full.flat_shapes(layer)
        assert len(a[0]) and np.array_equal(a[0], b[0]) and len(a[1]) == len(b[1])
        for name in full.places:
            x, y = some.own_shapes(name, layer), full.own_shapes(name, layer)
            assert np.array_equal(x[0], y[0]) and len(x[1]) == len(y[1])
    assert all(some.own_layers(n) == full.own_layers(n) for n in full.places)
