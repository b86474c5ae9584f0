"""Every built-in PDK's rule deck is tested, not trusted, by one test over per-PDK case tables
(tests/decks/<pdk>.py, shape in tests/decks/common.py): every rule of the deck has a case (a rule
added without one fails); at the legal value the case is DRC clean (the whole deck silent, or for
SKY130, whose cases draw contacts without every cover, the case's rule silent); one grid
step on the wrong side (both for an exact size; a maximum such as a tap distance one step past
it), and at every further value and gross layout, the rule fires (exactly the
listed set where the table pins it). The upper via stacks' rules are generated from their kinds in
tests/test_drc_deck_stack.py; SKY130's hard cases, reference engine and marker database are in
tests/test_drc_sky130.py.
"""
from __future__ import annotations

import dataclasses

import pytest

from decks import gf180mcu, ihp_sg13g2, sky130
from decks.common import drc, fired
from weightfab.rom.viastack import upper_rules
from weightfab.tech.pdk import RULE_KINDS, load_pdk

MODULES = {m.PDK_NAME: m for m in (sky130, gf180mcu, ihp_sg13g2)}
TABLES = {name: m.CASES for name, m in MODULES.items()}
PDKS = {name: load_pdk(name) for name in TABLES}


def base_rules(pdk):
    """The deck's rules but the upper via stack's (test_drc_deck_stack.py)."""
    return [r for r in pdk.rules if r not in upper_rules(pdk)]


def deck_for(pdk, rule):
    """The deck a rule's case is checked with: a case draws a test structure, not a chip, and holds
    no substrate tap, so the tap-distance rules (kind max_distance) are left out but for the one
    whose case it is."""
    return dataclasses.replace(pdk, rules=tuple(r for r in pdk.rules if r.kind != "max_distance" or r == rule))


RULES = [pytest.param(name, r, id=f"{name}:{r.name}") for name, p in PDKS.items() for r in base_rules(p)]


@pytest.mark.parametrize("name", TABLES)
def test_every_rule_has_a_case(name):
    rules = {r.name for r in base_rules(PDKS[name])}
    missing = sorted(rules - set(TABLES[name]))
    stale = sorted(set(TABLES[name]) - rules)
    assert not missing, f"{name}: deck rules without a seeded case (add them to tests/decks/): {missing}"
    assert not stale, f"{name}: cases for rules that are not in the deck: {stale}"


def _case(name, rule):
    case = TABLES[name].get(rule.name)
    if case is None:
        pytest.fail(f"{name} rule '{rule.name}' ({rule.kind} {rule.layer} {rule.value}) has no case in tests/decks/")
    return case


@pytest.mark.parametrize("name, rule", RULES)
def test_clean_at_the_value(name, rule, tmp_path):
    pdk, case = deck_for(PDKS[name], rule), _case(name, rule)
    whole = MODULES[name].LEGAL_SILENT == "deck"
    d = case.legal_value(rule)
    layouts = [(f"d={d}", case.draw(d))] + [(f"legal extra #{i}", x() if callable(x) else x)
                                            for i, x in enumerate(case.extra_legal)]
    for i, (label, rects) in enumerate(layouts):
        f = fired(drc(tmp_path, pdk, rects, f"legal{i}"))
        assert (f == {}) if whole else (rule.name not in f), f"{name} {rule.name}: flagged at {label}: {sorted(f)}"


@pytest.mark.parametrize("name, rule", RULES)
def test_fires_off_the_value(name, rule, tmp_path):
    pdk, case = deck_for(PDKS[name], rule), _case(name, rule)
    for i, d in enumerate(case.step_off(rule, pdk.grid_um)):
        f = fired(drc(tmp_path, pdk, case.draw(d), f"off{i}"))
        if case.fires is not None:
            assert set(f) == case.fires, f"{name} {rule.name} at d={d}: fired {sorted(f)}, expected {sorted(case.fires)}"
        else:
            assert rule.name in f, f"{name} {rule.name} ({rule.kind} {rule.value}) not flagged at d={d}; fired {sorted(f)}"
    for i, d in enumerate(case.beyond):
        f = fired(drc(tmp_path, pdk, case.draw(d), f"beyond{i}"))
        assert rule.name in f, f"{name} {rule.name} not flagged at d={d}; fired {sorted(f)}"
    for i, x in enumerate(case.extra):
        f = fired(drc(tmp_path, pdk, x.rects(), f"extra{i}"))
        assert rule.name in f and (x.fires is None or set(f) == x.fires), (
            f"{name} {rule.name}, extra case {x.label}: fired {sorted(f)}")


def test_every_rule_kind_is_exercised():
    """Each kind of check has a rule in some deck, so a case above exercises it (max_distance: the tap
    distances latchup.15, DF.14, LU.b)."""
    kinds = {r.kind for p in PDKS.values() for r in base_rules(p)}
    assert kinds == set(RULE_KINDS), sorted(set(RULE_KINDS) - kinds)
