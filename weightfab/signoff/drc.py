"""Design-rule check of a GDSII/OASIS file against the PDK's rule deck, with KLayout.

Regions are built in KLayout's deep (hierarchical) mode, so a cell drawn once is checked
once. Every rule of the deck is run; violations are counted per rule with a few example
locations, and can be written as a KLayout marker database (.lyrdb).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import klayout.db as kdb
import klayout.rdb as krdb

from ..errors import LayoutReadError
from ..tech.pdk import RULE_KINDS, Pdk, Rule

NEVER_ZERO = kdb.Region.NeverIncludeZeroDistance


@dataclass(frozen=True)
class RuleResult:
    name: str
    kind: str
    value: float
    count: int
    examples: tuple[tuple[float, float], ...]  # µm, marker centres
    source: str


@dataclass(frozen=True)
class DrcReport:
    file: str
    top: str
    dbu: float
    rules: tuple[RuleResult, ...]
    seconds: float
    markers: dict = field(default_factory=dict, compare=False, repr=False)  # rule -> KLayout collections
    store: object = field(default=None, compare=False, repr=False)  # keeps the deep shape store alive
    mode: str = "full"      # "full": every rule on the whole file; "fast": signoff/fastdrc.py
    notes: tuple[str, ...] = ()  # how the fast mode reached its result (fallbacks and why)

    @property
    def violations(self) -> int:
        return sum(r.count for r in self.rules)

    @property
    def clean(self) -> bool:
        return self.violations == 0

    def failing(self) -> list[RuleResult]:
        return [r for r in self.rules if r.count]


def read_layout(path: str | Path) -> tuple[kdb.Layout, kdb.Cell]:
    path = Path(path)
    if not path.is_file():
        raise LayoutReadError(f"{path}: no such file")
    layout = kdb.Layout()
    try:
        layout.read(str(path))
    except RuntimeError as exc:
        raise LayoutReadError(f"{path}: not a readable GDSII/OASIS file ({str(exc).splitlines()[0][:120]})") from None
    tops = layout.top_cells()
    if len(tops) != 1:
        raise LayoutReadError(f"{path}: expected one top cell, found {len(tops)}")
    return layout, tops[0]


class _Layers:
    """Regions by layer name, derived layers computed on demand; deep (hierarchical) by default.

    The programming layer is the exception: its shapes sit in one cell per unique weight block,
    tens of thousands of cells each placed once, where hierarchy saves nothing and costs much.
    Rules that involve it run on flat regions (all layers of such a rule flat), the others deep.
    """

    def __init__(self, layout: kdb.Layout, top: kdb.Cell, pdk: Pdk, threads: int | None = None):
        self.layout, self.top, self.pdk = layout, top, pdk
        self.dbu = layout.dbu
        self.dss = kdb.DeepShapeStore()
        # worker threads for the full check of a whole file (its wall time); the fast DRC's small
        # templates run without (fastdrc.py: there they cost more than they save, Keras MLP
        # templates' checks 7.6-8.3 -> 5.8-6.8 s CPU on 2 cores)
        self.dss.threads = max(1, min(4, os.cpu_count() or 1)) if threads is None else threads
        self.cache: dict[tuple, kdb.Region] = {}
        self.flat = False

    def base(self, name: str) -> set[str]:
        if name in self.pdk.derived:
            a, _, b = self.pdk.derived[name]
            return self.base(a) | self.base(b)
        return {name}

    def __getitem__(self, name: str) -> kdb.Region:
        key = (name, self.flat)
        if key not in self.cache:
            if name in self.pdk.derived:
                a, op, b = self.pdk.derived[name]
                ra, rb = self[a], self[b]
                self.cache[key] = ra & rb if op == "and" else ra - rb if op == "not" else ra.interacting(rb)
            else:
                idx = self.layout.find_layer(*self.pdk.gds(name))
                if idx is None:
                    self.cache[key] = kdb.Region()
                elif self.flat:
                    self.cache[key] = kdb.Region(self.top.begin_shapes_rec(idx))
                else:
                    self.cache[key] = kdb.Region(self.top.begin_shapes_rec(idx), self.dss)
        return self.cache[key]

    def outside(self, inner: str, outer: str) -> kdb.Region:
        """``inner - outer``, computed once per pair (an enclosure rule and its adjacent-sides twin
        read the same two layers)."""
        key = (inner, "-", outer, self.flat)
        if key not in self.cache:
            self.cache[key] = self[inner] - self[outer]
        return self.cache[key]


def _width(rule, L, v):
    return [L[rule.layer].width_check(v)]


def _spacing(rule, L, v):
    return [L[rule.layer].space_check(v)]


def _area(rule, L, v):
    return [L[rule.layer].with_area(0, round(rule.value / L.dbu / L.dbu), False)]


def _exact_size(rule, L, v):
    a = L[rule.layer]
    return [a.non_squares(), a.squares().with_bbox_width(v, True)]


def _separation(rule, L, v):
    # touching is no separation: with no_overlap, shapes that touch or overlap are violations
    a, b = L[rule.layer], L[rule.other]
    out = [a.separation_check(b, v, zero_distance_mode=NEVER_ZERO)]
    return out + [a.interacting(b)] if rule.no_overlap else out


def _enclosure(rule, L, v):
    # outer = layer, inner = other: too little enclosure (a flush edge is 0), or inner sticking out
    a, b = L[rule.layer], L[rule.other]
    return ([a.enclosing_check(b, v)] if v else []) + [L.outside(rule.other, rule.layer)]


def _enclosure_adjacent(rule, L, v):
    # "on one of two adjacent sides": fails where two parts of the inner shape's edges that
    # lack the enclosure meet at a corner (two adjacent sides both short there)
    a, b = L[rule.layer], L[rule.other]
    bad = a.enclosing_check(b, v, False, kdb.Region.Projection).second_edges()
    corners = bad.width_check(1, False, kdb.Region.Euclidian, 100)
    return [b.interacting(corners.edges()), L.outside(rule.other, rule.layer)]


def _extension(rule, L, v):
    # the other layer's edges that lie on edges of ``edges_on`` must be extended by ``layer``
    return [(L[rule.other].edges() & L[rule.edges_on].edges()).extended_out(v) - L[rule.layer]]


def _channel_width(rule, L, v):
    return [(L[rule.layer].edges() & L[rule.other].edges()).with_length(0, v, False)]


def _max_distance(rule, L, v):
    # the parts of ``layer`` farther than v from every shape of ``other`` (``other`` grown by v,
    # its corners cut at 45°: near a tap's corners the distance is approximate). The taps (a few
    # rows and strips) are taken flat and grown; ``layer`` only meets what they leave uncovered in
    # its bounding box (nothing on a clean layout), so a deep layer's cells are never set against
    # a 15-20 µm halo (1 Mbit SKY130: 3.3 s CPU; growing the deep taps took minutes)
    layer, taps = L[rule.layer], kdb.Region()
    taps.insert(L[rule.other])
    far = kdb.Region(layer.bbox()) - taps.sized(v, v, 1)
    return [layer & far] if not far.is_empty() else [kdb.Region()]


# One small check per rule kind; each returns KLayout collections (Region, Edges, EdgePairs) of
# violations. The table must name exactly the kinds the PDK loader accepts.
CHECKS = {
    "width": _width, "spacing": _spacing, "area": _area, "exact_size": _exact_size,
    "separation": _separation, "enclosure": _enclosure, "enclosure_adjacent": _enclosure_adjacent,
    "extension": _extension, "channel_width": _channel_width, "max_distance": _max_distance,
}
if set(CHECKS) != set(RULE_KINDS):
    raise ImportError(f"weightfab.signoff.drc: rule kinds without a check: {sorted(set(RULE_KINDS) - set(CHECKS))}; "
                      f"checks for unknown kinds: {sorted(set(CHECKS) - set(RULE_KINDS))}")


def _check(rule: Rule, L: _Layers, dbu: float) -> list:
    """Run one rule; returns KLayout collections (Region, Edges, EdgePairs) of violations."""
    return CHECKS[rule.kind](rule, L, round(rule.value / dbu))


def run_drc(path: str | Path, pdk: Pdk, max_examples: int = 5, *, fast: bool = False, rules=None,
            progress=None) -> DrcReport:
    """DRC of ``path``. ``fast`` proves the file equal to a small template of itself and checks the
    template (signoff/fastdrc.py), with the full check wherever that proof does not hold; the
    default is the full check of every rule (or of ``rules``, names) on the whole file."""
    if fast:
        from .fastdrc import run_fast_drc
        return run_fast_drc(path, pdk, max_examples, progress=progress)
    t0 = time.perf_counter()
    layout, top = read_layout(path)
    L = _Layers(layout, top, pdk)
    chosen = [r for r in pdk.rules if rules is None or r.name in rules]
    results, markers = [], {}
    for i, rule in enumerate(chosen):
        if progress is not None:
            progress(i, len(chosen), rule.name)
        used = set().union(*(L.base(n) for n in (rule.layer, rule.other, rule.edges_on) if n))
        L.flat = pdk.programming_layer in used
        results.append(rule_result(rule, _check(rule, L, layout.dbu), layout.dbu, max_examples, markers))
    return DrcReport(str(path), top.name, layout.dbu, tuple(results), time.perf_counter() - t0, markers, L.dss)


def rule_result(rule: Rule, collections: list, dbu: float, max_examples: int, markers: dict) -> RuleResult:
    """Count a rule's violations and keep a few example locations (and the markers)."""
    found = [c for c in collections if not c.is_empty()]
    count = sum(c.count() for c in found)
    examples = []
    for c in found:
        for item in c.each():
            if len(examples) >= max_examples:
                break
            centre = item.bbox().center()
            examples.append((round(centre.x * dbu, 4), round(centre.y * dbu, 4)))
    if found:
        markers[rule.name] = found
    return RuleResult(rule.name, rule.kind, rule.value, count, tuple(examples), rule.source)


def write_lyrdb(report: DrcReport, pdk: Pdk, path: str | Path) -> None:
    """Write a KLayout marker database that opens in KLayout's marker browser."""
    rdb = krdb.ReportDatabase(f"weightfab DRC ({pdk.name}, {report.mode} mode)")
    rdb.original_file = report.file
    rdb.description = f"{report.mode} mode" + "".join(f"; {n}" for n in report.notes)
    rdb.top_cell_name = report.top
    cell = rdb.create_cell(report.top)
    for rule in pdk.rules:
        cat = rdb.create_category(rule.name)
        cat.description = f"{rule.kind} {rule.value} µm: {rule.source}"
        for found in report.markers.get(rule.name, []):
            rdb.create_items(cell.rdb_id(), cat.rdb_id(), kdb.CplxTrans(report.dbu), found)
    rdb.save(str(path))
