"""`weightfab lvs` on compiled layouts: every PDK's macros (SKY130's periphery from its cells, the
others' drawn from their rules) match their reference circuits; a short between two wordlines is
named; a layout without macros is one line."""
from __future__ import annotations

import klayout.db as kdb
import numpy as np
import pytest

from conftest import mlp_model, one_line_error, run_cli


def compiled(tmp_path, pdk, *extra):
    model = mlp_model(tmp_path / "m.onnx", sizes=(12, 16, 6))
    np.savez(tmp_path / "m.calib.npz", x=np.random.default_rng(0).random((16, 12), dtype=np.float32))
    out = tmp_path / f"{pdk}.gds"
    r = run_cli("compile", model, "-o", out, "--pdk", pdk, *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.mark.parametrize("pdk", ["sky130", "gf180mcu", "ihp-sg13g2"])
def test_lvs_matches_every_macro(pdk, tmp_path):
    out = compiled(tmp_path, pdk)
    r = run_cli("lvs", out, "--pdk", pdk)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith("LVS ")]
    assert len(lines) == 2 and all(": match:" in l for l in lines), r.stdout


def test_shorted_wordlines_fail_lvs_on_sg13g2(tmp_path):
    out = compiled(tmp_path, "ihp-sg13g2")
    from weightfab.rom.periphery.cellgen import LAYERS
    from weightfab.tech.pdk import load_pdk
    pdk = load_pdk("ihp-sg13g2")
    layout = kdb.Layout()
    layout.read(str(out))
    poly = layout.find_layer(*pdk.gds(LAYERS[pdk.name]["poly"]))
    # a poly bar down the first engine's array joins every wordline it crosses
    macro = next(c for c in layout.each_cell() if c.name.endswith("_macro"))
    box = next(i.bbox() for i in macro.each_inst() if i.cell.name.endswith("_bitpair"))
    cx = (box.left + box.right) // 2
    macro.shapes(poly).insert(kdb.Box(cx - 100, box.bottom, cx + 100, box.top))
    bad = tmp_path / "short.gds"
    layout.write(str(bad))
    r = run_cli("lvs", bad, "--pdk", "ihp-sg13g2", "--engine", "0")
    assert r.returncode == 3 and "MISMATCH" in r.stdout, r.stdout + r.stderr
    assert all(len(l) < 300 for l in r.stdout.splitlines()), r.stdout


def test_layout_without_macros_is_one_line(tmp_path):
    out = compiled(tmp_path, "sky130", "--no-periphery")
    one_line_error(run_cli("lvs", out), "no macro cells", code=1)
