"""The block references' order (rom/writer.py): phases computed per block column and keys in the
narrowest integer give the same phases, uses and order as the per-use definition (every use's
slot shifts, made unique, keys int64, a stable sort)."""
from __future__ import annotations

import numpy as np
import pytest

from weightfab.rom import writer
from weightfab.rom.geometry import TapPlan


def _per_use(index, k, taps):
    n_idx, j_idx = np.divmod(np.arange(index.size), index.shape[1])
    isl0 = j_idx * (k // 2)
    shift = taps.slot(isl0[:, None] + np.arange(k // 2)[None, :]) - taps.slot(isl0)[:, None] - np.arange(k // 2)
    phases, phase = np.unique(shift, axis=0, return_inverse=True)
    key = index.ravel().astype(np.int64) * len(phases) + phase.ravel()
    order = np.argsort(key, kind="stable")
    return phases, key[order], order, n_idx[order], taps.slot(isl0[order])


@pytest.mark.parametrize("n,j,u,before,k", [(300, 200, 5000, (), 4), (300, 200, 5000, (51, 151, 301), 4),
                                            (40, 30, 30000, (7, 20), 8), (64, 40, 5, (3, 7, 11), 6),
                                            (50, 20, 1 << 16, (), 4), (1, 1, 1, (), 4)])
def test_use_order_matches_per_use_definition(n, j, u, before, k):
    taps = TapPlan(j * k // 2, before)
    index = np.random.default_rng(n + j).integers(0, u, (n, j))
    want = _per_use(index, k, taps)
    phases, phase_j, slot_j = writer._phases(j, k, taps)
    key, order = writer._use_order(index, phase_j, len(phases))
    n_o, j_o = np.divmod(order, j)
    got = (phases, key[order], order, n_o, slot_j[j_o])
    for w, g in zip(want, got):
        assert np.array_equal(np.asarray(w, np.int64), np.asarray(g, np.int64))
    assert (len(phases) > 1) == bool(before)     # every tap plan here has blocks straddling a tap row
