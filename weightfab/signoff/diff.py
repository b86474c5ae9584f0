"""Layer-by-layer comparison of two layouts (XOR with KLayout).

Two models of the same shape must differ on the programming layer alone: every other mask is
shared. ``diff_layouts`` measures that: for every layer present in either file it counts the
shapes in each file and the polygons of their XOR (after merging, so shapes drawn twice or split
differently do not count as differences). Layers are compared by GDS layer/datatype; names come
from the PDK when one is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import klayout.db as kdb

from ..errors import LayoutReadError
from ..tech.pdk import Pdk
from .drc import read_layout


@dataclass(frozen=True)
class LayerDiff:
    layer: int
    datatype: int
    name: str
    shapes_a: int
    shapes_b: int
    xor_polygons: int
    xor_area_um2: float

    @property
    def differs(self) -> bool:
        return self.xor_polygons > 0


@dataclass(frozen=True)
class LayoutDiff:
    a: str
    b: str
    layers: tuple[LayerDiff, ...]

    @property
    def differing(self) -> list[LayerDiff]:
        return [d for d in self.layers if d.differs]

    @property
    def identical(self) -> bool:
        return not self.differing

    def summary(self) -> dict:
        return {"a": self.a, "b": self.b, "identical": self.identical,
                "layers": [d.__dict__ | {"differs": d.differs} for d in self.layers]}


def _layer_names(pdk: Pdk | None) -> dict[tuple[int, int], str]:
    return {} if pdk is None else {ly.gds: name for name, ly in pdk.layers.items()}


def _placements(layout: kdb.Layout, top: kdb.Cell) -> dict[int, int]:
    """How often each cell is placed under ``top`` (array references counted by their size)."""
    counts = {top.cell_index(): 1}
    for ci in layout.each_cell_top_down():
        n = counts.get(ci)
        if not n:
            continue
        for inst in layout.cell(ci).each_inst():
            counts[inst.cell_index] = counts.get(inst.cell_index, 0) + n * inst.size()
    return counts


def _shape_count(layout: kdb.Layout, placements: dict[int, int], index: int | None) -> int:
    """Shapes as drawn on one layer, every placement counted, without walking the instances."""
    if index is None:
        return 0
    return sum(layout.cell(ci).shapes(index).size() * n for ci, n in placements.items())


def _region(top: kdb.Cell, index: int | None) -> kdb.Region:
    return kdb.Region() if index is None else kdb.Region(top.begin_shapes_rec(index))


def diff_layouts(a: str | Path, b: str | Path, pdk: Pdk | None = None) -> LayoutDiff:
    la, ta = read_layout(a)
    lb, tb = read_layout(b)
    if abs(la.dbu - lb.dbu) > 1e-12:
        raise LayoutReadError(f"{b}: database unit {lb.dbu} µm differs from {a} ({la.dbu} µm)")
    names = _layer_names(pdk)
    keys = sorted({(i.layer, i.datatype) for i in la.layer_infos()} | {(i.layer, i.datatype) for i in lb.layer_infos()})
    pa, pb = _placements(la, ta), _placements(lb, tb)
    out = []
    for key in keys:
        ia, ib = la.find_layer(*key), lb.find_layer(*key)
        x = _region(ta, ia) ^ _region(tb, ib)
        out.append(LayerDiff(key[0], key[1], names.get(key, f"{key[0]}/{key[1]}"),
                             _shape_count(la, pa, ia), _shape_count(lb, pb, ib),
                             x.count(), round(x.area() * la.dbu * la.dbu, 6)))
    return LayoutDiff(str(a), str(b), tuple(out))
