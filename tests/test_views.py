"""Integration views: Verilog run in Icarus Verilog, LEF read back by KLayout, same-shape models."""
from __future__ import annotations

import shutil
import subprocess

import klayout.db as kdb
import numpy as np
import pytest

from conftest import mlp_model, run_cli
from weightfab.frontend.onnx_import import load_onnx
from weightfab.quant.quantize import quantize
from weightfab.tech.pdk import load_pdk

ROWS, OUTS = 12, 3           # 12 wordlines (4 address bits), 3 int8 outputs = 24 bitlines


def _model(d, seed):
    d.mkdir(parents=True, exist_ok=True)
    m = mlp_model(d / "m.onnx", sizes=(ROWS, OUTS), relu=False, softmax=False, seed=seed)
    np.savez(d / "m.calib.npz", x=np.random.default_rng(0).normal(size=(20, ROWS)).astype(np.float32))
    return m


@pytest.fixture(scope="module")
def two_chips(tmp_path_factory):
    out = []
    root = tmp_path_factory.mktemp("views")
    for seed in (5, 6):
        d = root / f"s{seed}"
        model = _model(d, seed)
        gds = d / "chip.gds"
        r = run_cli("compile", model, "-o", gds, "--no-drc")
        assert r.returncode == 0, r.stderr
        r = run_cli("views", gds, "--model", model, "-o", d / "views", "--no-liberty")
        assert r.returncode == 0, r.stdout + r.stderr
        out.append((model, gds, d / "views"))
    return out


def _weights(model):
    net = load_onnx(model)
    calib = np.load(model.with_suffix(".calib.npz"))["x"]
    return quantize(net, calib, "int8").layers[0].weight      # [outputs, inputs]


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Debian package iverilog not installed")
def test_verilog_reads_every_address(two_chips, tmp_path):
    model, _, views = two_chips[0]
    v = next(views.glob("*_macro.v"))
    prefix = v.name[:-len("_macro.v")]
    tb = tmp_path / "tb.v"
    tb.write_text(f"""`timescale 1ns/1ps
module tb;
  reg clk = 0, en = 1; reg [3:0] addr = 0; wire [23:0] dout; integer a;
  {prefix}_macro dut (.{prefix}_addr(addr), .{prefix}_clk(clk), .{prefix}_en(en), .{prefix}_dout(dout));
  initial begin
    for (a = 0; a < 16; a = a + 1) begin
      addr = a; #5 clk = 1; #4 $display("%0d %h", a, dout); #1 clk = 0; #1 if (dout !== 0) $display("nonzero");
      #4;
    end
    $finish;
  end
endmodule
""")
    exe = tmp_path / "sim"
    subprocess.run(["iverilog", "-o", str(exe), str(tb), str(v)], check=True, capture_output=True)
    out = subprocess.run(["vvp", str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert "nonzero" not in out
    words = {int(a): int(h, 16) for a, h in zip(out[0::2], out[1::2])}
    assert sorted(words) == list(range(16))
    w = _weights(model)
    for addr in range(16):
        for n in range(OUTS):
            byte = (words[addr] >> (8 * n)) & 0xFF
            got = byte - 256 if byte >= 128 else byte
            assert got == (w[n, addr] if addr < ROWS else 0), (addr, n)


def test_lef_read_back_by_klayout(two_chips):
    _, gds, views = two_chips[0]
    lef = next(views.glob("*_macro.lef"))
    cell_name = lef.name[:-4]
    ll = kdb.Layout()
    ll.read(str(lef))
    lc = ll.cell(cell_name)
    assert lc is not None
    g = kdb.Layout()
    g.read(str(gds))
    gc = g.cell(cell_name)
    pdk = load_pdk("sky130")
    bnd = g.find_layer(*pdk.gds("boundary"))
    box = kdb.Region(gc.begin_shapes_rec(bnd)).bbox() if bnd is not None and not kdb.Region(gc.begin_shapes_rec(bnd)).is_empty() else gc.bbox()
    outline = next(li for li in ll.layer_indexes() if ll.get_info(li).name == "OUTLINE")
    ob = kdb.Region(lc.begin_shapes_rec(outline)).bbox()
    assert (ob.width(), ob.height()) == (box.width(), box.height())      # SIZE is the GDS boundary
    # every LEF pin shape, moved back by the FOREIGN offset, lies on the GDS pin shape with that label
    shift = kdb.Trans(box.left, box.bottom)
    gds_pins = {}
    for lname in ("met1_pin", "met2_pin"):
        idx = g.find_layer(*pdk.gds(lname))
        shapes = kdb.Region(gc.shapes(idx))
        for s in gc.shapes(idx).each(kdb.Shapes.STexts):
            p = kdb.Point(s.text.x, s.text.y)
            gds_pins[s.text.string] = (lname.split("_")[0], p, shapes.interacting(kdb.Region(kdb.Box(p, p).enlarged(1))))
    found = set()
    for li in ll.layer_indexes():
        info = ll.get_info(li)
        if not info.name.endswith(".LABEL"):
            continue
        pin_layer = ll.find_layer(info.name.replace(".LABEL", ".PIN"))
        pins = kdb.Region(lc.shapes(pin_layer)).transformed(shift)
        for t in lc.shapes(li).each(kdb.Shapes.STexts):
            name = t.text.string
            layer, p, gshapes = gds_pins[name]
            assert info.name.startswith(layer)
            mine = pins.interacting(kdb.Region(kdb.Box(t.text.x + shift.disp.x, t.text.y + shift.disp.y,
                                                       t.text.x + shift.disp.x, t.text.y + shift.disp.y).enlarged(1)))
            assert not mine.is_empty() and (mine - gshapes).is_empty(), name
            assert not (mine & kdb.Region(kdb.Box(p, p).enlarged(1))).is_empty(), name    # on the GDS label
            found.add(name)
    assert found == set(gds_pins)
    text = lef.read_text()
    assert "CLASS BLOCK ;" in text and "USE POWER ;" in text and "USE GROUND ;" in text and "USE CLOCK ;" in text


def test_same_shape_models_differ_only_in_stored_words(two_chips):
    (_, _, a), (_, _, b) = two_chips
    la, lb = next(a.glob("*.lef")), next(b.glob("*.lef"))
    assert la.read_bytes() == lb.read_bytes()
    va = next(a.glob("*_macro.v")).read_text().splitlines()
    vb = next(b.glob("*_macro.v")).read_text().splitlines()
    assert [x for x in va if not x.startswith("    mem[")] == [x for x in vb if not x.startswith("    mem[")]
    assert [x for x in va if x.startswith("    mem[")] != [x for x in vb if x.startswith("    mem[")]


REG_LIB = """library (testreg) {
  delay_model : table_lookup; time_unit : "1ns"; voltage_unit : "1V"; current_unit : "1mA";
  capacitive_load_unit (1, pf); pulling_resistance_unit : "1kohm"; leakage_power_unit : "1nW";
  input_threshold_pct_rise : 50; input_threshold_pct_fall : 50; output_threshold_pct_rise : 50;
  output_threshold_pct_fall : 50; slew_lower_threshold_pct_rise : 10; slew_upper_threshold_pct_rise : 90;
  slew_lower_threshold_pct_fall : 10; slew_upper_threshold_pct_fall : 90;
  cell (testreg) {
    ff (IQ, IQN) { clocked_on : "CK"; next_state : "D"; }
    pin (CK) { direction : input; clock : true; capacitance : 0.002; }
    pin (D) { direction : input; capacitance : 0.01;
      timing () { related_pin : "CK"; timing_type : setup_rising;
        rise_constraint (scalar) { values ("0.05"); } fall_constraint (scalar) { values ("0.05"); } } }
    pin (Q) { direction : output; function : "IQ";
      timing () { related_pin : "CK"; timing_type : rising_edge;
        cell_rise (scalar) { values ("0.1"); } cell_fall (scalar) { values ("0.1"); }
        rise_transition (scalar) { values ("0.05"); } fall_transition (scalar) { values ("0.05"); } } }
  }
}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("sta") is None, reason="Debian package opensta not installed")
def test_liberty_timed_by_opensta(two_chips, tmp_path):
    """The tt Liberty of a drawn macro, characterised in ngspice, parsed by yosys and OpenSTA; a
    register capturing dout[0] (its D pin is the table's middle load, the clock the middle slew)
    sees the clock-to-output delay the characterisation measured."""
    import json
    model, gds, _ = two_chips[0]
    out = tmp_path / "views"
    r = run_cli("views", gds, "--model", model, "-o", out, "--corner", "tt")
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads((out / "views.json").read_text())["engines"][0]
    tco = info["liberty"]["tco_ns"]["tt"]
    assert 0.05 < tco < 5
    lib = next(out.glob("*_macro.tt.lib"))
    cell = lib.name.split(".")[0]
    prefix = cell[:-len("_macro")]
    if shutil.which("yosys"):
        y = subprocess.run(["yosys", "-q", "-p", f"read_liberty -lib {lib}"], capture_output=True, text=True)
        assert y.returncode == 0, y.stderr
    (tmp_path / "reg.lib").write_text(REG_LIB)
    (tmp_path / "top.v").write_text(f"""module top (input clk, input [3:0] a, output q);
  wire [23:0] d;
  {cell} u0 (.{prefix}_addr(a), .{prefix}_clk(clk), .{prefix}_en(1'b1), .{prefix}_dout(d));
  testreg r0 (.CK(clk), .D(d[0]), .Q(q));
endmodule
""")
    (tmp_path / "t.tcl").write_text(f"""read_liberty {lib}
read_liberty {tmp_path / 'reg.lib'}
read_verilog {tmp_path / 'top.v'}
link_design top
create_clock -name clk -period 20 [get_ports clk]
set_clock_transition 0.2 [get_clocks clk]
set_input_delay 0 -clock clk [get_ports a*]
report_checks -to r0/D -digits 5
""")
    s = subprocess.run(["sta", "-no_splash", "-exit", str(tmp_path / "t.tcl")], capture_output=True, text=True, timeout=120)
    assert s.returncode == 0, s.stdout + s.stderr
    import re
    m = re.search(r"([\d.]+)\s+data arrival time", s.stdout)
    assert m, s.stdout
    assert float(m.group(1)) == pytest.approx(tco, abs=2e-4)


@pytest.mark.parametrize("pdk, pin_layer, nmos", [("ihp-sg13g2", "metal2_pin", "sg13_lv_nmos"),
                                                  ("gf180mcu", "metal2_label", "nfet_03v3")])
def test_views_of_rule_drawn_macros(pdk, pin_layer, nmos, tmp_path):
    """GF180MCU and SG13G2 macros get LEF (pins from the PDK's pin/label layer), Verilog and both SPICE
    netlists with the PDK's device names; no Liberty (no device models in this flow), said so."""
    model = _model(tmp_path, 5)
    gds = tmp_path / "chip.gds"
    r = run_cli("compile", model, "-o", gds, "--pdk", pdk, "--no-drc")
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "views"
    r = run_cli("views", gds, "--model", model, "--pdk", pdk, "-o", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"no Liberty on {pdk}" in r.stdout and not list(out.glob("*.lib"))
    lef = next(out.glob("*_macro.lef"))
    cell = lef.name[:-4]
    g = kdb.Layout()
    g.read(str(gds))
    idx = g.find_layer(*load_pdk(pdk).gds(pin_layer))
    labels = {s.text.string for s in g.cell(cell).shapes(idx).each(kdb.Shapes.STexts)}
    text = lef.read_text()
    lef_pins = {line.split()[1] for line in text.splitlines() if line.startswith("  PIN ")}
    assert labels and lef_pins == labels
    assert "LAYER Metal2 ;" in text and "USE CLOCK ;" in text and "USE GROUND ;" in text
    ext, ref = (out / f"{cell}.{k}.spice" for k in ("extracted", "reference"))
    count = [sum(1 for line in p.read_text().splitlines() if line.startswith("X")) for p in (ext, ref)]
    assert count[0] == count[1] > ROWS * OUTS * 8 and f" {nmos} " in ext.read_text()
    assert "[3:0]" in (out / f"{cell}.v").read_text()        # 12 wordlines: 4 address bits
