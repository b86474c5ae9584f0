"""The row periphery's logic: address buffers, clock gating, predecoders and the final decode,
as lists of bands (two-cell AND/buffer stages), one list per column of the floorplan.

Address bits n = max(4, ceil(log2 rows)), at most 12 (4096 wordlines per macro; the group lines
the odd wordlines' decoder takes then cross under the array on 97 met2 channel tracks). Group 1 holds
bits [0, n1) and is gated by ce = clk & en; group 2 holds bits [n1, n). Each group is predecoded
in chunks of at most two bits (column B: AND of the chunk's literals, and ce for group 1's
first chunk; a one-bit chunk is one buffer band, whose two cells give the bit and its
complement), then the chunks of a group are combined (column C: AND of two or three chunk
lines, or a buffer). The final decode (column D) is one AND of a group-1 line and a group-2 line per
wordline: wordline w is high while clk and en are high and the address equals w.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import WeightfabError
from .bands import Band

MAX_BITS = 12


def lit(bit: int, value: int) -> str:
    return f"a{bit}" if value else f"ab{bit}"


@dataclass(frozen=True)
class Logic:
    n: int
    groups: tuple[tuple[int, ...], tuple[int, ...]]
    A: tuple[Band, ...]
    B: tuple[Band, ...]
    C: tuple[Band, ...]

    def p_net(self, g: int, j: int) -> str:
        return f"p{g}[{j}]"

    def wl_inputs(self, w: int) -> tuple[str, str]:
        n1 = len(self.groups[0])
        return self.p_net(0, w & ((1 << n1) - 1)), self.p_net(1, w >> n1)


def address_bits(rows: int) -> int:
    n = max(4, math.ceil(math.log2(max(rows, 2))))
    if n > MAX_BITS:
        raise WeightfabError(f"{rows} wordlines: the row decoder drawn here serves at most {1 << MAX_BITS} "
                             "wordlines per macro (bank the layer)")
    return n


def logic(rows: int, prefix: str) -> Logic:
    """Bands of columns A (buffers, clock gate), B (chunk predecoders), C (group lines)."""
    n = address_bits(rows)
    n1 = (n + 1) // 2
    groups = (tuple(range(n1)), tuple(range(n1, n)))
    A = [Band("inv_1", (f"{prefix}_addr[{i}]",), f"a{i}", f"ab{i}", True) for i in range(n)]
    A.append(Band("nand2_1", (f"{prefix}_clk", f"{prefix}_en"), "ce", "ceb"))
    B, C = [], []
    for g, bits in enumerate(groups):
        chunks = [bits[i:i + 2] for i in range(0, len(bits), 2)]
        for k, chunk in enumerate(chunks):
            gate = (g == 0 and k == 0)
            if len(chunk) == 1 and not gate:   # one band gives both lines: c1.Y is the bit, c2.Y its complement
                B.append(Band("inv_1", (lit(chunk[0], 0),), f"c{g}_{k}[0]", f"c{g}_{k}[1]", True))
                continue
            for j in range(1 << len(chunk)):
                ins = tuple(lit(b, (j >> t) & 1) for t, b in enumerate(chunk)) + (("ce",) if gate else ())
                cell = {1: "inv_1", 2: "nand2_1", 3: "nand3_1"}[len(ins)]
                B.append(Band(cell, ins, f"c{g}_{k}[{j}]", f"c{g}_{k}b[{j}]"))
        for j in range(1 << len(bits)):
            ins, shift = [], 0
            for k, chunk in enumerate(chunks):       # the chunk lines this group line is the AND of
                ins.append(f"c{g}_{k}[{(j >> shift) & ((1 << len(chunk)) - 1)}]")
                shift += len(chunk)
            cell = {1: "inv_1", 2: "nand2_1", 3: "nand3_1"}[len(ins)]
            C.append(Band(cell, tuple(ins), f"p{g}[{j}]", f"p{g}b[{j}]"))
    return Logic(n, groups, tuple(A), tuple(B), tuple(C))
