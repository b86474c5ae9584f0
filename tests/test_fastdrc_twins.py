"""Engines of one shape are checked once by the fast DRC (signoff/twins.py): the twins left out
agree with the full check, and a twin that differs in anything but its on-site programming, or
that something else comes near, is kept in."""
from __future__ import annotations

import gdstk
import numpy as np
import pytest

from conftest import mlp_model
import weightfab
from weightfab.signoff.drc import run_drc
from weightfab.signoff.readback import read_bits
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
UM = PDK.dbu_um
PROG = PDK.role_gds("mcon")
MET1 = PDK.gds("met1")


@pytest.fixture(scope="module")
def triple(tmp_path_factory):
    """Three 24 x 24 layers: three macros alike but for their weights, 10 µm apart."""
    d = tmp_path_factory.mktemp("twins")
    model = mlp_model(d / "m.onnx", sizes=(24, 24, 24, 24), seed=1)
    np.savez(d / "m.calib.npz", x=np.random.default_rng(0).random((16, 24), dtype=np.float32))
    weightfab.compile(model, d / "m.gds", calib=d / "m.calib.npz", drc=False, verify=False)
    return d / "m.gds"


def counts(rep):
    return {r.name: r.count for r in rep.rules}


def twin_note(rep) -> str:
    return next((n for n in rep.notes if n.startswith("engines equal but for their programming")), "")


def agree(path, dirty: bool):
    fast, full = run_drc(path, PDK, fast=True), run_drc(path, PDK)
    assert counts(fast) == counts(full), (fast.notes, fast.failing(), full.failing())
    assert (full.violations > 0) == dirty, full.failing()
    return fast


def _lib(path):
    lib = gdstk.read_gds(str(path))
    return lib, {c.name: c for c in lib.cells}


def test_twins_are_checked_once_and_agree(triple):
    fast = agree(triple, dirty=False)
    assert twin_note(fast).endswith("mm1_macro, mm2_macro as mm0_macro"), fast.notes
    assert fast.clean


def test_a_base_shape_changed_in_a_twin_keeps_it_in(triple, tmp_path):
    """A met1 sliver (below the width rule) inside mm2's periphery: mm2 is no twin any more."""
    lib, cells = _lib(triple)
    (x0, y0), (x1, y1) = cells["mm2_macro"].bounding_box()
    cells["mm2_macro"].add(gdstk.rectangle((x0 + 1, y0 + 1), (x0 + 1.05, y0 + 1.05), layer=MET1[0], datatype=MET1[1]))
    out = tmp_path / "m.gds"
    lib.write_gds(str(out))
    fast = agree(out, dirty=True)
    assert "mm2_macro" not in twin_note(fast) and "mm1_macro as mm0_macro" in twin_note(fast), fast.notes


def test_an_off_site_weight_in_a_twin_keeps_it_in(triple, tmp_path):
    """A block cell placed only in mm1 gets a programming shape moved one grid step off its
    site: mm1's loose shapes differ from mm0's, so mm1 is checked as drawn."""
    lib, cells = _lib(triple)
    used = {n: {r.cell.name for r in cells[n].references if "_blk_" in r.cell.name}
            for n in ("mm0_macro", "mm1_macro", "mm2_macro")}
    only = sorted(used["mm1_macro"] - used["mm0_macro"] - used["mm2_macro"])
    assert only
    blk = cells[only[0]]
    poly = blk.polygons[0]
    (x0, y0), (x1, y1) = poly.bounding_box()
    blk.add(gdstk.rectangle((x0 + 0.06, y0), (x1 + 0.06, y1), layer=PROG[0], datatype=PROG[1]))   # too near its neighbour
    out = tmp_path / "m.gds"
    lib.write_gds(str(out))
    fast = agree(out, dirty=True)
    assert "mm1_macro" not in twin_note(fast), fast.notes


def test_a_shape_near_a_twin_keeps_it_in(triple, tmp_path):
    """A met1 shape in the top cell 2 µm right of mm1 (its width rule broken): mm1 and mm2 are
    not isolated any more; the full check's count comes out of the fast one too."""
    lib, cells = _lib(triple)
    top = lib.top_level()[0]
    ref = next(r for r in top.references if r.cell.name == "mm1_macro")
    (_, y0), (x1, _) = ref.bounding_box()
    top.add(gdstk.rectangle((x1 + 2, y0 + 5), (x1 + 2.1, y0 + 6), layer=MET1[0], datatype=MET1[1]))
    out = tmp_path / "m.gds"
    lib.write_gds(str(out))
    fast = agree(out, dirty=True)
    assert "mm1_macro" not in twin_note(fast), fast.notes


def test_twins_read_back_every_bit(triple):
    arrays, bits, stray, _ = read_bits(triple, PDK)
    assert len(arrays) == 3 and not stray and all(b.any() for b in bits)
