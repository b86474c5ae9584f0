"""Where the unique blocks are reused, read from the layout itself (numpy, no loop per block).

The bits of every ROM array come from the readback (signoff/readback.py); the report says which
layer each array holds, its bits per weight and the block size K. A block is K wordlines of one
output channel's bit columns; blocks with the same bits are the same layout cell. For every block
position this module gives how many positions of the same layer hold the same bits (its reuse
count); an all-zero block draws no cell and counts as 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WeightfabError
from ..tech.pdk import Pdk


@dataclass(frozen=True)
class EngineReuse:
    name: str
    bbox_um: tuple[float, float, float, float]   # the array (implant) box
    x0_um: float        # first bitline centre
    y0_um: float        # first island bottom
    col_um: float       # bitline pitch
    row_um: float       # wordline-pair (island) pitch
    bits: int           # bitlines per output channel
    block: int          # wordlines per block
    counts: np.ndarray  # [J, N] uses of the block's bit pattern in this layer; 0 for all-zero blocks
    corner: np.ndarray  # [cols, rows] bits of the array's lower-left corner (at most 64 x 64)

    @property
    def unique(self) -> int:
        """Distinct non-zero blocks (layout cells) of this layer."""
        c = self.counts[self.counts > 0]
        return int(np.sum(1.0 / c).round()) if c.size else 0

    @property
    def positions(self) -> int:
        return int(self.counts.size)

    @property
    def zero_positions(self) -> int:
        return int(np.count_nonzero(self.counts == 0))


def block_counts(bits: np.ndarray, outputs: int, nb: int, k: int) -> np.ndarray:
    """[cols, rows] bits of one array -> [J, N] reuse counts (0 for all-zero blocks)."""
    cols, rows = bits.shape
    if cols != outputs * nb or rows % k:
        raise WeightfabError(f"array of {cols} bitlines x {rows} wordlines does not hold {outputs} channels of "
                             f"{nb} bits in blocks of {k} wordlines")
    j = rows // k
    blk = bits.reshape(outputs, nb, j, k).transpose(2, 0, 1, 3).reshape(j * outputs, nb * k)
    packed = np.ascontiguousarray(np.packbits(blk, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    per = counts[inv.ravel()].reshape(j, outputs)
    per[~blk.any(axis=1).reshape(j, outputs)] = 0
    return per


def read_reuse(layout: str | Path, pdk: Pdk, layers: list[dict], block: int) -> list[EngineReuse]:
    """Reuse maps of every engine of ``layout``; ``layers`` are the report's per-layer entries."""
    from ..signoff.readback import read_bits
    arrays, bits, _, dbu = read_bits(layout, pdk)
    if len(arrays) != len(layers):
        raise WeightfabError(f"{layout}: {len(arrays)} ROM arrays, the report lists {len(layers)} layers")
    out = []
    for a, b, lay in zip(arrays, bits, layers):
        counts = block_counts(b, int(lay["outputs"]), int(lay["bits"]), int(block))
        out.append(EngineReuse(lay["name"], tuple(v * dbu for v in a.bbox), a.x0 * dbu, a.y0 * dbu,
                               a.px * dbu, a.py * dbu, int(lay["bits"]), int(block), counts,
                               b[:64, :64].copy()))
    return out
