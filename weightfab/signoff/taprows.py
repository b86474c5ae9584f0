"""Arrays with substrate tap rows (rom/geometry.py TapPlan): a tap row fills one island slot, so
an engine's bit pairs stand in runs of regular placements one slot apart. Readback joins the runs
into one array, reads the bits on the grid of slots (``physical``) and drops the tap rows' slots
(``drop_tap_rows``): a programming shape on a tap row is on no bit site."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .tiecols import col_x, groups_of


def join_tap_runs(arrays: list) -> list:
    """One array per engine: runs of the same columns, pitch and drains whose islands stand one
    slot apart (a tap row between them) are joined; the tap rows' slots are kept in ``tap_slots``."""
    key = lambda a: (a.x0, a.px, a.py, a.cols, a.drains, a.program_layer)   # noqa: E731
    out: list = []
    for a in sorted(arrays, key=lambda a: (key(a), a.y0)):
        last = out[-1] if out else None
        if last is not None and key(last) == key(a):
            slots = last.rows // 2 + len(last.tap_slots)
            if a.y0 == last.y0 + (slots + 1) * last.py:
                b0, b1 = last.bbox, a.bbox
                out[-1] = replace(last, rows=last.rows + a.rows, tap_slots=last.tap_slots + (slots,),
                                  bbox=(min(b0[0], b1[0]), min(b0[1], b1[1]), max(b0[2], b1[2]), max(b0[3], b1[3])))
                continue
        out.append(a)
    out.sort(key=lambda a: (a.bbox[0], a.bbox[1]))
    return out


def physical(a):
    """The array on its grid of slots: tap rows read as two wordlines each (no tap slots)."""
    return replace(a, rows=a.rows + 2 * len(a.tap_slots), tap_slots=()) if a.tap_slots else a


def island_slots(a) -> np.ndarray:
    """The slot of each island of ``a``."""
    taps = np.asarray(a.tap_slots, np.int64)
    slots = np.arange(a.rows // 2 + len(taps))
    return slots[~np.isin(slots, taps)]


def drop_tap_rows(arrays: list, bits: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Bits [cols, rows] of each array from its bits on the grid of slots, and the centres (x2) of
    the programming shapes found on tap rows' slots (on no bit site)."""
    out, stray = [], [np.zeros((0, 2), np.int64)]
    for a, b in zip(arrays, bits):
        if not a.tap_slots:
            out.append(b)
            continue
        keep = np.stack([2 * island_slots(a), 2 * island_slots(a) + 1], 1).ravel()
        out.append(np.ascontiguousarray(b[:, keep]))
        tap_rows = np.stack([2 * np.asarray(a.tap_slots), 2 * np.asarray(a.tap_slots) + 1], 1).ravel()
        col, row = np.nonzero(b[:, tap_rows])
        row = tap_rows[row]
        x = col_x(a, col)
        y = a.y0 + (row // 2) * a.py + np.asarray(a.drains)[row % 2]
        stray.append(2 * np.stack([x, y], 1).astype(np.int64))
    return out, np.concatenate(stray)


def site_y(a, wordline: int) -> int:
    """y of wordline ``wordline``'s bit sites in array ``a``."""
    return a.y0 + int(island_slots(a)[wordline // 2]) * a.py + a.drains[wordline % 2]


def runs_of(a) -> list:
    """The runs of islands between ``a``'s tap rows, each as an array of its own (no tap slots),
    each group of columns between tie columns too (tiecols.py): one regular placement of the
    bit pair each."""
    if not a.tap_slots:
        return groups_of(a)
    bounds = [-1, *a.tap_slots, a.rows // 2 + len(a.tap_slots)]
    return [g for s0, s1 in zip(bounds[:-1], bounds[1:]) if s1 - s0 > 1
            for g in groups_of(replace(a, y0=a.y0 + (s0 + 1) * a.py, rows=2 * (s1 - s0 - 1), tap_slots=()))]
