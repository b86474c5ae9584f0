"""The SKY130 rule deck is tested, not trusted.

* A small hand-drawn engine (RomGeometry shapes, repetitions expanded here) and the real
  compile of the sample model are DRC clean.
* Every rule of the deck has a seeded violation in ``CASES`` (a rule added to the deck
  without one fails). A case draws a few rectangles (µm) as a function of the rule's
  critical dimension d: at the rule's value the rule must be silent, one grid step
  (0.005 µm) on the wrong side it must fire; some cases add gross violations (inner shape
  sticking out of the outer, poly endcap 0, overlap where "no overlap" is required).
* ``write_lyrdb`` output loads back into KLayout's report database.
* Hard cases (flush edges, straddling contacts, abutting shapes) are in ``HARD_CASES``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gdstk
import klayout.db as kdb
import klayout.rdb as krdb
import numpy as np
import pytest

import weightfab
from weightfab.signoff.drc import DrcReport, run_drc, write_lyrdb
from weightfab.tech.pdk import DRAWN_LAYERS, RULE_KINDS, Rule, load_pdk
from weightfab.rom.geometry import RomGeometry, Shape
from weightfab.rom.viastack import upper_rules

PDK = load_pdk("sky130")
STEP = PDK.grid_um  # 0.005 µm
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "digits_mlp.onnx"
CT = 0.17  # licon / mcon size (licon.1, ct.1)

Rect = tuple[str, float, float, float, float]  # layer, x0, y0, x1, y1 in µm


# -- drawing and checking helpers ----------------------------------------------------------------
def write_gds(path: Path, rects: list[Rect]) -> Path:
    """One top cell holding the rectangles (µm) on a 1 nm database unit."""
    lib = gdstk.Library(unit=1e-6, precision=PDK.dbu_um * 1e-6)
    cell = lib.new_cell("TOP")
    for layer, x0, y0, x1, y1 in rects:
        assert x0 < x1 and y0 < y1, f"degenerate {layer} rectangle {(x0, y0, x1, y1)}"
        for v in (x0, y0, x1, y1):
            assert abs(v / STEP - round(v / STEP)) < 1e-6, f"{layer} coordinate {v} is off the {STEP} µm grid"
        gl, gd = PDK.gds(layer)
        cell.add(gdstk.rectangle((x0, y0), (x1, y1), layer=gl, datatype=gd))
    lib.write_gds(str(path))
    return path


def drc(tmp_path: Path, rects: list[Rect], name: str = "case") -> DrcReport:
    return run_drc(write_gds(tmp_path / f"{name}.gds", rects), PDK)


def count(report: DrcReport, rule: str) -> int:
    (hit,) = [r for r in report.rules if r.name == rule]
    return hit.count


def fired(report: DrcReport) -> dict[str, int]:
    return {r.name: r.count for r in report.failing()}


def where(report: DrcReport, rule: str) -> tuple[tuple[float, float], ...]:
    """Marker centres (µm) of one rule."""
    (hit,) = [r for r in report.rules if r.name == rule]
    return hit.examples


def implanted(rects: list[Rect]) -> list[Rect]:
    """Add the nsdm implant (nsd.5a: 0.125 around all diff) so the diff cases stay quiet."""
    diffs = [r for r in rects if r[0] == "diff"]
    if not diffs:
        return rects
    e = 0.125
    return rects + [("nsdm", min(r[1] for r in diffs) - e, min(r[2] for r in diffs) - e,
                     max(r[3] for r in diffs) + e, max(r[4] for r in diffs) + e)]


def contact(layer: str, x: float = 0.0, y: float = 0.0, side: float = CT) -> Rect:
    return (layer, x, y, x + side, y + side)


def transistor(w: float = 0.42, endcap: float = 0.13, drain: float = 0.5, source: float = 0.5) -> list[Rect]:
    """NMOS: vertical diff from y=0 (w wide), horizontal 0.15 poly gate at y = source .. source + 0.15."""
    return implanted([("diff", 0.0, 0.0, w, source + 0.15 + drain),
                      ("poly", -endcap, source, w + endcap, source + 0.15)])


# -- case families: each returns draw(d) -> rectangles, d the rule's critical dimension ------------
def too_narrow(layer: str):
    return lambda w: [(layer, 0.0, 0.0, w, 2.0)]


def too_close(layer: str, width: float = 1.0):
    return lambda s: [(layer, 0.0, 0.0, width, 2.0), (layer, width + s, 0.0, 2 * width + s, 2.0)]


def too_small(layer: str, width: float):
    """Area: a ``width`` × d rectangle."""
    return lambda h: [(layer, 0.0, 0.0, width, h)]


def contact_size(layer: str):
    return lambda s: [contact(layer, side=s)]


def contact_space(layer: str):
    return lambda s: [contact(layer), contact(layer, x=CT + s)]


def enclosed(outer: str, inner: str, vary: str = "left", extra: tuple[Rect, ...] = (), implant: bool = False,
             **margins: float):
    """A 0.17 µm ``inner`` contact inside ``outer`` with the given margins (left, bottom, right,
    top; 0 if not given); d replaces the ``vary`` margin, a negative d pushes the contact out."""
    def draw(d):
        m = {"left": 0.0, "bottom": 0.0, "right": 0.0, "top": 0.0, **margins, vary: d}
        rects = [contact(inner), (outer, -m["left"], -m["bottom"], CT + m["right"], CT + m["top"]), *extra]
        return implanted(rects) if implant else rects
    return draw


def fixed(draw: Callable[[float], list[Rect]], d: float) -> Callable[[], list[Rect]]:
    return lambda: draw(d)


# rules on derived layers (gate, poly_field, diff_licon, poly_licon), drawn explicitly
def in_std_cell(rects: list[Rect]) -> list[Rect]:
    """The rectangles under a standard-cell identifier (areaid.sc), which has its own rule values."""
    return rects + [("areaid_sc", -1.0, -1.0, 2.0, 3.0)]


def poly_field_to_diff(d):  # poly.4: a poly line on field d right of a diff
    return implanted([("diff", 0.0, 0.0, 0.5, 1.0), ("poly", 0.5 + d, 0.0, 1.0 + d, 1.0)])


def diff_extension(d):  # poly.7: the diff reaches d beyond the gate (drain side)
    return transistor(drain=d)


def poly_endcap(d):  # poly.8: endcap d on the right (0.13 on the left)
    return implanted([("diff", 0.0, 0.0, 0.42, 1.15), ("poly", -0.13, 0.5, 0.42 + d, 0.65)])


def npc_to_gate(d):  # npc.4: an npc d above the gate (negative: overlapping it)
    return transistor() + [("npc", -0.3, 0.65 + d, 0.72, 1.15 + d)]


def licon_to_gate(d):  # licon.11: drain contact d below the gate (negative: overlapping it)
    return transistor(drain=0.6, source=0.6) + [contact("licon", 0.125, 0.6 - d - CT)]


def poly_licon_to_diff(d):  # licon.14: a poly pad whose licon is d left of a diff
    return implanted([("diff", 0.0, 0.0, 0.42, 1.0), contact("licon", -d - CT, 0.4),
                      ("poly", -d - CT - 0.08, 0.35, -d + 0.08, 0.4 + CT + 0.05)])


def diff_licon_margins(left, bottom, right, top):  # licon.5c: fixed margins around a diff contact
    return fixed(enclosed("diff", "licon", implant=True, left=left, bottom=bottom, right=right, top=top), left)


@dataclass(frozen=True)
class Case:
    """draw(d) -> rectangles. ``legal`` is the boundary value of d that must pass (default: the
    rule's value); one grid step on the failing side must fire, and so must each of ``beyond``
    (further values of d) and ``extra`` (further layouts)."""

    draw: Callable[[float], list[Rect]]
    legal: float | None = None
    beyond: tuple[float, ...] = ()
    extra: tuple[Callable[[], list[Rect]], ...] = ()

    def legal_value(self, rule: Rule) -> float:
        return rule.value if self.legal is None else self.legal

    def step_off(self, rule: Rule) -> tuple[float, ...]:
        v = self.legal_value(rule)
        return (round(v - STEP, 6), round(v + STEP, 6)) if rule.kind == "exact_size" else (round(v - STEP, 6),)

    def violations(self, rule: Rule) -> list[tuple[str, list[Rect]]]:
        out = [(f"d={d}", self.draw(d)) for d in (*self.step_off(rule), *self.beyond)]
        return out + [(f"extra #{i} ({fn.__name__})", fn()) for i, fn in enumerate(self.extra)]


def no_licon_cover():
    return [contact("licon")]


def no_mcon_cover():
    return [contact("mcon")]


def no_nsdm():
    return [("diff", 0.0, 0.0, 0.5, 0.5)]


def licon_not_square():
    return [("licon", 0.0, 0.0, CT, 0.2)]


def mcon_not_square():
    return [("mcon", 0.0, 0.0, 0.2, CT)]


CASES: dict[str, Case] = {
    # diff
    "difftap.1": Case(lambda w: implanted(too_narrow("diff")(w))),
    "difftap.2": Case(lambda w: transistor(w=w)),                           # diff 0.415 under the gate
    "difftap.2b": Case(lambda w: in_std_cell(transistor(w=w))),            # same, inside areaid.sc
    "difftap.3": Case(lambda s: implanted(too_close("diff", 0.5)(s))),
    # poly
    "poly.1a": Case(too_narrow("poly")),
    "poly.2": Case(too_close("poly", 0.5)),
    "poly.4": Case(poly_field_to_diff),
    "poly.7": Case(diff_extension, beyond=(0.0,)),                          # diff ends at the gate
    "poly.8": Case(poly_endcap, beyond=(0.0,)),                             # endcap exactly 0
    # implant
    "nsd.1": Case(too_narrow("nsdm")),
    "nsd.2": Case(too_close("nsdm")),
    "nsd.5a": Case(enclosed("nsdm", "diff", bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,), extra=(no_nsdm,)),
    "nsd.10a": Case(too_small("nsdm", 0.5), legal=0.53),                    # 0.5 x 0.53 = 0.265 µm²
    # npc
    "npc.1": Case(too_narrow("npc")),
    "npc.2": Case(too_close("npc")),
    "npc.4": Case(npc_to_gate, beyond=(-0.05,)),                            # npc over the gate
    # licon
    "licon.1": Case(contact_size("licon"), extra=(licon_not_square,)),
    "licon.2": Case(contact_space("licon")),
    "licon.4": Case(enclosed("li", "licon", bottom=0.08, right=0.08, top=0.08), beyond=(-0.05,),
                    extra=(no_licon_cover,)),
    "licon.5a": Case(enclosed("diff", "licon", implant=True, bottom=0.06, right=0.06, top=0.06)),
    "licon.5c": Case(enclosed("diff", "licon", vary="bottom", implant=True, left=0.04, right=0.04, top=0.06),
                     extra=(diff_licon_margins(0.04, 0.04, 0.04, 0.04),     # short on all four sides
                            diff_licon_margins(0.04, 0.1, 0.1, 0.04),       # short on left + top
                            diff_licon_margins(0.1, 0.04, 0.04, 0.1))),     # short on right + bottom
    "licon.8": Case(enclosed("poly", "licon", vary="bottom", left=0.08, right=0.08, top=0.05)),
    "licon.8a": Case(enclosed("poly", "licon", bottom=0.05, right=0.08, top=0.05)),
    "licon.11": Case(licon_to_gate, beyond=(-0.02,)),                       # licon over poly and diff
    "licon.11a": Case(lambda d: in_std_cell(licon_to_gate(d)), beyond=(-0.02,)),
    "licon.14": Case(poly_licon_to_diff, beyond=(-0.05,)),                  # poly licon over diff
    "licon.15": Case(enclosed("npc", "licon", bottom=0.1, right=0.1, top=0.1,
                              extra=(("poly", -0.08, -0.05, CT + 0.08, CT + 0.05),)), beyond=(-0.05,)),
    # li
    "li.1": Case(too_narrow("li")),
    "li.3": Case(too_close("li")),
    "li.5": Case(enclosed("li", "licon", vary="bottom", top=0.08)),
    "li.6": Case(too_small("li", 0.17), legal=0.33),                        # 0.17 x 0.33 = 0.0561 µm²
    # mcon
    "ct.1": Case(contact_size("mcon"), extra=(mcon_not_square,)),
    "ct.2": Case(contact_space("mcon")),
    "ct.4": Case(enclosed("li", "mcon", bottom=0.08, right=0.08, top=0.08), beyond=(-0.05,),
                 extra=(no_mcon_cover,)),
    # met1
    "m1.1": Case(too_narrow("met1")),
    "m1.2": Case(too_close("met1")),
    "m1.4": Case(enclosed("met1", "mcon", bottom=0.06, right=0.03, top=0.06), beyond=(-0.05,)),
    "m1.5": Case(enclosed("met1", "mcon", vary="bottom", left=0.03, right=0.03, top=0.06)),
    "m1.6": Case(too_small("met1", 0.2), legal=0.415),                      # 0.2 x 0.415 = 0.083 µm²
    # wells, taps and p implant (the macro periphery)
    "nwell.1": Case(too_narrow("nwell")),
    "nwell.2a": Case(too_close("nwell")),
    "difftap.1t": Case(too_narrow("tap")),
    "difftap.3t": Case(too_close("tap", 0.5)),
    "difftap.8": Case(enclosed("nwell", "diff", extra=(("psdm", -1.0, -1.0, 2.0, 2.0),),
                               bottom=0.3, right=0.3, top=0.3), beyond=(-0.05,)),
    "difftap.9": Case(lambda d: implanted([("diff", 0.0, 0.0, 0.5, 1.0)]) + [("nwell", 0.5 + d, -0.5, 2.0 + d, 1.5)],
                      beyond=(-0.05,)),                                     # ndiff inside the well
    "difftap.10": Case(enclosed("nwell", "tap", extra=(("nsdm", -1.0, -1.0, 2.0, 2.0),),
                                bottom=0.3, right=0.3, top=0.3), beyond=(-0.05,)),
    "difftap.11": Case(lambda d: [("tap", 0.0, 0.0, 0.5, 1.0), ("nwell", 0.5 + d, -0.5, 2.0 + d, 1.5)],
                       beyond=(-0.05,)),                                    # p-tap inside the well
    "psd.5a": Case(enclosed("psdm", "diff", bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,)),
    "psd.5b": Case(enclosed("psdm", "tap", bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,)),
    "nsd.5b": Case(enclosed("nsdm", "tap", extra=(("nwell", -1.0, -1.0, 2.0, 2.0),),
                            bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,)),
}


def case_for(rule: Rule) -> Case:
    case = CASES.get(rule.name)
    if case is None:
        pytest.fail(f"deck rule '{rule.name}' ({rule.kind} {rule.layer} {rule.value}) has no seeded "
                    f"violation: add a drawing function for it to CASES in {Path(__file__).name}")
    return case


# the upper via stack's rules have their cases in test_drc_deck_stack.py
BASE_RULES = [r for r in PDK.rules if r not in upper_rules(PDK)]
rule_params = pytest.mark.parametrize("rule", BASE_RULES, ids=lambda r: r.name)


# -- the deck itself ---------------------------------------------------------------------------
def test_cases_match_the_deck():
    stale = sorted(set(CASES) - {r.name for r in BASE_RULES})
    assert not stale, f"CASES has entries for rules that are not in the deck: {stale}"
    # max_distance (a tap distance): SKY130 publishes no latch-up value, so the deck holds no such
    # rule; tests/test_macro.py exercises the kind on the macro periphery (clean, and missing taps)
    assert {r.kind for r in PDK.rules} | {"max_distance"} == set(RULE_KINDS), "every rule kind should be exercised"


@rule_params
def test_seeded_violation_fires(rule, tmp_path):
    case = case_for(rule)
    for i, (label, rects) in enumerate(case.violations(rule)):
        report = drc(tmp_path, rects, f"bad{i}")
        assert count(report, rule.name) >= 1, (
            f"{rule.name} ({rule.kind} {rule.value}) not flagged for {label}; rules that fired: {fired(report)}")


@rule_params
def test_legal_boundary_is_not_flagged(rule, tmp_path):
    case = case_for(rule)
    d = case.legal_value(rule)
    report = drc(tmp_path, case.draw(d))
    assert count(report, rule.name) == 0, (
        f"{rule.name} ({rule.kind} {rule.value}) flags legal geometry at d={d}, "
        f"markers at {where(report, rule.name)} µm")


# -- the hard cases: flush edges, straddling contacts, abutting shapes -----------------------------
# A flush inner edge gives a zero-width enclosure pair; a licon straddling the diff/poly edge must be
# judged whole (diff_licon/poly_licon are "licon interacting ..."); abutting shapes are not separated.
HARD_CASES = [
    *(pytest.param(r.name, 0.0, id=f"{r.name}-d=0.0") for r in BASE_RULES if r.kind == "enclosure" and r.value > 0),
    pytest.param("licon.5a", -0.05, id="licon.5a-d=-0.05"),
    pytest.param("licon.8", -0.05, id="licon.8-d=-0.05"),
    *(pytest.param(r.name, 0.0, id=f"{r.name}-d=0.0",
                   marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
                       "poly.4 ignores zero distance so that gate ends (poly on field abutting diff) "
                       "are legal; field poly abutting diff along a side is not caught"))]
                   if r.name == "poly.4" else [])
      for r in BASE_RULES if r.kind == "separation"),
]


@pytest.mark.parametrize("name, d", HARD_CASES)
def test_hard_case(name, d, tmp_path):
    """Flush enclosure (d=0), a contact straddling the outer edge (d<0), abutting shapes (d=0)."""
    report = drc(tmp_path, CASES[name].draw(d))
    assert count(report, name) >= 1, f"{name} not flagged at d={d}; rules that fired: {fired(report)}"


# -- clean references --------------------------------------------------------------------------
def expand(shapes, geom: RomGeometry) -> list[Rect]:
    """RomGeometry shapes (dbu, with repetitions and 'bitpair' references) as flat µm rectangles."""
    def moved(layer, box, ox, oy) -> Rect:
        x0, y0, x1, y1 = box
        return (layer, (x0 + ox) * PDK.dbu_um, (y0 + oy) * PDK.dbu_um, (x1 + ox) * PDK.dbu_um, (y1 + oy) * PDK.dbu_um)

    out = []
    for s in shapes:
        for i in range(s.nx):
            for j in range(s.ny):
                ox, oy = i * s.dx, j * s.dy
                if s.layer == "bitpair":  # a reference to the bit-pair cell placed at s.box's origin
                    out += [moved(p.layer, p.box, ox + s.box[0], oy + s.box[1]) for p in geom.bitpair()]
                else:
                    out.append(moved(s.layer, s.box, ox, oy))
    return out


def reference_engine(cols: int = 2, rows: int = 4) -> list[Rect]:
    """A cols x rows engine (rows/2 islands per column) with a few programmed bits."""
    geom = RomGeometry.from_pdk(PDK)
    rects = expand(geom.engine(cols, rows), geom)
    sites = [(0, r) for r in range(rows)] + [(1, 0), (1, rows - 1)]
    xs, ys = geom.site_xy(np.array([c for c, _ in sites]), np.array([r for _, r in sites]))
    return rects + [expand([Shape("mcon", geom.prog_box(x, y))], geom)[0]
                    for x, y in zip(xs.tolist(), ys.tolist())]


def test_reference_engine_is_clean(tmp_path):
    rects = reference_engine()
    drawn = {r[0] for r in rects}
    assert drawn == set(DRAWN_LAYERS) - {"boundary"}, f"reference should draw every ROM layer, drew {drawn}"
    assert sum(r[0] == "mcon" for r in rects) == 6
    report = drc(tmp_path, rects, "reference")
    assert len(report.rules) == len(PDK.rules)
    assert report.clean, f"hand-built reference engine is not clean: {fired(report)}"


def test_reference_engine_one_step_narrower_endcap_is_caught(tmp_path):
    """Trimming the wordlines' far ends to one grid step below the poly.8 endcap is a poly.8
    violation on every wordline."""
    rects = reference_engine()
    right = max(r[3] for r in rects if r[0] == "poly")
    endcap = next(r.value for r in PDK.rules if r.name == "poly.8")
    cut = round(max(r[3] for r in rects if r[0] == "diff") + endcap - STEP, 3)
    trimmed = [(l, x0, y0, cut if (l == "poly" and x1 == right) else x1, y1) for l, x0, y0, x1, y1 in rects]
    report = drc(tmp_path, trimmed, "trimmed")
    assert fired(report) == {"poly.8": 4}, fired(report)


def test_sample_compile_is_clean(tmp_path):
    out = tmp_path / "digits.gds"
    weightfab.compile(SAMPLE, out, drc=False, verify=False)
    report = run_drc(out, PDK)
    assert [r.name for r in report.rules] == [r.name for r in PDK.rules]
    assert report.clean, f"{SAMPLE.name} compiles to a layout with DRC violations: {fired(report)}"


# -- marker database ---------------------------------------------------------------------------
def met1_lines(width: float, n: int = 3) -> list[Rect]:
    return [("met1", x, 0.0, x + width, 2.0) for x in (0.0, 1.0, 2.0)[:n]]


def load_rdb(path: Path) -> krdb.ReportDatabase:
    rdb = krdb.ReportDatabase("")
    rdb.load(str(path))
    return rdb


def items_per_category(rdb: krdb.ReportDatabase) -> dict[str, int]:
    return {c.name(): len(list(rdb.each_item_per_category(c.rdb_id()))) for c in rdb.each_category()}


def test_lyrdb_of_a_clean_layout_loads_back(tmp_path):
    report = drc(tmp_path, met1_lines(0.14), "legal")
    assert report.clean, fired(report)
    path = tmp_path / "legal.lyrdb"
    write_lyrdb(report, PDK, path)
    rdb = load_rdb(path)
    assert list(items_per_category(rdb)) == [r.name for r in PDK.rules], "one category per rule, in deck order"
    assert rdb.num_items() == 0
    assert rdb.top_cell_name == "TOP"
    assert rdb.original_file == str(tmp_path / "legal.gds")


def test_lyrdb_writer_counts_items_of_a_failing_rule(tmp_path):
    """The writer on its own: a report whose m1.1 markers are flat KLayout edge pairs."""
    report = drc(tmp_path, met1_lines(0.135), "narrow")
    assert fired(report) == {"m1.1": 3}
    layout = kdb.Layout()
    layout.read(str(tmp_path / "narrow.gds"))
    met1 = kdb.Region(layout.top_cell().begin_shapes_rec(layout.find_layer(*PDK.gds("met1"))))
    flat = met1.width_check(round(0.14 / PDK.dbu_um))
    path = tmp_path / "narrow.lyrdb"
    write_lyrdb(dataclasses.replace(report, markers={"m1.1": [flat]}), PDK, path)
    rdb = load_rdb(path)
    assert items_per_category(rdb) == {r.name: (3 if r.name == "m1.1" else 0) for r in PDK.rules}
    assert [c.name() for c in rdb.each_cell()] == ["TOP"]


def test_lyrdb_of_a_failing_layout_loads_back(tmp_path):
    report = drc(tmp_path, met1_lines(0.135), "narrow")
    assert fired(report) == {"m1.1": 3}
    path = tmp_path / "narrow.lyrdb"
    write_lyrdb(report, PDK, path)
    rdb = load_rdb(path)
    assert items_per_category(rdb) == {r.name: (3 if r.name == "m1.1" else 0) for r in PDK.rules}
    assert rdb.num_items() == report.violations == 3


def test_adjacent_sides_rule_needs_two_short_sides_meeting_at_a_corner(tmp_path):
    """li.5 as the official deck reads it: a licon is flagged only where two of its edge parts
    that lack the 0.08 enclosure meet at a corner. The L-shaped li below (taken from a vendor
    standard cell, sky130_fd_sc_hd__a2111oi_1) is short on the lower part of the left side and on
    the top, but those parts do not meet: legal. Made a plain rectangle, the short left and top
    sides meet at the top-left corner: flagged."""
    lic = contact("licon")
    l_shape = [lic, ("li", -0.075, -0.385, 0.255, 0.06), ("li", -0.975, 0.055, 1.18, 0.235)]
    assert count(drc(tmp_path, l_shape, "lshape"), "li.5") == 0
    assert count(drc(tmp_path, [lic, ("li", -0.075, -0.385, 0.255, 0.235)], "corner"), "li.5") == 1
