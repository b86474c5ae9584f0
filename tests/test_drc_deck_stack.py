"""The rules of the upper via stack (every built-in PDK's layers above its default bitline metal,
drawn when the programming layer is an upper via), rule by rule: a small drawn layout is DRC
clean (every rule of the deck silent) at the rule's value and, one grid step on the wrong side,
fires the rule; gross cases (a via sticking out of its metal, an exact-size via one step too
large) fire it too. tests/test_decks.py covers the other rules.

A case is drawn from the rule's kind and the PDK's [stack] (which metals a via joins): widths and
spacings as bars long enough for the area rule; areas as a minimum-width bar of the boundary
height; vias always with both their metals around them, enclosed generously except on the side
being measured.
"""
from __future__ import annotations

import math

import klayout.db as kdb
import pytest

from weightfab.signoff.drc import run_drc
from weightfab.tech.pdk import Rule, list_pdks, load_pdk
from weightfab.rom.viastack import upper_rules

PDKS = {n: load_pdk(n) for n in list_pdks()}


def _grid(p, v: float) -> float:
    """v rounded up to the PDK's grid."""
    g = p.grid_um
    return round(math.ceil(round(v / g, 6)) * g, 6)


def _value(p, kind: str, layer: str, other: str = "") -> float:
    return next((r.value for r in p.rules if r.kind == kind and r.layer == layer and r.other == other), 0.0)


def _metal_side(p, metal: str) -> float:
    """A square side that meets the metal's width and area rules with room to spare."""
    return _grid(p, max(_value(p, "width", metal), math.sqrt(_value(p, "area", metal))) + 0.2)


def _via_with_metals(p, via: str, size: float | None = None, margins: dict | None = None, x: float = 0.0):
    """A via (its exact size, or ``size``) at (x, 0) with the metal below and above it. ``margins``:
    metal -> (left, bottom, right, top) enclosure, None (and unspecified metals) generous."""
    i = p.stack.index(via)
    s = _value(p, "exact_size", via) if size is None else size
    rects = [(via, x, 0.0, x + s, s)]
    for metal in (p.stack[i - 1], p.stack[i + 1]):
        side = _metal_side(p, metal)
        big = _grid(p, max((side - s) / 2, _value(p, "enclosure_adjacent", metal, via) + 0.1,
                           _value(p, "enclosure", metal, via) + 0.1))
        l, b, r, t = (big if v is None else v for v in (margins or {}).get(metal, (None,) * 4))
        r, t = max(r, big, side - s - l), max(t, big, side - s - b)  # the far sides keep width and area
        rects.append((metal, x - l, -b, x + s + r, s + t))
    return rects


def draw(p, rule: Rule, d: float):
    """The case of ``rule`` with its critical dimension d (µm)."""
    k, m = rule.kind, rule.layer
    long = lambda w: _grid(p, max(2.0, _value(p, "area", m) / max(w, 1e-3) + 0.5))  # noqa: E731
    if k == "width":
        return [(m, 0.0, 0.0, d, long(d))]
    if k == "spacing" and m in p.stack[1::2]:           # a via: two of them on shared metals
        two = _via_with_metals(p, m) + _via_with_metals(p, m, x=_value(p, "exact_size", m) + d)
        vias = [r for r in two if r[0] == m]
        bars = {}
        for layer, *box in (r for r in two if r[0] != m):
            b0 = bars.get(layer, box)
            bars[layer] = [min(b0[0], box[0]), min(b0[1], box[1]), max(b0[2], box[2]), max(b0[3], box[3])]
        return vias + [(layer, *box) for layer, box in bars.items()]
    if k == "spacing":
        w = _grid(p, 2 * _value(p, "width", m))
        return [(m, 0.0, 0.0, w, long(w)), (m, w + d, 0.0, 2 * w + d, long(w))]
    if k == "area":
        w = _value(p, "width", m)
        return [(m, 0.0, 0.0, w, d)]
    if k == "exact_size":
        return _via_with_metals(p, m, size=d)
    if k == "enclosure":                                # the left margin is d, the others generous
        return _via_with_metals(p, rule.other, margins={m: (d, None, None, None)})
    if k == "enclosure_adjacent":                       # left at the all-sides minimum, bottom d
        enc = _value(p, "enclosure", m, rule.other)
        return _via_with_metals(p, rule.other, margins={m: (enc, d, None, None)})
    raise AssertionError(f"no case for kind {k}")


def legal(p, rule: Rule) -> float:
    if rule.kind == "area":                             # the height of a minimum-width bar of that area
        return _grid(p, rule.value / _value(p, "width", rule.layer))
    return rule.value


PITCH = 40.0   # µm between cases: far beyond every rule's reach, so one DRC run checks them all


def drc_slots(p, tmp_path, cases, name):
    """One layout with case i's rectangles moved to x = i * PITCH; one DRC run. Returns, per case,
    the rules whose markers lie in its slot."""
    ly = kdb.Layout()
    ly.dbu = p.dbu_um
    top = ly.create_cell("TOP")
    for i, rects in enumerate(cases):
        for layer, x0, y0, x1, y1 in rects:
            assert x0 < x1 and y0 < y1, (layer, x0, y0, x1, y1)
            for v in (x0, y0, x1, y1):
                assert abs(v / p.grid_um - round(v / p.grid_um)) < 1e-6, (layer, v)
            top.shapes(ly.layer(*p.gds(layer))).insert(kdb.DBox(x0 + i * PITCH, y0, x1 + i * PITCH, y1))
    path = tmp_path / f"{name}.gds"
    ly.write(str(path))
    hits = [set() for _ in cases]
    for r in run_drc(path, p, max_examples=100_000).failing():
        assert len(r.examples) == r.count or r.count > 100_000
        for x, _ in r.examples:
            hits[int((x + PITCH / 2) // PITCH)].add(r.name)
    return hits


def off_values(p, rule: Rule) -> list[float]:
    d, step = legal(p, rule), p.grid_um
    offs = [round(d - step, 6)] + ([round(d + step, 6)] if rule.kind == "exact_size" else [])
    return offs + ([-0.05] if rule.kind == "enclosure" else [])   # -0.05: the via sticks out of the metal


def test_every_pdk_has_upper_rules_for_each_stack_layer():
    for name, p in PDKS.items():
        covered = {r.layer for r in upper_rules(p)} | {r.other for r in upper_rules(p)}
        assert set(p.stack[3:]) <= covered, f"{name}: stack layers without a rule: {set(p.stack[3:]) - covered}"
        kinds = {r.kind for r in upper_rules(p)}
        assert {"width", "spacing", "exact_size", "enclosure"} <= kinds, (name, kinds)


@pytest.mark.parametrize("name", list(PDKS))
def test_clean_at_the_value(name, tmp_path):
    p = PDKS[name]
    rules = upper_rules(p)
    hits = drc_slots(p, tmp_path, [draw(p, r, legal(p, r)) for r in rules], "legal")
    bad = {r.name: sorted(h) for r, h in zip(rules, hits) if h}
    assert not bad, f"{name}: cases drawn at the rule's value are flagged (case: rules fired): {bad}"


@pytest.mark.parametrize("name", list(PDKS))
def test_fires_one_step_off(name, tmp_path):
    p = PDKS[name]
    cases = [(r, v) for r in upper_rules(p) for v in off_values(p, r)]
    hits = drc_slots(p, tmp_path, [draw(p, r, v) for r, v in cases], "off")
    missed = [(r.name, v, sorted(h)) for (r, v), h in zip(cases, hits) if r.name not in h]
    assert not missed, f"{name}: rules not flagged one step past their value (rule, d, fired): {missed}"
