"""A generated transistor netlist of a NOR ROM macro (the circuit the simulation reads when no
extracted macro is at hand, and the critical-path circuit of the bank-size study).

The circuit (all SKY130 ``nfet_01v8`` / ``pfet_01v8``, sizes in µm):

* address inputs buffered to true and complement; predecoders of 2 (up to 6 address bits) or 3
  bits per group (NAND + inverter); the clock and enable gate the first group (``ce = clk & en``),
  so every wordline is low while the clock is low;
* one final NAND + inverter per wordline, the inverter (wordline driver) sized for its load;
* per bitline: a PMOS precharge (on while ``ce`` is low), a weak PMOS keeper fed back from the
  output, and a sense inverter driving ``dout``;
* the array: one NMOS per bit site (gate = wordline, source = VSS); its drain is on the bitline
  for a 1 and on a net of its own for a 0, as in the drawn layout.

Read protocol: address and enable set up before the clock rises; while the clock is high the
addressed wordline rises and every bitline holding a 1 discharges, so ``dout[j] = bit``; while the
clock is low the bitlines precharge (all ``dout`` low). Wordline and bitline wires are RC ladders
from the drawn pitch and the PDK's poly and met1 parameters (``spice.wire_rc``).
"""
from __future__ import annotations

from dataclasses import dataclass

import klayout.db as kdb
import numpy as np

from .spice import WireRC

L_MIN = 0.15


@dataclass(frozen=True)
class RomSizes:
    """Device sizes and array pitch (µm). Defaults: the SKY130 bitcell of pdk.toml."""

    bit_w: float = 0.42
    bit_l: float = 0.15
    col_pitch: float = 0.69       # bitline pitch (wordline length per column)
    row_pitch: float = 0.71       # wordline pitch (bitline length per row)
    poly_w: float = 0.15
    met1_w: float = 0.23
    drain_area: float = 0.12      # µm² of a bit's drain diffusion (0.42 x 0.285)
    drain_perim: float = 1.41
    pre_w: float = 1.0            # precharge PMOS
    keep_w: float = 0.42          # keeper PMOS (long channel: weak)
    keep_l: float = 1.0
    sense_wn: float = 0.42
    sense_wp: float = 0.84
    logic_wn: float = 0.65
    logic_wp: float = 1.0

    def driver(self, cols: int) -> tuple[float, float]:
        """Wordline driver inverter (Wn, Wp): a fan-out of about 8 on the wordline's gate area."""
        wn = float(np.clip(cols * self.bit_w / 8, 0.65, 12.0))
        return round(wn, 2), round(2 * wn, 2)


class _Builder:
    def __init__(self, name: str):
        self.netlist = kdb.Netlist()
        self.nmos = kdb.DeviceClassMOS4Transistor()
        self.nmos.name = "NMOS"
        self.pmos = kdb.DeviceClassMOS4Transistor()
        self.pmos.name = "PMOS"
        self.res = kdb.DeviceClassResistor()
        self.res.name = "RES"
        self.cap = kdb.DeviceClassCapacitor()
        self.cap.name = "CAP"
        for dc in (self.nmos, self.pmos):   # M: parallel copies (lumped loads of devices not drawn)
            dc.add_parameter(kdb.DeviceParameterDefinition.new("M", "multiplier", 1.0, False, 1.0))
        for dc in (self.nmos, self.pmos, self.res, self.cap):
            self.netlist.add(dc)
        self.c = kdb.Circuit()
        self.c.name = name
        self.netlist.add(self.c)
        self.nets: dict[str, kdb.Net] = {}
        self.count = 0

    def net(self, name: str) -> kdb.Net:
        n = self.nets.get(name)
        if n is None:
            n = self.nets[name] = self.c.create_net(name)
        return n

    def pin(self, name: str):
        self.c.connect_pin(self.c.create_pin(name), self.net(name))

    def _dev(self, dc, conns: dict, params: dict):
        self.count += 1
        d = self.c.create_device(dc, f"{dc.name[0]}{self.count}")
        for t, n in conns.items():
            d.connect_terminal(t, self.net(n))
        for k, v in params.items():
            d.set_parameter(k, v)
        return d

    def mos(self, kind: str, d: str, g: str, s: str, w: float, l: float = L_MIN, ad: float = 0.0, pd: float = 0.0,
            m: int = 1):
        dc, b = (self.nmos, "VSS") if kind == "n" else (self.pmos, "VDD")
        p = {"W": w, "L": l, "M": float(m)}
        if ad:
            p.update(AD=ad, PD=pd)
        return self._dev(dc, {"D": d, "G": g, "S": s, "B": b}, p)

    def inv(self, a: str, y: str, wn: float, wp: float):
        self.mos("n", y, a, "VSS", wn)
        self.mos("p", y, a, "VDD", wp)

    def nand(self, ins: list[str], y: str, wn: float, wp: float):
        k = len(ins)
        prev = "VSS"
        for i, a in enumerate(ins):            # series NMOS stack, widened by the stack height
            nxt = y if i == k - 1 else f"{y}.s{i}"
            self.mos("n", nxt, a, prev, wn * k)
            prev = nxt
        for a in ins:
            self.mos("p", y, a, "VDD", wp)

    def line(self, a: str, n_units: int, r_total: float, c_total: float, segments: int = 16) -> list[str]:
        """An RC line from ``a`` over ``n_units`` (columns or rows) in at most ``segments`` equal
        sections; returns the node each unit attaches to (unit i: the section end nearest it)."""
        k = max(1, min(segments, n_units))
        prev = a
        nodes = []
        for i in range(k):
            t = f"{a}.s{i}"
            self._dev(self.res, {"A": prev, "B": t}, {"R": max(r_total / k, 1e-3)})
            self._dev(self.cap, {"A": t, "B": "VSS"}, {"C": c_total / k})
            nodes.append(t)
            prev = t
        pos = np.minimum((np.arange(n_units) * k) // n_units, k - 1)
        return [nodes[p] for p in pos]


def _groups(nbits: int) -> list[list[int]]:
    size = 2 if nbits <= 6 else 3
    return [list(range(i, min(i + size, nbits))) for i in range(0, nbits, size)]


def _bitlines(b: _Builder, bits: np.ndarray, prefix: str, rc: WireRC, s: RomSizes, cols_sim, rows_sim) -> dict[int, list[str]]:
    """Precharge, keeper, sense inverter and the RC bitline of each drawn column; returns the
    bitline node each wordline's bit attaches to, per column."""
    nrows = bits.shape[1]
    bl_at: dict[int, list[str]] = {}
    for j in cols_sim:
        j = int(j)
        bl = f"bl{j}"
        b.mos("p", bl, "pre", "VDD", s.pre_w)
        b.mos("p", bl, f"{prefix}_dout[{j}]", "VDD", s.keep_w, s.keep_l)
        b.inv(bl, f"{prefix}_dout[{j}]", s.sense_wn, s.sense_wp)
        r_bl, c_bl = rc.wire("met1", nrows * s.row_pitch, s.met1_w)
        bl_at[j] = b.line(bl, nrows, r_bl, c_bl)
        if len(rows_sim) < nrows:     # drains of the 1-bits on wordlines not drawn (off: gate at VSS)
            drawn = set(int(r) for r in rows_sim)
            ones = [bl_at[j][r] for r in range(nrows) if r not in drawn and bits[j, r]]
            for node_, cnt in zip(*np.unique(ones, return_counts=True)):
                b.mos("n", str(node_), "VSS", "VSS", s.bit_w, s.bit_l, s.drain_area, s.drain_perim, m=int(cnt))
    return bl_at


def _met2(rc: WireRC, length_um: float, width_um: float) -> tuple[float, float]:
    """A met2 wire: met2 sheet resistance, met1's capacitances (met2 sits higher: an upper bound)."""
    _, c = rc.wire("met1", length_um, width_um)
    return rc.r_met2 * length_um / width_um, c


def _predecode_lines(b: _Builder, groups, nrows: int, rows_sim, banks: int, pitch_um: float, rc: WireRC,
                     s: RomSizes) -> dict[str, str]:
    """Gate loads of the final NANDs not drawn, on each predecode line, and (banks > 1) the line
    across the banks; returns the node the simulated bank's NANDs take each line from."""
    wn, wp, k = s.logic_wn, s.logic_wp, len(groups)
    far = {}
    for gi, g in enumerate(groups):
        lines = 1 << len(g)
        per_bank = int(np.ceil(nrows / lines))
        extra = per_bank - int(np.ceil(len(rows_sim) / lines))
        for v in range(lines):
            name = f"pd{gi}_{v}"
            far[name] = name
            if extra > 0:
                b.mos("n", "VSS", name, "VSS", wn * k, m=extra)
                b.mos("p", "VDD", name, "VDD", wp, m=extra)
            if banks > 1:
                r, c = _met2(rc, (banks - 1) * pitch_um, 0.14)
                nodes = b.line(name, banks - 1, r, c, segments=banks - 1)
                for node in nodes:            # every other bank's NAND gates on this line
                    b.mos("n", "VSS", node, "VSS", wn * k, m=per_bank)
                    b.mos("p", "VDD", node, "VDD", wp, m=per_bank)
                far[name] = nodes[-1]
    return far


def _wordline(b: _Builder, wl: str, ncols: int, rc: WireRC, s: RomSizes, strap: int) -> list[str]:
    """The node each column's gate sits on: a poly RC line across the columns, or (strap) poly
    segments of ``strap`` columns hanging on a met2 strap."""
    if not strap or strap >= ncols:
        r_wl, c_wl = rc.wire("poly", ncols * s.col_pitch, s.poly_w)
        return b.line(wl, ncols, r_wl, c_wl)
    taps = int(np.ceil(ncols / strap))
    r_m, c_m = _met2(rc, ncols * s.col_pitch, 0.14)
    heads = b.line(wl, taps, r_m, c_m, segments=taps)
    at = []
    for t, head in enumerate(heads):
        n = min(strap, ncols - t * strap)
        r_wl, c_wl = rc.wire("poly", n * s.col_pitch, s.poly_w)
        at += b.line(head, n, r_wl, c_wl, segments=min(8, n))
    return at


def rom_netlist(bits: np.ndarray, prefix: str, rc: WireRC, sizes: RomSizes = RomSizes(),
                cols_sim: np.ndarray | None = None, rows_sim: np.ndarray | None = None,
                banks: int = 1, bank_pitch_um: float = 0.0, strap: int = 0) -> kdb.Netlist:
    """The macro of a ``bits`` [columns, wordlines] array as a kdb.Netlist with pins
    ``<prefix>_addr[i]``, ``<prefix>_clk``, ``<prefix>_en``, ``<prefix>_dout[j]``, VDD, VSS.

    cols_sim / rows_sim (critical-path reduction for large arrays): only these bitlines get
    their precharge, keeper, sense and bit devices, and only these wordlines their bit devices
    and decoder; the others' loads are kept where they matter for timing: every wordline that is
    drawn carries all ``columns`` gates, and every bitline that is drawn all ``wordlines`` drains.

    banks (the bank-size study): ``bits`` is the farthest of ``banks`` banks side by side at
    ``bank_pitch_um``, each with its own final decode and wordline drivers; the predecode lines
    run over all of them (a met2 line with every other bank's final-NAND gates on it) and this
    bank hangs at their far end. strap: the poly wordline is tied to a met2 strap every ``strap``
    columns (the strap an RC line over the bank, each tap driving ``strap`` columns of poly).
    """
    bits = np.asarray(bits, np.uint8)
    ncols, nrows = bits.shape
    nbits = max(1, int(np.ceil(np.log2(max(nrows, 2)))))
    cols_sim = np.arange(ncols) if cols_sim is None else np.asarray(cols_sim)
    rows_sim = np.arange(nrows) if rows_sim is None else np.asarray(rows_sim)
    b = _Builder(f"{prefix}_macro")
    s = sizes
    for i in range(nbits):
        b.pin(f"{prefix}_addr[{i}]")
    b.pin(f"{prefix}_clk")
    b.pin(f"{prefix}_en")
    for j in cols_sim:
        b.pin(f"{prefix}_dout[{j}]")
    b.pin("VDD")
    b.pin("VSS")
    wn, wp = s.logic_wn, s.logic_wp
    # control: ce = clk & en (buffered), pre = ~ce drives the precharge gates through a buffer
    b.nand([f"{prefix}_clk", f"{prefix}_en"], "ceb", wn, wp)
    b.inv("ceb", "ce", 2 * wn, 2 * wp)
    pre_load = len(cols_sim) * s.pre_w
    pw = float(np.clip(pre_load / 8, 0.65, 12.0))
    b.inv("ce", "pre_i", max(0.42, round(pw / 2, 2)), pw)
    b.inv("pre_i", "pre", pw, 2 * pw)                            # pre = ce: precharge PMOS on while low
    for i in range(nbits):
        b.inv(f"{prefix}_addr[{i}]", f"ab{i}", wn, wp)
        b.inv(f"ab{i}", f"at{i}", 2 * wn, 2 * wp)
    groups = _groups(nbits)
    for gi, g in enumerate(groups):
        for v in range(1 << len(g)):
            lits = [f"at{a}" if (v >> k) & 1 else f"ab{a}" for k, a in enumerate(g)]
            if gi == 0:
                lits.append("ce")
            b.nand(lits, f"pd{gi}_{v}b", wn, wp)
            b.inv(f"pd{gi}_{v}b", f"pd{gi}_{v}", 2 * wn, 2 * wp)
    pd_far = _predecode_lines(b, groups, nrows, rows_sim, banks, bank_pitch_um, rc, s)
    bl_at = _bitlines(b, bits, prefix, rc, s, cols_sim, rows_sim)
    dn, dp = s.driver(ncols)
    for r in rows_sim:
        r = int(r)
        lits = []
        for gi, g in enumerate(groups):
            v = sum(((r >> a) & 1) << k for k, a in enumerate(g))
            lits.append(pd_far[f"pd{gi}_{v}"])
        b.nand(lits, f"wlb{r}", wn, wp)
        b.inv(f"wlb{r}", f"wl{r}", dn, dp)
        at = _wordline(b, f"wl{r}", ncols, rc, s, strap)
        if len(cols_sim) < ncols:     # gates of the columns not drawn: one lumped NMOS per section
            drawn = set(int(j) for j in cols_sim)
            for node_, cnt in zip(*np.unique([at[j] for j in range(ncols) if j not in drawn], return_counts=True)):
                b.mos("n", "VSS", str(node_), "VSS", s.bit_w, s.bit_l, m=int(cnt))
        for j in cols_sim:
            drain = bl_at[int(j)][r] if bits[j, r] else f"fl{int(j)}.{r}"
            b.mos("n", drain, at[int(j)], "VSS", s.bit_w, s.bit_l, s.drain_area, s.drain_perim)
    return b.netlist
