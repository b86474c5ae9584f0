"""Every built-in PDK, end to end: the shipped sample compiles DRC-clean against the PDK's own
deck and reads back, electrically too; its KLayout layer properties name every layer; and its
deck catches seeded violations in a copy of that compiled ROM (whole layers grown, shrunk or
shifted by a grid step or two, or a shape cut down), one mutation at least per rule kind.
"""
from __future__ import annotations

import json

import pytest

from conftest import SAMPLE, SAMPLES, mutate_layer, run_cli
from weightfab.signoff.drc import run_drc
from weightfab.tech.pdk import list_pdks, load_pdk
from weightfab.rom.geometry import RomGeometry

PDKS = list_pdks()


def test_three_open_pdks_are_built_in():
    assert set(PDKS) >= {"sky130", "gf180mcu", "ihp-sg13g2"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The sample compiled on every PDK (CLI, with the report)."""
    out = {}
    d = tmp_path_factory.mktemp("pdks")
    for name in PDKS:
        gds, rep = d / f"{name}.gds", d / f"{name}.json"
        r = run_cli("compile", SAMPLE, "-o", gds, "--pdk", name, "--data", SAMPLES / "digits_mlp.test.npz",
                    "--report", rep)
        out[name] = (r, gds, rep)
    return out


@pytest.mark.parametrize("name", PDKS)
def test_sample_compiles_clean_and_verifies_on_each_pdk(name, compiled):
    r, gds, rep = compiled[name]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "DRC: clean" in r.stdout and "verified: 21760 of 21760 bits match" in r.stdout, r.stdout
    report = json.loads(rep.read_text())
    pdk = load_pdk(name)
    g = RomGeometry.from_pdk(pdk)
    cell = g.px * g.py / 2 * pdk.dbu_um ** 2
    assert report["pdk"] == name and report["drc"]["rules_checked"] == len(pdk.rules)
    # what the deck does not check is said, not hidden
    assert report["drc"]["not_checked"] == pdk.skipped and f"{len(pdk.skipped)} rule groups not checked" in r.stdout
    assert report["bitcell"]["area_um2"] == round(cell, 6) and report["bitcell"]["bits_per_um2"] == round(1 / cell, 4)
    e = run_cli("verify", gds, "--model", SAMPLE, "--pdk", name, "--electrical")
    assert e.returncode == 0, e.stdout + e.stderr


def test_report_compares_the_die_area_across_pdks(compiled):
    areas = {}
    for name in PDKS:
        report = json.loads(compiled[name][2].read_text())
        rows = {c["pdk"]: c for c in report["pdk_comparison"]}
        assert set(rows) == set(PDKS), rows
        assert rows[name]["relative_to_chosen"] == 1.0
        assert rows[name]["die_area_mm2"] == report["die"]["area_mm2"]
        areas[name] = report["die"]["area_mm2"]
        for other, c in rows.items():
            assert c["relative_to_chosen"] == pytest.approx(c["die_area_mm2"] / report["die"]["area_mm2"], rel=1e-3)
    # each PDK's own compile agrees with what the others' reports predicted for it
    for name in PDKS:
        report = json.loads(compiled[name][2].read_text())
        for c in report["pdk_comparison"]:
            assert c["die_area_mm2"] == areas[c["pdk"]]


@pytest.mark.parametrize("name", PDKS)
def test_pdk_show_states_bitcell_and_density(name):
    r = run_cli("pdk", "show", name)
    assert r.returncode == 0, r.stderr
    pdk = load_pdk(name)
    assert "bits/µm²" in r.stdout and all(rule.name in r.stdout for rule in pdk.rules)


@pytest.mark.parametrize("name", PDKS)
def test_layer_properties_name_every_layer(name):
    import klayout.lay as lay
    p = load_pdk(name)
    assert p.lyp is not None, f"{name}: no .lyp beside pdk.toml"
    view = lay.LayoutView()
    view.load_layer_props(str(p.lyp))
    sources = {n.source for n in view.each_layer()}
    assert sources == {f"{l.gds[0]}/{l.gds[1]}@1" for l in p.layers.values()}
    assert all(n.name for n in view.each_layer())


# -- seeded violations in the compiled ROM ---------------------------------------------------------
# (role, op, µm, rules that must fire): "size" grows (shrinks) every shape of the role's layer,
# "shift"/"shifty" move them in x/y, "crop" keeps a corner piece of that size. Rule names are each
# PDK's own; together a PDK's mutations must fire every rule kind of its deck.
ROM_MUTATIONS = {
    "sky130": [
        ("diff", "size", -0.005, ("difftap.2",)),                      # channel_width
        ("diff", "size", 0.005, ("difftap.3", "nsd.5a")),              # spacing, enclosure
        ("poly", "size", -0.01, ("poly.1a", "poly.8", "licon.8a")),    # width, extension, enclosure_adjacent
        ("poly", "size", 0.005, ("licon.11",)),                        # separation
        ("poly", "shifty", 0.04, ("poly.7",)),                         # extension (drain side)
        ("li", "size", -0.005, ("li.1", "li.6", "ct.4")),              # width, area, enclosure
        ("licon", "size", 0.005, ("licon.1",)),                        # exact_size
        ("mcon", "shift", 0.035, ("m1.4", "m1.5")),                    # enclosure, enclosure_adjacent
        ("met1", "crop", 0.2, ("m1.6",)),                              # area
        ("nsdm", "crop", 0.4, ("nsd.10a",)),                           # area
        ("npc", "size", -0.005, ("licon.15",)),                        # enclosure
    ],
    "gf180mcu": [
        ("diff", "size", -0.005, ("CO.4",)),                           # enclosure
        ("diff", "size", 0.085, ("DF.3a", "PL.4")),                    # spacing, extension (endcap)
        ("poly", "size", -0.005, ("PL.2", "CO.3")),                    # channel_width (gate length), enclosure
        ("poly", "size", 0.005, ("CO.7",)),                            # separation
        ("licon", "size", 0.005, ("CO.1",)),                           # exact_size
        ("mcon", "shift", 0.035, ("V1.4a", "V1.4c")),                  # enclosure, enclosure_adjacent
        ("met1", "size", -0.005, ("M2.1",)),                           # width
        ("met1", "crop", 0.2, ("M2.3",)),                              # area
        ("nsdm", "crop", 0.3, ("NP.1", "NP.8a", "DF.12")),             # width, area, enclosure
    ],
    "ihp-sg13g2": [
        ("diff", "size", -0.005, ("Cnt.c",)),                          # enclosure
        ("diff", "size", 0.005, ("Gat.c",)),                           # extension (endcap)
        ("diff", "size", 0.08, ("Act.b",)),                            # spacing
        ("poly", "size", -0.005, ("Gat.a", "Gat.a1", "Cnt.d")),        # width, channel_width, enclosure
        ("poly", "size", 0.005, ("Cnt.f",)),                           # separation
        ("poly", "shifty", 0.12, ("Act.c",)),                          # extension (drain side)
        ("li", "size", -0.005, ("M1.d", "V1.c")),                      # area, enclosure
        ("licon", "size", 0.005, ("Cnt.a",)),                          # exact_size
        ("mcon", "shift", 0.05, ("V1.c1", "M2.c1")),                   # enclosure_adjacent
        ("met1", "crop", 0.2, ("M2.d",)),                              # area
    ],
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small MLP compiled on every PDK: a ROM layout that checks in about a second."""
    import numpy as np

    from conftest import mlp_model
    d = tmp_path_factory.mktemp("tiny")
    model = mlp_model(d / "tiny.onnx", sizes=(8, 6, 4))
    np.savez(d / "tiny.calib.npz", x=np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32))
    out = {}

    def get(name):
        if name not in out:
            gds = d / f"tiny_{name}.gds"
            r = run_cli("compile", model, "-o", gds, "--pdk", name, "--no-periphery")  # the array's own rules
            assert r.returncode == 0, r.stdout + r.stderr
            out[name] = gds
        return out[name]
    return get


@pytest.mark.parametrize("name, i", [pytest.param(n, i, id=f"{n}-{m[0]}-{m[1]}{m[2]:+g}")
                                     for n, ms in ROM_MUTATIONS.items() for i, m in enumerate(ms)])
def test_seeded_violation_in_the_rom_fires_the_rule(name, i, tiny, tmp_path):
    pdk = load_pdk(name)
    src = tiny(name)
    assert run_drc(src, pdk).clean
    role, op, amount, fires = ROM_MUTATIONS[name][i]
    report = run_drc(mutate_layer(src, tmp_path / "m.gds", pdk.role_gds(role), op, amount), pdk)
    fired = {r.name for r in report.failing()}
    assert set(fires) <= fired, f"{name}: {role} {op} {amount:+} µm should fire {fires}, fired {sorted(fired)}"


@pytest.mark.parametrize("name", PDKS)
def test_rom_mutations_cover_every_rule_kind_of_the_deck(name):
    pdk = load_pdk(name)
    kind = {r.name: r.kind for r in pdk.rules}
    named = {r for m in ROM_MUTATIONS.get(name, []) for r in m[3]}
    assert named <= set(kind), f"mutations name rules not in the {name} deck: {sorted(named - set(kind))}"
    # max_distance (the tap-distance rule) is seeded on a compiled macro with a tap row taken out,
    # in both DRC modes: tests/test_macro_taps.py
    missing = {r.kind for r in pdk.rules} - {kind[r] for r in named} - {"max_distance"}
    assert not missing, f"{name}: rule kinds without a seeded violation in the ROM: {sorted(missing)}"
