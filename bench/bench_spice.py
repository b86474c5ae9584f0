"""Read access time of a NOR ROM bank vs. its wordline count (bitline length) and bitline count
(wordline length), simulated in ngspice with the SKY130 tt/ss device models at 1.8 V, 25 C.

The circuit is weightfab's generated macro (signoff/romnet.py: address buffers, predecoders,
clock-gated final decode, wordline drivers sized for the wordline, precharge + keeper + sense
inverter) reduced to its critical path: the wordline read (row 0) and the last wordline, the first
and the last bitline; every other bit's gate (on the wordline) and drain (on the bitline) is kept
as a lumped load on its RC section, the decoder's undrawn gates on the predecode lines. Poly
wordlines and met1 bitlines are RC lines from the bitcell pitch (0.69 x 0.71 µm) and the model
package's sheet resistance and capacitances. Every bit of the two bitlines is 1 (largest drain
load); the read is of the far (last) bitline.

    python bench/bench_spice.py [--corners tt,ss] [--rows 64,128,256,512] [--cols 64,128,256,512]

prints one line per bank shape: access time (clock rise to dout 50 %) at each corner.

    python bench/bench_spice.py --wide 2400 --rows 784 --banks 64,128,256 --straps 32,64,128

a wide engine (the Keras MLP's fc1: 784 wordlines x 2,400 bitlines) read three ways: one poly
wordline across it all; split into banks of B bitlines side by side (each bank its own final
decode and wordline drivers, the predecode lines running over every bank in met2; the far bank
is read); or one array with the poly wordline strapped in met2 every S columns.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from weightfab.signoff.characterize import Bench, simulate_reads
from weightfab.signoff.romnet import rom_netlist
from weightfab.signoff.spice import wire_rc


def wordline_elmore(cols: int, corner: str) -> float:
    """0.5·R·C of a poly wordline over ``cols`` bits (gate area at 8.3 fF/µm², tox 4.15 nm), s."""
    r, c = wire_rc(corner).wire("poly", cols * 0.69, 0.15)
    return 0.5 * r * (c + cols * 0.42 * 0.15 * 8.3e-15)


BANK_EDGE_UM = 20.0   # the width a bank adds beside its array: final decode and drivers on both sides (µm)


def bank_access(rows: int, cols: int, corner: str, period: float, banks: int = 1, strap: int = 0,
                tries: int = 1) -> tuple[float, bool, float, float]:
    """(access s, reads right, ngspice s, period s); a failed read is retried ``tries`` - 1 times at
    twice the period (a read that does not finish while the clock is high is sensed wrong)."""
    span = strap if strap else cols
    period = max(period, 12 * wordline_elmore(span, corner))
    bits = np.zeros((cols, rows), np.uint8)
    bits[[0, cols - 1], :] = 1
    nl = rom_netlist(bits, "bank", wire_rc(corner), cols_sim=np.array([0, cols - 1]), rows_sim=np.array([0, rows - 1]),
                     banks=banks, bank_pitch_um=cols * 0.69 + BANK_EDGE_UM, strap=strap)
    t0 = time.perf_counter()
    for k in range(tries):
        r = simulate_reads(nl, np.array([0, rows - 1]), np.ones((2, 2), np.uint8), corner, Bench(period=period))
        if r.ok or k == tries - 1:
            return float(r.access.max()), r.ok, time.perf_counter() - t0, period
        period *= 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corners", default="tt,ss")
    ap.add_argument("--rows", default="64,128,256,512")
    ap.add_argument("--cols", default="64,128,256,512")
    ap.add_argument("--period", type=float, default=10.0, help="clock period, ns (at least 12 x the wordline's RC)")
    ap.add_argument("--wide", type=int, default=0, help="bitlines of one wide engine: compare banks and straps")
    ap.add_argument("--banks", default="64,128,256", help="bank widths (bitlines) for --wide")
    ap.add_argument("--straps", default="32,64,128", help="strap intervals (columns) for --wide")
    a = ap.parse_args()
    corners = a.corners.split(",")
    if a.wide:
        return wide(a.wide, int(a.rows.split(",")[0]), corners, a)
    print(f"{'wordlines':>9} {'bitlines':>8} {'WL RC ns':>9} " + " ".join(f"{c + ' ns':>9}" for c in corners)
          + "   (! = a read failed)")
    for rows in map(int, a.rows.split(",")):
        for cols in map(int, a.cols.split(",")):
            cells = []
            for c in corners:
                t, ok, _, _ = bank_access(rows, cols, c, a.period * 1e-9)
                cells.append(f"{t * 1e9:9.3f}" + ("" if ok else "!"))
            print(f"{rows:>9} {cols:>8} {wordline_elmore(cols, 'tt') * 1e9:9.3f} " + " ".join(cells), flush=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def wide(cols: int, rows: int, corners: list[str], a) -> None:
    print(f"{rows} wordlines x {cols} bitlines; access time (clock rise to dout 50 %), far bitline")
    print(f"{'structure':>28} " + " ".join(f"{c + ' ns':>9}" for c in corners)
          + "   (@ clock period ns, doubled up to twice while a read fails; ! = it still fails)")
    cases = [("one bank, poly wordline", cols, 1, 0)]
    cases += [(f"{-(-cols // w)} banks of {w}", w, -(-cols // w), 0) for w in _ints(a.banks)]
    cases += [(f"met2 strap every {s}", cols, 1, s) for s in _ints(a.straps)]
    for label, width, banks, strap in cases:
        cells = []
        for c in corners:
            t, ok, _, period = bank_access(rows, width, c, a.period * 1e-9, banks, strap, tries=3)
            cells.append(f"{t * 1e9:9.3f}" + ("" if ok else "!") + f" @{period * 1e9:g}")
        print(f"{label:>28} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
