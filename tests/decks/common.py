"""The shape every PDK's deck cases share, and the helpers that draw and check them.

A case draws rectangles (µm, ROM role names or the PDK's own layer names) as a function of the
rule's critical dimension d: at the legal value (default: the rule's value) the layout must be DRC
clean, every rule silent; one grid step on the wrong side (both sides for an exact size) it must
fire the rule, and so must every ``beyond`` value and ``extra`` layout. ``fires`` pins the exact set
of rules a step-off case fires when the PDK's table wants it exact (rules that fire together by
construction are listed with the reason where the table is written).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import klayout.db as kdb

from weightfab.signoff.drc import DrcReport, run_drc

Rect = tuple[str, float, float, float, float]     # layer, x0, y0, x1, y1 (µm)
Layout = Union[list[Rect], Callable[[], list[Rect]]]


def r6(v: float) -> float:
    return round(v, 6)


@dataclass(frozen=True)
class Extra:
    """A further layout: it must fire the rule (``fires``: exactly that set of rules, when given)."""
    label: str
    layout: Layout
    fires: frozenset[str] | None = None

    def rects(self) -> list[Rect]:
        return self.layout() if callable(self.layout) else self.layout


@dataclass(frozen=True)
class Case:
    draw: Callable[[float], list[Rect]]
    legal: float | None = None                 # boundary value of d that must be clean
    off: tuple[float, ...] | None = None       # failing values of d (default: one grid step off)
    beyond: tuple[float, ...] = ()             # further failing values of d
    extra: tuple[Extra, ...] = ()              # further failing layouts
    extra_legal: tuple[Layout, ...] = ()       # further layouts that must stay clean
    fires: frozenset[str] | None = None        # the exact set fired one step off (None: the rule, at least)

    def legal_value(self, rule) -> float:
        return rule.value if self.legal is None else self.legal

    def step_off(self, rule, step: float) -> tuple[float, ...]:
        if self.off is not None:
            return self.off
        v = self.legal_value(rule)
        return (r6(v - step), r6(v + step)) if rule.kind == "exact_size" else (r6(v - step),)


def extras(*items) -> tuple[Extra, ...]:
    """Extra layouts from (label, layout) or (label, layout, fires) tuples, or bare layouts."""
    out = []
    for i, it in enumerate(items):
        if isinstance(it, tuple) and len(it) in (2, 3) and isinstance(it[0], str) and not isinstance(it[1], float):
            out.append(Extra(it[0], it[1], frozenset(it[2]) if len(it) == 3 and it[2] is not None else None))
        else:
            out.append(Extra(getattr(it, "__name__", f"#{i}"), it))
    return tuple(out)


def write_gds(path: Path, pdk, rects: list[Rect]) -> Path:
    """One top cell holding the rectangles on the PDK's grid (role names mapped to the PDK's layers)."""
    ly = kdb.Layout()
    ly.dbu = pdk.dbu_um
    top = ly.create_cell("TOP")
    step = pdk.grid_um
    for layer, x0, y0, x1, y1 in rects:
        assert x0 < x1 and y0 < y1, f"degenerate {layer} rectangle {(x0, y0, x1, y1)}"
        for v in (x0, y0, x1, y1):
            assert abs(v / step - round(v / step)) < 1e-6, f"{layer} coordinate {v} is off the {step} µm grid"
        gds = pdk.role_gds(layer) if layer in pdk.roles else pdk.gds(layer)
        top.shapes(ly.layer(*gds)).insert(kdb.Box(round(x0 / pdk.dbu_um), round(y0 / pdk.dbu_um),
                                                  round(x1 / pdk.dbu_um), round(y1 / pdk.dbu_um)))
    ly.write(str(path))
    return path


def drc(tmp_path: Path, pdk, rects: list[Rect], name: str = "case") -> DrcReport:
    return run_drc(write_gds(tmp_path / f"{name}.gds", pdk, rects), pdk)


def fired(report: DrcReport) -> dict[str, int]:
    return {r.name: r.count for r in report.failing()}
