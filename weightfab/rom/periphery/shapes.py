"""Macros of one shape: the periphery's geometry does not depend on the engine's name (it names
pins, labels and nets only), so the macros of a compile that share (cols, rows) are drawn once,
under a placeholder name, and each engine takes a copy with its own name put in."""
from __future__ import annotations

import dataclasses

from ...errors import WeightfabError
from .draw import Circuit, Drawing, Label

PLACEHOLDER = "\x00"    # never in an engine name (macro.engine_names: letters, digits and '_')


def _sub(name: str):
    def sub(s):
        return s.replace(PLACEHOLDER, name) if isinstance(s, str) and PLACEHOLDER in s else s
    return sub


def _deep(obj, sub):
    """``obj`` with every string passed through ``sub`` (tuples, lists, dicts, dataclasses)."""
    if isinstance(obj, str):
        return sub(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_deep(v, sub) for v in obj)
    if isinstance(obj, dict):
        return {_deep(k, sub): _deep(v, sub) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _deep(getattr(obj, f.name), sub)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def named(template, name: str):
    """A copy of ``template`` (a Macro built under PLACEHOLDER) for the engine ``name``: the shapes
    and references as they are (lists of their own), names in labels, nets, pins and logic."""
    sub, P = _sub(name), PLACEHOLDER
    dw = template.drawing
    circ = Circuit([(cell, {k: v.replace(P, name) if P in v else v for k, v in nets.items()})
                    for cell, nets in dw.circuit.instances],
                   [(kind, d.replace(P, name), g.replace(P, name), s.replace(P, name), w, l)
                    for kind, d, g, s, w, l in dw.circuit.devices])
    drawing = Drawing(list(dw.shapes), list(dw.refs),
                      [Label(b.text.replace(P, name), b.layer, b.x, b.y) for b in dw.labels], circ)
    return dataclasses.replace(template, name=sub(template.name), drawing=drawing, logic=_deep(template.logic, sub),
                               pins={k.replace(P, name): v for k, v in template.pins.items()},
                               marks=_deep(template.marks, sub))


class ShapeCache:
    """One macro per (cols, rows), built by ``build(cols, rows, name)``, handed out renamed; a
    shape that cannot be drawn (WeightfabError) keeps its reason, said with each engine's name."""

    def __init__(self, build):
        self.build = build
        self.done: dict[tuple[int, int], object] = {}

    def get(self, cols: int, rows: int, name: str):
        key = (cols, rows)
        if key not in self.done:
            try:
                self.done[key] = self.build(cols, rows, PLACEHOLDER)
            except WeightfabError as exc:
                self.done[key] = exc
        got = self.done[key]
        if isinstance(got, WeightfabError):
            raise WeightfabError(_sub(name)(str(got)))
        return named(got, name)
