"""The transistor-level macro periphery drawn from the PDK's rules (rom/periphery/generic.py) on
IHP SG13G2 and GF180MCU: DRC clean on the PDK's deck (with its well, implant and tap rules), LVS
matches the generated circuit, and seeded faults (a decoder contact removed, two wordlines
shorted) fail LVS."""
from __future__ import annotations

import json

import gdstk
import numpy as np
import pytest

from conftest import SAMPLE, run_cli
from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery.cellgen import LAYERS
from weightfab.rom.periphery.generic import build_generic_macro
from weightfab.rom.writer import macro_library
from weightfab.signoff.drc import run_drc
from weightfab.signoff.genlvs import MODELS, lvs_generic
from weightfab.tech.pdk import load_pdk

PDKS = {name: load_pdk(name) for name in ("ihp-sg13g2", "gf180mcu")}


@pytest.fixture(scope="module", params=sorted(PDKS))
def macro16(request):
    pdk = PDKS[request.param]
    geom = RomGeometry.from_pdk(pdk)
    m = build_generic_macro(pdk, geom, 16, 16, "e0")
    bits = np.random.default_rng(3).integers(0, 2, (16, 16)).astype(np.uint8)
    return pdk, geom, m, bits


def _write(tmp_path, pdk, m, bits, edit=None):
    lib = macro_library(m, pdk, bits)
    if edit:
        edit(lib, m)
    path = tmp_path / "m.gds"
    lib.write_gds(str(path))
    return path


def test_drc_clean_and_lvs_match(tmp_path, macro16):
    pdk, _, m, bits = macro16
    path = _write(tmp_path, pdk, m, bits)
    rep = run_drc(path, pdk)
    assert rep.violations == 0, {r.name: r.count for r in rep.rules if r.count}
    drawn = {r.layer for r in pdk.rules}
    assert {LAYERS[pdk.name]["nw"], LAYERS[pdk.name]["pp"]} <= drawn     # well and implant rules are in the deck
    r = lvs_generic(path, pdk, m, bits)
    assert r.ok, r.differences[:10]
    assert r.devices_layout == r.devices_reference > 16 * 16
    models = {d.device_class().name for d in r.extracted.top_circuit().each_device()}
    assert models == set(MODELS[pdk.name])
    assert {"e0_addr[0]", "e0_addr[3]", "e0_clk", "e0_en", "e0_dout[15]", "VDD", "VSS"} <= set(m.pins)


def test_other_bits_change_only_the_programming_layer(macro16):
    pdk, geom, m, _ = macro16
    m2 = build_generic_macro(pdk, geom, 16, 16, "e0")
    assert m2.drawing.shapes == m.drawing.shapes


def _cell(lib, m):
    return next(c for c in lib.cells if c.name == m.name)


def test_missing_decoder_contact_fails_lvs(tmp_path, macro16):
    pdk, _, m, bits = macro16
    x, y = m.marks["decoder_contact"]
    cont = pdk.gds(LAYERS[pdk.name]["cont"])

    def edit(lib, m):
        c = _cell(lib, m)
        um = pdk.dbu_um
        gone = [p for p in c.polygons if (p.layer, p.datatype) == cont and p.contain((x * um, y * um))]
        assert len(gone) == 1
        c.remove(*gone)

    r = lvs_generic(_write(tmp_path, pdk, m, bits, edit), pdk, m, bits)
    assert not r.ok and any("p0[0]" in d for d in r.differences), r.differences[:5]


def test_shorted_wordlines_fail_lvs(tmp_path, macro16):
    pdk, geom, m, bits = macro16
    (x0, y0), _ = m.marks["wl_pads"]
    um = pdk.dbu_um
    m1 = pdk.gds(LAYERS[pdk.name]["m1"])

    def edit(lib, m):   # Metal1 from wordline 0's pad up to wordline 2's pad
        _cell(lib, m).add(gdstk.rectangle((x0 * um - 0.1, y0 * um), (x0 * um + 0.1, (y0 + geom.py) * um),
                                          layer=m1[0], datatype=m1[1]))

    r = lvs_generic(_write(tmp_path, pdk, m, bits, edit), pdk, m, bits)
    assert not r.ok and "wl[2] and wl[0] are one net" in r.differences[0], r.differences[:5]


@pytest.mark.slow
def test_large_decoder_lvs_matches(tmp_path):
    """1000 wordlines (five predecoded chunks): the decoder rows' series chains are alike enough
    that the comparer paired 8 chain devices wrongly until the wordlines were named at their pads."""
    pdk = PDKS["gf180mcu"]
    m = build_generic_macro(pdk, RomGeometry.from_pdk(pdk), 8, 1000, "e0")
    bits = np.random.default_rng(3).integers(0, 2, (8, 1000)).astype(np.uint8)
    r = lvs_generic(_write(tmp_path, pdk, m, bits), pdk, m, bits)
    assert r.ok, r.differences[:5]
    assert r.devices_layout == r.devices_reference == 16204


@pytest.mark.slow
def test_sample_compiles_to_gf180mcu_macros(tmp_path):
    """The shipped sample on GF180MCU: every engine a macro, DRC clean, every bit read
    back, the electrical readback and LVS of every macro pass."""
    out, rep = tmp_path / "chip.gds", tmp_path / "chip.json"
    r = run_cli("compile", SAMPLE, "-o", out, "--pdk", "gf180mcu", "--weights", "int4", "--report", rep)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(rep.read_text())
    macros = [layer["macro"] for layer in report["layers"]]
    assert macros and all(m["drawn"] for m in macros), macros
    assert all(0 < m["bits_per_um2"] < m["bits"] / m["array_um2"] for m in macros)
    assert report["drc"]["clean"] and report["verify"]["ok"]
    assert report["verify"]["matched"] == report["verify"]["bits"] > 0
    r = run_cli("verify", out, "--model", SAMPLE, "--pdk", "gf180mcu", "--weights", "int4", "--electrical")
    assert r.returncode == 0 and r.stdout.count("electrical: engine") == len(macros), r.stdout + r.stderr
    r = run_cli("lvs", out, "--pdk", "gf180mcu")
    lines = [l for l in r.stdout.splitlines() if l.startswith("LVS ")]
    assert r.returncode == 0 and len(lines) == len(macros) and all(": match:" in l for l in lines), r.stdout
