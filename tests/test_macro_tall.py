"""Macros over 1024 wordlines: the row decoders take up to 12 address bits (4096 wordlines) on
every PDK, and the tall periphery keeps its diffusion within the PDK's tap distance (SKY130's
12-bit channel under the array; the GF180MCU/SG13G2 decoder rows' long NMOS chains, tapped by a
strip between rows along the chain)."""
from __future__ import annotations

import numpy as np
import pytest

from weightfab.errors import WeightfabError
from weightfab.rom.geometry import RomGeometry
from weightfab.rom.periphery.generic import build_generic_macro, generic_logic
from weightfab.rom.periphery.logic import logic
from weightfab.rom.periphery.clock import read_period
from weightfab.rom.periphery.macro import build_macro, build_macros, figures
from weightfab.rom.writer import macro_library
from weightfab.signoff.drc import run_drc
from weightfab.tech.pdk import load_pdk

TAP_RULE = {"sky130": "latchup.15", "gf180mcu": "DF.14", "ihp-sg13g2": "LU.b"}


def _build(name: str, cols: int, rows: int):
    pdk = load_pdk(name)
    geom = RomGeometry.from_pdk(pdk)
    m = build_macro(geom, cols, rows, "e0") if name == "sky130" else build_generic_macro(pdk, geom, cols, rows, "e0")
    return pdk, m


def _write(tmp_path, pdk, m):
    bits = np.random.default_rng(5).integers(0, 2, (m.cols, m.rows)).astype(np.uint8)
    path = tmp_path / "m.gds"
    macro_library(m, pdk, bits).write_gds(str(path))
    return path, bits


def test_decoders_take_twelve_address_bits():
    assert logic(4096, "e").n == generic_logic(4096).n == 12
    assert logic(2049, "e").n == generic_logic(2049).n == 12
    lg = logic(4096, "e")
    assert len(lg.C) == 64 + 64                     # group lines: 6 + 6 bits
    assert {lg.wl_inputs(w) for w in range(4096)} == {(f"p0[{a}]", f"p1[{b}]") for a in range(64) for b in range(64)}
    for f in (lambda r: logic(r, "e"), generic_logic):
        with pytest.raises(WeightfabError, match="at most 4096 wordlines"):
            f(4097)


def test_over_4096_wordlines_get_no_macro_and_say_why():
    pdk = load_pdk("gf180mcu")
    macros, why = build_macros([(8, 4100), (8, 16)], ["big", "small"], pdk, RomGeometry.from_pdk(pdk))
    assert macros[0] is None and "4100 wordlines" in why[0] and "4096" in why[0]
    assert macros[1] is not None and why[1] == ""


@pytest.mark.parametrize("name,rows", [("sky130", 4096), ("gf180mcu", 2050), ("ihp-sg13g2", 2050)])
def test_twelve_bit_macro_keeps_the_tap_distance(tmp_path, name, rows):
    """The deepest SKY130 channel (4096 wordlines: 97 tracks) and the longest generic decoder chain
    (12 bits; without the strip between rows GF180MCU gives 1049 DF.14 markers here)."""
    pdk, m = _build(name, 4, rows)
    assert m.logic.n == 12
    path, _ = _write(tmp_path, pdk, m)
    rep = run_drc(path, pdk, rules=[TAP_RULE[name]])
    assert [r.count for r in rep.rules] == [0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sky130", "gf180mcu", "ihp-sg13g2"])
def test_twelve_bit_macro_is_lvs_clean(tmp_path, name):
    """A 2050 x 4 macro (12 address bits) matches its circuit (sky130: 26,180 devices, 4.5 s CPU;
    gf180mcu: 26,878 devices, 9.3 s CPU). The whole deck is run on compiled tall macros from the
    command line (weightfab drc --full), not here: on a 2050-row SKY130 macro written flat it ran
    over 7 CPU-minutes."""
    from weightfab.signoff.genlvs import lvs_generic
    from weightfab.signoff.lvs import lvs_macro
    pdk, m = _build(name, 4, 2050)
    path, bits = _write(tmp_path, pdk, m)
    r = (lvs_macro if name == "sky130" else lvs_generic)(path, pdk, m, bits)
    assert r.ok, r.differences[:5]
    assert r.devices_layout == r.devices_reference > int(bits.sum())


def test_read_period_grows_with_the_bitlines():
    """10 ns up to 512 wordlines (the small macros' figures unchanged), then doubled per doubling:
    bench_spice read 1024 wordlines only at 20 ns, 4096 in 14.5 ns at 40 ns."""
    assert [read_period(r) * 1e9 for r in (1, 16, 512, 513, 1024, 1025, 2048, 4096)] == \
        pytest.approx([10, 10, 10, 20, 20, 40, 40, 80])
    for name, rows in (("sky130", 64), ("sky130", 4096), ("gf180mcu", 1100)):
        pdk, m = _build(name, 4, rows)
        f = figures(m, "", pdk.dbu_um)
        assert f["read_period_ns"] == pytest.approx(read_period(rows) * 1e9) and f["address_bits"] == m.logic.n
