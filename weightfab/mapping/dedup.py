"""QuantizedNetwork -> BlockLibrary: exact deduplication of weight blocks.

A block is K consecutive weights of one output channel (the input dimension is padded
with zeros to a multiple of K). Identical blocks share one library entry; the layout
draws each entry once, as a cell, and references it at every use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import WeightfabError
from ..quant.quantize import QuantizedNetwork

DEFAULT_BLOCK = 4


@dataclass(frozen=True)
class LayerBlocks:
    name: str
    shape: tuple[int, int]   # (outputs N, inputs M)
    bits: int
    block: int               # K
    unique: np.ndarray       # [U, K] int8 block values, sorted lexicographically
    index: np.ndarray        # [N, J] int64 index into ``unique`` for every block position

    @property
    def blocks(self) -> int:
        return int(self.index.size)

    @property
    def rows(self) -> int:
        """Wordlines of this layer's array: inputs padded to a multiple of K."""
        return self.index.shape[1] * self.block

    @property
    def columns(self) -> int:
        return self.shape[0] * self.bits

    def weights(self) -> np.ndarray:
        """Rebuild the [N, M] integer weight matrix from the library (lossless)."""
        n, j = self.index.shape
        return self.unique[self.index].reshape(n, j * self.block)[:, : self.shape[1]]


@dataclass(frozen=True)
class BlockLibrary:
    block: int
    layers: tuple[LayerBlocks, ...]


def to_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Signed integers -> two's-complement bits along a new last axis, LSB first."""
    u = np.asarray(values).astype(np.int16) & ((1 << bits) - 1)
    return ((u[..., None] >> np.arange(bits)) & 1).astype(np.uint8)


def from_bits(b: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of ``to_bits``: [..., bits] -> signed integers (int8)."""
    u = (b.astype(np.int16) << np.arange(bits)).sum(axis=-1)
    return np.where(u >= 1 << (bits - 1), u - (1 << bits), u).astype(np.int8)


def check_block(block: int) -> int:
    if not isinstance(block, int) or block < 2 or block % 2 or block > 256:
        raise WeightfabError(f"--block {block}: must be an even number from 2 to 256 "
                             "(bit rows come in mirrored pairs that share a source contact)")
    return block


DENSE_KEYS = 1 << 24  # below this many possible blocks, dedup counts keys instead of sorting them


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(rows, axis=0) in lexicographic order. When the blocks can take few values (int4 and
    narrower: 15^4 = 50,625 blocks of 4), each block is its number in base (max - min + 1), most
    significant first, and the keys present are counted (no sort); else blocks of up to 8 weights
    are packed into one order-preserving uint64 key (value + 128), which sorts ~15x faster than
    np.unique on rows."""
    k = rows.shape[1]
    if rows.size and k <= 8:
        lo = int(rows.min())
        base = int(rows.max()) - lo + 1
        if base ** k <= DENSE_KEYS:
            keys = np.zeros(len(rows), np.int64)
            for c in range(k):
                keys *= base
                keys += rows[:, c] - np.int64(lo)
            present = np.bincount(keys, minlength=base ** k) > 0
            ukeys = np.flatnonzero(present)
            rank = np.cumsum(present) - 1                     # key -> its place among the present keys
            digits = ukeys[:, None] // base ** np.arange(k - 1, -1, -1, dtype=np.int64) % base
            return (digits + lo).astype(np.int8), rank[keys]
    if k > 8:
        u, inv = np.unique(rows, axis=0, return_inverse=True)
        return u, inv.reshape(-1)
    shifts = np.arange(k - 1, -1, -1, dtype=np.uint64) * np.uint64(8)
    keys = ((rows.astype(np.int16) + 128).astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)
    ukeys, inv = np.unique(keys, return_inverse=True)
    unique = (((ukeys[:, None] >> shifts) & np.uint64(0xFF)).astype(np.int16) - 128).astype(np.int8)
    return unique, inv.reshape(-1)


def dedup(qnet: QuantizedNetwork, block: int = DEFAULT_BLOCK) -> BlockLibrary:
    check_block(block)
    layers = []
    for layer in qnet.layers:
        n, m = layer.shape
        j = -(-m // block)
        padded = np.zeros((n, j * block), np.int8)
        padded[:, :m] = layer.weight
        flat = padded.reshape(n * j, block)
        unique, inverse = _unique_rows(flat)
        layers.append(LayerBlocks(layer.name, (n, m), layer.bits, block, unique,
                                  inverse.reshape(n, j).astype(np.int64, copy=False)))
    return BlockLibrary(block, tuple(layers))
