"""Block dedup: the counted keys (narrow weights) and the sorted keys (int8) give np.unique's rows and
inverse, in its lexicographic order."""
from __future__ import annotations

import numpy as np
import pytest

from weightfab.mapping.dedup import DENSE_KEYS, _unique_rows


@pytest.mark.parametrize("k", [2, 4, 6, 8, 10])
@pytest.mark.parametrize("lo,hi", [(-7, 7), (-1, 1), (-2, 1), (0, 0), (-128, 127), (-40, 3)])
def test_unique_rows_equal_numpy_unique(k, lo, hi):
    rng = np.random.default_rng(k * 1000 + hi - lo)
    rows = rng.integers(lo, hi + 1, (5000, k)).astype(np.int8)
    unique, inverse = _unique_rows(rows)
    ref, ref_inv = np.unique(rows, axis=0, return_inverse=True)
    assert unique.dtype == np.int8 and np.array_equal(unique, ref)
    assert np.array_equal(inverse, ref_inv.reshape(-1)) and np.array_equal(unique[inverse], rows)


def test_both_key_paths_are_taken_and_empty_input_works():
    assert 15 ** 4 <= DENSE_KEYS < 255 ** 4   # int4 blocks of 4 are counted, int8 ones sorted
    unique, inverse = _unique_rows(np.zeros((0, 4), np.int8))
    assert unique.shape == (0, 4) and inverse.shape == (0,)
