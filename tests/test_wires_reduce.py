"""Wire resistance of long nets (signoff/wires.py) and reduced netlists for reads (signoff/reduce.py)."""
from __future__ import annotations

from collections import defaultdict

import klayout.db as kdb
import numpy as np
import pytest

from conftest import mlp_model, remove_via
from weightfab.errors import WeightfabError
from weightfab.signoff.characterize import Bench, macro_pins, read_chunks, simulate_reads, simulate_reads_reduced
from weightfab.signoff.parasitics import extract_with_caps
from weightfab.signoff.reduce import array_map, reduce_rows
from weightfab.signoff.spice import wire_rc
from weightfab.tech.pdk import load_pdk

PINS = ("met1_pin", "met2_pin")


def _macro(d, inputs: int, outputs: int):
    """A drawn SKY130 macro of an int8 layer: ``inputs`` wordlines x 8·``outputs`` bitlines."""
    from weightfab.flow.simulate import model_bits
    from weightfab.rom.geometry import RomGeometry
    from weightfab.rom.periphery.macro import build_macro
    from weightfab.rom.writer import macro_library
    pdk = load_pdk("sky130")
    model = mlp_model(d / "layer.onnx", sizes=(inputs, outputs), relu=False, softmax=False, seed=3)
    (name, bits), = model_bits(model, "int8", "optimized", None, pdk)
    geom = RomGeometry.from_pdk(pdk)
    macro = build_macro(geom, bits.shape[0], bits.shape[1], name)
    gds = d / "macro.gds"
    macro_library(macro, pdk, bits).write_gds(str(gds))
    return gds, bits, macro, geom


def _devices(netlist: kdb.Netlist, cls: str) -> list[kdb.Device]:
    return [d for d in netlist.top_circuit().each_device() if d.device_class().name == cls]


# -- wires: 16 wordlines x 64 bitlines, a 44 µm poly wordline ----------------------------------------
@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    gds, bits, macro, geom = _macro(tmp_path_factory.mktemp("wide"), 16, 8)
    assert bits.shape == (64, 16)
    pdk = load_pdk("sky130")
    flat = extract_with_caps(gds, pdk, macro.name, PINS, resistance=False)
    rc = extract_with_caps(gds, pdk, macro.name, PINS)
    return bits, geom, flat, rc, (gds, macro.name)


def test_wordline_ladder_resistance_and_nodes(wide):
    bits, geom, _, nl, _ = wide
    amap = array_map(nl.top_circuit())
    assert len(amap.rows) == bits.shape[1]
    pitch = geom.px * 1e-3                        # bitline pitch along the wordline, µm
    length = bits.shape[0] * pitch
    width = geom.c.gate_length * 1e-3
    expect = wire_rc("tt").r_poly * length / width          # 48.2 ohm/sq x 44.16 µm / 0.15 µm
    segments = int(np.ceil(length / (8 * pitch)))          # 8 bit pitches per segment
    for g in amap.wordlines:
        res = [d.parameter("R") for d in amap.wires.resistor_devices(g)]
        # the poly's end caps and pad lie beyond the 64 pitches: one more segment at most
        assert segments <= len(res) <= segments + 1, (g, len(res))
        assert len(amap.wires.members(g)) == len(res) + 1
        assert sum(res) == pytest.approx(expect, rel=0.05), (g, sum(res), expect)
        # every bit device's gate sits on the ladder node nearest to it (gates spread over the nodes)
        gate_nodes = {d.net_for_terminal(d.device_class().terminal_id("G")).expanded_name()
                      for d in amap.row_devices(amap.wordlines.index(g))}
        assert len(gate_nodes) >= segments


def test_ladder_shares_the_net_capacitance(wide):
    """The wire capacitance of a laddered net is spread over its nodes, its total unchanged; the
    devices are the same (only resistors added)."""
    _, _, flat, nl, _ = wide
    def caps_by_root(netlist):
        amap = array_map(netlist.top_circuit())
        total = defaultdict(float)
        for d in _devices(netlist, "CWIRE"):
            n = d.net_for_terminal(0)
            total[amap.wires.find(n.expanded_name())] += d.parameter("C")
        return amap, total
    a0, c0 = caps_by_root(flat)
    a1, c1 = caps_by_root(nl)
    assert len(_devices(flat, "RWIRE")) == 0 and len(_devices(nl, "RWIRE")) > 0
    for cls in ("NMOS", "PMOS", "PMOS_HVT"):
        assert len(_devices(flat, cls)) == len(_devices(nl, cls))
    # wordline k of the flat netlist is wordline k of the laddered one
    for g0, g1 in zip(a0.wordlines, a1.wordlines):
        assert c1[g1] == pytest.approx(c0[g0], rel=1e-9)
        assert c0[g0] > 1e-15
    assert sum(c1.values()) == pytest.approx(sum(c0.values()), rel=1e-9)


def test_short_nets_get_no_ladder(wide):
    """Nets shorter than ``min_length_um`` keep no ladder: none at all above the macro's size."""
    gds, cell = wide[4]
    nl = extract_with_caps(gds, load_pdk("sky130"), cell, PINS, min_length_um=1e4)
    assert not _devices(nl, "RWIRE")


# -- reduce: 32 wordlines x 16 bitlines, read on the flat and on the reduced netlist ------------------
@pytest.fixture(scope="module")
def tall(tmp_path_factory):
    d = tmp_path_factory.mktemp("tall")
    gds, bits, macro, geom = _macro(d, 32, 2)
    assert bits.shape == (16, 32) and 0 < bits.sum() < bits.size
    nl = extract_with_caps(gds, load_pdk("sky130"), macro.name, PINS)
    return gds, bits, macro, geom, nl, d


def test_reduction_keeps_the_read_rows_and_folds_the_others(tall):
    _, bits, _, _, nl, _ = tall
    ports = macro_pins(nl)
    stored = bits[ports.douts]
    rows = [5, 30]
    red = reduce_rows(nl, rows, bits=stored)
    others = [r for r in range(bits.shape[1]) if r not in rows]
    # every programmed bit of another row is folded into a multiplied load device, the 0s leave
    assert red.merged == int(bits[:, others].sum())
    nmos = lambda n: sum(1 for d in n.top_circuit().each_device() if d.device_class().name == "NMOS")  # noqa: E731
    folded = [d for d in red.netlist.top_circuit().each_device() if d.name.startswith("moff")]
    assert sum(int(d.property("m")) for d in folded) == red.merged
    assert nmos(red.netlist) == nmos(nl) - red.merged - int((1 - bits[:, others]).sum()) + len(folded)
    amap = array_map(red.netlist.top_circuit())
    assert len(amap.rows) == len(rows)                # only the read rows' wordlines gate bit devices
    assert [len(r) for r in amap.rows] == [len(array_map(nl.top_circuit()).rows[r]) for r in rows]


def test_decks_from_one_map_equal_fresh_reductions(tall):
    """The row-independent part (array_map: sections, folded loads) is found once per netlist; a deck
    reduced from the shared map after another deck is the one reduced from a fresh map, and the
    folded loads differ between decks only by the rows read."""
    from weightfab.signoff.spice import write_spice
    _, bits, _, _, nl, _ = tall
    amap = array_map(nl.top_circuit())
    first = reduce_rows(nl, [5, 30], amap=amap)
    second = reduce_rows(nl, [0, 7, 8], amap=amap)
    for got, rows in ((first, [5, 30]), (second, [0, 7, 8])):
        assert write_spice(got.netlist) == write_spice(reduce_rows(nl, rows).netlist)
    stored = bits[macro_pins(nl).douts]
    assert first.merged - second.merged == int(stored[:, [0, 7, 8]].sum() - stored[:, [5, 30]].sum())


def test_wrong_words_are_refused(tall):
    _, bits, _, _, nl, _ = tall
    stored = bits[macro_pins(nl).douts].copy()
    stored[0, 7] ^= 1
    with pytest.raises(WeightfabError, match="wordline 7: "):
        reduce_rows(nl, [0], bits=stored)
    with pytest.raises(WeightfabError, match="row 32 out of range"):
        reduce_rows(nl, [32])


@pytest.mark.slow
def test_reduced_reads_as_the_flat_netlist(tall):
    """Measured (tt): access 0.949 / 1.018 ns flat, 0.945 / 1.004 ns reduced; energy 1.95 / 2.28 pJ flat,
    1.94 / 2.25 pJ reduced; 1,790 -> 1,009 devices."""
    _, bits, _, _, nl, _ = tall
    ports = macro_pins(nl)
    addr = np.array([30, 3])                                  # the far wordline, then a near one
    exp = bits[ports.douts][:, addr].T
    flat = simulate_reads(nl, addr, exp, "tt", Bench())
    red = reduce_rows(nl, addr, bits=bits[ports.douts])
    small = simulate_reads(red.netlist, addr, exp, "tt", Bench())
    assert flat.ok and small.ok
    assert red.devices_after < 0.75 * red.devices_before
    np.testing.assert_allclose(small.access, flat.access, rtol=0.10)
    np.testing.assert_allclose(small.energy, flat.energy, rtol=0.10)


def test_removed_via_flips_that_bit_on_the_reduced_netlist(tall):
    gds, bits, macro, geom, _, d = tall
    ones = np.argwhere(bits[:, 16:] == 1) + [0, 16]
    col, row = map(int, ones[len(ones) // 2])
    sx, sy = geom.site_xy(np.array([col]), np.array([row]), macro.taps)
    cut = d / "cut.gds"
    remove_via(gds, cut, macro.name, int(sx[0]), int(sy[0]))
    nl = extract_with_caps(cut, load_pdk("sky130"), macro.name, PINS)
    ports = macro_pins(nl)
    addr = np.array([row, (row + 1) % bits.shape[1]])
    res = simulate_reads_reduced(nl, addr, bits[ports.douts][:, addr].T, "tt", Bench(), rows_per_deck=2)
    assert res.extra["reduced_decks"] == 1 and res.devices < res.extra["netlist_devices"]
    assert res.errors == [(0, row, ports.douts.index(col), 0)]


def test_reads_cut_into_decks_of_distinct_addresses():
    chunks = read_chunks(np.array([4, 4, 7, 1, 7, 9, 1, 2]), 2)
    assert [c.tolist() for c in chunks] == [[0, 1, 2], [3, 4], [5, 6], [7]]


def test_rows_per_deck_must_be_positive(tall):
    from conftest import run_cli, one_line_error
    gds, _, _, _, _, d = tall
    r = run_cli("simulate", gds, "--model", d / "layer.onnx", "--reduced", "--rows-per-deck", 0)
    one_line_error(r, "--rows-per-deck must be at least 1, not 0")


# -- hierarchical extraction (extract.py): flattened in one pass -----------------------------------
def test_flatten_equals_klayouts_and_the_flat_extraction(wide):
    """The macro extracted hierarchically (each distinct cell once) and flattened by extract.flatten
    is the netlist KLayout's own Netlist.flatten gives, and the one a flat extraction of the same
    cell gives (NetlistComparer: same devices with the same W/L, same nets)."""
    from weightfab.signoff.drc import read_layout
    from weightfab.signoff.extract import extract_cell, extract_netlist, flatten
    gds, cell = wide[4]
    pdk = load_pdk("sky130")
    layout, _ = read_layout(gds)
    c = layout.cell(cell)
    ex = extract_cell(layout, c, pdk, PINS)
    assert sum(1 for _ in ex.netlist.top_circuit().each_subcircuit()) > 0       # it is hierarchical
    ours, nets, _ = flatten(ex.netlist)
    theirs = ex.netlist.dup()
    theirs.flatten()
    b = c.dbbox()
    flat = extract_netlist(gds, pdk, cell, (b.left - 1, b.bottom - 1, b.right + 1, b.top + 1), PINS)   # a box: flat
    n = sum(1 for _ in ours.top_circuit().each_device())
    assert n == sum(1 for _ in theirs.top_circuit().each_device()) == sum(1 for _ in flat.top_circuit().each_device()) > 1000
    for other in (theirs, flat):
        assert kdb.NetlistComparer().compare(ours, other), "flattened netlist differs"
    assert all(nets[k].cluster_id == k for k in list(nets)[:50])
