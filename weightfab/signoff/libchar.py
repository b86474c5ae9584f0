"""Timing and power of a ROM macro for its Liberty view, characterised in ngspice.

Decks per corner, on the macro's netlist (extracted, with wire capacitance and RC ladders; for a
large array reduced to the two words read, reduce.py):

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
  ones sense the right word with a clock-to-output delay at most 10 % above that word's at the
  largest setups (a late address delays the wordline); hold the smallest value at which no output of a 0 bit ever crosses
  VDD/2 before the clock's next rise. Both are the last passing point of the sweep: the true
  requirement lies between it and the next point (at the sweep's end: at most that value), so the
  value written is the conservative one.
* enable deck: the same sweeps for ``en`` (address held): setup passes while the word is right and
  the clock-to-output delay has grown by at most 10 % (a late enable delays the wordline); hold
  while the word is right.
* input capacitance deck: each input rises and falls alone; the charge its source delivers / VDD.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import klayout.db as kdb
import numpy as np

from ..errors import WeightfabError
from .characterize import Stimulus, _events_wave, macro_pins, read_deck, run_stimulus, waves_of
from .spice import VDD_NOMINAL, SpiceError, model_header, node, run, write_spice

CLK_SLEWS = (0.05e-9, 0.2e-9, 0.6e-9)
LOADS = (2e-15, 10e-15, 40e-15)
SETUP_SWEEP = (0.8e-9, 0.4e-9, 0.2e-9, 0.1e-9, 0.0, -0.1e-9)
HOLD_SWEEP = (0.3e-9, 0.1e-9, 0.0, -0.1e-9)
PUSHOUT = 1.1          # setup: the clock-to-output delay may grow by 10 % at most
PERIOD_DOUBLINGS = 7   # the clock period is doubled while the delay deck reads wrong (10 ns -> 1.28 us at most)
SLACK = 0.4            # ... or its clock-to-output delay exceeds this fraction of the period


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
    pin_cap: dict            # port name -> F (measured: charge over an input edge / VDD)
    period: float
    seconds: float
    en_setup: float = float("nan")     # s, enable before clock rise (its own sweep)
    en_hold: float = float("nan")      # s, enable after clock fall


@dataclass
class _Deck:
    """One ngspice deck and what its result becomes (``finish`` is given the SpiceRun)."""
    text: str
    save: list
    finish: Callable


def _run_decks(decks: list[_Deck]) -> list:
    """Run independent decks, as many ngspice processes at once as this process may use cores (the
    decks are written here, in the calling thread; the threads only wait for ngspice), and return
    each deck's finished result in order. The decks are given longest first."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = min(len(decks), cores)
    if n <= 1:
        results = [run(d.text, d.save) for d in decks]
    else:
        with ThreadPoolExecutor(n) as ex:
            results = list(ex.map(lambda d: run(d.text, d.save), decks))
    return [d.finish(r) for d, r in zip(decks, results)]


def _deck_head(netlist: kdb.Netlist, corner: str, vdd: float, title: str) -> tuple[list[str], object]:
    ports = macro_pins(netlist)
    top = ports.circuit
    pins = [node(p.name()) for p in top.each_pin()] or [node(p) for p in ports.names]
    return [f"* {title} of {top.name}", model_header(corner, primitive=True, netlist=netlist),
            write_spice(netlist, top.name, ports.names, primitive=True),
            f"Xdut {' '.join(pins)} {node(top.name)}", f"Vvdd VDD 0 {vdd:g}", "Vvss VSS 0 0"], ports


def pin_capacitance(netlist: kdb.Netlist, corner: str = "tt", vdd: float = VDD_NOMINAL, step: float = 1e-9,
                    slew: float = 0.1e-9) -> dict[str, float]:
    """Input capacitance per input port, measured in ngspice: with the clock low, enable high and the
    address 0, each input in turn rises (and ``step`` later falls) with a 10-90 % ``slew``; its
    capacitance is the charge its source delivers over the edge and the settling after it, divided
    by VDD, the larger of rise and fall (what a driver sees, gate and Miller charge and wire)."""
    d = _pin_cap_deck(netlist, corner, vdd, step, slew)
    return d.finish(run(d.text))


def _pin_cap_deck(netlist, corner, vdd, step=1e-9, slew=0.1e-9) -> _Deck:
    lines, ports = _deck_head(netlist, corner, vdd, "input capacitance")
    p = ports.prefix
    names = [f"{p}_addr[{i}]" for i in range(ports.nbits)] + [f"{p}_clk", f"{p}_en"]
    for k, name in enumerate(names):
        t0 = (2 * k + 1) * step
        lv = 1 if name == f"{p}_en" else 0      # enable falls and rises again (its read level is high)
        wave = _events_wave([(0.0, lv), (t0, 1 - lv), (t0 + step, lv)], slew / 0.8, vdd)
        lines.append(f"Vp{k} {node(name)} 0 {wave}")
        lines.append(f".measure tran qa{k} integ i(vp{k}) from={t0:.6g} to={t0 + step:.6g}")
        lines.append(f".measure tran qb{k} integ i(vp{k}) from={t0 + step:.6g} to={t0 + 2 * step:.6g}")
    lines.append(f".tran {step / 20:.6g} {(2 * len(names) + 1) * step:.6g}")

    def finish(res):
        out = {}
        for k, name in enumerate(names):
            q = [res.measures.get(f"q{e}{k}") for e in "ab"]
            if any(v is None for v in q):
                raise SpiceError(f"ngspice returned no input charge for {name}")
            out[name] = max(abs(v) for v in q) / vdd
        return out
    return _Deck("\n".join(lines), [], finish)


def dc_leakage(netlist: kdb.Netlist, corner: str, vdd: float = VDD_NOMINAL) -> float:
    """Supply power (W) at the DC operating point with the clock low, enable high and address 0
    (bitlines precharged, every wordline off): the solver's exact static current, no integration."""
    d = _leakage_deck(netlist, corner, vdd)
    return d.finish(run(d.text))


def _leakage_deck(netlist, corner, vdd) -> _Deck:
    lines, ports = _deck_head(netlist, corner, vdd, "leakage")
    lines += [f"Vclk {node(ports.prefix + '_clk')} 0 0", f"Ven {node(ports.prefix + '_en')} 0 {vdd:g}"]
    lines += [f"Va{i} {node(f'{ports.prefix}_addr[{i}]')} 0 0" for i in range(ports.nbits)]
    lines += [".tran 0.1n 1n", ".measure tran ileak find i(vvdd) at=0.5n"]

    def finish(res):
        if "ileak" not in res.measures:
            raise SpiceError("ngspice returned no supply current for the leakage point")
        return -res.measures["ileak"] * vdd
    return _Deck("\n".join(lines), [], finish)


def _pick_words(bits: np.ndarray, rows: int) -> tuple[int, int]:
    ones = bits[:, :rows].sum(axis=0)
    a = int(np.argmax(ones))
    diff = (bits[:, :rows] != bits[:, [a]]).sum(axis=0)
    return a, int(np.argmax(diff))


def characterize(netlist: kdb.Netlist, bits: np.ndarray, corner: str, period: float = 10e-9,
                 vdd: float = VDD_NOMINAL, reduce: bool = False) -> MacroTiming:
    """bits: [douts, wordlines] as the array holds them (dout order of the netlist's ports).
    ``reduce``: characterise on the netlist reduced to the two words read (reduce.py: their
    wordlines whole, every other bit device folded into its bitline's load). The clock period
    starts at ``period`` and is doubled while the delay deck reads a word wrong or its slowest
    clock-to-output delay exceeds ``SLACK`` of the period; every deck then runs at that period, the
    four after the delay deck (leakage, address and enable constraints, input capacitance) at once."""
    a, b = _pick_words(bits, bits.shape[1])
    if reduce:
        from .reduce import reduce_rows
        netlist = reduce_rows(netlist, [a, b], bits=bits).netlist
    T, s1 = period, 0.0
    for _ in range(PERIOD_DOUBLINGS + 1):        # a slow macro (a long wordline) gets a longer clock
        tco, tr, energy, s, right = _delays(netlist, a, b, bits, corner, T, vdd)
        s1 += s
        if right and np.isfinite(tco).all() and tco.max() < SLACK * T:
            break
        T *= 2
    else:
        raise WeightfabError(f"'{macro_pins(netlist).circuit.name}' at {corner}: words {a} and {b} read wrong or later "
                             f"than {SLACK:g} of the clock period up to {T / 2e-9:g} ns")
    (en_setup, en_hold, s3), (setup, hold, s2), caps, leakage = _run_decks(
        [_en_constraints(netlist, bits, a, corner, T, vdd), _constraints(netlist, bits, a, b, corner, T, vdd),
         _pin_cap_deck(netlist, corner, vdd), _leakage_deck(netlist, corner, vdd)])
    return MacroTiming(corner, CLK_SLEWS, LOADS, tco, tr, setup, hold, energy, leakage, caps, T,
                       s1 + s2 + s3, en_setup, en_hold)


def _delays(netlist, a, b, bits, corner, T, vdd):
    """Delay deck: reads of (a, b) per clock slew, dout j loaded with LOADS[j % 3]; returns the
    clock-to-output and transition tables [slew, load], the energy per read, ngspice seconds and
    whether every read sensed its word."""
    m = len(macro_pins(netlist).douts)
    reads = [x for _ in CLK_SLEWS for x in (a, b)]
    t_rise = T * (np.arange(len(reads)) + 1)
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
    right = all(np.array_equal(w.bits[k], bits[:, r]) for k, r in enumerate(reads))
    return tco, tr, float(np.mean(w.charge)) * vdd, w.seconds, right


def _stimulus_deck(netlist, stim: Stimulus, corner, vdd, evaluate) -> _Deck:
    """The deck of a stimulus; its result is ``evaluate(waves)``."""
    deck, save, ports = read_deck(netlist, stim, corner, vdd)
    return _Deck(deck, save, lambda res: evaluate(waves_of(res, stim, ports, vdd)))


def _constraints(netlist, bits, a, b, corner, T, vdd) -> _Deck:
    """Address setup and hold deck; finished: (setup, hold, ngspice seconds)."""
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
    return _stimulus_deck(netlist, stim, corner, vdd, lambda w: _setup_hold(w, expect, reads, a, ns, nh, vdd))


def _setup_hold(w, expect, reads, a, ns, nh, vdd) -> tuple[float, float, float]:
    delay = [np.nanmax(w.delay[k]) if np.isfinite(w.delay[k]).any() else np.inf for k in range(ns)]
    ref = {reads[1]: delay[1], reads[0]: delay[0]}          # each word's delay at the largest setups
    ok = [bool(np.array_equal(w.bits[k], expect[reads[k]])) and delay[k] <= PUSHOUT * ref[reads[k]]
          for k in range(ns)]
    # hold: a spurious rise of a 0-bit output of word a after the read (the b wordline firing)
    zero = expect[a] == 0
    clean = [not (w.vmax_late[ns + k][zero] > vdd / 2).any() and np.array_equal(w.bits[ns + k], expect[a])
             for k in range(nh)]
    return float(_last_pass(SETUP_SWEEP, ok)), float(_last_pass(HOLD_SWEEP, clean)), w.seconds


def _en_constraints(netlist, bits, a, corner, T, vdd) -> _Deck:
    """Enable setup and hold, the address held at word ``a``. Setup: in read k the enable rises
    ``SETUP_SWEEP[k]`` before the clock (and falls after the clock's fall); a point passes when the
    word is right and its clock-to-output delay is at most ``PUSHOUT`` times the first read's (a late
    enable delays the wordline). Hold: the enable falls ``HOLD_SWEEP[k]`` after the clock's fall; a
    point passes when the word is right. Both: the last point of an unbroken run of passes.
    Finished: (setup, hold, ngspice seconds)."""
    m = len(macro_pins(netlist).douts)
    ns, nh = len(SETUP_SWEEP), len(HOLD_SWEEP)
    t_rise = T * (np.arange(ns + nh) + 1)
    en = [(0.0, 0)]
    for k, s in enumerate(SETUP_SWEEP):
        en += [(float(t_rise[k] - s), 1), (float(t_rise[k] + T / 2 + 1e-9), 0)]
    for k, h in enumerate(HOLD_SWEEP):
        t = t_rise[ns + k]
        en += [(float(t - 1e-9), 1), (float(t + T / 2 + h), 0)]
    stim = Stimulus(t_rise, T, [(0.0, a)], en, np.full(ns + nh, 0.1e-9), 0.1e-9, np.full(m, 5e-15))
    return _stimulus_deck(netlist, stim, corner, vdd, lambda w: _en_setup_hold(w, bits[:, a], ns, nh))


def _en_setup_hold(w, word, ns, nh) -> tuple[float, float, float]:
    right = [bool(np.array_equal(w.bits[k], word)) for k in range(ns + nh)]
    delay = np.array([np.nanmax(w.delay[k]) if np.isfinite(w.delay[k]).any() else np.inf for k in range(ns)])
    ok_s = [right[k] and delay[k] <= PUSHOUT * delay[0] for k in range(ns)]
    return float(_last_pass(SETUP_SWEEP, ok_s)), float(_last_pass(HOLD_SWEEP, right[ns:])), w.seconds


def _last_pass(sweep, ok) -> float:
    """The last sweep value of the unbroken run of passing points from the first (the first when it fails)."""
    value = sweep[0]
    for v, good in zip(sweep, ok):
        if not good:
            break
        value = v
    return value
