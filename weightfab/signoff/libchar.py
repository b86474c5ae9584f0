"""Timing and power of a ROM macro for its Liberty view, characterised in ngspice.

Two decks per corner, on the macro's netlist (extracted, with ground capacitance):

* delay deck: reads of the word with the most ones (and of the word with the fewest, so every
  output returns low between them), one read per clock transition of ``CLK_SLEWS``; the douts
  are loaded in turn with each of ``LOADS`` (dout j gets ``LOADS[j % 3]``). Clock-to-output delay
  (clock 50 % to dout 50 %, rising) and the dout transition (10-90 %) per (clock slew, load) are
  the worst over the douts that rise with that load. Energy per read: the charge drawn from VDD
  over the read cycle times VDD, mean over the reads; leakage: the DC supply current with the clock
  stopped low.
* constraint deck: the address switches between two words that differ in as many bits as the
  array has; in read k it arrives ``SETUP_SWEEP[k]`` before the clock rises (setup), or leaves
  ``HOLD_SWEEP[k]`` after the clock falls (hold, towards the falling edge: the wordline stays on
  while the clock is high). Setup is the smallest sweep value whose read and all earlier (larger)
  ones sense the right word; hold the smallest value at which no output of a 0 bit ever crosses
  VDD/2 before the clock's next rise. Both are the last passing point of the sweep: the true
  requirement lies between it and the next point (at the sweep's end: at most that value), so the
  value written is the conservative one.
"""
from __future__ import annotations

from dataclasses import dataclass

import klayout.db as kdb
import numpy as np

from .characterize import Stimulus, macro_pins, run_stimulus
from .spice import VDD_NOMINAL, SpiceError, model_header, node, run, write_spice

CLK_SLEWS = (0.05e-9, 0.2e-9, 0.6e-9)
LOADS = (2e-15, 10e-15, 40e-15)
SETUP_SWEEP = (0.8e-9, 0.4e-9, 0.2e-9, 0.1e-9, 0.0, -0.1e-9)
HOLD_SWEEP = (0.3e-9, 0.1e-9, 0.0, -0.1e-9)


@dataclass
class MacroTiming:
    corner: str
    clk_slews: tuple[float, ...]
    loads: tuple[float, ...]
    tco: np.ndarray          # [slew, load] s
    transition: np.ndarray   # [slew, load] s
    setup: float             # s, address before clock rise
    hold: float              # s, address after clock fall
    energy: float            # J per read
    leakage: float           # W
    pin_cap: dict            # port name -> F (gate area of the devices on it)
    period: float
    seconds: float


def pin_capacitance(netlist: kdb.Netlist, names: list[str], cox: float = 8.3e-15) -> dict[str, float]:
    """Input capacitance estimate per port: gate area (W·L) of the transistors whose gate is on the
    port's net times the oxide capacitance (8.3 fF/µm², tox 4.15 nm of nfet_01v8) plus the net's
    wire capacitor where the netlist has one."""
    top = macro_pins(netlist).circuit
    out = {}
    for name in names:
        net = top.net_by_name(name)
        c = 0.0
        if net is not None:
            for t in net.each_terminal():
                d = t.device()
                dc = d.device_class()
                if dc.name in ("NMOS", "PMOS") and dc.terminal_definitions()[t.terminal_id()].name == "G":
                    c += d.parameter("W") * d.parameter("L") * cox
                elif dc.name == "CWIRE":
                    c += d.parameter("C")
        out[name] = c
    return out


def dc_leakage(netlist: kdb.Netlist, corner: str, vdd: float = VDD_NOMINAL) -> float:
    """Supply power (W) at the DC operating point with the clock low, enable high and address 0
    (bitlines precharged, every wordline off): the solver's exact static current, no integration."""
    ports = macro_pins(netlist)
    top = ports.circuit
    pins = [node(p.name()) for p in top.each_pin()] or [node(p) for p in ports.names]
    lines = [f"* leakage of {top.name}", model_header(corner), write_spice(netlist, top.name, ports.names),
             f"Xdut {' '.join(pins)} {node(top.name)}", f"Vvdd VDD 0 {vdd:g}", "Vvss VSS 0 0",
             f"Vclk {node(ports.prefix + '_clk')} 0 0", f"Ven {node(ports.prefix + '_en')} 0 {vdd:g}"]
    lines += [f"Va{i} {node(f'{ports.prefix}_addr[{i}]')} 0 0" for i in range(ports.nbits)]
    lines += [".tran 0.1n 1n", ".measure tran ileak find i(vvdd) at=0.5n"]
    res = run("\n".join(lines))
    if "ileak" not in res.measures:
        raise SpiceError("ngspice returned no supply current for the leakage point")
    return -res.measures["ileak"] * vdd


def _pick_words(bits: np.ndarray, rows: int) -> tuple[int, int]:
    ones = bits[:, :rows].sum(axis=0)
    a = int(np.argmax(ones))
    diff = (bits[:, :rows] != bits[:, [a]]).sum(axis=0)
    return a, int(np.argmax(diff))


def characterize(netlist: kdb.Netlist, bits: np.ndarray, corner: str, period: float = 10e-9,
                 vdd: float = VDD_NOMINAL) -> MacroTiming:
    """bits: [douts, wordlines] as the array holds them (dout order of the netlist's ports)."""
    ports = macro_pins(netlist)
    m = len(ports.douts)
    a, b = _pick_words(bits, bits.shape[1])
    T = period
    # -- delay deck: (a, b) per clock slew
    reads = [x for _ in CLK_SLEWS for x in (a, b)]
    n = len(reads)
    t_rise = T * (np.arange(n) + 1)
    stim = Stimulus(t_rise, T, [(0.0, 0)] + [(float(t - 1e-9), r) for t, r in zip(t_rise, reads)],
                    [(0.0, 0), (float(t_rise[0] - 1e-9), 1)], np.repeat(CLK_SLEWS, 2), 0.1e-9,
                    np.array([LOADS[j % len(LOADS)] for j in range(m)]))
    w, _ = run_stimulus(netlist, stim, corner, vdd)
    tco = np.zeros((len(CLK_SLEWS), len(LOADS)))
    tr = np.zeros_like(tco)
    for si in range(len(CLK_SLEWS)):
        for li in range(len(LOADS)):
            cols = [j for j in range(m) if j % len(LOADS) == li]
            d = w.delay[2 * si:2 * si + 2][:, cols]
            s_ = w.slew[2 * si:2 * si + 2][:, cols]
            tco[si, li] = np.nanmax(d) if np.isfinite(d).any() else np.nan
            tr[si, li] = np.nanmax(s_) if np.isfinite(s_).any() else np.nan
    energy = float(np.mean(w.charge)) * vdd
    leakage = dc_leakage(netlist, corner, vdd)
    setup, hold, s2 = _constraints(netlist, bits, a, b, corner, T, vdd)
    names = [f"{ports.prefix}_addr[{i}]" for i in range(ports.nbits)] + [f"{ports.prefix}_clk", f"{ports.prefix}_en"]
    return MacroTiming(corner, CLK_SLEWS, LOADS, tco, tr, setup, hold, energy, leakage,
                       pin_capacitance(netlist, names), T, w.seconds + s2)


def _constraints(netlist, bits, a, b, corner, T, vdd) -> tuple[float, float, float]:
    ports = macro_pins(netlist)
    m = len(ports.douts)
    expect = {a: bits[:, a], b: bits[:, b]}
    # setup: address toggles a/b, arriving SETUP_SWEEP[k] before each rise; hold: each read of a is
    # followed by the address leaving to b HOLD_SWEEP[k] after the clock falls (then a again)
    ns, nh = len(SETUP_SWEEP), len(HOLD_SWEEP)
    t_rise = T * (np.arange(ns + nh) + 1)
    addr = [(0.0, b)]
    reads = []
    for k, s in enumerate(SETUP_SWEEP):
        r = a if k % 2 == 0 else b
        addr.append((float(t_rise[k] - s), r))
        reads.append(r)
    for k, h in enumerate(HOLD_SWEEP):
        t = t_rise[ns + k]
        addr.append((float(t - 1e-9), a))
        addr.append((float(t + T / 2 + h), b))
        reads.append(a)
    stim = Stimulus(t_rise, T, addr, [(0.0, 1)], np.full(ns + nh, 0.1e-9), 0.1e-9, np.full(m, 5e-15))
    w, _ = run_stimulus(netlist, stim, corner, vdd)
    ok = [bool(np.array_equal(w.bits[k], expect[reads[k]])) for k in range(ns)]
    setup = SETUP_SWEEP[0]
    for k in range(ns):
        if not all(ok[:k + 1]):
            break
        setup = SETUP_SWEEP[k]
    # hold: a spurious rise of a 0-bit output of word a after the read (the b wordline firing)
    zero = expect[a] == 0
    hold = HOLD_SWEEP[0]
    for k in range(nh):
        spurious = bool((w.vmax_late[ns + k][zero] > vdd / 2).any()) or not np.array_equal(w.bits[ns + k], expect[a])
        if spurious:
            break
        hold = HOLD_SWEEP[k]
    return float(setup), float(hold), w.seconds
