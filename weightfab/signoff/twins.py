"""Engines alike but for their weights: the fast DRC checks the rest of them once.

Two engines of one shape hold the same periphery and the same arrays; only their programming
shapes differ, and the programming proof (fastdrc.py) already bounds those by a template with
every site programmed. So when several cells placed once by the top cell (engine or macro cells)
are *twins*, one of them stands for the others in the templates of every rule that reaches a
bounded distance, and the others are left out of the file the templates are cut from.

Cells are twins when all they hold but their references to programming-only cells (no reference,
shapes on the programming layer only: the weight blocks) is equal: their own shapes on every layer
(cell coordinates, in file order), and their other references (cell, origin, orientation and every
offset of the repetition). A twin is left out only when, besides:

* it and the twin that stays are each *isolated*: nothing else of the file (another engine's
  bounding box, another reference of the top cell, a top-level shape on a layer a rule reads)
  within the rules' halo of its bounding box, so every window of a rule's reach that meets it holds
  nothing from outside it, as in the one that stays;
* its programming shapes that are not via boxes on bit sites (checked as drawn) are, relative to
  its origin, exactly those of the twin that stays (the periphery's own contacts): an off-site
  weight shape in a twin keeps that twin in.

A rule of kind max_distance (a diffusion within v of a tap) is not bounded that way: another
engine's taps within v may help one twin and not another. Those rules are cut from the whole file.
"""
from __future__ import annotations

import hashlib

import gdstk
import numpy as np

from .structure import IDENT


def once_placed(st) -> list[str]:
    """The cells the top cell places exactly once, unrotated, unmirrored, without repetition."""
    out = []
    for r in st.cells[st.top].references:
        if not isinstance(r.cell, gdstk.Cell) or r.rotation or r.x_reflection or r.magnification != 1:
            continue
        if r.repetition.size == 0:
            out.append(r.cell.name)
    return [n for n in dict.fromkeys(out) if len(st.places.get(n, [])) == 1 and st.places[n][0][0] == IDENT
            and len(st.places[n][0][1]) == 1]


def groups(st, prog_gds) -> list[list[str]]:
    """Twin groups (two or more names, the first the one that stays), in file order."""
    names = once_placed(st)
    if len(names) < 2:
        return []
    prog_only = {n for n, c in st.cells.items() if not c.references and st.own_layers(n) <= {prog_gds}}
    by: dict[bytes, list[str]] = {}
    for n in names:
        by.setdefault(_signature(st, n, prog_only), []).append(n)
    return [g for g in by.values() if len(g) > 1]


def _signature(st, name: str, prog_only: set) -> bytes:
    h = hashlib.sha256()
    for layer in sorted(st.own_layers(name)):
        b, ps = st.own_shapes(name, layer)
        h.update(repr((layer, len(b), len(ps))).encode())
        h.update(np.ascontiguousarray(b).tobytes())
        for p in ps:
            h.update(np.ascontiguousarray(p).tobytes())
    for r in st.cells[name].references:
        if isinstance(r.cell, gdstk.Cell) and r.cell.name in prog_only:
            continue
        cell = r.cell.name if isinstance(r.cell, gdstk.Cell) else str(r.cell)
        h.update(repr((cell, tuple(r.origin), r.rotation, r.x_reflection, r.magnification)).encode())
        rep = r.repetition
        if rep.size:
            h.update(np.round(np.asarray(rep.get_offsets()) * st.scale).astype(np.int64).tobytes())
    return h.digest()


def bboxes(st, names: list[str]) -> dict[str, np.ndarray]:
    """Bounding box (dbu, top coordinates) of each once-placed cell."""
    out = {}
    for n in names:
        bb = st.cells[n].bounding_box()
        if bb is None:
            continue
        org = st.places[n][0][1][0]
        out[n] = np.rint(np.array([*bb[0], *bb[1]]) * st.scale).astype(np.int64) + np.tile(org, 2)
    return out


def isolated(st, names: list[str], halo: int, rule_layers: set) -> set[str]:
    """The cells of ``names`` (placed once) with nothing else of the file within ``halo`` of their
    bounding boxes."""
    once = once_placed(st)
    box = bboxes(st, once)
    others = []
    for r in st.cells[st.top].references:     # every other reference of the top cell, whole
        if isinstance(r.cell, gdstk.Cell) and r.cell.name in box and r.cell.name in once:
            continue
        bb = r.bounding_box()
        if bb is None:
            continue
        others.append(np.rint(np.array([*bb[0], *bb[1]]) * st.scale).astype(np.int64))
    top_shapes = [(p.layer, p.datatype) for p in st.cells[st.top].polygons]
    top_shapes += [(p.layers[0], p.datatypes[0]) for p in st.cells[st.top].paths]
    if any(ly in rule_layers for ly in top_shapes):
        return set()
    out = set()
    for n in names:
        if n not in box:
            continue
        b = box[n]
        near = [box[m] for m in once if m != n and m in box] + others
        if not any(_within(b, o, halo) for o in near):
            out.add(n)
    return out


def _within(a: np.ndarray, b: np.ndarray, d: int) -> bool:
    return not (b[0] >= a[2] + d or b[2] <= a[0] - d or b[1] >= a[3] + d or b[3] <= a[1] - d)


def left_out(st, groups_: list[list[str]], halo: int, rule_layers: set, loose_b: np.ndarray,
             loose_p: list) -> dict[str, str]:
    """Twin -> the twin that stays, for every twin that may be left out (see the module's rules)."""
    members = [n for g in groups_ for n in g]
    alone = isolated(st, members, halo, rule_layers)
    box = bboxes(st, members)
    c2 = loose_b[:, :2] + loose_b[:, 2:]
    pbb = np.array([[p[:, 0].min(), p[:, 1].min()] for p in loose_p], np.int64).reshape(-1, 2)
    out = {}
    for g in groups_:
        keep = g[0]
        if keep not in alone:
            continue
        ref = _loose_in(c2, box[keep], st.places[keep][0][1][0])
        for n in g[1:]:
            b = box.get(n)
            if n not in alone or b is None:
                continue
            if len(pbb) and ((pbb >= b[:2]) & (pbb <= b[2:])).all(axis=1).any():
                continue
            if np.array_equal(_loose_in(c2, b, st.places[n][0][1][0]), ref):
                out[n] = keep
    return out


def _loose_in(c2: np.ndarray, b: np.ndarray, org: np.ndarray) -> np.ndarray:
    """The loose programming shapes' centres (x2) inside box ``b``, relative to ``org``, sorted."""
    inside = (c2[:, 0] >= 2 * b[0]) & (c2[:, 0] <= 2 * b[2]) & (c2[:, 1] >= 2 * b[1]) & (c2[:, 1] <= 2 * b[3])
    rel = c2[inside] - 2 * org
    return rel[np.lexsort((rel[:, 1], rel[:, 0]))]


def outside(b: np.ndarray, polys: list, boxes_of: list[np.ndarray]):
    """The boxes ``b`` [N, 4] and polygons not inside any of ``boxes_of``."""
    if not boxes_of:
        return b, polys
    bx = np.array(boxes_of, np.int64)

    def out_mask(lo, hi):
        inside = ((lo[:, None, 0] >= bx[None, :, 0]) & (hi[:, None, 0] <= bx[None, :, 2])
                  & (lo[:, None, 1] >= bx[None, :, 1]) & (hi[:, None, 1] <= bx[None, :, 3]))
        return ~inside.any(axis=1)
    keep_b = b[out_mask(b[:, :2], b[:, 2:])]
    keep_p = [p for p in polys if out_mask(p.min(axis=0)[None], p.max(axis=0)[None])[0]]
    return keep_b, keep_p
