"""Arrays with tie columns (rom/ties.py ColumnPlan): a strapped engine's bit pairs stand in groups
of ``every`` columns, a tie column ``width`` wider than a column pitch between two groups. The
file holds one regular array of bit pairs per group (and per run between tap rows); readback
joins the groups of one implant area into one array (``join_tie_groups``), reads the bits group
by group (``groups_of``: each a regular array) and puts them side by side (``merge_bits``). The
tie columns' contacts on the programming layer (mcon, under each wordline's strap) are fixed
geometry: ``drop_ties`` takes them out of the shapes on no bit site, and no others."""
from __future__ import annotations

from dataclasses import replace

import numpy as np


def col_x(a, col):
    """Centre x of column ``col`` (int or numpy) of array ``a``."""
    col = np.asarray(col) if not isinstance(col, int) else col
    return a.x0 + col * a.px + ((col // a.tie_every) * a.tie_width if a.tie_every else 0)


def col_of_x(a, x: int) -> tuple[int, int]:
    """The column whose centre is nearest left of x, or right of it within half a pitch, and x's
    offset from that centre (0: on it); a point in a tie column gives an offset that is not 0."""
    if not a.tie_every:
        col, r = divmod(x - a.x0 + a.px // 2, a.px)
        return col, r - a.px // 2
    g, r = divmod(x - a.x0 + a.px // 2, a.tie_every * a.px + a.tie_width)
    c, rx = divmod(r, a.px)
    return g * a.tie_every + min(c, a.tie_every - 1), (rx - a.px // 2) if c < a.tie_every else a.px


def join_tie_groups(arrays: list, width: int) -> list:
    """One array per engine: arrays of the same rows, pitch, drains, tap rows and implant area
    standing side by side ``width`` more than their columns' pitch apart, all but the last of the
    same column count (the groups), joined with ``tie_every`` and ``tie_width`` set."""
    if not width or len(arrays) < 2:
        return arrays
    key = lambda a: (a.y0, a.px, a.py, a.rows, a.drains, a.program_layer, a.tap_slots, a.bbox)   # noqa: E731
    out: list = []
    run: list = []
    for a in sorted(arrays, key=lambda a: (key(a), a.x0)) + [None]:
        if run and a is not None and key(a) == key(run[-1]) and run[-1].cols == run[0].cols \
                and a.x0 == run[-1].x0 + run[-1].cols * a.px + width and a.cols <= run[0].cols:
            run.append(a)
            continue
        if run:
            out.append(run[0] if len(run) == 1 else
                       replace(run[0], cols=sum(r.cols for r in run), tie_every=run[0].cols, tie_width=width))
        run = [a]
    out.sort(key=lambda a: (a.bbox[0], a.bbox[1]))
    return out


def groups_of(a) -> list:
    """The groups of columns of ``a`` between its tie columns, each a regular array (no ties) whose
    box ends one unit short of the tie columns' centres (the boxes are apart along x)."""
    if not a.tie_every:
        return [a]
    half = (a.px + a.tie_width) // 2
    out = []
    for c0 in range(0, a.cols, a.tie_every):
        n = min(a.tie_every, a.cols - c0)
        x0 = int(col_x(a, c0))
        left = a.bbox[0] if c0 == 0 else x0 - half + 1
        right = a.bbox[2] if c0 + n == a.cols else x0 + (n - 1) * a.px + half - 1
        out.append(replace(a, x0=x0, cols=n, tie_every=0, tie_width=0, bbox=(left, a.bbox[1], right, a.bbox[3])))
    return out


def split(arrays: list) -> tuple[list, list[int]]:
    """Every array's groups, in order, and how many each array has."""
    parts = [groups_of(a) for a in arrays]
    return [g for p in parts for g in p], [len(p) for p in parts]


def merge_bits(bits: list[np.ndarray], counts: list[int]) -> list[np.ndarray]:
    """Per array, its groups' bits [cols, rows] side by side."""
    out, at = [], 0
    for n in counts:
        out.append(bits[at] if n == 1 else np.concatenate(bits[at:at + n], axis=0))
        at += n
    return out


def tie_centres(a) -> np.ndarray:
    """x of ``a``'s tie columns: before column 0, between its groups and after its last column."""
    if not a.tie_every:
        return np.zeros(0, np.int64)
    half = (a.px + a.tie_width) // 2
    inner = np.arange(0, a.cols, a.tie_every, dtype=np.int64)
    return np.concatenate([col_x(a, inner) - half, [int(col_x(a, a.cols - 1)) + half]])


def drop_ties(pts: np.ndarray, arrays: list, ys: tuple[int, int] | None, slots_of) -> np.ndarray:
    """The centres (x2) of ``pts`` but those of a tie column's contacts: at a tie column's centre,
    ``ys`` (the two pads' y in an island's slot) above an island's slot (``slots_of(a)``)."""
    if ys is None or not len(pts):
        return pts
    keep = np.ones(len(pts), bool)
    for a in arrays:
        t = tie_centres(a)
        if not len(t):
            continue
        at_x = np.isin(pts[:, 0], 2 * t)
        slot, ry = np.divmod(pts[:, 1] - 2 * a.y0, 2 * a.py)
        isl = np.isin(slot, slots_of(a))
        keep &= ~(at_x & isl & ((ry == 2 * ys[0]) | (ry == 2 * ys[1])))
    return pts[keep]
