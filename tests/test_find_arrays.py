"""The geometric array finder (readback.find_arrays, used by verify, the electrical check,
render and the critical area) on layouts with macros: it measures the arrays the file's
hierarchy gives (structural_arrays) and nothing else. On SG13G2 (no n implant drawn) the rule-
drawn periphery has transistor pairs of a bit pair's own diffusion size near the array; they are
not part of it."""
from __future__ import annotations

import klayout.db as kdb
import numpy as np
import pytest

from conftest import mlp_model
from weightfab.flow.compile import compile as run_compile
from weightfab.signoff import readback as rb
from weightfab.signoff.drc import read_layout
from weightfab.tech.pdk import load_pdk


@pytest.mark.parametrize("name", ["ihp-sg13g2", "sky130"])
def test_geometric_arrays_equal_structural_arrays(name, tmp_path):
    model = mlp_model(tmp_path / "m.onnx", sizes=(12, 6, 4), seed=1)
    calib = tmp_path / "c.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32))
    out = tmp_path / "m.gds"
    run_compile(model, out, pdk=name, calib=calib, drc=False)
    pdk = load_pdk(name)
    layout, top = read_layout(out)
    found = rb.find_arrays(layout, top, pdk, out)
    assert len(found) == 2 and found == rb.structural_arrays(rb._structure(out, pdk), pdk)
    # the macros' periphery is drawn, and holds diffusion of a bit pair's size outside every array
    outside = kdb.Region(top.begin_shapes_rec(layout.find_layer(*pdk.role_gds("diff")))) \
        - kdb.Region([kdb.Box(*a.bbox) for a in found])
    sizes = {(b.width(), b.height()) for b in (p.bbox() for p in outside.each())}
    assert sizes and (name != "ihp-sg13g2" or set(rb._bitpair_sizes(pdk)) & sizes)
