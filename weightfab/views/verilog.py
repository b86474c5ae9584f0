"""A Verilog behavioural model of an engine's ROM macro, holding the words read back from the layout.

The model follows the drawn circuit's read: on the clock's rising edge with ``en`` high the word at
``addr`` appears on ``dout`` after the clock-to-output delay; while the clock is low the bitlines
precharge and ``dout`` is all zeros. An address past the last wordline reads zeros (no wordline is
selected). Bit j of a word is bitline j: column n·bits + t holds bit t (LSB first, two's complement)
of output channel n; the word at address m holds every output channel's weight for input m.
"""
from __future__ import annotations

import numpy as np


def words_hex(bits: np.ndarray) -> list[str]:
    """Per wordline, the word (bit j = column j) as a hex string. bits: [columns, wordlines]."""
    cols, rows = bits.shape
    nhex = (cols + 3) // 4
    packed = np.zeros((rows, nhex * 4), np.uint8)
    packed[:, :cols] = bits.T
    nib = packed.reshape(rows, nhex, 4) @ np.array([1, 2, 4, 8], np.uint8)
    digits = np.array(list("0123456789abcdef"))
    return ["".join(digits[n[::-1]]) for n in nib]


def write_verilog(prefix: str, bits: np.ndarray, nbits: int, tco_ns: float = 1.0, source: str = "") -> str:
    """The module ``<prefix>_macro``. bits: [columns, wordlines] as read back; nbits: address width."""
    bits = np.asarray(bits, np.uint8)
    cols, rows = bits.shape
    depth = 1 << nbits
    if rows > depth:
        raise ValueError(f"{rows} wordlines do not fit {nbits} address bits")
    m = f"{prefix}_macro"
    lines = [f"// {m}: {rows} words x {cols} bits, read back from the layout{(' ' + source) if source else ''}",
             "// read: posedge clk with en -> dout = word[addr] after TCO; clk low -> dout = 0 (precharge)",
             "`timescale 1ns/1ps",
             f"module {m} (", f"    input  wire [{nbits - 1}:0] {prefix}_addr,", f"    input  wire {prefix}_clk,",
             f"    input  wire {prefix}_en,", f"    output reg  [{cols - 1}:0] {prefix}_dout", ");",
             f"  parameter real TCO = {tco_ns:.4f};",
             f"  reg [{cols - 1}:0] mem [0:{depth - 1}];", "  integer i;", "  initial begin",
             f"    for (i = 0; i < {depth}; i = i + 1) mem[i] = {cols}'d0;"]
    for w, h in enumerate(words_hex(bits)):
        if bits[:, w].any():
            lines.append(f"    mem[{w}] = {cols}'h{h};")
    lines += [f"    {prefix}_dout = {cols}'d0;", "  end",
              f"  always @(posedge {prefix}_clk) if ({prefix}_en) {prefix}_dout <= #(TCO) mem[{prefix}_addr];",
              f"  always @(negedge {prefix}_clk) {prefix}_dout <= {cols}'d0;", "endmodule", ""]
    return "\n".join(lines)
