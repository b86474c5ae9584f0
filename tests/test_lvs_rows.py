"""LVS of macros with few bitlines and many wordlines: rows holding the same bits are told apart
by their decode alone. Each wordline is named at its pad, so the comparison does not search
among alike rows (a 64 x 4 SKY130 macro used to run for minutes) and a wordline decoded for
another row is a mismatch even where both rows hold the same bits."""
from __future__ import annotations

import klayout.db as kdb
import numpy as np

from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery.macro import build_macro
from weightfab.rom.writer import macro_library, write_library
from weightfab.signoff import lvs
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
GEOM = RomGeometry.from_pdk(PDK)


def _repeating(cols: int, rows: int) -> np.ndarray:
    """Wordline w holds the bits of w mod 2**cols: every pattern on rows // 2**cols rows."""
    w = np.arange(rows)
    return ((w[None, :] >> np.arange(cols)[:, None]) & 1).astype(np.uint8)


def _macro(tmp_path, cols: int, rows: int):
    m = build_macro(GEOM, cols, rows, "e0")
    bits = _repeating(cols, rows)
    path = tmp_path / "m.gds"
    write_library(macro_library(m, PDK, bits), path)
    return m, bits, path


def test_alike_rows_match(tmp_path):
    m, bits, path = _macro(tmp_path, 4, 256)
    assert len({tuple(c) for c in bits.T}) == 16
    r = lvs.lvs_macro(path, PDK, m, bits)
    assert r.ok, r.differences[:5]
    assert r.devices_layout == r.devices_reference > bits.size and r.nets_layout == r.nets_reference


def test_wordline_of_another_row_fails(tmp_path, monkeypatch):
    """Rows 0 and 16 hold the same bits: with their pads' names swapped (as a decoder wired to the
    wrong row would look) the macro no longer matches."""
    m, bits, path = _macro(tmp_path, 4, 64)
    assert (bits[:, 0] == bits[:, 16]).all()
    assert lvs.lvs_macro(path, PDK, m, bits).ok
    probes = lvs.wordline_probes

    def swapped(macro, geom):
        p = probes(macro, geom)
        p["wl[0]"], p["wl[16]"] = p["wl[16]"], p["wl[0]"]
        return p

    monkeypatch.setattr(lvs, "wordline_probes", swapped)
    r = lvs.lvs_macro(path, PDK, m, bits)
    assert not r.ok and any("wlb[" in d for d in r.differences), r.differences[:5]


def test_lone_nets_join_into_one():
    """The one-terminal nets (0-bit drains) of both sides become one net FLOAT, the others stay."""
    nl = kdb.Netlist()
    dc = kdb.DeviceClassMOS3Transistor()
    dc.name = "NMOS"
    nl.add(dc)
    c = kdb.Circuit()
    c.name = "T"
    nl.add(c)
    vss, wl = c.create_net("VSS"), c.create_net("wl")
    n = 3000
    for k in range(n):
        d = c.create_device(dc)
        d.connect_terminal("D", c.create_net(f"d{k}"))
        d.connect_terminal("G", wl)
        d.connect_terminal("S", vss)
    lvs._join_floating(c)
    names = sorted(x.name for x in c.each_net())
    assert names == ["FLOAT", "VSS", "wl"]
    assert c.net_by_name("FLOAT").terminal_count() == n == c.net_by_name("VSS").terminal_count()
