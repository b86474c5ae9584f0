"""Programming on an upper via (compile --program-layer): on every built-in PDK and every via it
offers, a small model compiles DRC-clean, reads back bit for bit (the readback finds the layer on
its own) and electrically (drains through the via stack); two models of one shape differ on that
one layer; the report names it and the density of each choice; single-shape edits of the upper
variant are caught by readback, electrical readback and DRC. The shipped sample on every
(PDK, layer) is the slow test at the end.
"""
from __future__ import annotations

import json

import gdstk
import numpy as np
import pytest

import weightfab
from conftest import SAMPLE, SAMPLES, mlp_model, mutate_layer, run_cli
from weightfab.errors import PdkError
from weightfab.flow.verify import verify
from weightfab.rom.geometry import RomGeometry
from weightfab.rom.viastack import program, program_layers
from weightfab.signoff.drc import run_drc
from weightfab.signoff.electrical import electrical_check
from weightfab.signoff.readback import read_bits
from weightfab.tech.pdk import list_pdks, load_pdk

COMBOS = [(n, layer) for n in list_pdks() for layer in program_layers(load_pdk(n))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two small MLPs of one shape (different weights) and their calibration inputs."""
    d = tmp_path_factory.mktemp("prog")
    models = [mlp_model(d / f"m{s}.onnx", sizes=(12, 6, 4), seed=s) for s in (1, 2)]
    calib = d / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32))
    return d, models, calib


def test_every_pdk_offers_upper_layers():
    assert program_layers(load_pdk("sky130")) == ("mcon", "via", "via2", "via3", "via4")
    assert program_layers(load_pdk("gf180mcu")) == ("via1", "via2", "via3", "via4")
    assert program_layers(load_pdk("ihp-sg13g2")) == ("via1", "via2", "via3", "via4", "topvia1")
    with pytest.raises(PdkError, match="choices, densest first: mcon, via, via2, via3, via4"):
        program(load_pdk("sky130"), "met2")


@pytest.mark.parametrize("name, layer", COMBOS, ids=[f"{n}-{l}" for n, l in COMBOS])
def test_compiles_clean_reads_back_and_conducts(name, layer, tiny):
    d, (model, _), calib = tiny
    out = d / f"{name}_{layer}.gds"
    res = weightfab.compile(model, out, pdk=name, calib=calib, program_layer=layer)
    assert res.drc.clean, [(r.name, r.count, r.examples[:2]) for r in res.drc.failing()]
    assert res.verify.ok and res.verify.program_layer == layer
    # the readback, told nothing but the PDK, finds the layer and every bit
    v = verify(out, model, pdk=name, calib=calib).readback
    assert v.ok and v.matched == v.total_bits > 0 and v.program_layer == layer
    e = electrical_check(out, name, engine=0, expected=res.qnet)
    assert e.ok, e.errors[:3]
    assert e.ones_connected == e.ones > 0 and e.zeros_floating == e.zeros > 0
    # the via stack is drawn in the base array's bit-pair cell, below the programming layer only
    p = load_pdk(name)
    k = program_layers(p).index(layer)
    counts = {n: 0 for n in p.stack}
    lib = gdstk.read_gds(str(out))
    for c in lib.cells:
        for poly in (c.polygons if c.name.endswith("_bitpair") else []):
            n = next((m for m in p.stack if p.gds(m) == (poly.layer, poly.datatype)), None)
            if n:
                counts[n] += 1
    below = p.stack[:2 * k + 1] + (p.stack[2 * k + 2],)      # pads and vias up to M_k, and the bitline
    assert all(counts[m] > 0 for m in below), counts
    assert all(counts[m] == 0 for m in p.stack if m not in below), counts   # the programming via is per block


def test_default_is_the_densest_and_unchanged(tiny):
    d, (model, _), calib = tiny
    a = weightfab.compile(model, d / "default.gds", calib=calib, drc=False, verify=False)
    b = weightfab.compile(model, d / "mcon.gds", calib=calib, drc=False, verify=False, program_layer="mcon")
    assert (d / "default.gds").read_bytes() == (d / "mcon.gds").read_bytes()
    for name in list_pdks():
        rows = weightfab.compile(model, d / f"r_{name}.gds", pdk=name, calib=calib, drc=False,
                                 verify=False).report()["programming"]["choices"]
        areas = [r["bitcell_area_um2"] for r in rows]
        assert areas[0] == min(areas) and rows[0]["relative_to_densest"] == 1.0
    assert a.report()["programming"]["layer"] == b.report()["programming"]["layer"] == "mcon"


def test_report_names_the_layer_and_the_cost_of_each_choice(tiny):
    d, (model, _), calib = tiny
    rep_path = d / "rep.json"
    r = run_cli("compile", model, "-o", d / "rep.gds", "--calib", calib, "--program-layer", "via3",
                "--no-drc", "--no-verify", "--report", rep_path)
    assert r.returncode == 0, r.stderr
    assert "programming layer via3: a model changes 1 mask (via3)" in r.stdout
    pr = json.loads(rep_path.read_text())["programming"]
    assert pr["layer"] == "via3" and pr["masks_changing"] == ["via3"]
    assert {"diff", "poly", "licon", "li", "mcon", "met1", "via", "met2", "via2", "met3", "met4"} <= set(pr["masks_shared"])
    assert "via3" not in pr["masks_shared"] and "boundary" not in pr["masks_shared"] and "via4" not in pr["masks_shared"]
    p = load_pdk("sky130")
    assert [c["layer"] for c in pr["choices"]] == list(program_layers(p))
    for c in pr["choices"]:
        g = RomGeometry.from_pdk(program(p, c["layer"]))
        assert c["bitcell_area_um2"] == round(g.px * g.py / 2 * p.dbu_um ** 2, 6)
    assert pr["choices"][-1]["bitcell_area_um2"] > 5 * pr["choices"][0]["bitcell_area_um2"]  # met5 is coarse


@pytest.mark.parametrize("name, layer", [("sky130", "via3"), ("gf180mcu", "via4"), ("ihp-sg13g2", "topvia1")])
def test_two_models_of_one_shape_differ_on_the_programming_layer_only(name, layer, tiny):
    d, models, calib = tiny
    outs = []
    for i, m in enumerate(models):
        out = d / f"diff{i}_{name}.gds"
        r = run_cli("compile", m, "-o", out, "--pdk", name, "--calib", calib, "--program-layer", layer,
                    "--no-drc", "--no-verify")
        assert r.returncode == 0, r.stderr
        outs.append(out)
    r = run_cli("diff", *outs, "--pdk", name, "--json")
    assert r.returncode == 4, r.stdout + r.stderr
    layers = json.loads(r.stdout)["layers"]
    assert [l["name"] for l in layers if l["differs"]] == [layer]
    assert {l["name"] for l in layers} >= set(load_pdk(name).stack[:3])   # the stack is there, shared


# -- single-shape edits of the upper variant ---------------------------------------------------------
@pytest.fixture(scope="module")
def upper(tiny):
    """The first model on SKY130 via2: its layout, compile result and arrays."""
    d, (model, _), calib = tiny
    out = d / "upper.gds"
    res = weightfab.compile(model, out, calib=calib, program_layer="via2")
    assert res.drc.clean and res.verify.ok
    arrays, *_ = read_bits(out, load_pdk("sky130"))
    return out, res, arrays, model, calib


def _site(a, layer_bits, ch, w, t, um):
    return (a.x0 + (ch * layer_bits + t) * a.px) * um, (a.y0 + (w // 2) * a.py + a.drains[w % 2]) * um


def _bit(res, layer, value, need_zero_right=False):
    from weightfab.mapping.dedup import to_bits
    bits = to_bits(res.qnet.layers[layer].weight, res.qnet.layers[layer].bits)
    cand = [tuple(int(v) for v in c) for c in np.argwhere(bits == value)
            if not need_zero_right or (c[2] + 1 < bits.shape[2] and bits[c[0], c[1], c[2] + 1] == 0)]
    return cand[len(cand) // 2]


def _edit(src, dst, gds, x, y, how, dx=0.0):
    """Flattened copy of src with the shape of layer ``gds`` centred at (x, y) removed or moved by
    dx, or a new via added there (``how``: remove, move, add)."""
    lib = gdstk.read_gds(str(src))
    top = lib.top_level()[0]
    top.flatten()
    for c in [c for c in lib.cells if c is not top]:
        lib.remove(c)
    if how == "add":
        h = 0.1
        top.add(gdstk.rectangle((x - h, y - h), (x + h, y + h), layer=gds[0], datatype=gds[1]))
    else:
        hit = [p for p in top.polygons if (p.layer, p.datatype) == gds
               and abs(sum(p.bounding_box()[i][0] for i in (0, 1)) / 2 - x) < 1e-4
               and abs(sum(p.bounding_box()[i][1] for i in (0, 1)) / 2 - y) < 1e-4]
        assert len(hit) == 1, f"{len(hit)} shapes on {gds} at ({x}, {y})"
        if how == "remove":
            top.remove(hit[0])
        else:
            hit[0].translate(dx, 0)
    lib.write_gds(str(dst))
    return dst


@pytest.mark.parametrize("how", ["remove", "add", "move"])
def test_programming_via_edits_are_named(upper, tmp_path, how):
    out, res, arrays, model, calib = upper
    p = load_pdk("sky130")
    layer = 1
    ch, w, t = _bit(res, layer, 0 if how == "add" else 1, need_zero_right=how == "move")
    x, y = _site(arrays[layer], res.qnet.layers[layer].bits, ch, w, t, p.dbu_um)
    m = _edit(out, tmp_path / "m.gds", p.gds("via2"), x, y, how, arrays[layer].px * p.dbu_um)
    v = verify(m, model, calib=calib).readback
    got = sorted((mm.layer, mm.channel, mm.weight, mm.bit, mm.kind) for mm in v.mismatches)
    want = {"remove": [(layer, ch, w, t, "missing")], "add": [(layer, ch, w, t, "extra")],
            "move": sorted([(layer, ch, w, t, "missing"), (layer, ch, w, t + 1, "extra")])}[how]
    assert v.program_layer == "via2" and got == want


def test_a_broken_stack_is_found_electrically_not_geometrically(upper, tmp_path):
    """A stack via (via, met1 to met2) removed under a programmed bit: the programming via is still
    there, so the geometric readback reads 1; the drain no longer reaches the bitline."""
    out, res, arrays, model, calib = upper
    p = load_pdk("sky130")
    ch, w, t = _bit(res, 0, 1)
    nb = res.qnet.layers[0].bits
    x, y = _site(arrays[0], nb, ch, w, t, p.dbu_um)
    m = _edit(out, tmp_path / "m.gds", p.gds("via"), x, y, "remove")
    assert verify(m, model, calib=calib).readback.ok
    e = electrical_check(m, "sky130", engine=0, expected=res.qnet)
    assert not e.ok and e.ones_connected == e.ones - 1
    assert any(f"wordline {w} column {ch * nb + t}" in s and "does not reach" in s for s in e.errors), e.errors[:3]


@pytest.mark.parametrize("layer, op, amount, fires", [
    ("via2", "shift", 0.05, {"via2.4", "m3.4"}),        # the programming via off its pad and bitline
    ("via", "size", 0.005, {"via.1a"}),                 # a stack via one step too large
    ("met2", "size", 0.09, {"m2.2"}),                   # stack pads grown into each other
    ("met3", "sizex", -0.1, {"m3.1"}),                  # bitlines narrowed (the macros' drop stacks put the
                                                        # met3 bottoms at different heights: no single corner piece)
])
def test_drc_catches_seeded_edits_of_the_stack(upper, tmp_path, layer, op, amount, fires):
    out, *_ = upper
    p = load_pdk("sky130")
    fired = {r.name for r in run_drc(mutate_layer(out, tmp_path / "m.gds", p.gds(layer), op, amount), p).failing()}
    assert fires <= fired, f"{layer} {op} {amount}: fired {sorted(fired)}"


@pytest.mark.slow
@pytest.mark.parametrize("name, layer", COMBOS, ids=[f"{n}-{l}" for n, l in COMBOS])
def test_sample_on_every_programming_layer(name, layer, tmp_path):
    out = tmp_path / "s.gds"
    r = run_cli("compile", SAMPLE, "-o", out, "--pdk", name, "--program-layer", layer,
                "--data", SAMPLES / "digits_mlp.test.npz")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "DRC: clean" in r.stdout and "verified: 21760 of 21760 bits match" in r.stdout
    e = run_cli("verify", out, "--model", SAMPLE, "--pdk", name, "--electrical")
    assert e.returncode == 0 and f"programmed on {layer}" in e.stdout, e.stdout + e.stderr
