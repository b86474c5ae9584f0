"""ngspice with the SKY130 device models: an inverter, and reads of a drawn, extracted ROM macro."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import mlp_model, remove_via, run_cli
from weightfab.errors import WeightfabError
from weightfab.signoff import spice
from weightfab.signoff.characterize import Bench, macro_pins, simulate_reads
from weightfab.tech.pdk import load_pdk

INVERTER = """* inverter
Vdd vdd 0 1.8
Vin in 0 pulse(0 1.8 100p 50p 50p 1n 2n)
Xp out in vdd vdd sky130_fd_pr__pfet_01v8 w=1.0 l=0.15
Xn out in 0 0 sky130_fd_pr__nfet_01v8 w=0.5 l=0.15
Cl out 0 10f
.tran 5p 2.5n
.measure tran tphl trig v(in) val=0.9 rise=1 targ v(out) val=0.9 fall=1
.measure tran tplh trig v(in) val=0.9 fall=1 targ v(out) val=0.9 rise=1
"""


def _inverter(corner: str) -> dict:
    return spice.run(spice.model_header(corner) + INVERTER).measures


def test_inverter_simulates_at_every_corner():
    d = {c: _inverter(c) for c in spice.CORNERS}
    for c, m in d.items():
        assert 5e-12 < m["tphl"] < 300e-12 and 5e-12 < m["tplh"] < 300e-12, (c, m)
    # the corners are the foundry's: slow devices switch later than typical, fast ones earlier
    assert d["ff"]["tphl"] < d["tt"]["tphl"] < d["ss"]["tphl"]
    assert d["ff"]["tplh"] < d["tt"]["tplh"] < d["ss"]["tplh"]


def test_missing_ngspice_is_one_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(WeightfabError, match="Debian package 'ngspice'"):
        spice.ngspice()


def test_unknown_corner():
    with pytest.raises(WeightfabError, match="unknown corner 'xx'"):
        spice.model_header("xx")


def test_wire_parameters_from_the_model_package():
    tt, ss, ff = (spice.wire_rc(c) for c in ("tt", "ss", "ff"))
    assert tt.r_poly == pytest.approx(48.2) and tt.r_met1 == pytest.approx(0.125)
    assert tt.c_met1 == pytest.approx(25.8e-18) and tt.c_poly == pytest.approx(106e-18)
    assert ff.c_met1 < tt.c_met1 < ss.c_met1


# -- a drawn macro: 16 wordlines x 16 bitlines, the bits of a 16-input, 2-output int8 layer ----------
@pytest.fixture(scope="module")
def macro16(tmp_path_factory):
    from weightfab.flow.simulate import model_bits
    from weightfab.rom.geometry import RomGeometry
    from weightfab.rom.periphery.macro import build_macro
    from weightfab.rom.writer import macro_library

    d = tmp_path_factory.mktemp("macro16")
    model = mlp_model(d / "tiny.onnx", sizes=(16, 2), relu=False, softmax=False, seed=3)
    pdk = load_pdk("sky130")
    (name, bits), = model_bits(model, "int8", "optimized", None, pdk)
    assert bits.shape == (16, 16) and 0 < bits.sum() < bits.size
    geom = RomGeometry.from_pdk(pdk)
    macro = build_macro(geom, 16, 16, name)
    gds = d / "macro16.gds"
    macro_library(macro, pdk, bits).write_gds(str(gds))
    return model, gds, bits, macro, geom


def test_simulate_cli_reads_the_extracted_macro(macro16, tmp_path):
    model, gds, bits, macro, _ = macro16
    js = tmp_path / "sim.json"
    r = run_cli("simulate", gds, "--model", model, "--reads", 3, "--seed", 1, "--netlist", tmp_path / "m.spice",
                "--json", js)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "extracted netlist of cell" in r.stdout and "ok" in r.stdout
    text = (tmp_path / "m.spice").read_text()
    assert "sky130_fd_pr__nfet_01v8" in text and "sky130_fd_pr__pfet_01v8" in text
    import json
    s = json.loads(js.read_text())
    tt = s["corners"][0]
    assert s["netlist"] == "extracted" and tt["ok"] and tt["reads"] == 3
    assert 0.05 < tt["access_time_ns"] < 5 and 0.01 < tt["energy_per_read_pj"] < 50


def test_removed_via_flips_exactly_that_bit(macro16, tmp_path):
    from weightfab.signoff.parasitics import extract_with_caps
    model, gds, bits, macro, geom = macro16
    col, row = map(int, np.argwhere(bits == 1)[0])
    sx, sy = geom.site_xy(np.array([col]), np.array([row]), macro.taps)
    bad = tmp_path / "cut.gds"
    remove_via(gds, bad, macro.name, int(sx[0]), int(sy[0]))
    pdk = load_pdk("sky130")
    nl = extract_with_caps(bad, pdk, macro.name, ("met1_pin", "met2_pin"))
    ports = macro_pins(nl)
    other = (row + 1) % 16
    addr = np.array([row, other])
    res = simulate_reads(nl, addr, bits[ports.douts][:, addr].T, "tt", Bench())
    assert res.errors == [(0, row, ports.douts.index(col), 0)]


def _read_sample_engines(tmp_path, engines):
    from conftest import SAMPLE, SAMPLES
    import json
    gds = tmp_path / "sample.gds"
    r = run_cli("compile", SAMPLE, "-o", gds, "--no-drc", "--calib", SAMPLES / "digits_mlp.calib.npz")
    assert r.returncode == 0, r.stderr
    for engine in engines:
        js = tmp_path / f"e{engine}.json"
        r = run_cli("simulate", gds, "--model", SAMPLE, "--calib", SAMPLES / "digits_mlp.calib.npz",
                    "--engine", engine, "--reads", 2, "--period", 20, "--json", js)
        assert r.returncode == 0, r.stdout + r.stderr
        s = json.loads(js.read_text())
        assert s["netlist"] == "extracted" and s["corners"][0]["ok"] and s["model_bit_errors"] == 0


@pytest.mark.slow
def test_sample_last_engine_reads_in_spice(tmp_path):
    """The sample's fc3 macro (16 x 80, 2,807 extracted devices), extracted from the drawn layout, reads
    two random words right (about a minute of ngspice)."""
    _read_sample_engines(tmp_path, [2])


@pytest.mark.spice_full
def test_sample_engines_read_in_spice(tmp_path):
    """Every engine of the sample (fc1's macro has 18,444 devices: flat, more than 15 minutes of
    ngspice; it is now read on reduced netlists, 8 reads in 6.4 min of CPU, still too long for the
    default run; `python -m pytest -m spice_full tests/test_spice.py` runs it)."""
    _read_sample_engines(tmp_path, range(3))
