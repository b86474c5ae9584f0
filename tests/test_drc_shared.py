"""Work shared between rules (signoff/drc.py): an enclosure rule and its adjacent-sides twin read
the same inner-outside-outer region once per checking mode, and their results equal each rule
run on its own (the check written out here, against fresh regions)."""
from __future__ import annotations

import klayout.db as kdb
import pytest

from weightfab.signoff.drc import _check, _Layers, rule_result
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
RULES = {r.name: r for r in PDK.rules}


def _layout():
    """met1 over mcon in a cell placed three times: contacts enclosed, flush, short on two adjacent
    sides, and one sticking out; plus loose contacts at the top level (one outside any met1, one flush)."""
    ly = kdb.Layout()
    ly.dbu = PDK.dbu_um
    m1, ct = (ly.layer(*PDK.gds(n)) for n in ("met1", "mcon"))
    cell, top = ly.create_cell("C"), ly.create_cell("TOP")
    um = lambda *v: kdb.Box(*(round(x / ly.dbu) for x in v))
    cell.shapes(m1).insert(um(0, 0, 3, 0.5))
    for x0, y0 in [(0.1, 0.17), (0.8, 0.16), (1.5, 0.0), (2.2, 0.02), (2.9, 0.2)]:
        cell.shapes(ct).insert(um(x0, y0, x0 + 0.17, y0 + 0.17))
    for dx in (0, 4, 8):
        top.insert(kdb.CellInstArray(cell.cell_index(), kdb.Trans(round(dx / ly.dbu), 0)))
    top.shapes(ct).insert(um(20, 0, 20.17, 0.17))
    top.shapes(m1).insert(um(30, 0, 30.5, 0.5))
    top.shapes(ct).insert(um(30.33, 0.04, 30.5, 0.21))
    return ly, top


def _alone(name: str, flat: bool) -> list[int]:
    """The rule's collections' counts with every region built afresh (no sharing)."""
    ly, top = _layout()
    L = _Layers(ly, top, PDK)
    L.flat = flat
    return [c.count() for c in _check(RULES[name], L, ly.dbu)]


@pytest.mark.parametrize("flat", [False, True])
def test_enclosure_pair_shares_outside_region(flat):
    ly, top = _layout()
    L = _Layers(ly, top, PDK)
    L.flat = flat
    a, b = _check(RULES["m1.4"], L, ly.dbu), _check(RULES["m1.5"], L, ly.dbu)
    assert a[-1] is b[-1]   # one `mcon - met1` for both rules
    assert a[-1].is_deep() != flat
    outer, inner = L["met1"], L["mcon"]
    assert a[-1].count() == (inner - outer).count() == 4   # three placed stick-outs, one loose
    assert [c.count() for c in a] == _alone("m1.4", flat)
    assert [c.count() for c in b] == _alone("m1.5", flat)
    assert rule_result(RULES["m1.5"], b, ly.dbu, 3, {}).count == sum(_alone("m1.5", flat)) > 4


def test_modes_keep_their_own_outside_region():
    ly, top = _layout()
    L = _Layers(ly, top, PDK)
    deep = L.outside("mcon", "met1")
    L.flat = True
    flat = L.outside("mcon", "met1")
    assert deep.is_deep() and not flat.is_deep() and deep.count() == flat.count() == 4
    assert L.outside("mcon", "met1") is flat
