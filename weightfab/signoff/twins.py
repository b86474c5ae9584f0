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
  bounding box, another reference of the top cell, a top-level shape on a layer a rule reads, a
  programming shape off the bit sites outside every engine's box) within the rules' halo of its
  bounding box, so every window of a rule's reach that meets it holds nothing from outside it, as
  in the one that stays. An engine's box leaves its weight blocks out: their shapes are on bit
  sites of the arrays (inside the box) or off-site, and then placed as loose shapes;
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


def find(st, prog_gds, halo: int, rule_layers: set, loose_b: np.ndarray, loose_p: list):
    """(twin -> the twin that stays, for every twin that may be left out; bounding box of each
    once-placed cell (dbu, top coordinates; its weight blocks left out))."""
    names = once_placed(st)
    if len(names) < 2:
        return {}, {}
    prog_only = {n for n, c in st.cells.items() if not c.references and st.own_layers(n) <= {prog_gds}}
    by: dict[bytes, list[str]] = {}
    box = {}
    for n in names:
        sig, b = _scan(st, n, prog_only)
        by.setdefault(sig, []).append(n)
        if b is not None:
            box[n] = b
    gs = [g for g in by.values() if len(g) > 1]
    if not gs:
        return {}, box
    return _left_out(st, gs, box, halo, rule_layers, loose_b, loose_p), box


def _scan(st, name: str, prog_only: set):
    """The cell's signature and its bounding box without the weight blocks (those lie on bit sites
    of arrays, or are loose shapes, which the caller places)."""
    h = hashlib.sha256()
    lo, hi = [], []
    for layer in sorted(st.own_layers(name)):
        b, ps = st.own_shapes(name, layer)
        h.update(repr((layer, len(b), len(ps))).encode())
        h.update(np.ascontiguousarray(b).tobytes())
        for p in ps:
            h.update(np.ascontiguousarray(p).tobytes())
        if len(b):
            lo.append(b[:, :2].min(axis=0))
            hi.append(b[:, 2:].max(axis=0))
        for p in ps:
            lo.append(p.min(axis=0))
            hi.append(p.max(axis=0))
    for r in st.cells[name].references:
        if isinstance(r.cell, gdstk.Cell) and r.cell.name in prog_only:
            continue
        cell = r.cell.name if isinstance(r.cell, gdstk.Cell) else str(r.cell)
        h.update(repr((cell, tuple(r.origin), r.rotation, r.x_reflection, r.magnification)).encode())
        rep = r.repetition
        if rep.size:
            h.update(np.round(np.asarray(rep.get_offsets()) * st.scale).astype(np.int64).tobytes())
        bb = r.bounding_box()
        if bb is not None:
            q = np.rint(np.array(bb) * st.scale).astype(np.int64)
            lo.append(q[0])
            hi.append(q[1])
    if not lo:
        return h.digest(), None
    org = st.places[name][0][1][0]
    return h.digest(), np.concatenate([np.min(lo, axis=0) + org, np.max(hi, axis=0) + org])


def _others(st, box: dict, rule_layers: set, loose_b: np.ndarray, loose_p: list) -> list | None:
    """Boxes of everything in the file outside the once-placed cells' boxes: the top cell's other
    references and the loose programming shapes outside every such box; None when the top cell
    has a shape of its own on a layer a rule reads."""
    top = st.cells[st.top]
    if any((p.layer, p.datatype) in rule_layers for p in top.polygons) or \
            any((p.layers[0], p.datatypes[0]) in rule_layers for p in top.paths):
        return None
    out = []
    for r in top.references:
        if isinstance(r.cell, gdstk.Cell) and r.cell.name in box and r.repetition.size == 0:
            continue
        bb = r.bounding_box()
        if bb is not None:
            out.append(np.rint(np.array([*bb[0], *bb[1]]) * st.scale).astype(np.int64))
    loose = [loose_b] + [np.array([[*p.min(axis=0), *p.max(axis=0)]], np.int64) for p in loose_p]
    lb = np.concatenate(loose) if loose else np.zeros((0, 4), np.int64)
    if len(lb) and box:
        bx = np.array(list(box.values()), np.int64)
        inside = ((lb[:, None, 0] >= bx[None, :, 0]) & (lb[:, None, 2] <= bx[None, :, 2])
                  & (lb[:, None, 1] >= bx[None, :, 1]) & (lb[:, None, 3] <= bx[None, :, 3])).any(axis=1)
        out += list(lb[~inside])
    return out


def _within(a: np.ndarray, b: np.ndarray, d: int) -> bool:
    return not (b[0] >= a[2] + d or b[2] <= a[0] - d or b[1] >= a[3] + d or b[3] <= a[1] - d)


def _left_out(st, groups_: list[list[str]], box: dict, halo: int, rule_layers: set, loose_b: np.ndarray,
              loose_p: list) -> dict[str, str]:
    others = _others(st, box, rule_layers, loose_b, loose_p)
    if others is None:
        return {}
    alone = {n for n in box if not any(_within(box[n], o, halo) for o in others)
             and not any(_within(box[n], box[m], halo) for m in box if m != n)}
    c2 = loose_b[:, :2] + loose_b[:, 2:]
    pbb = np.array([[p[:, 0].min(), p[:, 1].min()] for p in loose_p], np.int64).reshape(-1, 2)
    out = {}
    for g in groups_:
        keep = g[0]
        if keep not in alone:
            continue
        ref = _loose_in(c2, box[keep], st.places[keep][0][1][0])
        for n in g[1:]:
            b = box[n] if n in alone else None
            if b is None or (len(pbb) and ((pbb >= b[:2]) & (pbb <= b[2:])).all(axis=1).any()):
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
