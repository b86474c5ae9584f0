"""fastdrc._site_index (which array's bit site a programming shape's centre is on) against the
plain test of every centre against every array: arrays in columns apart (each centre tested
against the one array that could hold it) and arrays that overlap (every array tried)."""
from __future__ import annotations

import numpy as np

from weightfab.signoff import fastdrc
from weightfab.signoff.readback import Array


def _plain(c2, arrays):
    k = np.full(len(c2), -1, np.int64)
    for i, a in enumerate(arrays):
        cx, rx = np.divmod(c2[:, 0] - 2 * a.x0, 2 * a.px)
        iy, ry = np.divmod(c2[:, 1] - 2 * a.y0, 2 * a.py)
        ok = ((rx == 0) & (cx >= 0) & (cx < a.cols) & (iy >= 0) & (iy < a.rows // 2)
              & ((ry == 2 * a.drains[0]) | (ry == 2 * a.drains[1])))
        k[ok & (k < 0)] = i
    return k


def _array(x0, y0, cols, rows):
    return Array(x0, y0, 690, 1420, cols, rows, (145, 1005), (0, 0, 0, 0))


def _centres(arrays, rng, n=20000):
    """Sites of every array, sites moved by one unit, and random points around them (x2)."""
    pts = []
    for a in arrays:
        c = rng.integers(0, a.cols, n // len(arrays))
        r = rng.integers(0, a.rows // 2, n // len(arrays))
        d = np.array(a.drains)[rng.integers(0, 2, len(c))]
        pts.append(np.stack([2 * (a.x0 + c * a.px), 2 * (a.y0 + r * a.py + d)], 1))
    on = np.concatenate(pts)
    near = on + rng.integers(-2, 3, on.shape)
    lo, hi = on.min(0) - 4000, on.max(0) + 4000
    far = rng.integers(lo, hi, (n, 2))
    return np.concatenate([on, near, far])


def test_columns_of_arrays_apart():
    rng = np.random.default_rng(1)
    arrays = [_array(10_000, 20_000 + 29_820 * j, 40, 40) for j in range(6)]
    arrays += [_array(60_000, 25_000 + 29_820 * j, 12, 40) for j in range(3)] + [_array(90_000, 9_000, 3, 8)]
    c2 = _centres(arrays, rng)
    assert fastdrc._candidates(c2, fastdrc._site_boxes(arrays)) is not None
    got = fastdrc._site_index(c2, arrays)
    assert (got == _plain(c2, arrays)).all() and (got >= 0).sum() > len(c2) // 3 and (got < 0).any()


def test_overlapping_arrays_try_every_array():
    rng = np.random.default_rng(2)
    arrays = [_array(10_000, 20_000, 40, 40), _array(10_000 + 345, 20_000 + 710, 40, 40), _array(12_000, 40_000, 8, 8)]
    c2 = _centres(arrays, rng)
    assert fastdrc._candidates(c2, fastdrc._site_boxes(arrays)) is None
    assert (fastdrc._site_index(c2, arrays) == _plain(c2, arrays)).all()
